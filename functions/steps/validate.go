package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// executionStatus tells whether a Step Functions execution is still running
// (for the lock: a dead run's lock is taken over, a live one's is not).
type executionStatus interface {
	Running(ctx context.Context, executionARN string) (bool, error)
}

// Validate is the Validate state: it checks the input (I7), the user and its
// keys (I3), that the lock is free (I6), and plans the run, writing nothing.
// Its kind "lock" is the TakeLock state, after every target's preflight
// passed: the same checks again, then the record is made and the lock taken.
type Validate struct {
	// Schema holds the input to its JSON Schema: subset.Check (package
	// rotation/inputschema/subset, held to the JSON Schema library by a
	// differential test), given by the Validate Lambda's main.
	Schema     rotation.SchemaCheck
	Keys       keyStore
	Records    recordStore
	Executions executionStatus
	Makers     keyMakers // who made a dead run's unrecorded keys (CloudTrail)
	// Requests verifies the signed request requestrun put into the input
	// (kms:VerifyMac on the stack's HMAC key).
	Requests macVerifier
	// Accounts reaches a member account's IAM and CloudTrail (issue 15):
	// for an input whose account is a member's, Keys and Makers are its.
	Accounts accounts
}

// ValidateInput is Validate's event: the TaskInput every task gets, whose
// data keeps the input raw, so the schema sees it as it was sent.
type ValidateInput = rotation.TaskInput

// Run is the Lambda's handler: Check, or with kind "lock", Lock.
func (v *Validate) Run(ctx context.Context, ev ValidateInput) (rotation.Plan, error) {
	if ev.Kind == "lock" {
		return v.Lock(ctx, ev)
	}
	return v.Check(ctx, ev)
}

// Lock is the TakeLock state: Check again (the lock may have been taken since
// the preflight), then make the record and claim the lock. The first write
// of a run.
func (v *Validate) Lock(ctx context.Context, ev ValidateInput) (rotation.Plan, error) {
	plan, l, err := v.check(ctx, ev)
	if err != nil || plan.Skip || plan.DryRun {
		return plan, err
	}
	if _, err := v.Records.Ensure(ctx, plan.UserKey()); err != nil {
		return rotation.Plan{}, err
	}
	if plan.ResumeVersionID != "" && !l.mine {
		if err := v.Records.KeepForResume(ctx, plan.UserKey(), plan.ResumeVersionID); err != nil {
			return rotation.Plan{}, err
		}
	}
	if l.mine {
		plan.LockVersionID = l.holderID // a retry of this very step
	} else if plan.LockVersionID, err = v.Records.Claim(ctx, plan.UserKey(), ev.Data.Execution, plan.OldKeyID, l.takeoverFrom, l.inherit...); err != nil {
		return rotation.Plan{}, err
	}
	return plan, nil
}

// lockState is what Check found of the lock, for Lock.
type lockState struct {
	mine                   bool // held by this execution already
	holderID, takeoverFrom string
	inherit                []record.Intent // the dead holder's intents, carried into our claim
}

// Check plans the rotation, read-only: the input, the user, its keys, that
// the lock is free or its holder dead.
func (v *Validate) Check(ctx context.Context, ev ValidateInput) (rotation.Plan, error) {
	plan, _, err := v.check(ctx, ev)
	return plan, err
}

func (v *Validate) check(ctx context.Context, ev ValidateInput) (rotation.Plan, lockState, error) {
	if v.Schema == nil {
		return rotation.Plan{}, lockState{}, &rotation.Internal{Reason: "validate: no input schema (steps.Validate.Schema)"}
	}
	in, err := rotation.ParseInput(ev.Data.Input, v.Schema)
	if err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	// Who asked, verified before anything else is read: a run that needs
	// approval without a signed request, or with one that does not verify,
	// is refused here, before any change (RequestUnsigned, RequestForged).
	requestedBy, err := requester(ctx, v.Requests, ev, in, in.RequireApproval && !in.DryRun)
	if err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	// The account (issue 15): a member's is reached through its member
	// role, assumed here, before the user is read and before the lock: a
	// role that cannot be assumed is MemberAccessDenied, nothing changed.
	// The record and the lock stay in the keyrotator account, named with
	// the account.
	account, err := memberAccount(ctx, v.Accounts, in)
	if err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	if account != "" {
		c, err := memberClients(ctx, v.Accounts, "validate", account, in.User, "keys", "makers")
		if err != nil {
			return rotation.Plan{}, lockState{}, err
		}
		member := *v
		member.Keys, member.Makers = c.Keys, c.Makers
		v = &member
	}
	return v.plan(ctx, ev, in, account, requestedBy)
}

// plan is check's work once the input is parsed and the account's
// adapters are v's.
func (v *Validate) plan(ctx context.Context, ev ValidateInput, in rotation.Input, account, requestedBy string) (rotation.Plan, lockState, error) {
	key := rotation.UserKey(account, in.User)
	if _, err := v.Keys.UserARN(ctx, in.User); err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	keys, err := v.Keys.List(ctx, in.User)
	if err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	holder, held, err := v.Records.Staged(ctx, key, record.Pending)
	if err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	me := ev.Data.Execution
	takeoverFrom := ""
	if held && holder.Execution != me {
		running, err := v.Executions.Running(ctx, holder.Execution)
		if err != nil {
			return rotation.Plan{}, lockState{}, err
		}
		if running {
			return rotation.Plan{}, lockState{}, &rotation.RotationInProgress{User: rotation.UserIn(account, in.User), Execution: holder.Execution}
		}
		takeoverFrom = holder.ID
	}

	plan := rotation.Plan{
		User: in.User, Account: account, Record: v.Records.Name(key), DryRun: in.DryRun,
		RequireApproval: in.RequireApproval && !in.DryRun, ApprovalTimeoutSecs: in.ApprovalTimeoutHours * 3600,
		Reason: in.Reason, RequestedBy: requestedBy,
		WaitSeconds: in.WaitDays * 86400, GraceSeconds: in.GraceDays * 86400, VerifyAttempts: in.VerifyAttempts,
		Targets: in.Targets, StartedAt: ev.Now,
	}
	if plan.RequireApproval { // issue 14: who may approve, for Approve and VerifyApproval
		plan.Approvers, plan.MinApprovals = in.Approvers, in.MinApprovals
	}
	mine := held && holder.Execution == me
	var inherit []record.Intent
	if (takeoverFrom != "" || mine) && len(holder.Intents) > 0 {
		// A dead run's intent accounts for the keys it made but never
		// recorded: its orphans, which CreateKey deletes (I5). They are not
		// counted against the two-key quota; every other key is (I3). A key
		// CloudTrail does not attribute yet is not counted either: CreateKey
		// deletes it once CloudTrail names the dead attempt its maker, waits
		// for CloudTrail (OrphanUnconfirmed) until then, and counts it as
		// someone else's if CloudTrail names anyone else. A retry of
		// TakeLock whose takeover claim landed (its answer lost) finds the
		// lock its own, carrying those intents: the same.
		orphans, unconfirmed, err := findOrphans(ctx, v.Keys, v.Records, v.Makers, key, in.User, keys, holder.Intents, holder.OldKeyID)
		if err != nil {
			return rotation.Plan{}, lockState{}, err
		}
		keys = slices.DeleteFunc(keys, func(k iamkeys.Key) bool {
			_, orphan := orphans[k.ID]
			_, maybe := unconfirmed[k.ID]
			if orphan || maybe {
				plan.OrphanKeyIDs = append(plan.OrphanKeyIDs, k.ID)
			}
			return orphan || maybe
		})
		inherit = holder.Intents
	}
	var old iamkeys.Key
	if resume, other, ok := resumable(holder, takeoverFrom, keys); ok {
		// A dead run made and recorded a key that is still active: finish its job with it.
		plan.ResumeKeyID, plan.ResumeVersionID, old = resume.ID, holder.ID, other
	} else if kept, other, ok, err := v.keptForResume(ctx, key, holder, mine, keys); err != nil {
		return rotation.Plan{}, lockState{}, err
	} else if ok {
		plan.ResumeKeyID, plan.ResumeVersionID, old = kept.AccessKeyID, kept.ID, other
	} else if in.Issue {
		// Issuance: a first key, no old key. (A dead issue's key found
		// above is resumed only as an issue: see resumable.)
		if plan.RemoveInactiveKeyID, err = pickIssue(in, keys); err != nil {
			return rotation.Plan{}, lockState{}, err
		}
	} else if old, plan.RemoveInactiveKeyID, err = pickOld(in, keys); err != nil {
		return rotation.Plan{}, lockState{}, err
	}
	if plan.Issue = in.Issue; plan.Issue && old.ID != "" {
		// A dead rotation's key found above: that run had an old key, so
		// this is no issue; resume it as the rotation it is (leave out issue).
		return rotation.Plan{}, lockState{}, &rotation.InvalidInput{Field: "issue", Reason: fmt.Sprintf("IAM user %q is being rotated (key %s to %s, by %s, which did not finish): re-run it without issue to finish that rotation", in.User, old.ID, plan.ResumeKeyID, holder.Execution)}
	}
	if !plan.Issue && plan.ResumeKeyID != "" && old.ID == "" {
		// A dead issue's key: this is no rotation (there is no old key).
		return rotation.Plan{}, lockState{}, &rotation.InvalidInput{Field: "issue", Reason: fmt.Sprintf("IAM user %q is being issued its first key %s, by %s, which did not finish: re-run it with \"issue\": true to finish that issue", in.User, plan.ResumeKeyID, holder.Execution)}
	}
	plan.OldKeyID, plan.OldKeyCreated = old.ID, old.Created
	if !plan.Issue {
		plan.OldKeyAgeDays = int(ev.Now.Sub(old.Created) / day)
		// IAM.3 deadline (issue 15): the old key's, against this run's waits.
		// Warned about in the plan and every alert, never refused: refusing
		// would leave the key active longer still (docs/design.md). An issue
		// has no old key, so no deadline.
		deadline := rotation.PlanDeadline(old.Created, ev.Now, in)
		plan.Deadline = &deadline
	}
	if in.Trigger == "schedule" && !plan.Issue && plan.OldKeyAgeDays < in.MinKeyAgeDays && plan.ResumeKeyID == "" {
		plan.Skip = true
		plan.SkipReason = fmt.Sprintf("key %s is %d days old, younger than minKeyAgeDays %d", old.ID, plan.OldKeyAgeDays, in.MinKeyAgeDays)
		return plan, lockState{}, nil
	}
	plan.Changes = changes(plan)
	return plan, lockState{mine: mine, holderID: holder.ID, takeoverFrom: takeoverFrom, inherit: inherit}, nil
}

// keptForResume is, for a retry of TakeLock whose takeover claim landed
// (its answer lost, or the invocation timed out after it), the dead run's
// key version the first attempt chose to resume: KeepForResume labelled it
// before the claim moved the lock. It counts only while it is another
// run's, its key is active beside the claim's old key, and the claim's old
// key is the other one: so a label left by an earlier rotation (whose key
// is the old key now) is never taken for one.
func (v *Validate) keptForResume(ctx context.Context, recordKey string, claim record.Version, mine bool, keys []iamkeys.Key) (kept record.Version, other iamkeys.Key, ok bool, err error) {
	if !mine || claim.AccessKeyID != "" || (len(keys) != 2 && claim.OldKeyID != "") {
		return kept, other, false, nil
	}
	kept, ok, err = v.Records.Staged(ctx, recordKey, record.Resume)
	if err != nil || !ok || kept.Execution == claim.Execution || kept.AccessKeyID == "" || kept.AccessKeyID == claim.OldKeyID {
		return record.Version{}, other, false, err
	}
	if claim.OldKeyID == "" {
		// Issuance: the claim is an issue's, and the kept version a dead
		// issue's key (it names no old key either), still the user's one
		// active key.
		if _, _, resume := resumable(kept, kept.ID, keys); !resume || kept.OldKeyID != "" {
			return record.Version{}, other, false, nil
		}
		return kept, iamkeys.Key{}, true, nil
	}
	r := slices.IndexFunc(keys, func(k iamkeys.Key) bool { return k.ID == kept.AccessKeyID })
	o := slices.IndexFunc(keys, func(k iamkeys.Key) bool { return k.ID == claim.OldKeyID })
	if r < 0 || o < 0 || !keys[r].Active() {
		return record.Version{}, other, false, nil
	}
	return kept, keys[o], true, nil
}

// resumable finds a dead run's recorded key that IAM still has active, and
// the other key: the one that run was retiring. A dead issue (its claim
// names no old key) retired none: other is then empty, whatever other key
// the user has (an inactive key an issue leaves as it is).
func resumable(holder record.Version, takeoverFrom string, keys []iamkeys.Key) (resume, other iamkeys.Key, ok bool) {
	if takeoverFrom == "" || holder.AccessKeyID == "" {
		return iamkeys.Key{}, iamkeys.Key{}, false
	}
	if holder.OldKeyID == "" { // Issuance: a dead issue's key
		i := slices.IndexFunc(keys, func(k iamkeys.Key) bool { return k.ID == holder.AccessKeyID && k.Active() })
		if i < 0 || slices.ContainsFunc(keys, func(k iamkeys.Key) bool { return k.ID != holder.AccessKeyID && k.Active() }) {
			return iamkeys.Key{}, iamkeys.Key{}, false
		}
		return keys[i], iamkeys.Key{}, true
	}
	if len(keys) != 2 {
		return iamkeys.Key{}, iamkeys.Key{}, false
	}
	for i, k := range keys {
		if k.ID == holder.AccessKeyID && k.Active() {
			return k, keys[1-i], true
		}
	}
	return iamkeys.Key{}, iamkeys.Key{}, false
}

// pickIssue checks that the user has room for a first key and no active
// key (Issuance): none, or one inactive key, which stays unless the input
// allows removing it (then its id is returned). Two keys are refused (I3):
// an issue never removes a key to make room; an active key is a rotation's.
func pickIssue(in rotation.Input, keys []iamkeys.Key) (removeInactive string, err error) {
	if len(keys) >= 2 {
		limit := keyLimit(in.User, keys, "")
		limit.Issue = true
		return "", limit
	}
	if len(keys) == 0 {
		return "", nil
	}
	if k := keys[0]; k.Active() {
		return "", &rotation.InvalidInput{Field: "issue", Reason: fmt.Sprintf("IAM user %q has an active access key, %s: nothing to issue; rotate it (leave out issue)", in.User, k.ID)}
	}
	if in.AllowRemoveInactiveKey {
		return keys[0].ID, nil
	}
	return "", nil
}

// pickOld finds the key to retire (I3: two keys are refused unless one is
// inactive and its removal allowed; an active key is never removed).
func pickOld(in rotation.Input, keys []iamkeys.Key) (old iamkeys.Key, removeInactive string, err error) {
	switch len(keys) {
	case 0:
		return old, "", &rotation.InvalidInput{Field: "user", Reason: fmt.Sprintf("IAM user %q has no access key to rotate; to give it a first key, ask for an issue (\"issue\": true, keyrotator start --issue)", in.User)}
	case 1:
		if !keys[0].Active() {
			return old, "", &rotation.InvalidInput{Field: "user", Reason: fmt.Sprintf("the only key of IAM user %q, %s, is inactive: nothing in service to rotate; to give it a new key, ask for an issue (\"issue\": true, keyrotator start --issue)", in.User, keys[0].ID)}
		}
		return keys[0], "", nil
	}
	var active, inactive []iamkeys.Key
	for _, k := range keys {
		if k.Active() {
			active = append(active, k)
		} else {
			inactive = append(inactive, k)
		}
	}
	if in.AllowRemoveInactiveKey && len(active) == 1 && len(inactive) == 1 {
		return active[0], inactive[0].ID, nil
	}
	return old, "", keyLimit(in.User, keys, "")
}

// changes says, in order, every change the run will make (a dry run's answer).
func changes(p rotation.Plan) []string {
	var c []string
	if p.Account != "" {
		c = append(c, fmt.Sprintf("act in account %s through its member role (sts:AssumeRole with the external id, a session policy of each step's own calls on user %s): its IAM, CloudTrail and application secrets; the record %s, the lock and the alerts stay in this stack's account", p.Account, p.User, p.Record))
	}
	if p.RemoveInactiveKeyID != "" {
		c = append(c, fmt.Sprintf("delete the inactive access key %s of IAM user %s to make room (allowRemoveInactiveKey)", p.RemoveInactiveKeyID, p.Who()))
	}
	for _, id := range p.OrphanKeyIDs {
		c = append(c, fmt.Sprintf("delete access key %s of IAM user %s once CloudTrail shows a dead run made it: an orphan it never recorded (its intent in %s accounts for it), so nobody holds its secret", id, p.Who(), p.Record))
	}
	if p.RequireApproval {
		c = append(c, fmt.Sprintf(approvalStep+" on the alert topic and wait up to %d hours for %d distinct approver(s) of %s to approve through answerapproval (keyrotator approve); nothing changes before, and the signed approval is verified before a key is made",
			p.ApprovalTimeoutSecs/3600, max(p.MinApprovals, 1), strings.Join(p.Approvers, ", ")))
	}
	if p.Issue {
		return append(c, issueChanges(p)...)
	}
	if p.ResumeKeyID != "" {
		c = append(c, fmt.Sprintf("reuse access key %s, made by an earlier run that did not finish, kept in %s", p.ResumeKeyID, p.Record))
	} else {
		c = append(c, fmt.Sprintf("create a new access key for IAM user %s, prove it through STS, and keep it in the secret %s (AWSPENDING)", p.Who(), p.Record))
	}
	for _, t := range p.Targets {
		if k, ok := rotation.KindOf(t.Type); ok && k.Change != nil {
			c = append(c, fmt.Sprintf("target %s: %s", t.Name, k.Change(t, p.OldKeyID)))
		}
	}
	c = append(c,
		fmt.Sprintf("make the new key AWSCURRENT in %s (the cut-over)", p.Record),
		fmt.Sprintf("wait %s, then check through IAM last-used data and CloudTrail that key %s is no longer used, up to %d times", days(p.WaitSeconds), p.OldKeyID, p.VerifyAttempts),
		fmt.Sprintf("deactivate key %s, wait %s, then delete it", p.OldKeyID, days(p.GraceSeconds)),
	)
	return c
}

// days says a whole number of days of seconds, in words.
func days(seconds int) string {
	if n := seconds / 86400; n != 1 {
		return fmt.Sprintf("%d days", n)
	}
	return "1 day"
}

// issueChanges are an issue's changes after the approval (Issuance): a
// first key, every target filled, the cut-over, and nothing retired.
func issueChanges(p rotation.Plan) []string {
	var c []string
	if p.ResumeKeyID != "" {
		c = append(c, fmt.Sprintf("reuse access key %s, issued by an earlier run that did not finish, kept in %s", p.ResumeKeyID, p.Record))
	} else {
		c = append(c, fmt.Sprintf("issue a new access key for IAM user %s (it has no active key), prove it through STS, and keep it in the secret %s (AWSPENDING)", p.Who(), p.Record))
	}
	for _, t := range p.Targets {
		if k, ok := rotation.KindOf(t.Type); ok && k.Issue != nil {
			c = append(c, fmt.Sprintf("target %s: %s", t.Name, k.Issue(t)))
		}
	}
	return append(c,
		fmt.Sprintf("make the new key AWSCURRENT in %s and release the lock; nothing to verify, deactivate or delete: no key is retired", p.Record))
}
