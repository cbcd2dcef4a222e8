package steps

import (
	"context"
	"errors"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// secretTarget is the `secret` target (*secret.Target).
type secretTarget interface {
	Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error)
}

// UpdateSecret is the UpdateSecret state: one Distribute item of type secret.
type UpdateSecret struct {
	Records recordStore
	Target  secretTarget
}

// Run writes the new key into the item's secret and returns the receipt.
func (u *UpdateSecret) Run(ctx context.Context, in rotation.TaskInput) (rotation.Receipt, error) {
	d := in.Data
	if d.Plan == nil || d.Key == nil || d.Target == nil {
		return rotation.Receipt{}, errors.New("updatesecret: the item lacks plan, key or target")
	}
	key, err := u.Records.Key(ctx, d.Plan.User, d.Key.VersionID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	return u.Target.Update(ctx, *d.Target, d.Execution, d.Plan.OldKeyID, key)
}
