package steps

import (
	"context"
	"errors"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// UpdateTarget is the task of one target kind (UpdateSecret, UpdateAuth0,
// UpdateSoracom): a Preflight item (Plan<Kind>) plans its target; a
// Distribute item (Update<Kind>) gives it the new key, read from the record.
type UpdateTarget struct {
	Records recordStore
	Target  Target
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
