package stepfunctions_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

const role = "arn:aws:iam::111122223333:role/keyrotator-states"

// start runs a sandbox whose waits last a millionth of their time, and
// returns the SDK client and the service; it skips without Node.js ≥ 22.
func start(t *testing.T) (*sandboxtest.Sandbox, *sfn.Client, *stepfunctions.Service) {
	t.Helper()
	return startWith(t, fullsandbox.Options{WaitScale: 1e-6})
}

// startWith is start with the sandbox's options given.
func startWith(t *testing.T, opts fullsandbox.Options) (*sandboxtest.Sandbox, *sfn.Client, *stepfunctions.Service) {
	t.Helper()
	sb := sandboxtest.Start(t, opts)
	svc, ok := sb.Server.Service("states")
	if !ok {
		t.Fatal("the sandbox has no Step Functions (states) service")
	}
	sf := svc.(*stepfunctions.Service)
	if err := sf.Ready(); err != nil {
		t.Skipf("Step Functions needs Node.js >= 22 with aws-local-stepfunctions (npm ci at the repository root): %v", err)
	}
	return sb, sfn.NewFromConfig(sb.Config(t)), sf
}

func create(t *testing.T, c *sfn.Client, name string, def any) string {
	t.Helper()
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateStateMachine(context.Background(), &sfn.CreateStateMachineInput{
		Name: aws.String(name), Definition: aws.String(string(b)), RoleArn: aws.String(role),
	})
	if err != nil {
		t.Fatalf("CreateStateMachine %s: %v", name, err)
	}
	return aws.ToString(out.StateMachineArn)
}

func run(t *testing.T, c *sfn.Client, sf *stepfunctions.Service, machine, input string) (string, *sfn.DescribeExecutionOutput) {
	t.Helper()
	ctx := context.Background()
	st, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(input)})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	arn := aws.ToString(st.ExecutionArn)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := sf.WaitForExecution(wctx, arn); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("DescribeExecution: %v", err)
	}
	return arn, d
}

// history reads a whole history through the SDK paginator, a few events a page.
func history(t *testing.T, c *sfn.Client, arn string) []types.HistoryEvent {
	t.Helper()
	var all []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 3})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("GetExecutionHistory: %v", err)
		}
		all = append(all, page.Events...)
	}
	return all
}

func eventTypes(h []types.HistoryEvent) []string {
	var out []string
	for _, e := range h {
		out = append(out, string(e.Type))
	}
	return out
}

func count(h []types.HistoryEvent, typ types.HistoryEventType) int {
	n := 0
	for _, e := range h {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestPassWaitSucceed(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	ctx := context.Background()
	machine := create(t, c, "wait-a-week", map[string]any{
		"StartAt": "Plan",
		"States": map[string]any{
			"Plan": map[string]any{"Type": "Pass", "Next": "WaitDays", "Parameters": map[string]any{
				"user.$": "$.user", "waitSeconds.$": "$.waitSeconds",
				"entered.$": "$$.State.EnteredTime", "execution.$": "$$.Execution.Id", "name.$": "$$.Execution.Name",
				"machine.$": "$$.StateMachine.Id",
			}},
			"WaitDays": map[string]any{"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "Done"},
			"Done":     map[string]any{"Type": "Succeed"},
		},
	})
	before, realStart := sb.Server.Clock().Now(), time.Now()
	arn, d := run(t, c, sf, machine, `{"user":"alice","waitSeconds":604800}`)
	realTook, moved := time.Since(realStart), sb.Server.Clock().Now().Sub(before)

	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s (%s: %s), want SUCCEEDED", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	week := 7 * 24 * time.Hour
	if moved < week || moved > week+time.Minute {
		t.Errorf("the sandbox clock moved %v over a 7-day Wait, want 7 days", moved)
	}
	if realTook > 15*time.Second {
		t.Errorf("a 7-day Wait took %v of real time at WaitScale 1e-6", realTook)
	}
	if d.StopDate.Sub(*d.StartDate) < week {
		t.Errorf("startDate %v, stopDate %v: want 7 days apart", d.StartDate, d.StopDate)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %q: %v", aws.ToString(d.Output), err)
	}
	if out["user"] != "alice" || out["execution"] != arn || out["machine"] != machine || !strings.HasSuffix(arn, ":"+out["name"].(string)) {
		t.Errorf("output %v: want the user and the context's ids", out)
	}
	entered, err := time.Parse(time.RFC3339Nano, out["entered"].(string))
	if err != nil || entered.Sub(before).Abs() > time.Minute {
		t.Errorf("$$.State.EnteredTime %v (%v), want about %v", out["entered"], err, before)
	}

	h := history(t, c, arn)
	want := []string{"ExecutionStarted", "PassStateEntered", "PassStateExited", "WaitStateEntered", "WaitStateExited",
		"SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"}
	if got := eventTypes(h); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("history %v, want %v", got, want)
	}
	for i, e := range h {
		if e.Id != int64(i+1) || e.PreviousEventId != int64(i) {
			t.Errorf("event %d: id %d previous %d", i, e.Id, e.PreviousEventId)
		}
		if i > 0 && e.Timestamp.Before(*h[i-1].Timestamp) {
			t.Errorf("event %d (%s) is older than the one before", i, e.Type)
		}
	}
	if got := aws.ToString(h[0].ExecutionStartedEventDetails.Input); got != `{"user":"alice","waitSeconds":604800}` ||
		aws.ToString(h[0].ExecutionStartedEventDetails.RoleArn) != role {
		t.Errorf("ExecutionStarted %q %q", got, aws.ToString(h[0].ExecutionStartedEventDetails.RoleArn))
	}
	for i, name := range map[int]string{1: "Plan", 3: "WaitDays", 5: "Done"} {
		if got := aws.ToString(h[i].StateEnteredEventDetails.Name); got != name {
			t.Errorf("event %d enters %q, want %q", i, got, name)
		}
	}
	if got := aws.ToString(h[1].StateEnteredEventDetails.Input); got != `{"user":"alice","waitSeconds":604800}` {
		t.Errorf("Plan's input %s", got)
	}
	var planOut map[string]any
	_ = json.Unmarshal([]byte(aws.ToString(h[2].StateExitedEventDetails.Output)), &planOut)
	if aws.ToString(h[2].StateExitedEventDetails.Name) != "Plan" || planOut["user"] != "alice" || planOut["waitSeconds"] != 604800.0 {
		t.Errorf("Plan exited with %s", aws.ToString(h[2].StateExitedEventDetails.Output))
	}
	if w := h[4].Timestamp.Sub(*h[3].Timestamp); w < week || w > week+time.Minute {
		t.Errorf("the Wait lasted %v in the history, want 7 days", w)
	}
	if got := aws.ToString(h[7].ExecutionSucceededEventDetails.Output); got != aws.ToString(d.Output) {
		t.Errorf("ExecutionSucceeded output %s, want %s", got, aws.ToString(d.Output))
	}

	rev, err := c.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), ReverseOrder: true, MaxResults: 1, IncludeExecutionData: aws.Bool(false)})
	if err != nil || len(rev.Events) != 1 || rev.Events[0].Type != types.HistoryEventTypeExecutionSucceeded || rev.NextToken == nil ||
		rev.Events[0].ExecutionSucceededEventDetails.Output != nil {
		t.Errorf("reverse history, no data: %v %+v", err, rev)
	}
	ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(machine), StatusFilter: types.ExecutionStatusSucceeded})
	if err != nil || len(ls.Executions) != 1 || aws.ToString(ls.Executions[0].ExecutionArn) != arn {
		t.Errorf("ListExecutions SUCCEEDED: %v %+v", err, ls)
	}
	ls, err = c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(machine), StatusFilter: types.ExecutionStatusRunning})
	if err != nil || len(ls.Executions) != 0 {
		t.Errorf("ListExecutions RUNNING: %v %+v", err, ls)
	}
	sms, err := c.ListStateMachines(ctx, &sfn.ListStateMachinesInput{})
	if err != nil || len(sms.StateMachines) != 1 || aws.ToString(sms.StateMachines[0].Name) != "wait-a-week" {
		t.Errorf("ListStateMachines: %v %+v", err, sms)
	}
	dsm, err := c.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(machine)})
	if err != nil || dsm.Status != types.StateMachineStatusActive || dsm.Type != types.StateMachineTypeStandard || !strings.Contains(aws.ToString(dsm.Definition), "WaitDays") {
		t.Errorf("DescribeStateMachine: %v %+v", err, dsm)
	}
}

// longWait is a state machine that waits ~3 years (100 s of real time at
// WaitScale 1e-6): it is still running when the test is done with it.
func longWait(t *testing.T, c *sfn.Client) string {
	return create(t, c, "long-wait", map[string]any{
		"StartAt": "Forever",
		"States":  map[string]any{"Forever": map[string]any{"Type": "Wait", "Seconds": 100_000_000, "End": true}},
	})
}

func TestStopAndIdempotentStart(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	ctx := context.Background()
	machine := longWait(t, c)
	before := sb.Server.Clock().Now()

	first, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("run-1"), Input: aws.String(`{"a":1}`)})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	again, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("run-1"), Input: aws.String(`{"a":1}`)})
	if err != nil || aws.ToString(again.ExecutionArn) != aws.ToString(first.ExecutionArn) || !again.StartDate.Equal(*first.StartDate) {
		t.Fatalf("same name, same input: %v %+v, want the first execution %+v", err, again, first)
	}
	_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("run-1"), Input: aws.String(`{"a":2}`)})
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("same name, other input: %v, want ExecutionAlreadyExists", err)
	}
	ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(machine), StatusFilter: types.ExecutionStatusRunning})
	if err != nil || len(ls.Executions) != 1 {
		t.Fatalf("running executions: %v %+v", err, ls)
	}

	arn := first.ExecutionArn
	if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: arn, Error: aws.String("Operator.Stop"), Cause: aws.String("stopped by the test")}); err != nil {
		t.Fatalf("StopExecution: %v", err)
	}
	d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: arn})
	if err != nil || d.Status != types.ExecutionStatusAborted || aws.ToString(d.Error) != "Operator.Stop" || aws.ToString(d.Cause) != "stopped by the test" || d.StopDate == nil {
		t.Fatalf("after StopExecution: %v %+v", err, d)
	}
	h := history(t, c, aws.ToString(arn))
	last := h[len(h)-1]
	if last.Type != types.HistoryEventTypeExecutionAborted || aws.ToString(last.ExecutionAbortedEventDetails.Error) != "Operator.Stop" {
		t.Errorf("history %v ends with %s, want ExecutionAborted", eventTypes(h), last.Type)
	}
	if moved := sb.Server.Clock().Now().Sub(before); moved > time.Hour {
		t.Errorf("an aborted Wait moved the clock %v", moved)
	}
	_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("run-1"), Input: aws.String(`{"a":1}`)})
	if !errors.As(err, &exists) {
		t.Errorf("the name of a closed execution: %v, want ExecutionAlreadyExists", err)
	}
	waitNoRunners(t, sf)
}

func waitNoRunners(t *testing.T, sf *stepfunctions.Service) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(sf.RunnerPIDs()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("runners still alive: %v", sf.RunnerPIDs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	_, c, _ := start(t)
	ctx := context.Background()
	machine := create(t, c, "ok", map[string]any{"StartAt": "P", "States": map[string]any{"P": map[string]any{"Type": "Pass", "End": true}}})
	missingExec := "arn:aws:states:us-east-1:111122223333:execution:ok:nope"
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"unknown execution", func() error {
			_, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(missingExec)})
			return err
		}, "ExecutionDoesNotExist"},
		{"history of an unknown execution", func() error {
			_, err := c.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(missingExec)})
			return err
		}, "ExecutionDoesNotExist"},
		{"a state machine ARN for an execution", func() error {
			_, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(machine)})
			return err
		}, "InvalidArn"},
		{"not an ARN", func() error {
			_, err := c.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String("ok")})
			return err
		}, "InvalidArn"},
		{"unknown state machine", func() error {
			_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine + "-gone")})
			return err
		}, "StateMachineDoesNotExist"},
		{"input that is not JSON", func() error {
			_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String("{user:")})
			return err
		}, "InvalidExecutionInput"},
		{"input over 256 KiB", func() error {
			big := `{"x":"` + strings.Repeat("a", 256*1024) + `"}`
			_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(big)})
			return err
		}, "InvalidExecutionInput"},
		{"definition that is not JSON", func() error {
			_, err := c.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("bad"), Definition: aws.String("{"), RoleArn: aws.String(role)})
			return err
		}, "InvalidDefinition"},
		{"definition with a missing Next", func() error {
			_, err := c.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("bad"), RoleArn: aws.String(role),
				Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}}`)})
			return err
		}, "InvalidDefinition"},
		{"same name, other definition", func() error {
			_, err := c.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("ok"), RoleArn: aws.String(role),
				Definition: aws.String(`{"StartAt":"Q","States":{"Q":{"Type":"Pass","End":true}}}`)})
			return err
		}, "StateMachineAlreadyExists"},
		{"bad execution name", func() error {
			_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("a b")})
			return err
		}, "InvalidName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.want {
				t.Errorf("got %q, want %s", got, tc.want)
			}
		})
	}
}

func TestUnsupportedTaskIsCaught(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	machine := create(t, c, "unsupported", map[string]any{
		"StartAt": "Put",
		"States": map[string]any{
			"Put": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": map[string]any{"TableName": "t"},
				"Catch": []any{map[string]any{"ErrorEquals": []string{"States.TaskFailed"}, "ResultPath": "$.error", "Next": "Handled"}}, "End": true},
			"Handled": map[string]any{"Type": "Pass", "End": true},
		},
	})
	arn, d := run(t, c, sf, machine, `{"user":"bob"}`)
	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	var out struct {
		User  string `json:"user"`
		Error struct{ Error, Cause string }
	}
	_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
	if out.User != "bob" || out.Error.Error != "States.TaskFailed" || !strings.Contains(out.Error.Cause, "dynamodb:putItem") {
		t.Errorf("output %s", aws.ToString(d.Output))
	}
	h := history(t, c, arn)
	want := "ExecutionStarted,TaskStateEntered,TaskScheduled,TaskStartFailed,TaskStateExited,PassStateEntered,PassStateExited,ExecutionSucceeded"
	if got := strings.Join(eventTypes(h), ","); got != want {
		t.Errorf("history %s, want %s", got, want)
	}
	if s := h[2].TaskScheduledEventDetails; s == nil || aws.ToString(s.ResourceType) != "dynamodb" || aws.ToString(s.Resource) != "putItem" || aws.ToString(s.Parameters) != `{"TableName":"t"}` {
		t.Errorf("TaskScheduled %+v", s)
	}
}

func TestFailState(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	machine := create(t, c, "fails", map[string]any{
		"StartAt": "Boom",
		"States":  map[string]any{"Boom": map[string]any{"Type": "Fail", "Error": "KeyLimitReached", "Cause": "user bob has 2 keys"}},
	})
	arn, d := run(t, c, sf, machine, `{}`)
	if d.Status != types.ExecutionStatusFailed || aws.ToString(d.Error) != "KeyLimitReached" || aws.ToString(d.Cause) != "user bob has 2 keys" {
		t.Fatalf("got %s %q %q", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	h := history(t, c, arn)
	if last := h[len(h)-1]; last.Type != types.HistoryEventTypeExecutionFailed || aws.ToString(last.ExecutionFailedEventDetails.Error) != "KeyLimitReached" {
		t.Errorf("history %v", eventTypes(h))
	}
}

func TestSNSPublishRetriedAndCaught(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	if _, ok := sb.Server.Service("sns"); !ok {
		t.Skip("the sandbox has no SNS service yet")
	}
	ctx := context.Background()
	topic, err := sns.NewFromConfig(sb.Config(t)).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("alerts")})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	retry := []any{map[string]any{"ErrorEquals": []string{"SNS.ThrottlingException", "SNS.NotFoundException"}, "IntervalSeconds": 60, "MaxAttempts": 2, "BackoffRate": 2}}
	machine := create(t, c, "notify", map[string]any{
		"StartAt": "Notify",
		"States": map[string]any{
			"Notify": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Retry": retry,
				"Parameters":     map[string]any{"TopicArn.$": "$.topic", "Subject": "Key rotated", "Message.$": "$.detail"},
				"ResultSelector": map[string]any{"messageId.$": "$.MessageId"}, "ResultPath": "$.published",
				"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.error", "Next": "Caught"}}, "End": true},
			"Caught": map[string]any{"Type": "Pass", "End": true},
		},
	})

	t.Run("throttled once, then published", func(t *testing.T) {
		sb.Fault(t, sandbox.Fault{Service: "sns", Action: "Publish", Kind: "throttle"})
		before := sb.Server.Clock().Now()
		arn, d := run(t, c, sf, machine, `{"topic":"`+aws.ToString(topic.TopicArn)+`","detail":{"user":"alice","newKeyId":"AKIA…"}}`)
		var out struct {
			Published struct{ MessageID string } `json:"published"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
		if d.Status != types.ExecutionStatusSucceeded || out.Published.MessageID == "" {
			t.Fatalf("got %s %s", d.Status, aws.ToString(d.Output))
		}
		h := history(t, c, arn)
		if count(h, types.HistoryEventTypeTaskScheduled) != 2 || count(h, types.HistoryEventTypeTaskFailed) != 1 || count(h, types.HistoryEventTypeTaskSucceeded) != 1 {
			t.Errorf("history %v: want one failed and one succeeded attempt", eventTypes(h))
		}
		for _, e := range h {
			if e.Type == types.HistoryEventTypeTaskFailed && aws.ToString(e.TaskFailedEventDetails.Error) != "SNS.ThrottlingException" {
				t.Errorf("TaskFailed %+v", e.TaskFailedEventDetails)
			}
		}
		if moved := sb.Server.Clock().Now().Sub(before); moved < time.Minute {
			t.Errorf("the 60 s retry pause moved the clock %v", moved)
		}
	})
	t.Run("missing topic: retried, then caught", func(t *testing.T) {
		arn, d := run(t, c, sf, machine, `{"topic":"arn:aws:sns:us-east-1:111122223333:gone","detail":"x"}`)
		var out struct {
			Error struct{ Error, Cause string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
		if d.Status != types.ExecutionStatusSucceeded || out.Error.Error != "SNS.NotFoundException" {
			t.Fatalf("got %s %s", d.Status, aws.ToString(d.Output))
		}
		h := history(t, c, arn)
		if n := count(h, types.HistoryEventTypeTaskFailed); n != 3 {
			t.Errorf("%d failed attempts in %v, want 3 (1 + MaxAttempts 2)", n, eventTypes(h))
		}
	})
}

// A Retry pause lasts its real time (IntervalSeconds × RetryScale), however
// fast another execution's Wait moves the sandbox clock: what a retry waits
// for (a Lambda instance, a throttled API) comes back in real time. Before,
// a pause ended as soon as the shared clock passed its end, so with 200
// rotations in flight (their 7-day Waits moving the clock days in
// milliseconds) a throttled Task spent its 12 attempts in about a second.
func TestRetryPauseNotCutShortByAnotherExecutionsWait(t *testing.T) {
	t.Parallel()
	const retryScale = 0.1
	sb, c, sf := startWith(t, fullsandbox.Options{WaitScale: 1e-6, RetryScale: retryScale})
	if _, ok := sb.Server.Service("sns"); !ok {
		t.Skip("the sandbox has no SNS service")
	}
	ctx := context.Background()
	// A year's Wait: 31 s of real time at 1e-6, the clock flowing all along.
	waiter := create(t, c, "waits-a-year", map[string]any{
		"StartAt": "Year",
		"States":  map[string]any{"Year": map[string]any{"Type": "Wait", "Seconds": 365 * 86400, "End": true}},
	})
	// Two retries of 10 s each, no jitter: 2 × 10 s × 0.1 = 2 s of real time.
	const pauses = 2 * 10 * retryScale * float64(time.Second)
	retrier := create(t, c, "retries", map[string]any{
		"StartAt": "Notify",
		"States": map[string]any{
			"Notify": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
				"Parameters": map[string]any{"TopicArn": "arn:aws:sns:us-east-1:111122223333:gone", "Message": "x"},
				"Retry":      []any{map[string]any{"ErrorEquals": []string{"SNS.NotFoundException"}, "IntervalSeconds": 10, "MaxAttempts": 2, "BackoffRate": 1}},
				"Catch":      []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "Next": "Caught"}}, "End": true},
			"Caught": map[string]any{"Type": "Succeed"},
		},
	})
	w, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(waiter), Input: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.StopExecution(context.Background(), &sfn.StopExecutionInput{ExecutionArn: w.ExecutionArn})
	})
	// Until the year's Wait is moving the clock.
	before := sb.Server.Clock().Now()
	for deadline := time.Now().Add(30 * time.Second); sb.Server.Clock().Now().Sub(before) < 24*time.Hour; {
		if time.Now().After(deadline) {
			t.Fatal("the waiting execution never moved the clock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	began := time.Now()
	arn, d := run(t, c, sf, retrier, "{}")
	took := time.Since(began)
	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("got %s %s", d.Status, aws.ToString(d.Error))
	}
	if n := count(history(t, c, arn), types.HistoryEventTypeTaskFailed); n != 3 {
		t.Fatalf("%d failed attempts, want 3 (1 + MaxAttempts 2)", n)
	}
	if took < time.Duration(pauses) {
		t.Fatalf("two 10-s Retry pauses at RetryScale %g took %v of real time, want at least %v: the other execution's Wait cut them short",
			retryScale, took.Round(time.Millisecond), time.Duration(pauses))
	}
	if moved := sb.Server.Clock().Now().Sub(before); moved < 7*24*time.Hour {
		t.Fatalf("the clock moved %v meanwhile: the year's Wait did not race the retries", moved)
	}
}

var (
	echoOnce sync.Once
	echoPath string
	echoErr  error
)

// echoFunction builds the Lambda engineer's test function once.
func echoFunction(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "lambda", "testdata", "echofn")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("no test function at %s: %v", src, err)
	}
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sfn-test-")
		if err != nil {
			echoErr = err
			return
		}
		echoPath = filepath.Join(dir, "bootstrap")
		cmd := exec.CommandContext(context.Background(), "go", "build", "-tags", "lambda.norpc", "-o", echoPath, "./"+filepath.ToSlash(src)) // built once for every test: no one test's context
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			echoErr = errors.New(string(b))
		}
	})
	if echoErr != nil {
		t.Fatalf("build echofn: %v", echoErr)
	}
	t.Cleanup(func() {})
	return echoPath
}

func TestLambdaTasks(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	if sb.Lambda == nil {
		t.Skip("the sandbox has no Lambda service yet")
	}
	if err := sb.Lambda.Register(sblambda.FunctionConfig{Name: "echo", Path: echoFunction(t), Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("register echo: %v", err)
	}
	machine := create(t, c, "lambdas", map[string]any{
		"StartAt": "Echo",
		"States": map[string]any{
			"Echo": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
				"Parameters":     map[string]any{"FunctionName": "arn:aws:lambda:us-east-1:111122223333:function:echo", "Payload": map[string]any{"value.$": "$"}},
				"ResultSelector": map[string]any{"echo.$": "$.Payload.echo", "status.$": "$.StatusCode"}, "ResultPath": "$.echoed", "Next": "Fail"},
			"Fail": map[string]any{"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:111122223333:function:echo",
				"Parameters": map[string]any{"action": "error"}, "ResultPath": "$.never",
				"Catch": []any{map[string]any{"ErrorEquals": []string{"KeyLimitReached"}, "ResultPath": "$.error", "Next": "Done"}}, "Next": "Done"},
			"Done": map[string]any{"Type": "Succeed"},
		},
	})
	arn, d := run(t, c, sf, machine, `{"user":"carol"}`)
	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("got %s %s %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	var out struct {
		Echoed struct {
			Echo   map[string]any `json:"echo"`
			Status int            `json:"status"`
		} `json:"echoed"`
		Error struct{ Error, Cause string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
	if out.Echoed.Echo["user"] != "carol" || out.Echoed.Status != 200 {
		t.Errorf("lambda:invoke result %s", aws.ToString(d.Output))
	}
	var cause struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal([]byte(out.Error.Cause), &cause); err != nil || out.Error.Error != "KeyLimitReached" || cause.ErrorType != "KeyLimitReached" || cause.ErrorMessage == "" {
		t.Errorf("caught %+v (%v)", out.Error, err)
	}
	h := history(t, c, arn)
	for _, typ := range []types.HistoryEventType{types.HistoryEventTypeTaskSucceeded, types.HistoryEventTypeLambdaFunctionScheduled, types.HistoryEventTypeLambdaFunctionFailed} {
		if count(h, typ) != 1 {
			t.Errorf("history %v: want one %s", eventTypes(h), typ)
		}
	}

	// A Task's TimeoutSeconds is real time, whatever WaitScale says.
	slow := create(t, c, "slow", map[string]any{
		"StartAt": "Slow",
		"States": map[string]any{"Slow": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 1,
			"Parameters": map[string]any{"FunctionName": "echo", "Payload": map[string]any{"action": "sleep", "sleepMs": 2500}}, "End": true}},
	})
	arn, d = run(t, c, sf, slow, `{}`)
	if d.Status != types.ExecutionStatusFailed || aws.ToString(d.Error) != "States.Timeout" {
		t.Fatalf("slow task: %s %s %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	if h := history(t, c, arn); count(h, types.HistoryEventTypeTaskTimedOut) != 1 || count(h, types.HistoryEventTypeTaskSucceeded) != 0 {
		t.Errorf("slow task history %v", eventTypes(h))
	}
	fast := create(t, c, "fast-enough", map[string]any{
		"StartAt": "Quick",
		"States": map[string]any{"Quick": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 5,
			"Parameters": map[string]any{"FunctionName": "echo", "Payload": map[string]any{"action": "sleep", "sleepMs": 300}}, "End": true}},
	})
	if _, d = run(t, c, sf, fast, `{}`); d.Status != types.ExecutionStatusSucceeded {
		t.Errorf("a 300 ms task under TimeoutSeconds 5: %s %s", d.Status, aws.ToString(d.Error))
	}
}

func TestCloseLeavesNoRunner(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := longWait(t, c)
	var arns []string
	for range 2 {
		st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(machine)})
		if err != nil {
			t.Fatalf("StartExecution: %v", err)
		}
		arns = append(arns, aws.ToString(st.ExecutionArn))
	}
	// Both executions in their Wait: both on the one runner.
	for _, arn := range arns {
		for deadline := time.Now().Add(10 * time.Second); count(history(t, c, arn), types.HistoryEventTypeWaitStateEntered) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never entered its Wait: %v", arn, eventTypes(history(t, c, arn)))
			}
		}
	}
	pids := sf.RunnerPIDs()
	if len(pids) != 1 {
		t.Fatalf("runners %v, want one for every execution", pids)
	}
	if err := sf.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("runner %d is still there after Close (kill -0: %v)", pid, err)
		}
	}
	for _, arn := range arns {
		if v, _ := sf.Describe(arn); v.Status != stepfunctions.Aborted {
			t.Errorf("%s is %s after Close, want ABORTED", arn, v.Status)
		}
	}
	_ = sb
}

// One runner runs every execution, so the deepest input the sandbox takes
// (9,999 levels: StartExecution refuses past 10,000) runs through it —
// parsed, interpreted, encoded into every event — and a run beside it on
// the same runner goes on. (Should a run's code throw where nothing
// catches it, runner.mjs fails that run alone: crashed.)
func TestTheDeepestInputRunsBesideAnother(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	beside, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(longWait(t, c))})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	pass := create(t, c, "pass", map[string]any{"StartAt": "P", "States": map[string]any{"P": map[string]any{"Type": "Pass", "End": true}}})
	deep := strings.Repeat("[", 9_999) + strings.Repeat("]", 9_999)
	st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(pass), Input: aws.String(deep)})
	if err != nil {
		t.Fatalf("StartExecution with the deep input: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := sf.WaitForExecution(ctx, aws.ToString(st.ExecutionArn))
	if err != nil || v.Status != stepfunctions.Succeeded || v.Output == nil || *v.Output != deep {
		t.Fatalf("the deep run: %v %s %s %q", err, v.Status, v.Error, v.Cause)
	}
	time.Sleep(100 * time.Millisecond) // a runner that died with it would have failed the other by now
	if d, _ := sf.Describe(aws.ToString(beside.ExecutionArn)); d.Status != stepfunctions.Running {
		t.Errorf("the run beside it is %s %s %q, want RUNNING", d.Status, d.Error, d.Cause)
	}
}

func TestRunnerDeathFailsExecution(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	machine := longWait(t, c)
	st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(machine)})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		pids = sf.RunnerPIDs()
	}
	if len(pids) != 1 {
		t.Fatalf("runners %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sf.WaitForExecution(ctx, aws.ToString(st.ExecutionArn))
	if err != nil || v.Status != stepfunctions.Failed || v.Error != "States.Runtime" || !strings.Contains(v.Cause, "runner") {
		t.Errorf("after the runner died: %v %+v", err, v)
	}
}

func TestAdminRegisterWithSubstitutions(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	def := `{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":${WaitSeconds},"Next":"Say"},
	 "Say":{"Type":"Pass","Result":{"greeting":"${Greeting}"},"End":true}}}`
	file := filepath.Join(t.TempDir(), "machine.asl.json")
	if err := os.WriteFile(file, []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	var created struct {
		ARN string `json:"stateMachineArn"`
	}
	code := sb.AdminCall(t, http.MethodPost, "/states/state-machines", map[string]any{
		"name": "from-file", "definitionFile": file, "substitutions": map[string]string{"WaitSeconds": "3600", "Greeting": "hello"},
	}, &created)
	if code != http.StatusCreated || created.ARN == "" {
		t.Fatalf("register: %d %+v", code, created)
	}
	var failed map[string]string
	if code := sb.AdminCall(t, http.MethodPost, "/states/state-machines", map[string]any{"name": "half", "definitionFile": file,
		"substitutions": map[string]string{"WaitSeconds": "1"}}, &failed); code != http.StatusBadRequest || !strings.Contains(failed["error"], "${Greeting}") {
		t.Errorf("a missing substitution: %d %v", code, failed)
	}
	before := sb.Server.Clock().Now()
	arn, d := run(t, c, sf, created.ARN, `{}`)
	if d.Status != types.ExecutionStatusSucceeded || aws.ToString(d.Output) != `{"greeting":"hello"}` {
		t.Fatalf("got %s %s", d.Status, aws.ToString(d.Output))
	}
	if moved := sb.Server.Clock().Now().Sub(before); moved < time.Hour {
		t.Errorf("Seconds ${WaitSeconds}=3600 moved the clock %v", moved)
	}
	var h []map[string]any
	sb.AdminCall(t, http.MethodGet, "/states/executions/"+arn+"/history", nil, &h)
	if len(h) != 6 || h[0]["type"] != "ExecutionStarted" || h[5]["type"] != "ExecutionSucceeded" {
		t.Errorf("admin history: %v", h)
	}
}

func TestMapWithWaitsAndTasks(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := create(t, c, "distribute", map[string]any{
		"StartAt": "Distribute",
		"States": map[string]any{
			"Distribute": map[string]any{"Type": "Map", "ItemsPath": "$.targets", "ResultPath": "$.receipts", "End": true,
				"ItemProcessor": map[string]any{
					"ProcessorConfig": map[string]any{"Mode": "INLINE"},
					"StartAt":         "Settle",
					"States": map[string]any{
						"Settle": map[string]any{"Type": "Wait", "SecondsPath": "$.settle", "Next": "Update"},
						"Update": map[string]any{"Type": "Task", "Resource": "arn:aws:states:::soracom:update",
							"Catch": []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.error", "Next": "Receipt"}}, "End": true},
						"Receipt": map[string]any{"Type": "Pass", "Parameters": map[string]any{"name.$": "$.name", "failed.$": "$.error.Error"}, "End": true},
					},
				}},
		},
	})
	before := sb.Server.Clock().Now()
	arn, d := run(t, c, sf, machine, `{"targets":[{"name":"a","settle":86400},{"name":"b","settle":172800}]}`)
	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("got %s %s %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	var out struct {
		Receipts []struct{ Name, Failed string } `json:"receipts"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
	if len(out.Receipts) != 2 || out.Receipts[0].Name != "a" || out.Receipts[1].Failed != "States.TaskFailed" {
		t.Errorf("output %s", aws.ToString(d.Output))
	}
	if moved := sb.Server.Clock().Now().Sub(before); moved < 48*time.Hour || moved > 49*time.Hour {
		t.Errorf("waits of 1 and 2 days side by side moved the clock %v, want 2 days", moved)
	}
	h := history(t, c, arn)
	for typ, n := range map[types.HistoryEventType]int{
		types.HistoryEventTypeMapStateEntered: 1, types.HistoryEventTypeMapIterationStarted: 2, types.HistoryEventTypeMapIterationSucceeded: 2,
		types.HistoryEventTypeWaitStateEntered: 2, types.HistoryEventTypeTaskStartFailed: 2, types.HistoryEventTypeMapStateExited: 1,
	} {
		if got := count(h, typ); got != n {
			t.Errorf("%d %s in %v, want %d", got, typ, eventTypes(h), n)
		}
	}
}

func TestExecutionTimeout(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := create(t, c, "bounded", map[string]any{
		"TimeoutSeconds": 3600,
		"StartAt":        "TooLong",
		"States":         map[string]any{"TooLong": map[string]any{"Type": "Wait", "Seconds": 86400, "End": true}},
	})
	before := sb.Server.Clock().Now()
	arn, d := run(t, c, sf, machine, `{}`)
	if d.Status != types.ExecutionStatusTimedOut || aws.ToString(d.Error) != "States.Timeout" {
		t.Fatalf("got %s %s", d.Status, aws.ToString(d.Error))
	}
	if moved := sb.Server.Clock().Now().Sub(before); moved < time.Hour || moved > 2*time.Hour {
		t.Errorf("a 1-hour execution timeout over a 1-day Wait moved the clock %v, want 1 hour", moved)
	}
	h := history(t, c, arn)
	if last := h[len(h)-1]; last.Type != types.HistoryEventTypeExecutionTimedOut {
		t.Errorf("history %v", eventTypes(h))
	}
}

func TestSnapshotKeepsHistories(t *testing.T) {
	t.Parallel()
	_, c, sf := start(t)
	machine := create(t, c, "kept", map[string]any{"StartAt": "P", "States": map[string]any{"P": map[string]any{"Type": "Pass", "Result": "done", "End": true}}})
	arn, _ := run(t, c, sf, machine, `{"n":1}`)
	raw, err := sf.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	restored := stepfunctions.New(sandbox.New(sandbox.Options{}), stepfunctions.Options{})
	if err := restored.Restore(raw); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	v, ok := restored.Describe(arn)
	h, _ := restored.History(arn)
	if !ok || v.Status != stepfunctions.Succeeded || aws.ToString(v.Output) != `"done"` || v.Input != `{"n":1}` || len(h) != 4 {
		t.Errorf("restored %v %+v, %d events", ok, v, len(h))
	}
}

// During a shortened Wait, sandbox time flows through the waited days rather
// than jumping at the end: a consumer calling AWS meanwhile leaves last-used
// dates spread over the wait, as it would in AWS.
//
// Serial: it samples the clock during 0.6 s of real time, which parallel
// tests on a 2-core machine stretch and starve.
func TestWaitTimeFlows(t *testing.T) {
	sb, c, _ := start(t) // WaitScale 1e-6: 7 days last 0.6 s
	ctx := context.Background()
	machine := create(t, c, "flowing-week", map[string]any{
		"StartAt": "WaitDays",
		"States": map[string]any{
			"WaitDays": map[string]any{"Type": "Wait", "Seconds": 604800, "Next": "Done"},
			"Done":     map[string]any{"Type": "Succeed"},
		},
	})
	before := sb.Server.Clock().Now()
	out, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	var samples []time.Duration
	// Until the execution ends, however long its runner takes to start.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		samples = append(samples, sb.Server.Clock().Now().Sub(before))
		d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: out.ExecutionArn})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != types.ExecutionStatusRunning {
			// The sample above was read before this answer: the clock's
			// offset once the execution is seen ended is this one.
			samples = append(samples, sb.Server.Clock().Now().Sub(before))
			break
		}
	}
	day, week := 24*time.Hour, 7*24*time.Hour
	inBetween := 0
	for _, s := range samples {
		if s > day && s < week-day {
			inBetween++
		}
	}
	if inBetween < 3 {
		t.Fatalf("sandbox time did not flow through the wait: offsets sampled %v", samples)
	}
	if last := samples[len(samples)-1]; last < week {
		t.Fatalf("after the wait the clock moved %v, want 7 days", last)
	}
}

// The operator CLI finds the "keyrotator" state machine by name: through
// every page of ListStateMachines, then DescribeStateMachine.
func TestFindStateMachineByName(t *testing.T) {
	t.Parallel()
	_, c, _ := start(t)
	ctx := context.Background()
	pass := map[string]any{"StartAt": "P", "States": map[string]any{"P": map[string]any{"Type": "Pass", "End": true}}}
	for _, name := range []string{"other", "keyrotator", "another"} {
		create(t, c, name, pass)
	}
	var found string
	pages := 0
	p := sfn.NewListStateMachinesPaginator(c, &sfn.ListStateMachinesInput{MaxResults: 1})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListStateMachines: %v", err)
		}
		pages++
		for _, sm := range page.StateMachines {
			if aws.ToString(sm.Name) == "keyrotator" {
				found = aws.ToString(sm.StateMachineArn)
			}
			if sm.CreationDate == nil || sm.Type != types.StateMachineTypeStandard {
				t.Errorf("list item %+v", sm)
			}
		}
	}
	if pages != 3 || found != "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator" {
		t.Fatalf("%d pages, keyrotator at %q", pages, found)
	}
	d, err := c.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(found)})
	if err != nil || aws.ToString(d.Name) != "keyrotator" || aws.ToString(d.RoleArn) != role || d.Status != types.StateMachineStatusActive || d.CreationDate == nil {
		t.Fatalf("DescribeStateMachine: %v %+v", err, d)
	}
	_, err = c.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(found + "-gone")})
	var missing *types.StateMachineDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("DescribeStateMachine of a missing one: %v", err)
	}
}
