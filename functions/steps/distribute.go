package steps

import (
	"context"
	"errors"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// target is one target kind (*secret.Target, *auth0.Target,
// *soracom.Target): it gives the new key to the place it names and says
// what changed; in a dry run it reads the place and says what it would change.
type target interface {
	Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error)
	Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error)
}

// UpdateTarget is a Distribute item's Task (UpdateSecret, UpdateAuth0): the
// new key, read from the record, goes to one target.
type UpdateTarget struct {
	Records recordStore
	Target  target
}

// Run gives the new key to the item's target and returns the receipt; with
// kind "plan" (the Preflight of every run) it changes nothing and returns
// what it would change.
func (u *UpdateTarget) Run(ctx context.Context, in rotation.TaskInput) (rotation.Receipt, error) {
	d := in.Data
	if in.Kind == "plan" {
		if d.Plan == nil || d.Target == nil {
			return rotation.Receipt{}, errors.New("plan target: the item lacks plan or target")
		}
		return PlanTarget(ctx, u.Target, *d.Target, d.Plan.Targets, d.Plan.OldKeyID, d.Plan.ResumeKeyID)
	}
	if d.Plan == nil || d.Key == nil || d.Target == nil {
		return rotation.Receipt{}, errors.New("update target: the item lacks plan, key or target")
	}
	key, err := u.Records.Key(ctx, d.Plan.User, d.Key.VersionID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	return u.Target.Update(ctx, *d.Target, d.Execution, d.Plan.OldKeyID, key)
}

// byTarget indexes receipts by their target's name.
func byTarget(receipts []rotation.Receipt) map[string]rotation.Receipt {
	out := make(map[string]rotation.Receipt, len(receipts))
	for _, r := range receipts {
		out[r.Target] = r
	}
	return out
}
