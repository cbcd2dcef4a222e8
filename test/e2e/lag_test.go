package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// TestLateReportedUse: a consumer uses the old key an hour before the
// verification, and IAM (the sandbox's, with its default 4-hour lag) reports
// it only after the check. The verification cannot see it and finds the key
// unused; DeleteOldKey, reading last-used again after the grace period, sees
// it: the old key is not deleted, it is active again at the end, and the run
// fails OldKeyStillInUse naming the service, region and time of that use.
func TestLateReportedUse(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("late-report", 95)
	// The sandbox records the use at its time, as a signed call at that moment
	// would: an hour before the check, 7 days after the cut-over.
	used := h.sb.Server.Clock().Now().Add(7*24*time.Hour - time.Hour).UTC().Truncate(time.Second)
	h.sb.IAM.MarkUsed(f.old.AccessKeyID, "ses", "ap-northeast-1", used)

	r := h.Run(f.input(map[string]any{"verifyAttempts": 1}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "OldKeyStillInUse" {
		t.Fatalf("status %s %s: %s; want FAILED OldKeyStillInUse", r.Status, r.Error, r.Cause)
	}
	visited := r.Visited()
	for _, want := range []string{"VerifyOldKeyUnused", "DeactivateOldKey", "WaitGrace", "DeleteOldKey", "NotifyFailure"} {
		if !slices.Contains(visited, want) {
			t.Errorf("%s not visited: %v", want, visited)
		}
	}
	if slices.Contains(visited, "CleanupTargets") {
		t.Errorf("cleaned up after a refused deletion: %v", visited)
	}
	var verify struct {
		Verify struct {
			Unused   bool   `json:"unused"`
			Evidence string `json:"evidence"`
		} `json:"verify"`
	}
	r.StateOutput(t, "VerifyOldKeyUnused", &verify)
	if !verify.Verify.Unused {
		t.Fatalf("the verification saw the use (%s): this test needs it reported late", verify.Verify.Evidence)
	}
	for _, want := range []string{f.old.AccessKeyID, "ses", "ap-northeast-1", used.Format(time.RFC3339), "re-activated"} {
		if !strings.Contains(r.Cause, want) {
			t.Errorf("cause %q does not name %q", r.Cause, want)
		}
	}
	if ks := h.keys(f.user); ks[f.old.AccessKeyID] != "Active" || len(ks) != 2 {
		t.Errorf("keys after: %v, want the old key kept and active again", ks)
	}
}
