package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// DeleteOldKey is the DeleteOldKey state: the old key is removed only when it
// is off and, read again after a grace period of at least IAM's Lag, its
// last-used shows no use after the cut-over (I2). A use reported late switches
// the key back on, so the consumer that still holds it works again.
type DeleteOldKey struct {
	Keys keyStore
	// Accounts reaches a member account's IAM (issue 15): for a plan in
	// one, Keys are its.
	Accounts accounts
}

// Run deletes the old key, or re-activates it and fails OldKeyStillInUse.
func (s *DeleteOldKey) Run(ctx context.Context, in rotation.TaskInput) (rotation.KeyChange, error) {
	d := in.Data
	if d.Plan == nil || d.Promote == nil {
		return rotation.KeyChange{}, errors.New("deleteoldkey: no plan or cut-over in the execution data")
	}
	if d.Plan.Account != "" {
		c, err := memberClients(ctx, s.Accounts, "deleteoldkey", d.Plan.Account, d.Plan.User, "keys")
		if err != nil {
			return rotation.KeyChange{}, err
		}
		s = &DeleteOldKey{Keys: c.Keys}
	}
	old := d.Plan.OldKeyID
	if grace := time.Duration(d.Plan.GraceSeconds) * time.Second; grace < Lag {
		// Uses in the hours before the deactivation are visible only after the lag.
		return rotation.KeyChange{}, &rotation.InvalidInput{Field: "graceDays", Reason: fmt.Sprintf("a grace period of %s is shorter than IAM's last-used lag of %s; not deleting", grace, Lag)}
	}
	active, found, err := findKey(ctx, s.Keys, d.Plan.User, old)
	if err != nil {
		return rotation.KeyChange{}, err
	}
	if !found {
		return rotation.KeyChange{KeyID: old, Status: "Deleted"}, nil
	}
	if active {
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: "the old key is active again: someone switched it back on; not deleting"}
	}
	u, err := s.Keys.LastUsed(ctx, old)
	if err != nil {
		return rotation.KeyChange{}, err
	}
	cutover := d.Promote.At
	if u.LastUsed != nil && u.LastUsed.After(cutover.Add(Settle)) {
		evidence := fmt.Sprintf("old key %s was last used %s by %s in %s, %s after the cut-over, reported after the verification; not deleting",
			old, stamp(*u.LastUsed), u.Service, u.Region, roundDuration(u.LastUsed.Sub(cutover)))
		if err := s.Keys.SetStatus(ctx, d.Plan.User, old, true); err != nil {
			return rotation.KeyChange{}, err
		}
		return rotation.KeyChange{}, &rotation.OldKeyStillInUse{KeyID: old, Evidence: evidence + "; re-activated it"}
	}
	deleted, err := s.Keys.Delete(ctx, d.Plan.User, old)
	if err != nil {
		return rotation.KeyChange{}, err
	}
	return rotation.KeyChange{KeyID: old, Status: "Deleted", Changed: deleted}, nil
}
