package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Promote is the Promote state: once every target holds the new key, the
// record's new version becomes AWSCURRENT. That moment is the cut-over.
type Promote struct{ Records recordStore }

// Run promotes the new key.
func (p *Promote) Run(ctx context.Context, in rotation.TaskInput) (rotation.Cutover, error) {
	d := in.Data
	if d.Plan == nil || d.Key == nil {
		return rotation.Cutover{}, errors.New("promote: no plan or key in the execution data")
	}
	got := map[string]string{}
	for _, r := range d.Receipts {
		got[r.Target] = r.NewKeyID
	}
	for _, t := range d.Plan.Targets {
		if got[t.Name] != d.Key.KeyID {
			return rotation.Cutover{}, &rotation.TargetFailed{Target: t.Name, Reason: fmt.Sprintf("no receipt says it holds the new key %s", d.Key.KeyID)}
		}
	}
	if err := p.Records.Promote(ctx, d.Plan.UserKey(), d.Key.VersionID); err != nil {
		return rotation.Cutover{}, err
	}
	c := rotation.Cutover{At: in.Now, CurrentVersion: d.Key.VersionID}
	if d.Plan.Issue {
		// Issuance: no old key to verify or retire, so the run ends after
		// the cut-over (the ASL's Issued? goes to NotifySuccess) and the
		// lock goes now, as CleanupTargets lets it go after a rotation.
		// Only after Promote: a run that fails before leaves the lock for
		// a re-run to take over and resume its key. A retry finds the key
		// promoted and the lock gone, and changes nothing.
		if err := p.Records.Release(ctx, d.Plan.UserKey(), d.Execution); err != nil {
			return rotation.Cutover{}, err
		}
		c.LockReleased = true
	}
	return c, nil
}
