package e2e

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// TestReRunAfterOldKeyStillInUse (I5/I7): the alert for OldKeyStillInUse says
// to give the consumer the new key and re-run with the same input, which
// "reuses the new key and the lock of this run". The re-run resumes the dead
// run's key, but the Preflight plans every target against the OLD key: the
// app secret, which the first run already moved to the new key, "holds
// neither the key being rotated nor the new one", and the re-run fails
// TargetFailed at PlanSecret. No re-run of a run that got past Distribute can
// ever finish.
func TestReRunAfterOldKeyStillInUse(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("rerun-resume", 95)
	used := h.sb.Server.Clock().Now().Add(7*24*time.Hour - time.Hour).UTC().Truncate(time.Second)
	h.sb.IAM.MarkUsed(f.old.AccessKeyID, "ses", "ap-northeast-1", used)
	in := f.input(map[string]any{"verifyAttempts": 1})
	if r := h.Run(in); r.Error != "OldKeyStillInUse" {
		t.Fatalf("first run: %s %s, want OldKeyStillInUse (the late-reported use)", r.Status, r.Error)
	}
	// On-call gives the consumer the new key (nothing to do for a consumer
	// that was a one-off) and re-runs, as the alert says.
	r := h.Run(in)
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the re-run the alert asks for: %s %s: %s", r.Status, r.Error, r.Cause)
	}
}
