package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Lag is how long IAM may take to show a key's use: AWS documents that its
// last-accessed (last-used) data may lag by up to about four hours. A check
// at T has seen only the uses before T - Lag; silence after that proves nothing.
const Lag = 4 * time.Hour

// Settle is how long after the cut-over a consumer may still use the old
// key without being called missed: consumers that read their key per use or
// poll for it (an app reading its secret, Auth0 after the PATCH) move within
// it. A use later than that is a consumer that did not move.
const Settle = 5 * time.Minute

// trailLookup is CloudTrail's event history (*trail.Trail).
type trailLookup interface {
	UsesSince(ctx context.Context, id string, from, to time.Time) ([]rotation.TrailUse, error)
}

// VerifyOldKeyUnused is the VerifyOldKeyUnused state. IAM last-used of both
// keys is the primary evidence; a target's service's own last use of its
// credentials (a kind that is a UsageReporter: SORACOM), a second signal;
// CloudTrail supporting. A receipt left unconfirmed (an Auth0 tenant that
// does not show its key id) is confirmed by the new key's last use by its
// service (ses), and until it is the old key does not count as unused. It
// never touches a key.
type VerifyOldKeyUnused struct {
	Keys  keyStore
	Trail trailLookup
	// Targets are the kinds that report usage, by name; a kind not here,
	// or not a UsageReporter, gives IAM's and CloudTrail's evidence only.
	Targets Targets
	// Accounts reaches a member account (issue 15): for a plan in one,
	// Keys and Trail are its IAM and CloudTrail.
	Accounts accounts
}

// Run checks once; after the last allowed attempt, a key still in use is
// *rotation.OldKeyStillInUse.
func (v *VerifyOldKeyUnused) Run(ctx context.Context, in rotation.TaskInput) (rotation.Verification, error) {
	d := in.Data
	if d.Plan == nil || d.Key == nil || d.Promote == nil {
		return rotation.Verification{}, errors.New("verifyoldkeyunused: no plan, key or cut-over in the execution data")
	}
	if d.Plan.Account != "" {
		c, err := memberClients(ctx, v.Accounts, "verifyoldkeyunused", d.Plan.Account, d.Plan.User, "keys", "trail")
		if err != nil {
			return rotation.Verification{}, err
		}
		v = &VerifyOldKeyUnused{Keys: c.Keys, Trail: c.Trail, Targets: v.Targets}
	}
	res := rotation.Verification{CheckedAt: in.Now, Attempt: 1}
	if d.Verify != nil {
		res.Attempt = d.Verify.Attempt + 1
	}
	res.AttemptsLeft = d.Plan.VerifyAttempts - res.Attempt
	var err error
	if res.OldKey, err = v.Keys.LastUsed(ctx, d.Plan.OldKeyID); err != nil {
		return rotation.Verification{}, err
	}
	if res.NewKey, err = v.Keys.LastUsed(ctx, d.Key.KeyID); err != nil {
		return rotation.Verification{}, err
	}
	cutover, since := d.Promote.At, in.Now.Sub(d.Promote.At)
	// The evidence window is [cut-over + Settle, now - Lag]: only there has IAM
	// had time to report every use. A use reported at any time after
	// cut-over + Settle is a use, however late it arrived.
	after, seen := cutover.Add(Settle), in.Now.Add(-Lag)
	if res.CloudTrail, err = v.Trail.UsesSince(ctx, d.Plan.OldKeyID, after, in.Now); err != nil {
		return rotation.Verification{}, err
	}
	if res.CredentialUses, err = v.credentialUses(ctx, d); err != nil {
		return rotation.Verification{}, err
	}
	res.Freshness = fmt.Sprintf("checked at %s, %s after the cut-over at %s; IAM last-used data can lag by up to %s, so silence counts only from %s to %s; CloudTrail shows management calls only (no SES sends, no IoT publishes)",
		stamp(in.Now), roundDuration(since), stamp(cutover), Lag, stamp(after), stamp(seen))

	res.Confirmations = confirmations(d, res.NewKey)
	waiting := pending(res.Confirmations)

	old := res.OldKey
	usedAfter := old.LastUsed != nil && old.LastUsed.After(after)
	var oldCred *rotation.CredentialUse
	for i, u := range res.CredentialUses {
		if u.Role == "old" && u.LastUsed != nil && u.LastUsed.After(after) {
			oldCred = &res.CredentialUses[i]
			break
		}
	}
	switch {
	case usedAfter:
		res.Evidence = fmt.Sprintf("old key %s was last used %s by %s in %s, %s after the cut-over",
			old.KeyID, stamp(*old.LastUsed), old.Service, old.Region, roundDuration(old.LastUsed.Sub(cutover)))
	case oldCred != nil:
		res.Evidence = fmt.Sprintf("%s used the old credential %s of target %s at %s, %s after the cut-over: something there still uses it",
			serviceOf(d.Plan, oldCred.Target), oldCred.Credential, oldCred.Target, stamp(*oldCred.LastUsed), roundDuration(oldCred.LastUsed.Sub(cutover)))
	case len(res.CloudTrail) > 0:
		e := res.CloudTrail[0]
		res.Evidence = fmt.Sprintf("CloudTrail shows old key %s calling %s %s at %s, after the cut-over (%d such events)",
			old.KeyID, e.Source, e.Event, stamp(e.Time), len(res.CloudTrail))
	case !seen.After(after):
		res.Evidence = fmt.Sprintf("too soon to tell: the check proves nothing, only %s since the cut-over, and IAM last-used data can lag by %s, so uses after %s may not be reported yet (%s)",
			roundDuration(since), Lag, stamp(after), lastUse(old))
	case len(waiting) > 0:
		// The old key looks unused, but a target never showed that it holds
		// the new key: a tenant that sends no mail uses neither key, and one
		// the update did not reach would fail once the old key is off (I2).
		res.Evidence = fmt.Sprintf("not retiring old key %s yet: no use of it from %s to %s, but the cut-over of target %s is unconfirmed until IAM shows the new key used by %s (%s)",
			old.KeyID, stamp(after), stamp(seen), strings.Join(waiting, ", "), res.Confirmations[0].UsedBy, lastUse(old))
	default:
		res.Unused = true
		res.Evidence = fmt.Sprintf("no use of old key %s from %s (the cut-over at %s plus %s) to %s (the check less IAM's %s lag) (%s)",
			old.KeyID, stamp(after), stamp(cutover), Settle, stamp(seen), Lag, lastUse(old))
	}
	if n := res.NewKey; n.LastUsed != nil {
		res.Evidence += fmt.Sprintf("; new key %s last used %s by %s in %s", n.KeyID, stamp(*n.LastUsed), n.Service, n.Region)
	} else {
		res.Evidence += fmt.Sprintf("; new key %s not used yet", n.KeyID)
	}
	for _, u := range res.CredentialUses {
		res.Evidence += fmt.Sprintf("; %s credential %s (%s, target %s) %s", serviceOf(d.Plan, u.Target), u.Credential, u.Role, u.Target, credentialLastUse(u))
	}
	if len(res.Confirmations) > 0 {
		res.Evidence += "; " + confirmationEvidence(res.Confirmations, res.NewKey.KeyID)
	}
	if !res.Unused && res.AttemptsLeft <= 0 {
		return res, &rotation.OldKeyStillInUse{KeyID: old.KeyID, Evidence: res.Evidence}
	}
	return res, nil
}

// credentialUses asks each receipt's kind, if it reports usage, for its
// service's last use of the target's credentials.
func (v *VerifyOldKeyUnused) credentialUses(ctx context.Context, d rotation.ExecutionData) ([]rotation.CredentialUse, error) {
	var out []rotation.CredentialUse
	for _, r := range d.Receipts {
		u, ok := v.Targets.usage(r.Type)
		if !ok {
			continue
		}
		tg, ok := planned(d.Plan, r.Target)
		if !ok {
			continue
		}
		uses, err := u.Usage(ctx, tg, r)
		if err != nil {
			return nil, err
		}
		out = append(out, uses...)
	}
	return out, nil
}

// serviceOf names the service of the plan's target of that name (its
// kind's Title: "SORACOM").
func serviceOf(p *rotation.Plan, name string) string {
	tg, _ := planned(p, name)
	if k, ok := rotation.KindOf(tg.Type); ok {
		return k.Title
	}
	return "the service of target " + name
}

// planned is the plan's target of that name.
func planned(p *rotation.Plan, name string) (rotation.Target, bool) {
	for _, t := range p.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return rotation.Target{}, false
}

func credentialLastUse(u rotation.CredentialUse) string {
	if u.LastUsed == nil {
		return "never used"
	}
	return "last used " + stamp(*u.LastUsed)
}

func lastUse(u rotation.KeyUse) string {
	if u.LastUsed == nil {
		return "never used"
	}
	return fmt.Sprintf("last used %s by %s in %s", stamp(*u.LastUsed), u.Service, u.Region)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Second).String()
	}
}
