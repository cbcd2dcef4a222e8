package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Hostile execution inputs through the real state machine (issue 11,
// finding 8). What Step Functions refuses at StartExecution — input that is
// not JSON, or longer than the 262,144 bytes (256 KiB) an execution's input
// may be — the sandbox refuses as AWS does, with InvalidExecutionInput, and
// no execution starts. What it accepts (any JSON text: null, [], "x", a
// 5,000-deep nesting) reaches Validate, which refuses it as InvalidInput
// saying why; the run ends FAILED with the InvalidInput alert on SNS, not a
// crash of the interpreter and not an unnamed error.
func TestHostileInputEndsWithAnAlert(t *testing.T) {
	t.Parallel()
	h := Start(t)
	ctx := context.Background()
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	deepObject := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	for _, c := range []struct{ name, input, reason string }{
		{"an array", "[]", "got array, want object"},
		{"a string", `"x"`, "got string, want object"},
		{"5000-deep arrays", deep, "deeper than 32 levels"},
		{"5000-deep objects", deepObject, "deeper than 32 levels"},
	} {
		r := h.Run(c.input)
		if r.Status != types.ExecutionStatusFailed || r.Error != "InvalidInput" || !strings.Contains(r.Cause, c.reason) {
			t.Errorf("%s: %s %s: %.300s; want FAILED InvalidInput: %s", c.name, r.Status, r.Error, r.Cause, c.reason)
			continue
		}
		if _, a := h.alertOf(r.ARN, "failure"); a.State != "Validate" || a.Error != "InvalidInput" || !strings.Contains(strings.Join(a.Changed, " "), "nothing") {
			t.Errorf("%s: the alert says %s at %s, changed %v; want InvalidInput at Validate, nothing changed", c.name, a.Error, a.State, a.Changed)
		}
	}
	padded := `{"user":"u","targets":[{"type":"secret","name":"app","secretId":"app/u"}]` + strings.Repeat(" ", 256*1024) + "}"
	for _, c := range []struct{ name, input string }{
		{"not JSON", `{"user":`},
		{"over 256 KiB", padded},
		{"over 256 KiB in UTF-8, under it in characters", `{"user":"u","reason":"` + strings.Repeat("é", 140*1024) + `"}`},
	} {
		before := h.executions()
		_, err := h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(h.dep.StateMachineARN), Input: aws.String(c.input)})
		if _, ok := errors.AsType[*types.InvalidExecutionInput](err); !ok {
			t.Errorf("%s: StartExecution: %v, want InvalidExecutionInput", c.name, err)
		}
		if after := h.executions(); after != before {
			t.Errorf("%s: %d executions, were %d", c.name, after, before)
		}
	}
}

// executions counts the state machine's executions.
func (h *H) executions() int {
	h.t.Helper()
	out, err := h.sfn.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.dep.StateMachineARN), MaxResults: 1000})
	if err != nil {
		h.t.Fatalf("ListExecutions: %v", err)
	}
	return len(out.Executions)
}

// Input null: Step Functions accepts it (valid JSON), but a Path applied to
// a null input fails ("Unable to apply Path transformation to null or empty
// input", awslabs/states-language#29), so Start's "input.$": "$" ends the
// run States.Runtime with no alert, in AWS as in the sandbox. Start must
// read "$$.Execution.Input" (the context object, which the sandbox now
// has); statemachine/rotation.asl.json is not this test's to change.
func TestNullInputEndsWithAnAlert(t *testing.T) {
	t.Parallel()
	h := Start(t)
	r := h.Run("null")
	if r.Status != types.ExecutionStatusFailed || r.Error != "InvalidInput" || !strings.Contains(r.Cause, "got null, want object") {
		t.Fatalf("null: %s %s: %.300s; want FAILED InvalidInput", r.Status, r.Error, r.Cause)
	}
	if _, a := h.alertOf(r.ARN, "failure"); a.State != "Validate" || a.Error != "InvalidInput" {
		t.Errorf("null: the alert says %s at %s; want InvalidInput at Validate", a.Error, a.State)
	}
}
