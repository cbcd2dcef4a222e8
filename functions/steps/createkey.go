package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// prover proves a key works: STS GetCallerIdentity signed with it.
type prover interface {
	CallerARN(ctx context.Context, key rotation.Credential) (string, error)
}

// keyMakers says who made a key: CloudTrail's CreateAccessKey events (*trail.Trail).
type keyMakers interface {
	KeyMaker(ctx context.Context, user, id string, created time.Time) (maker string, found bool, err error)
}

// identity is who this Lambda calls AWS as (*prove.Self).
type identity interface {
	Identity(ctx context.Context) (string, error)
}

// CreateKey is the CreateKey state: a new key, proven, kept as the record's
// AWSPENDING version. Run twice, it makes one key (I5): before it calls
// CreateAccessKey it writes an intent to the record, so every key of the
// user is accounted for — the old key, a recorded key, an orphan of an
// intent (deleted), or someone else's (never deleted, I3).
type CreateKey struct {
	Keys    keyStore
	Records recordStore
	Prover  prover
	// Makers and Self attribute a key to the attempt that made it: an
	// intent records Self, and a key of its window is its orphan only if
	// Makers shows Self made it (I3: a person's key is never deleted).
	Makers keyMakers
	Self   identity
	// ProveFor is how long a new key may take to work (IAM propagation).
	ProveFor time.Duration
	// Clock is the Lambda's clock (time.Now when nil); see intentTime.
	Clock func() time.Time
	// Accounts reaches a member account (issue 15): for a plan in one,
	// Keys, Makers and Self are its (Self the member role's session, the
	// identity its CloudTrail names as a key's maker).
	Accounts accounts
}

// IntentMargin widens an intent's window on both sides: IAM's CreateDate is
// whole seconds, and it, Step Functions' entered time and the Lambda's
// clock are different clocks (docs/design.md, Idempotency).
const IntentMargin = time.Minute

// maxAttempt bounds an attempt without a deadline (tests): Lambda's longest.
const maxAttempt = 15 * time.Minute

// Run creates (or finds) this execution's key.
func (c *CreateKey) Run(ctx context.Context, in rotation.TaskInput) (rotation.NewKey, error) {
	p := in.Data.Plan
	if p == nil {
		return rotation.NewKey{}, errors.New("createkey: no plan in the execution data")
	}
	if p.Account != "" {
		m, err := memberClients(ctx, c.Accounts, "createkey", p.Account, p.User, "keys", "makers", "self")
		if err != nil {
			return rotation.NewKey{}, err
		}
		member := *c
		member.Keys, member.Makers, member.Self = m.Keys, m.Makers, m.Self
		return member.run(ctx, in)
	}
	return c.run(ctx, in)
}

func (c *CreateKey) run(ctx context.Context, in rotation.TaskInput) (rotation.NewKey, error) {
	p, exec := in.Data.Plan, in.Data.Execution
	arn, err := c.Records.Ensure(ctx, p.UserKey())
	if err != nil {
		return rotation.NewKey{}, err
	}
	if v, ok, err := c.Records.KeyVersion(ctx, p.UserKey(), exec); err != nil {
		return rotation.NewKey{}, err
	} else if ok {
		return rotation.NewKey{KeyID: v.AccessKeyID, RecordARN: arn, VersionID: v.ID, Reused: true}, nil
	}
	if p.ResumeKeyID != "" {
		key, err := c.Records.Key(ctx, p.UserKey(), p.ResumeVersionID)
		if err != nil {
			return rotation.NewKey{}, err
		}
		v, err := c.Records.PutKey(ctx, p.UserKey(), exec, p.OldKeyID, key)
		if err != nil {
			return rotation.NewKey{}, err
		}
		return rotation.NewKey{KeyID: key.AccessKeyID, RecordARN: arn, VersionID: v, Reused: true}, nil
	}
	lock, held, err := c.Records.Staged(ctx, p.UserKey(), record.Pending)
	if err != nil {
		return rotation.NewKey{}, err
	}
	if held && lock.Execution != exec {
		return rotation.NewKey{}, &rotation.RotationInProgress{User: p.Who(), Execution: lock.Execution}
	}
	intents := lock.Intents
	var removed []rotation.RemovedKey
	keys, err := c.makeRoom(ctx, p, intents, intents, &removed)
	if err != nil {
		return rotation.NewKey{}, err
	}
	at := c.intentTime(in.Now)
	until := at.Add(maxAttempt)
	if d, ok := ctx.Deadline(); ok {
		until = at.Add(max(time.Until(d), 0)) // the invocation's time left, on the Lambda's own clock
	}
	self, err := c.Self.Identity(ctx)
	if err != nil {
		return rotation.NewKey{}, withRemoved(fmt.Errorf("who am I (sts GetCallerIdentity): %w", err), removed)
	}
	mine := record.Intent{Execution: exec, Attempt: nextAttempt(intents, exec), At: at, Until: until, By: self}
	for _, k := range keys {
		mine.Before = append(mine.Before, k.ID)
	}
	intents = append(openIntents(intents, at), mine)
	if _, err := c.Records.PutIntent(ctx, p.UserKey(), exec, p.OldKeyID, intents); err != nil {
		return rotation.NewKey{}, err
	}
	create := c.Keys.Create
	if len(keys) == 0 {
		// Room for two keys (an issue to a user with none): a retry after a
		// lost answer would make a second key and leave the first one's
		// secret with nobody, where with one key IAM refuses it (AnswerLost).
		// So one try; the next attempt deletes the lost try's key as an
		// orphan of this intent.
		create = c.Keys.CreateOnce
	}
	key, _, err := create(ctx, p.User)
	var lost *iamkeys.AnswerLost
	var limit *rotation.KeyLimitReached
	switch {
	case errors.As(err, &lost):
		// A retry of a call whose answer was lost found the key the lost
		// try made: an orphan of the intent just written.
		before := len(removed)
		if _, err := c.makeRoom(ctx, p, intents, intents, &removed); err != nil {
			return rotation.NewKey{}, err
		}
		if len(removed) == before {
			return rotation.NewKey{}, withRemoved(lost.Limit, removed)
		}
		key, _, err = c.Keys.Create(ctx, p.User)
	case errors.As(err, &limit):
		// Refused at once: this attempt made no key, so its intent accounts
		// for none; a key made since the listing is someone else's.
		c.resolve(ctx, p, exec, intents, "none")
		if _, err := c.makeRoom(ctx, p, intents[:len(intents)-1], intents, &removed); err != nil {
			return rotation.NewKey{}, err
		}
		return rotation.NewKey{}, withRemoved(limit, removed)
	}
	if errors.As(err, &lost) { // lost again after the orphan went: the next attempt removes it
		err = &rotation.Retryable{Reason: "iam CreateAccessKey " + p.User + ": the answer was lost again"}
	}
	if err != nil {
		return rotation.NewKey{}, withRemoved(err, removed)
	}
	if err := c.prove(ctx, key); err != nil {
		// A key nobody can use must not stay behind to fill the quota.
		if _, derr := c.Keys.Delete(ctx, p.User, key.AccessKeyID); derr != nil {
			err = errors.Join(err, derr)
		}
		return rotation.NewKey{}, fmt.Errorf("the new key %s does not work: %w", key.AccessKeyID, err)
	}
	v, err := c.Records.PutKey(ctx, p.UserKey(), exec, p.OldKeyID, key)
	if err != nil {
		deleted, err := c.unstored(ctx, p, exec, key.AccessKeyID, err, removed)
		if deleted {
			c.resolve(ctx, p, exec, intents, "deleted")
		}
		return rotation.NewKey{}, err
	}
	return rotation.NewKey{KeyID: key.AccessKeyID, RecordARN: arn, VersionID: v, Removed: removed}, nil
}

// unstored handles a new key that PutSecretValue did not keep. Its secret
// exists only in this Lambda's memory, so no later attempt can store it:
// unless the write did land (its answer lost), the key is deleted now. If
// that delete fails too, the intent still accounts for the key, and the
// next attempt or re-run deletes it as an orphan.
//
// A run that lost the lock (RotationInProgress: it was stopped, and a
// re-run took over while this Lambda ran on) will never use the key,
// stored or not: it is deleted too.
func (c *CreateKey) unstored(ctx context.Context, p *rotation.Plan, exec, id string, putErr error, removed []rotation.RemovedKey) (deleted bool, err error) {
	lostLock := errors.As(putErr, new(*rotation.RotationInProgress))
	if v, ok, err := c.Records.KeyVersion(ctx, p.UserKey(), exec); !lostLock && err == nil && ok && v.AccessKeyID == id {
		return false, withRemoved(putErr, removed) // stored after all: the retry reuses it
	}
	if _, err := c.Keys.Delete(ctx, p.User, id); err != nil {
		return false, withRemoved(putErr, removed) // the intent covers it
	}
	removed = append(removed, rotation.RemovedKey{KeyID: id, Reason: "made by this attempt, but its record version could not be written: nobody would hold its secret"})
	return true, withRemoved(putErr, removed)
}

// resolve records that this attempt's outcome is known (outcome "none": it
// made no key; "deleted": it deleted the key it made), so its intent no
// longer accounts for a key someone else makes in its window. Best effort:
// if the write fails, the intent stays open until its window closes.
//
// A concurrent attempt of the same execution (Step Functions retries a
// Lambda it gave up on while that invocation still runs) may have recorded
// the run's key meanwhile: then this write would take AWSPENDING off that
// key version, and a re-run could no longer resume the key. So it is skipped.
func (c *CreateKey) resolve(ctx context.Context, p *rotation.Plan, exec string, intents []record.Intent, outcome string) {
	if _, recorded, err := c.Records.KeyVersion(ctx, p.UserKey(), exec); err != nil || recorded {
		return
	}
	done := slices.Clone(intents)
	done[len(done)-1].Outcome = outcome
	_, _ = c.Records.PutIntent(ctx, p.UserKey(), exec, p.OldKeyID, done)
}

// withRemoved adds to a named error the keys already deleted, so the alert
// says what changed; the error keeps its name (Step Functions matches it).
func withRemoved(err error, removed []rotation.RemovedKey) error {
	if len(removed) == 0 {
		return err
	}
	var ids []string
	for _, r := range removed {
		ids = append(ids, fmt.Sprintf("%s (%s)", r.KeyID, r.Reason))
	}
	var rt *rotation.Retryable
	var limit *rotation.KeyLimitReached
	switch {
	case errors.As(err, &limit):
		return &rotation.KeyLimitReached{User: limit.User, Keys: limit.Keys, Removed: append(limit.Removed, ids...)}
	case errors.As(err, &rt):
		return &rotation.Retryable{Reason: rt.Reason + "; keyrotator deleted " + strings.Join(ids, ", ")}
	}
	return err
}

// intentTime is the intent's time, on the clock IAM's CreateDate is
// compared with: the later of the state's entered time (the workflow's
// clock, which the sandbox moves ahead by days) and the Lambda's clock (in
// AWS the entered time is the first attempt's; a retry is later).
func (c *CreateKey) intentTime(entered time.Time) time.Time {
	now := c.now()
	if entered.After(now) {
		return entered.UTC()
	}
	return now.UTC()
}

func (c *CreateKey) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// nextAttempt numbers this execution's next intent.
func nextAttempt(intents []record.Intent, exec string) int {
	n := 0
	for _, i := range intents {
		if i.Execution == exec {
			n = max(n, i.Attempt)
		}
	}
	return n + 1
}

// openIntents keeps the intents whose window is still open at t: a closed
// one's keys were all listed by makeRoom (its orphans deleted), so it has
// nothing more to account for.
func openIntents(intents []record.Intent, t time.Time) []record.Intent {
	var open []record.Intent
	for _, i := range intents {
		if !i.Until.Add(IntentMargin).Before(t) {
			open = append(open, i)
		}
	}
	return open
}

// makeRoom accounts for every key of the user and returns those that stay.
// The old key stays; the inactive key the plan allows removing goes; an
// orphan — inside an intent's window, never recorded, never used but by
// our own STS proof — goes (nobody holds its secret, I5); any other key
// was made by someone else and stays (I3). Two that stay are KeyLimitReached.
//
// known are the intents this attempt knows of (the lock's when it started,
// and its own). An intent the lock holds beyond them was written since by
// another attempt that may still be running (Step Functions retries a
// Lambda it gave up on while that invocation runs): a key inside its window
// may be about to be recorded, so it is not deleted, and a full quota is
// Retryable. The lock is re-read after the listing and before Holds: a
// listed key's maker wrote its intent before making it, so either the
// re-read shows that intent or Holds shows the key recorded.
func (c *CreateKey) makeRoom(ctx context.Context, p *rotation.Plan, intents, known []record.Intent, removed *[]rotation.RemovedKey) ([]iamkeys.Key, error) {
	keys, err := c.Keys.List(ctx, p.User)
	if err != nil {
		return nil, err
	}
	live, err := c.liveIntents(ctx, p, keys, intents, known)
	if err != nil {
		return nil, withRemoved(err, *removed)
	}
	orphans, unconfirmed, err := findOrphans(ctx, c.Keys, c.Records, c.Makers, p.UserKey(), p.User, keys, intents, p.OldKeyID)
	if err != nil {
		return nil, withRemoved(err, *removed)
	}
	var kept, busy []iamkeys.Key
	for _, k := range keys {
		_, orphan := orphans[k.ID]
		if orphan && slices.ContainsFunc(live, func(i record.Intent) bool { return i.Accounts(k.ID, k.Created, IntentMargin) }) {
			orphan = false
			busy = append(busy, k)
		}
		switch why := orphans[k.ID]; {
		case k.ID == p.OldKeyID:
			kept = append(kept, k)
		case k.ID == p.RemoveInactiveKeyID && !k.Active():
			if _, err := c.Keys.Delete(ctx, p.User, k.ID); err != nil {
				return nil, withRemoved(err, *removed)
			}
		case orphan:
			if _, err := c.Keys.Delete(ctx, p.User, k.ID); err != nil {
				return nil, withRemoved(err, *removed)
			}
			*removed = append(*removed, rotation.RemovedKey{KeyID: k.ID, Reason: why})
		default:
			kept = append(kept, k)
		}
	}
	if len(kept) >= 2 && len(busy) > 0 {
		return nil, withRemoved(&rotation.Retryable{Reason: fmt.Sprintf(
			"key %s of IAM user %s is inside the window of a CreateKey attempt that began after this one and may still be running: not deleted; the next attempt finds it recorded or deletes it",
			busy[0].ID, p.User)}, *removed)
	}
	if len(kept) >= 2 {
		for _, k := range kept {
			if attempt, ok := unconfirmed[k.ID]; ok {
				return nil, withRemoved(&rotation.OrphanUnconfirmed{User: p.User, KeyID: k.ID, Attempt: attempt}, *removed)
			}
		}
		return nil, withRemoved(keyLimit(p.User, kept, p.OldKeyID), *removed)
	}
	return kept, nil
}

// liveIntents re-reads the lock and returns the intents it holds that are
// not known: other attempts', written since this one read the lock. It
// reads only when a listed key is a candidate orphan of intents, so a run
// with nothing to delete makes no extra call.
func (c *CreateKey) liveIntents(ctx context.Context, p *rotation.Plan, keys []iamkeys.Key, intents, known []record.Intent) ([]record.Intent, error) {
	candidate := slices.ContainsFunc(keys, func(k iamkeys.Key) bool {
		return k.ID != p.OldKeyID && slices.ContainsFunc(intents, func(i record.Intent) bool { return i.Accounts(k.ID, k.Created, IntentMargin) })
	})
	if !candidate {
		return nil, nil
	}
	lock, held, err := c.Records.Staged(ctx, p.UserKey(), record.Pending)
	if err != nil || !held {
		return nil, err
	}
	var live []record.Intent
	for _, i := range lock.Intents {
		if !slices.ContainsFunc(known, func(k record.Intent) bool { return k.Execution == i.Execution && k.Attempt == i.Attempt }) {
			live = append(live, i)
		}
	}
	return live, nil
}

// findOrphans returns, by id with the reason, the keys that intents account
// for as orphans: made inside an intent's window, not old, held by no
// record version, not used by anything but STS (the proof CreateKey makes
// with a new key), and made — CloudTrail's CreateAccessKey event says so —
// by the identity the intent recorded. A person can make a key inside a
// window too, and IAM's last-used lags by hours, so only the event tells
// the two apart (I3). unconfirmed are the keys that pass every test but
// the last because the event history does not show their event yet, each
// with the attempt whose window holds it: not deleted, not someone else's
// either, until it does. Validate and CreateKey both decide with it.
func findOrphans(ctx context.Context, keys keyStore, records recordStore, makers keyMakers, recordKey, user string, list []iamkeys.Key, intents []record.Intent, old string) (orphans, unconfirmed map[string]string, err error) {
	orphans, unconfirmed = map[string]string{}, map[string]string{}
	if len(intents) == 0 {
		return orphans, unconfirmed, nil
	}
	var execs []string
	for _, i := range intents {
		execs = append(execs, i.Execution)
	}
	for _, k := range list {
		if k.ID == old {
			continue
		}
		i := slices.IndexFunc(intents, func(i record.Intent) bool { return i.Accounts(k.ID, k.Created, IntentMargin) })
		if i < 0 {
			continue
		}
		held, err := records.Holds(ctx, recordKey, k.ID, execs)
		if err != nil {
			return nil, nil, err
		}
		if held {
			continue
		}
		use, err := keys.LastUsed(ctx, k.ID)
		if err != nil {
			return nil, nil, err
		}
		if use.LastUsed != nil && use.Service != "sts" {
			continue // something holds it and uses it: not ours to delete
		}
		in := intents[i]
		if in.By == "" {
			continue // an intent that recorded no identity: nothing can prove the key its
		}
		maker, found, err := makers.KeyMaker(ctx, user, k.ID, k.Created)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case !found:
			unconfirmed[k.ID] = fmt.Sprintf("%s CreateKey attempt %d", in.Execution, in.Attempt)
		case maker == in.By:
			orphans[k.ID] = fmt.Sprintf("orphan of %s CreateKey attempt %d: made by it (CloudTrail), inside its intent's window, never recorded, so nobody holds its secret",
				in.Execution, in.Attempt)
		}
	}
	return orphans, unconfirmed, nil
}

// keyLimit is KeyLimitReached for the keys that stay, each with whose it
// is: old is the key being rotated ("" when none is chosen yet, in
// Validate); any other is no intent's, so keyrotator never deletes it.
func keyLimit(user string, keys []iamkeys.Key, old string) *rotation.KeyLimitReached {
	return iamkeys.LimitReached(user, keys, func(k iamkeys.Key) string {
		switch {
		case k.ID == old:
			return "the key being rotated"
		case old != "":
			return "made by someone else: no keyrotator intent accounts for it, so keyrotator never deletes it"
		}
		return "no keyrotator intent accounts for it, so keyrotator never deletes it"
	})
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
