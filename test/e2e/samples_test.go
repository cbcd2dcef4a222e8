package e2e

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

var updateSamples = flag.Bool("update-samples", false, "rewrite testdata/tasks from a real rotation")

// TestRecordTaskSamples keeps, under test/contract/testdata/tasks, each
// task's input and output from a real rotation and from a failed one, so
// the contract test can check them against the Go types. Run with
// -update-samples after changing what a task takes or returns.
func TestRecordTaskSamples(t *testing.T) {
	t.Parallel()
	if !*updateSamples {
		t.Skip("run with -update-samples to rewrite the samples")
	}
	h := Start(t)
	f := h.seed("sample-user", 95)
	h.app(f, true)
	ok := h.Run(f.input(nil))
	failed := h.Run(map[string]any{"user": "sample-user", "targets": []map[string]string{{"type": "secret", "name": "gone", "secretId": "app/none"}}, "waitDays": 7})
	// An approved run: VerifyApproval's samples (issue 14).
	g := h.seed("sample-approved", 95)
	gate, approver := h.gate("sample")
	arn := h.StartExecution(g.input(gate))
	h.answer(approver, arn, true, "CHG-1")
	approved := h.Wait(arn)
	dir := filepath.Join("..", "contract", "testdata", "tasks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Result{approved, ok, failed} { // ok and failed last: their samples of the shared states win
		var state string
		for _, e := range r.History {
			switch {
			case e.StateEnteredEventDetails != nil:
				state = aws.ToString(e.StateEnteredEventDetails.Name)
			case e.Type == types.HistoryEventTypeLambdaFunctionScheduled:
				write(t, dir, state+".input.json", aws.ToString(e.LambdaFunctionScheduledEventDetails.Input))
			case e.Type == types.HistoryEventTypeLambdaFunctionSucceeded:
				write(t, dir, state+".output.json", aws.ToString(e.LambdaFunctionSucceededEventDetails.Output))
			}
		}
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
