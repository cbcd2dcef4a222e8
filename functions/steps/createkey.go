package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// prover proves a key works: STS GetCallerIdentity signed with it.
type prover interface {
	CallerARN(ctx context.Context, key rotation.Credential) (string, error)
}

// CreateKey is the CreateKey state: a new key, proven, kept as the record's
// AWSPENDING version. Run twice, it makes one key (I5).
type CreateKey struct {
	Keys    keyStore
	Records recordStore
	Prover  prover
	// ProveFor is how long a new key may take to work (IAM propagation).
	ProveFor time.Duration
}

// Run creates (or finds) this execution's key.
func (c *CreateKey) Run(ctx context.Context, in rotation.TaskInput) (rotation.NewKey, error) {
	p, exec := in.Data.Plan, in.Data.Execution
	if p == nil {
		return rotation.NewKey{}, errors.New("createkey: no plan in the execution data")
	}
	arn, err := c.Records.Ensure(ctx, p.User)
	if err != nil {
		return rotation.NewKey{}, err
	}
	if v, ok, err := c.Records.KeyVersion(ctx, p.User, exec); err != nil {
		return rotation.NewKey{}, err
	} else if ok {
		return rotation.NewKey{KeyID: v.AccessKeyID, RecordARN: arn, VersionID: v.ID, Reused: true}, nil
	}
	if p.ResumeKeyID != "" {
		key, err := c.Records.Key(ctx, p.User, p.ResumeVersionID)
		if err != nil {
			return rotation.NewKey{}, err
		}
		v, err := c.Records.PutKey(ctx, p.User, exec, p.OldKeyID, key)
		if err != nil {
			return rotation.NewKey{}, err
		}
		return rotation.NewKey{KeyID: key.AccessKeyID, RecordARN: arn, VersionID: v, Reused: true}, nil
	}
	if err := c.makeRoom(ctx, p); err != nil {
		return rotation.NewKey{}, err
	}
	key, _, err := c.Keys.Create(ctx, p.User)
	if err != nil {
		return rotation.NewKey{}, err
	}
	if err := c.prove(ctx, key); err != nil {
		// A key nobody can use must not stay behind to fill the quota.
		if _, derr := c.Keys.Delete(ctx, p.User, key.AccessKeyID); derr != nil {
			err = errors.Join(err, derr)
		}
		return rotation.NewKey{}, fmt.Errorf("the new key %s does not work: %w", key.AccessKeyID, err)
	}
	v, err := c.Records.PutKey(ctx, p.User, exec, p.OldKeyID, key)
	if err != nil {
		return rotation.NewKey{}, err
	}
	return rotation.NewKey{KeyID: key.AccessKeyID, RecordARN: arn, VersionID: v}, nil
}

// makeRoom deletes the inactive key the plan allows removing and any key an
// earlier attempt of this run made but could not record (it crashed between
// CreateAccessKey and PutSecretValue): made since the run started, never
// used, not the old key. An active key that is not ours is never removed.
func (c *CreateKey) makeRoom(ctx context.Context, p *rotation.Plan) error {
	keys, err := c.Keys.List(ctx, p.User)
	if err != nil {
		return err
	}
	var kept []iamkeys.Key
	for _, k := range keys {
		switch {
		case k.ID == p.OldKeyID:
			kept = append(kept, k)
		case k.ID == p.RemoveInactiveKeyID && !k.Active():
			if _, err := c.Keys.Delete(ctx, p.User, k.ID); err != nil {
				return err
			}
		case !k.Created.Before(p.StartedAt):
			use, err := c.Keys.LastUsed(ctx, k.ID)
			if err != nil {
				return err
			}
			if use.LastUsed != nil {
				kept = append(kept, k)
				continue
			}
			if _, err := c.Keys.Delete(ctx, p.User, k.ID); err != nil {
				return err
			}
		default:
			kept = append(kept, k)
		}
	}
	if len(kept) >= 2 {
		limit := &rotation.KeyLimitReached{User: p.User}
		for _, k := range kept {
			limit.Keys = append(limit.Keys, fmt.Sprintf("%s (%s)", k.ID, k.Status))
		}
		return limit
	}
	return nil
}

func (c *CreateKey) prove(ctx context.Context, key rotation.Credential) error {
	limit := c.ProveFor
	if limit <= 0 {
		limit = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := c.Prover.CallerARN(ctx, key)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
