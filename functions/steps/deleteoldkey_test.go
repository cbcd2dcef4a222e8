package steps

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

func deleteInput(cut time.Time, graceSeconds int) rotation.TaskInput {
	return rotation.TaskInput{Now: cut.Add(8 * 24 * time.Hour), Data: rotation.ExecutionData{
		Plan:    &rotation.Plan{User: "u", OldKeyID: "OLD", GraceSeconds: graceSeconds},
		Key:     &rotation.NewKey{KeyID: "NEW"},
		Promote: &rotation.Cutover{At: cut},
	}}
}

// TestDeleteOldKeyLateUse: a use after the cut-over that IAM reported only
// after the verification stops the deletion, switches the old key back on
// and fails OldKeyStillInUse naming service, region and time.
func TestDeleteOldKeyLateUse(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	late := cut.Add(7*24*time.Hour - time.Hour) // an hour before the last check: not yet visible to it
	keys := &fakeKeys{
		keys:     []iamkeys.Key{{ID: "OLD", Status: "Inactive"}, {ID: "NEW", Status: "Active"}},
		lastUsed: map[string]rotation.KeyUse{"OLD": {KeyID: "OLD", LastUsed: &late, Service: "ses", Region: "ap-northeast-1"}},
	}
	_, err := (&DeleteOldKey{Keys: keys}).Run(context.Background(), deleteInput(cut, 86400))
	var still *rotation.OldKeyStillInUse
	if !errors.As(err, &still) {
		t.Fatalf("err = %v, want OldKeyStillInUse", err)
	}
	for _, want := range []string{"ses", "ap-northeast-1", stamp(late), "re-activated"} {
		if !strings.Contains(still.Evidence, want) {
			t.Errorf("evidence %q does not say %q", still.Evidence, want)
		}
	}
	if len(keys.keys) != 2 || !keys.keys[0].Active() {
		t.Errorf("keys = %+v, want the old key kept and active again", keys.keys)
	}
}

// TestDeleteOldKeyGraceShorterThanLag: a grace period shorter than IAM's lag
// (graceDays 0) cannot see the uses before the deactivation: refused.
func TestDeleteOldKeyGraceShorterThanLag(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	keys := &fakeKeys{keys: []iamkeys.Key{{ID: "OLD", Status: "Inactive"}, {ID: "NEW", Status: "Active"}}}
	_, err := (&DeleteOldKey{Keys: keys}).Run(context.Background(), deleteInput(cut, 0))
	var bad *rotation.InvalidInput
	if !errors.As(err, &bad) || bad.Field != "graceDays" {
		t.Fatalf("err = %v, want InvalidInput graceDays", err)
	}
	if len(keys.keys) != 2 {
		t.Errorf("keys = %+v, want the old key kept", keys.keys)
	}
}

// TestDeleteOldKeyCalls: one clean run, then one run per failing call.
func TestDeleteOldKeyCalls(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	before := cut.Add(-time.Hour)
	setup := func(fail string, lastUsed time.Time) *failingKeys {
		return &failingKeys{fail: fail, fakeKeys: &fakeKeys{
			keys:     []iamkeys.Key{{ID: "OLD", Status: "Inactive"}, {ID: "NEW", Status: "Active"}},
			lastUsed: map[string]rotation.KeyUse{"OLD": {KeyID: "OLD", LastUsed: &lastUsed, Service: "s3", Region: "us-east-1"}},
		}}
	}
	clean := setup("", before)
	got, err := (&DeleteOldKey{Keys: clean}).Run(context.Background(), deleteInput(cut, 86400))
	if err != nil || got != (rotation.KeyChange{KeyID: "OLD", Status: "Deleted", Changed: true}) {
		t.Fatalf("clean run: %+v, %v", got, err)
	}
	if want := []string{"List", "LastUsed", "Delete"}; !slices.Equal(clean.calls, want) {
		t.Fatalf("calls = %v, want %v", clean.calls, want)
	}
	late := cut.Add(time.Hour)
	reactivating := setup("", late)
	_, _ = (&DeleteOldKey{Keys: reactivating}).Run(context.Background(), deleteInput(cut, 86400))
	if want := []string{"List", "LastUsed", "SetStatus"}; !slices.Equal(reactivating.calls, want) {
		t.Fatalf("late-use calls = %v, want %v", reactivating.calls, want)
	}
	tests := []struct {
		fail     string
		lastUsed time.Time
	}{{"List", before}, {"LastUsed", before}, {"Delete", before}, {"SetStatus", late}}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			k := setup(tt.fail, tt.lastUsed)
			_, err := (&DeleteOldKey{Keys: k}).Run(context.Background(), deleteInput(cut, 86400))
			if !errors.Is(err, errFake) {
				t.Fatalf("err = %v, want the %s failure", err, tt.fail)
			}
			if len(k.keys) != 2 {
				t.Errorf("keys = %+v, want the old key kept when %s fails", k.keys, tt.fail)
			}
		})
	}
}
