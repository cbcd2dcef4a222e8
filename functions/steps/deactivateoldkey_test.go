package steps

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// TestDeactivateOldKeyCalls: one clean run, then one run per failing call,
// and no deactivation without an unused verification.
func TestDeactivateOldKeyCalls(t *testing.T) {
	t.Parallel()
	input := func(unused bool) rotation.TaskInput {
		return rotation.TaskInput{Data: rotation.ExecutionData{
			Plan: &rotation.Plan{User: "u", OldKeyID: "OLD"}, Key: &rotation.NewKey{KeyID: "NEW"},
			Verify: &rotation.Verification{Unused: unused},
		}}
	}
	setup := func(fail string) *failingKeys {
		return &failingKeys{fail: fail, fakeKeys: &fakeKeys{keys: []iamkeys.Key{{ID: "OLD", Status: "Active"}, {ID: "NEW", Status: "Active"}}}}
	}
	clean := setup("")
	got, err := (&DeactivateOldKey{Keys: clean}).Run(context.Background(), input(true))
	if err != nil || got != (rotation.KeyChange{KeyID: "OLD", Status: "Inactive", Changed: true}) || clean.keys[0].Active() {
		t.Fatalf("clean run: %+v, %v, keys %+v", got, err, clean.keys)
	}
	if want := []string{"List", "SetStatus"}; !slices.Equal(clean.calls, want) {
		t.Fatalf("calls = %v, want %v", clean.calls, want)
	}
	again, err := (&DeactivateOldKey{Keys: clean}).Run(context.Background(), input(true))
	if err != nil || again.Changed {
		t.Fatalf("second run: %+v, %v, want no change", again, err)
	}
	unverified := setup("")
	_, err = (&DeactivateOldKey{Keys: unverified}).Run(context.Background(), input(false))
	var still *rotation.OldKeyStillInUse
	if !errors.As(err, &still) || len(unverified.calls) != 0 {
		t.Fatalf("unverified: err %v, calls %v, want OldKeyStillInUse and no call", err, unverified.calls)
	}
	for _, fail := range []string{"List", "SetStatus"} {
		t.Run(fail, func(t *testing.T) {
			k := setup(fail)
			_, err := (&DeactivateOldKey{Keys: k}).Run(context.Background(), input(true))
			if !errors.Is(err, errFake) || !k.keys[0].Active() {
				t.Fatalf("err = %v, keys %+v: want the %s failure and the old key untouched", err, k.keys, fail)
			}
		})
	}
}
