package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Cleanup is the CleanupTargets state: what targets kept for the old key
// goes (nothing, for secret targets: their old version holds a deleted key),
// then the lock, last.
type Cleanup struct{ Records recordStore }

// CleanupResult says what was cleaned.
type CleanupResult = rotation.CleanupResult

// Run cleans up and releases the lock.
func (c *Cleanup) Run(ctx context.Context, in rotation.TaskInput) (CleanupResult, error) {
	d := in.Data
	if d.Plan == nil {
		return CleanupResult{}, errors.New("cleanup: no plan in the execution data")
	}
	var res CleanupResult
	for _, t := range d.Plan.Targets {
		res.Targets = append(res.Targets, fmt.Sprintf("%s (%s): nothing kept for the old key", t.Name, t.Type))
	}
	if err := c.Records.Release(ctx, d.Plan.User, d.Execution); err != nil {
		return CleanupResult{}, err
	}
	res.LockReleased = true
	return res, nil
}
