package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestTargetChangedDuringApproval (I7): the preflight runs before TakeLock
// and the approval wait (up to approvalTimeoutHours). While the run waits
// for a person, the app team moves its secret to another key. Approved, the
// run goes through the preflight again and fails there, having made no key
// (before, CreateKey made one and Distribute failed TargetFailed with two
// active keys: the preflight's answer was hours old).
func TestTargetChangedDuringApproval(t *testing.T) {
	t.Parallel()
	h := Start(t)
	ctx := context.Background()
	f := h.seed("approved-late", 95)
	other := h.seed("someone-else", 95)
	gate, approver := h.gate("recheck")
	arn := h.StartExecution(f.input(gate))
	h.awaitApproval(arn)
	v, _ := json.Marshal(map[string]string{"accessKeyId": other.old.AccessKeyID, "secretAccessKey": other.old.SecretAccessKey})
	if _, err := h.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.secretID), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
	before := h.keys(f.user)
	h.answer(approver, arn, true, "go")
	r := h.Wait(arn)
	if after := h.keys(f.user); len(after) != len(before) {
		t.Errorf("the run (%s %s) made a key after its target changed under the approval wait: keys %v, were %v", r.Status, r.Error, after, before)
	}
	if r.Status != "FAILED" || r.Error != "TargetFailed" {
		t.Fatalf("run ended %s %s, want FAILED TargetFailed", r.Status, r.Error)
	}
	visited := strings.Join(r.Visited(), " → ")
	if !strings.Contains(visited, "Approve → VerifyApproval → Preflight") || strings.Contains(visited, "CreateKey") {
		t.Errorf("states %s: want the preflight again after Approve and VerifyApproval, and no CreateKey", visited)
	}
}
