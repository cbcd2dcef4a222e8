package steps

import (
	"context"
	"errors"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Retire is the DeactivateOldKey and DeleteOldKey states: the old key is
// switched off only once the verification found it unused, and removed only
// when it is off (I2).
type Retire struct{ Keys keyStore }

// Deactivate switches the old key off.
func (r *Retire) Deactivate(ctx context.Context, in rotation.TaskInput) (rotation.KeyChange, error) {
	d := in.Data
	if d.Plan == nil || d.Key == nil {
		return rotation.KeyChange{}, errors.New("deactivate: no plan or key in the execution data")
	}
	old := d.Plan.OldKeyID
	if d.Verify == nil || !d.Verify.Unused {
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: "the verification has not found the old key unused; not deactivating"}
	}
	if old == d.Key.KeyID {
		return rotation.KeyChange{}, errors.New("deactivate: the old key is the new key")
	}
	k, found, err := r.find(ctx, d.Plan.User, old)
	switch {
	case err != nil:
		return rotation.KeyChange{}, err
	case !found:
		return rotation.KeyChange{KeyID: old, Status: "Deleted"}, nil
	case !k:
		return rotation.KeyChange{KeyID: old, Status: "Inactive"}, nil
	}
	if err := r.Keys.SetStatus(ctx, d.Plan.User, old, false); err != nil {
		return rotation.KeyChange{}, err
	}
	return rotation.KeyChange{KeyID: old, Status: "Inactive", Changed: true}, nil
}

// Delete removes the old key, which must be inactive.
func (r *Retire) Delete(ctx context.Context, in rotation.TaskInput) (rotation.KeyChange, error) {
	d := in.Data
	if d.Plan == nil {
		return rotation.KeyChange{}, errors.New("deletekey: no plan in the execution data")
	}
	old := d.Plan.OldKeyID
	active, found, err := r.find(ctx, d.Plan.User, old)
	if err != nil {
		return rotation.KeyChange{}, err
	}
	if !found {
		return rotation.KeyChange{KeyID: old, Status: "Deleted"}, nil
	}
	if active {
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: "the old key is active again: someone switched it back on; not deleting"}
	}
	deleted, err := r.Keys.Delete(ctx, d.Plan.User, old)
	if err != nil {
		return rotation.KeyChange{}, err
	}
	return rotation.KeyChange{KeyID: old, Status: "Deleted", Changed: deleted}, nil
}

// find reports whether the user still has key id, and whether it is active.
func (r *Retire) find(ctx context.Context, user, id string) (active, found bool, err error) {
	keys, err := r.Keys.List(ctx, user)
	if err != nil {
		return false, false, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k.Active(), true, nil
		}
	}
	return false, false, nil
}
