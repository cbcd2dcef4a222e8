package contract

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

// Every task's recorded input and output (testdata/tasks, from a real
// rotation: see e2e's TestRecordTaskSamples) decodes into the Go types the
// Lambdas use, with unknown fields refused: the ASL and the code agree on
// every field.
func TestTaskSamplesDecodeStrictly(t *testing.T) {
	t.Parallel()
	samples := []struct {
		state   string
		in, out func() any
	}{
		{"Validate", func() any { return new(steps.ValidateInput) }, func() any { return new(rotation.Plan) }},
		{"CreateKey", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.NewKey) }},
		{"UpdateSecret", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.Receipt) }},
		{"Promote", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.Cutover) }},
		{"VerifyOldKeyUnused", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.Verification) }},
		{"DeactivateOldKey", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.KeyChange) }},
		{"DeleteOldKey", func() any { return new(rotation.TaskInput) }, func() any { return new(rotation.KeyChange) }},
		{"CleanupTargets", func() any { return new(rotation.TaskInput) }, func() any { return new(steps.CleanupResult) }},
		{"NotifySuccess", func() any { return new(steps.NotifyInput) }, func() any { return new(steps.NotifyResult) }},
		{"NotifyFailure", func() any { return new(steps.NotifyInput) }, func() any { return new(steps.NotifyResult) }},
		{"VerifyApproval", func() any { return new(steps.VerifyApprovalInput) }, func() any { return new(rotation.Approval) }}, // issue 14
	}
	for _, s := range samples {
		t.Run(s.state, func(t *testing.T) {
			decode(t, s.state+".input.json", s.in())
			decode(t, s.state+".output.json", s.out())
		})
	}
}

func decode(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tasks", name))
	if err != nil {
		t.Fatalf("%s: %v (record the samples: go test ./e2e -run TestRecordTaskSamples -update-samples)", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}
