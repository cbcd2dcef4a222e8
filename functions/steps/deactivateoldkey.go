package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// DeactivateOldKey is the DeactivateOldKey state: the old key is switched off
// only once the verification found it unused and confirmed every cut-over a
// target could not (I2).
type DeactivateOldKey struct {
	Keys keyStore
	// Accounts reaches a member account's IAM (issue 15): for a plan in
	// one, Keys are its.
	Accounts accounts
}

// Run switches the old key off; an old key already off or gone is done.
func (s *DeactivateOldKey) Run(ctx context.Context, in rotation.TaskInput) (rotation.KeyChange, error) {
	d := in.Data
	if d.Plan == nil || d.Key == nil {
		return rotation.KeyChange{}, errors.New("deactivateoldkey: no plan or key in the execution data")
	}
	if d.Plan.Account != "" {
		c, err := memberClients(ctx, s.Accounts, "deactivateoldkey", d.Plan.Account, d.Plan.User, "keys")
		if err != nil {
			return rotation.KeyChange{}, err
		}
		s = &DeactivateOldKey{Keys: c.Keys}
	}
	old := d.Plan.OldKeyID
	if d.Verify == nil || !d.Verify.Unused {
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: "the verification has not found the old key unused; not deactivating"}
	}
	if ts := unconfirmedTargets(d); len(ts) > 0 {
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: fmt.Sprintf("the cut-over of target %s was never confirmed (it does not show which key it holds, and no check saw the new key used by its service); not deactivating", strings.Join(ts, ", "))}
	}
	if old == d.Key.KeyID {
		return rotation.KeyChange{}, errors.New("deactivateoldkey: the old key is the new key")
	}
	active, found, err := findKey(ctx, s.Keys, d.Plan.User, old)
	switch {
	case err != nil:
		return rotation.KeyChange{}, err
	case !found:
		return rotation.KeyChange{KeyID: old, Status: "Deleted"}, nil
	case !active:
		return rotation.KeyChange{KeyID: old, Status: "Inactive"}, nil
	}
	if err := s.Keys.SetStatus(ctx, d.Plan.User, old, false); err != nil {
		return rotation.KeyChange{}, err
	}
	return rotation.KeyChange{KeyID: old, Status: "Inactive", Changed: true}, nil
}

// findKey reports whether the user still has key id, and whether it is active.
func findKey(ctx context.Context, keys keyStore, user, id string) (active, found bool, err error) {
	ks, err := keys.List(ctx, user)
	if err != nil {
		return false, false, err
	}
	for _, k := range ks {
		if k.ID == id {
			return k.Active(), true, nil
		}
	}
	return false, false, nil
}
