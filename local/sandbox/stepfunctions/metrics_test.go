package stepfunctions_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

// Each closed execution is told to listeners with its machine, status and
// time, and counted by ExecutionsEnded in its window of the clock.
func TestExecutionEndsCounted(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	var mu sync.Mutex
	var told []stepfunctions.ExecutionEnd
	sf.OnExecutionEnd(func(e stepfunctions.ExecutionEnd) {
		mu.Lock()
		told = append(told, e)
		mu.Unlock()
	})
	machine := create(t, c, "metrics", map[string]any{"StartAt": "C", "States": map[string]any{
		"C":    map[string]any{"Type": "Choice", "Choices": []any{map[string]any{"Variable": "$.fail", "BooleanEquals": true, "Next": "Boom"}}, "Default": "Done"},
		"Boom": map[string]any{"Type": "Fail", "Error": "E"}, "Done": map[string]any{"Type": "Succeed"}}})
	before := sb.Server.Clock().Now()
	run(t, c, sf, machine, `{"fail":true}`)
	run(t, c, sf, machine, `{"fail":false}`)
	run(t, c, sf, machine, `{"fail":true}`)
	after := sb.Server.Clock().Now()
	if n := sf.ExecutionsEnded(machine, stepfunctions.Failed, before, after); n != 2 {
		t.Errorf("failed: %d, want 2", n)
	}
	if n := sf.ExecutionsEnded(machine, stepfunctions.Succeeded, before, after); n != 1 {
		t.Errorf("succeeded: %d, want 1", n)
	}
	if n := sf.ExecutionsEnded(machine, stepfunctions.Failed, after, after.Add(time.Hour)); n != 0 {
		t.Errorf("failed after they ended: %d", n)
	}
	// Listeners are told as an execution closes, which may be just after
	// its status reads as ended: await the third.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(told)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 3 || told[0].Status != stepfunctions.Failed || told[1].Status != stepfunctions.Succeeded || told[0].StateMachineARN != machine || told[0].At.Before(before) {
		t.Errorf("told %+v", told)
	}
}
