package stepfunctions_test

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

// The runner keeps one prepared machine per definition text, whichever
// state machines have it: each execution's context ($$) is still its own —
// its state machine's name, its own name, its role.
func TestOneDefinitionTwoMachinesEachItsOwnContext(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	def := map[string]any{"StartAt": "Who", "States": map[string]any{"Who": map[string]any{"Type": "Pass", "End": true,
		"Parameters": map[string]any{"machine.$": "$$.StateMachine.Name", "execution.$": "$$.Execution.Name", "role.$": "$$.Execution.RoleArn", "in.$": "$"}}}}
	b, _ := json.Marshal(def)
	otherRole := "arn:aws:iam::111122223333:role/other"
	ma := create(t, c, "twin-a", def)
	out, err := c.CreateStateMachine(context.Background(), &sfn.CreateStateMachineInput{Name: aws.String("twin-b"), Definition: aws.String(string(b)), RoleArn: aws.String(otherRole)})
	if err != nil {
		t.Fatalf("CreateStateMachine twin-b: %v", err)
	}
	mb := aws.ToString(out.StateMachineArn)
	type who struct {
		Machine, Execution, Role string
		In                       map[string]int
	}
	want := map[string]who{}
	var arns []string
	for i := range 6 {
		m, name, r := ma, "a-", role
		if i%2 == 1 {
			m, name, r = mb, "b-", otherRole
		}
		name += string(rune('0' + i))
		st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(m), Name: aws.String(name), Input: aws.String(`{"i":` + string(rune('0'+i)) + `}`)})
		if err != nil {
			t.Fatalf("StartExecution: %v", err)
		}
		arn := aws.ToString(st.ExecutionArn)
		arns = append(arns, arn)
		want[arn] = who{Machine: "twin-" + name[:1], Execution: name, Role: r, In: map[string]int{"i": i}}
	}
	for _, arn := range arns {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := sf.WaitForExecution(ctx, arn)
		cancel()
		if err != nil || v.Status != stepfunctions.Succeeded || v.Output == nil {
			t.Fatalf("%s: %v %s %s", arn, err, v.Status, v.Cause)
		}
		var got who
		_ = json.Unmarshal([]byte(*v.Output), &got)
		if w := want[arn]; got.Machine != w.Machine || got.Execution != w.Execution || got.Role != w.Role || got.In["i"] != w.In["i"] {
			t.Errorf("%s saw %+v, want %+v", arn, got, w)
		}
	}
}

// The runner killed with executions on it and a definition being checked:
// every execution on it fails naming the runner, the definition is checked
// on a new runner all the same, and executions run there.
func TestRunnerKilledMidValidationAndRuns(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	machine := longWait(t, c)
	var arns []string
	for range 3 {
		st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(machine)})
		if err != nil {
			t.Fatalf("StartExecution: %v", err)
		}
		arns = append(arns, aws.ToString(st.ExecutionArn))
	}
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		pids = sf.RunnerPIDs()
	}
	if len(pids) != 1 {
		t.Fatalf("runners %v", pids)
	}
	created := make(chan error, 1)
	go func() {
		_, err := c.CreateStateMachine(context.Background(), &sfn.CreateStateMachineInput{Name: aws.String("checked-meanwhile"), RoleArn: aws.String(role),
			Definition: aws.String(`{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"ok":true},"End":true}}}`)})
		created <- err
	}()
	time.Sleep(20 * time.Millisecond) // the validation on its way to the runner, or in it
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Fatalf("CreateStateMachine as the runner died: %v", err)
	}
	for _, arn := range arns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := sf.WaitForExecution(ctx, arn)
		cancel()
		if err != nil || v.Status != stepfunctions.Failed || v.Error != "States.Runtime" || !strings.Contains(v.Cause, "runner") {
			t.Errorf("%s after the runner died: %v %s %s %q", arn, err, v.Status, v.Error, v.Cause)
		}
	}
	pass := create(t, c, "after", map[string]any{"StartAt": "P", "States": map[string]any{"P": map[string]any{"Type": "Pass", "End": true}}})
	if _, d := run(t, c, sf, pass, `{"x":1}`); d.Status != "SUCCEEDED" || aws.ToString(d.Output) != `{"x":1}` {
		t.Fatalf("a run after the runner died: %s %s", d.Status, aws.ToString(d.Output))
	}
	if p := sf.RunnerPIDs(); len(p) == 1 && p[0] == pids[0] {
		t.Errorf("the dead runner %d is still the one in use", pids[0])
	}
}
