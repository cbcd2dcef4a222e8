package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// CleanupTargets is the CleanupTargets state: what targets kept for the
// old key goes (each kind that is a Cleaner says what: the old SORACOM
// credential; a secret or an Auth0 tenant holds only the new key), then
// the lock, last.
type CleanupTargets struct {
	Records recordStore
	// Targets are the kinds that clean up, by name; a kind not here, or
	// not a Cleaner, kept nothing.
	Targets Targets
}

// CleanupResult says what was cleaned.
type CleanupResult = rotation.CleanupResult

// Run cleans up and releases the lock.
func (c *CleanupTargets) Run(ctx context.Context, in rotation.TaskInput) (CleanupResult, error) {
	d := in.Data
	if d.Plan == nil {
		return CleanupResult{}, errors.New("cleanuptargets: no plan in the execution data")
	}
	if d.Retire == nil || d.Retire.Status != "Deleted" {
		return CleanupResult{}, errors.New("cleanuptargets: the old key is not deleted yet; nothing of it may go before it does")
	}
	receipts := byTarget(d.Receipts)
	var res CleanupResult
	var failed []*rotation.TargetFailed
	for _, t := range d.Plan.Targets {
		r, ok := receipts[t.Name]
		cl, can := c.Targets.cleaner(t.Type)
		if !ok || !can {
			res.Targets = append(res.Targets, fmt.Sprintf("%s (%s): nothing kept for the old key", t.Name, t.Type))
			continue
		}
		line, err := cl.Cleanup(ctx, t, r)
		if tf := (*rotation.TargetFailed)(nil); errors.As(err, &tf) {
			failed = append(failed, tf)
			res.Targets = append(res.Targets, fmt.Sprintf("%s (%s): %s", t.Name, t.Type, tf.Reason))
			continue // the others are cleaned, the lock released; then the alert
		}
		if err != nil {
			return CleanupResult{}, err
		}
		res.Targets = append(res.Targets, line)
	}
	if err := c.Records.Release(ctx, d.Plan.UserKey(), d.Execution); err != nil {
		return CleanupResult{}, err
	}
	res.LockReleased = true
	switch len(failed) {
	case 0:
		return res, nil
	case 1:
		return res, failed[0]
	}
	all := &rotation.TargetFailed{}
	for i, f := range failed {
		if i > 0 {
			all.Target += ", "
			all.Reason += "; "
		}
		all.Target += f.Target
		all.Reason += f.Target + ": " + f.Reason
	}
	return res, all
}
