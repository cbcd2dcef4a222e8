package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

func TestVerifyOldKeyUnused(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	week := cut.Add(7 * 24 * time.Hour)
	use := func(id string, when time.Time) rotation.KeyUse {
		return rotation.KeyUse{KeyID: id, LastUsed: at(when), Service: "ses", Region: "ap-northeast-1"}
	}
	tests := []struct {
		name     string
		now      time.Time
		old      *rotation.KeyUse
		trail    []rotation.TrailUse
		attempt  int // before this check
		unused   bool
		stillErr bool
		says     string
	}{
		{"never used", week, nil, nil, 0, true, false, "no use of old key"},
		{"last used before the cut-over", week, ptr(use("OLD", cut.Add(-time.Hour))), nil, 0, true, false, "no use of old key"},
		{"a late switch within the settle period", week, ptr(use("OLD", cut.Add(2*time.Minute))), nil, 0, true, false, "no use"},
		{"used days after the cut-over", week, ptr(use("OLD", cut.Add(3*24*time.Hour))), nil, 0, false, false, "by ses in ap-northeast-1, 3.0 days after"},
		{"used after the cut-over, last attempt", week, ptr(use("OLD", week.Add(-time.Hour))), nil, 2, false, true, "last used"},
		{"CloudTrail sighting", week, nil, []rotation.TrailUse{{Time: cut.Add(time.Hour), Event: "ListBuckets", Source: "s3.amazonaws.com"}}, 0, false, false, "CloudTrail shows"},
		{"too soon for IAM's lag", cut.Add(time.Hour), nil, nil, 0, false, false, "too soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &fakeKeys{lastUsed: map[string]rotation.KeyUse{"NEW": use("NEW", cut.Add(time.Minute))}}
			if tt.old != nil {
				keys.lastUsed["OLD"] = *tt.old
			}
			v := &VerifyOldKeyUnused{Keys: keys, Trail: fakeTrail{tt.trail}}
			in := rotation.TaskInput{Now: tt.now, Data: rotation.ExecutionData{
				Plan: &rotation.Plan{OldKeyID: "OLD", VerifyAttempts: 3}, Key: &rotation.NewKey{KeyID: "NEW"},
				Promote: &rotation.Cutover{At: cut}, Verify: &rotation.Verification{Attempt: tt.attempt},
			}}
			res, err := v.Run(context.Background(), in)
			var still *rotation.OldKeyStillInUse
			if tt.stillErr != errors.As(err, &still) {
				t.Fatalf("err = %v, want OldKeyStillInUse: %v", err, tt.stillErr)
			}
			if err != nil && !tt.stillErr {
				t.Fatal(err)
			}
			if res.Unused != tt.unused || res.Attempt != tt.attempt+1 || res.AttemptsLeft != 3-(tt.attempt+1) {
				t.Errorf("got unused=%v attempt=%d left=%d", res.Unused, res.Attempt, res.AttemptsLeft)
			}
			if !strings.Contains(res.Evidence, tt.says) {
				t.Errorf("evidence %q does not say %q", res.Evidence, tt.says)
			}
			if !strings.Contains(res.Freshness, "lag") {
				t.Errorf("freshness %q does not say how fresh", res.Freshness)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestVerifyLagWindow: a check counts only what IAM has had time to report,
// [cut-over + Settle, now - Lag]. Silence over an empty window proves nothing,
// and a use reported at any time after cut-over + Settle is a use.
func TestVerifyOldKeyUnusedLagWindow(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		now      time.Time
		old      *time.Time
		attempt  int
		unused   bool
		stillErr bool
		says     string
	}{
		{"window empty: checked within the lag of the cut-over", cut.Add(Settle + Lag - time.Minute), nil, 0, false, false, "proves nothing"},
		{"window empty on the last attempt fails saying why", cut.Add(Settle + Lag - time.Minute), nil, 2, false, true, "proves nothing"},
		{"window just open, silence over it", cut.Add(Settle + Lag + time.Hour), nil, 0, true, false, "no use of old key"},
		{"a use in the last lag hours, already reported", cut.Add(7 * 24 * time.Hour), at(cut.Add(7*24*time.Hour - time.Hour)), 0, false, false, "last used"},
		{"a use just after the settle period, reported late", cut.Add(Settle + Lag + time.Hour), at(cut.Add(Settle + time.Second)), 0, false, false, "last used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &fakeKeys{lastUsed: map[string]rotation.KeyUse{}}
			if tt.old != nil {
				keys.lastUsed["OLD"] = rotation.KeyUse{KeyID: "OLD", LastUsed: tt.old, Service: "ses", Region: "ap-northeast-1"}
			}
			v := &VerifyOldKeyUnused{Keys: keys, Trail: fakeTrail{}}
			in := rotation.TaskInput{Now: tt.now, Data: rotation.ExecutionData{
				Plan: &rotation.Plan{OldKeyID: "OLD", VerifyAttempts: 3}, Key: &rotation.NewKey{KeyID: "NEW"},
				Promote: &rotation.Cutover{At: cut}, Verify: &rotation.Verification{Attempt: tt.attempt},
			}}
			res, err := v.Run(context.Background(), in)
			var still *rotation.OldKeyStillInUse
			if tt.stillErr != errors.As(err, &still) {
				t.Fatalf("err = %v, want OldKeyStillInUse: %v", err, tt.stillErr)
			}
			if res.Unused != tt.unused {
				t.Errorf("unused = %v, want %v (evidence %q)", res.Unused, tt.unused, res.Evidence)
			}
			if !strings.Contains(res.Evidence, tt.says) {
				t.Errorf("evidence %q does not say %q", res.Evidence, tt.says)
			}
		})
	}
}
