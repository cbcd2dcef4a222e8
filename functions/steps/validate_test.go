package steps

import (
	"errors"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// I3: which key is retired, and when two keys are refused.
func TestPickOld(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	active := func(id string) iamkeys.Key { return iamkeys.Key{ID: id, Status: "Active", Created: t0} }
	inactive := func(id string) iamkeys.Key { return iamkeys.Key{ID: id, Status: "Inactive", Created: t0} }
	tests := []struct {
		name       string
		keys       []iamkeys.Key
		allow      bool
		old, purge string
		err        any
	}{
		{"no key", nil, false, "", "", new(*rotation.InvalidInput)},
		{"one active", []iamkeys.Key{active("A")}, false, "A", "", nil},
		{"one inactive", []iamkeys.Key{inactive("A")}, false, "", "", new(*rotation.InvalidInput)},
		{"two active", []iamkeys.Key{active("A"), active("B")}, true, "", "", new(*rotation.KeyLimitReached)},
		{"one inactive, not allowed", []iamkeys.Key{active("A"), inactive("B")}, false, "", "", new(*rotation.KeyLimitReached)},
		{"one inactive, allowed", []iamkeys.Key{inactive("B"), active("A")}, true, "A", "B", nil},
		{"both inactive, allowed", []iamkeys.Key{inactive("A"), inactive("B")}, true, "", "", new(*rotation.KeyLimitReached)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, purge, err := pickOld(rotation.Input{User: "u", AllowRemoveInactiveKey: tt.allow}, tt.keys)
			if tt.err != nil {
				if !errors.As(err, tt.err) {
					t.Fatalf("err = %v, want %T", err, tt.err)
				}
				return
			}
			if err != nil || old.ID != tt.old || purge != tt.purge {
				t.Fatalf("got old=%s purge=%s err=%v, want old=%s purge=%s", old.ID, purge, err, tt.old, tt.purge)
			}
		})
	}
}
