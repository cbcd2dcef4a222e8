package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// publisher is the alert topic (*alerts.Topic).
type publisher interface {
	Publish(ctx context.Context, subject, message string) (string, error)
}

// Notify is the NotifySuccess, AlertStillInUse, NotifyFailure and Approve
// states: it tells people what happened in words they can act on at 3 am
// (I4), every message in one shape (Alert).
type Notify struct {
	Topic   publisher
	Runbook string // base URL of docs/runbook.md; sections are #<anchor>
	// Records keeps the approval request (Approve) in the run's record and
	// tells a failure alert whether a rejection is the verified one.
	Records approvalRecords
	// ApprovalURL is answerapproval's function URL, for the approval request.
	ApprovalURL string
	// Owners reads the user's keyrotator:owner tag, and OwnerTopics are the
	// owner topics the config allows, each with its publisher (issue 15;
	// docs/design.md §8): an alert goes to the owner's topic too when the
	// tag names one of them. Nil: no owner copies.
	Owners      owners
	OwnerTopics map[string]Publisher
	// Seals verifies the record's seal over its answers (kms:VerifyMac):
	// a rejection is said verified only when answerapproval sealed it.
	Seals verifier
	// Accounts reaches a member account's owner tags (issue 15); the
	// alerts themselves go to this stack's topics.
	Accounts accounts
}

// Publisher sends one message to an SNS topic (alerts.Topic).
type Publisher = publisher

// owners reads a user's keyrotator:owner tag (audit.Owners).
type owners interface {
	Owner(ctx context.Context, user string) (audit.Owner, bool, error)
}

// approvalRecords is the record as the approval sees it (*record.Store).
type approvalRecords interface {
	PutApprovalRequest(ctx context.Context, user, execution string, req rotation.ApprovalRequest) (string, error)
	PendingApproval(ctx context.Context, user, execution string) (rotation.ApprovalRequest, bool, error)
}

// NotifyInput is Notify's event: the TaskInput every task gets (Approve's
// with its token). The input stays raw in it: a failure alert must be sent
// even for input that never parsed.
type NotifyInput = rotation.TaskInput

// NotifyResult is what the state machine keeps: the Fail state takes the
// execution's error and cause from it.
type NotifyResult = rotation.Notice

// Alert is every SNS message keyrotator sends, in one shape: a subject that
// fits a phone notification, then what happened, what has already changed,
// what is safe, the next commands, the runbook section and the console
// link; and the same facts as JSON for machines, after the text.
type Alert struct {
	Kind string `json:"kind"` // approval, success, warning, failure
	User string `json:"user"`
	// Account is the member account the user is in (issue 15); "" for the
	// stack's own.
	Account   string       `json:"account,omitempty"`
	State     string       `json:"state,omitempty"`
	Error     string       `json:"error,omitempty"`
	Subject   string       `json:"subject"`
	Happened  string       `json:"happened"`
	Cause     string       `json:"cause,omitempty"`
	Changed   []string     `json:"changed"`
	Targets   []TargetHold `json:"targets"`
	OldKeyID  string       `json:"oldKeyId,omitempty"`
	NewKeyID  string       `json:"newKeyId,omitempty"`
	Safe      string       `json:"safe"`
	Next      []string     `json:"next"`
	Runbook   string       `json:"runbook"`
	Console   string       `json:"console,omitempty"`
	Execution string       `json:"execution"`
	// Approval requests only: who asked, why, who may approve and how
	// many, where, until when. Never the task token: it is kept in the
	// run's record, for answerapproval alone (issue 14).
	RequestedBy  string    `json:"requestedBy,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
	Approvers    []string  `json:"approvers,omitempty"`
	MinApprovals int       `json:"minApprovals,omitempty"`
	ApprovalURL  string    `json:"approvalUrl,omitempty"`
	// ApprovedBy are the verified approvers of a run that passed
	// VerifyApproval (its $.approval; never the raw answer), in order.
	ApprovedBy []string `json:"approvedBy,omitempty"`
	// RejectedBy is the verified rejector of an ApprovalRejected failure:
	// set only when the run's record holds that rejection.
	RejectedBy string `json:"rejectedBy,omitempty"`
	// Deadline is the old key's IAM.3 deadline against the plan (issue 15):
	// on every alert once Validate has planned.
	Deadline *rotation.Deadline `json:"deadline,omitempty"`
	// Owner is the owner topic this alert also went to; OwnerNote why it
	// did not, when the user has a keyrotator:owner tag (issue 15).
	Owner     string   `json:"owner,omitempty"`
	OwnerNote string   `json:"ownerNote,omitempty"`
	approvals []string // the text's lines for ApprovedBy: who, when, comment
}

// TargetHold says which key a target holds, as far as the run knows.
type TargetHold struct {
	Target string `json:"target"`
	Type   string `json:"type"`
	KeyID  string `json:"keyId,omitempty"` // "" while not confirmed
	Status string `json:"status"`          // new key, not confirmed (old or new)
}

// approvalStep starts the plan's sentence for the Approve state (validate.go).
const approvalStep = "ask for approval"

// JSONMarker starts the machine-readable block of a message.
const JSONMarker = "--- keyrotator alert (JSON) ---"

// Run composes and publishes one notice.
func (n *Notify) Run(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	var a Alert
	var res NotifyResult
	switch in.Kind {
	case "success":
		a = n.success(in)
	case "warning":
		a = n.warning(in)
	case "approval":
		a = n.approval(in)
		if err := n.keepRequest(ctx, in, a); err != nil {
			return NotifyResult{}, err
		}
	default:
		a = n.failure(in)
		n.rejection(ctx, in, &a)
		res.Error, res.Cause = a.Error, a.Cause
	}
	owner, note := n.ownerTopic(ctx, a)
	a.Owner, a.OwnerNote = owner, note
	id, err := n.Topic.Publish(ctx, a.Subject, a.Text())
	if err != nil {
		return NotifyResult{}, err
	}
	res.MessageID, res.OwnerNote = id, note
	if p := n.OwnerTopics[owner]; p != nil {
		// Best effort: the alert topic has it; a retry would send that twice.
		if oid, err := p.Publish(ctx, a.Subject, a.Text()); err != nil {
			res.OwnerNote = "not sent to the owner's topic: " + err.Error()
		} else {
			res.OwnerMessageID = oid
		}
	}
	return res, nil
}

// ownerTopic is the topic an alert also goes to: the user's
// keyrotator:owner tag, when it names a topic the config allows; else ""
// and, when there is a tag, why not. Approval requests stay on the alert
// topic: whoever may approve reads it.
func (n *Notify) ownerTopic(ctx context.Context, a Alert) (topic, note string) {
	if n.Owners == nil || a.Kind == "approval" || a.User == "" {
		return "", ""
	}
	owners := n.Owners
	if a.Account != "" {
		if a.Error == "MemberAccessDenied" {
			return "", "owner not read: the member role of account " + a.Account + " could not be assumed"
		}
		c, err := memberClients(ctx, n.Accounts, "notify", a.Account, a.User, "owners")
		if err != nil {
			return "", "owner not read: " + err.Error()
		}
		owners = c.Owners
	}
	o, ok, err := owners.Owner(ctx, a.User)
	switch {
	case err != nil:
		return "", "owner not read: " + err.Error()
	case !ok:
		return "", ""
	case o.TopicARN == "":
		return "", "owner " + o.Email + " (an e-mail address: subscribing it to a topic is the owner's own step)"
	case n.OwnerTopics[o.TopicARN] == nil:
		return "", "owner topic " + o.TopicARN + " is not in the config's ownerTopics: not sent there"
	}
	return o.TopicARN, ""
}

// Text is the message body: for people first, then the JSON block.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.Happened + "\n")
	if a.State != "" {
		fmt.Fprintf(&b, "\nUser:   %s\nState:  %s\n", a.who(), a.State)
		if a.Error != "" {
			fmt.Fprintf(&b, "Error:  %s\nCause:  %s\n", a.Error, a.Cause)
		}
	}
	if a.RequestedBy != "" || a.Reason != "" {
		fmt.Fprintf(&b, "\nAsked by: %s\nReason:   %s\n", orUnknown(a.RequestedBy), orUnknown(a.Reason))
	}
	for _, line := range a.approvals {
		fmt.Fprintf(&b, "Approved: %s (verified by VerifyApproval)\n", line)
	}
	if len(a.Approvers) > 0 {
		fmt.Fprintf(&b, "Needs:    %d approval(s) from distinct principals of: %s (the requester never counts)\n", a.MinApprovals, strings.Join(a.Approvers, ", "))
	}
	if !a.Expires.IsZero() {
		fmt.Fprintf(&b, "By:       %s\n", stamp(a.Expires))
	}
	if a.Deadline != nil {
		fmt.Fprintf(&b, "\nOld key %s: %s\n", a.OldKeyID, a.Deadline)
	}
	if a.Owner != "" || a.OwnerNote != "" {
		fmt.Fprintf(&b, "\nOwner: %s%s\n", a.Owner, a.OwnerNote)
	}
	b.WriteString("\nWhat has changed:\n")
	for _, c := range a.Changed {
		fmt.Fprintf(&b, "  - %s\n", c)
	}
	fmt.Fprintf(&b, "\nWhat is safe: %s\n\nNext:\n", a.Safe)
	for _, c := range a.Next {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	fmt.Fprintf(&b, "\nRunbook:   %s\n", a.Runbook)
	if a.Console != "" {
		fmt.Fprintf(&b, "Console:   %s\n", a.Console)
	}
	fmt.Fprintf(&b, "Execution: %s\n\n%s\n", a.Execution, JSONMarker)
	j, _ := json.MarshalIndent(a, "", "  ")
	b.Write(j)
	b.WriteString("\n")
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(not given)"
	}
	return s
}

// base fills what every alert says: the user, the keys, which target holds
// which key, the execution and its console link.
func (n *Notify) base(in NotifyInput, kind, anchor string) Alert {
	d := in.Data
	a := Alert{Kind: kind, User: user(in), Account: account(in), Execution: d.Execution, Console: consoleLink(d.Execution), Runbook: n.runbook() + "#" + anchor}
	if d.Plan != nil {
		a.OldKeyID = d.Plan.OldKeyID
		a.RequestedBy, a.Reason = d.Plan.RequestedBy, d.Plan.Reason
		a.Deadline = d.Plan.Deadline
	}
	if d.Key != nil {
		a.NewKeyID = d.Key.KeyID
	}
	if d.Approval != nil {
		for _, e := range d.Approval.Approvals {
			a.ApprovedBy = append(a.ApprovedBy, rotation.Printable(e.By, 200))
			line := fmt.Sprintf("%s at %s", rotation.Printable(e.By, 200), stamp(e.At))
			if c := rotation.Printable(e.Comment, 300); c != "" {
				line += fmt.Sprintf(" (%q)", c)
			}
			a.approvals = append(a.approvals, line)
		}
	}
	a.Targets = holds(in)
	a.Changed = changed(in)
	return a
}

func (n *Notify) success(in NotifyInput) Alert {
	d := in.Data
	if issuing(in) {
		return n.issued(in)
	}
	a := n.base(in, "success", "rotated")
	a.Subject = subject(a.who(), "key rotated")
	a.Happened = fmt.Sprintf("keyrotator rotated the access key of IAM user %s: old key %s deleted, new key %s active in every target.", a.who(), a.OldKeyID, a.NewKeyID)
	if d.Verify != nil {
		a.Changed = append(a.Changed, "verification: "+d.Verify.Evidence)
	}
	if d.Cleanup != nil {
		for _, line := range d.Cleanup.Targets {
			a.Changed = append(a.Changed, "cleanup: "+line)
		}
	}
	a.Safe = "everything: the rotation is complete and the new key works in every target keyrotator knows of."
	a.Next = []string{"keyrotator status --user " + rotation.UserKey(a.Account, a.User) + "   # keys, targets, the next scheduled run"}
	return a
}

// issued is an issue's success (Issuance): a first key, every target
// filled, the record's AWSCURRENT; nothing was retired.
func (n *Notify) issued(in NotifyInput) Alert {
	d := in.Data
	a := n.base(in, "success", "issued")
	a.Subject = subject(a.who(), "key issued")
	a.Happened = fmt.Sprintf("keyrotator issued an access key to IAM user %s: new key %s, active in every target and AWSCURRENT in %s. There was no old key to retire.", a.who(), a.NewKeyID, recordOf(in))
	a.Safe = "everything: the new key works in every target keyrotator knows of; no other key of the user was touched."
	a.Next = []string{"keyrotator status --user " + rotation.UserKey(a.Account, a.User) + "   # keys, targets, the next scheduled run"}
	if d.Plan != nil && d.Plan.RemoveInactiveKeyID != "" {
		a.Safe = fmt.Sprintf("everything: the new key works in every target keyrotator knows of; the inactive key %s was deleted, as allowRemoveInactiveKey asked.", d.Plan.RemoveInactiveKeyID)
	}
	return a
}

// issuing reports whether the run issues a first key rather than rotating
// (Issuance): the plan says so, or, before Validate planned (a refused
// input), the input asks for it.
func issuing(in NotifyInput) bool {
	if in.Data.Plan != nil {
		return in.Data.Plan.Issue
	}
	b, _ := sentField[bool](in, "issue")
	return b
}

// sentField is the input's field name as it was sent, when it is a T: an
// alert's words before Validate planned (a refused input) come from it.
func sentField[T any](in NotifyInput, name string) (T, bool) {
	var fields map[string]any
	_ = json.Unmarshal(in.Data.Input, &fields)
	v, ok := fields[name].(T)
	return v, ok
}

func (n *Notify) warning(in NotifyInput) Alert {
	d := in.Data
	a := n.base(in, "warning", "still-in-use")
	a.Subject = subject(a.who(), "old key still in use, waiting again")
	a.State = "VerifyOldKeyUnused"
	a.Happened = fmt.Sprintf("The old access key of IAM user %s still looks in use after the cut-over; keyrotator changed nothing and will check again.", a.who())
	var waiting []string
	if v := d.Verify; v != nil {
		if waiting = pending(v.Confirmations); len(waiting) > 0 {
			a.Subject = subject(a.who(), "cut-over not confirmed yet, waiting again")
			a.Happened = fmt.Sprintf("keyrotator has not retired the old access key of IAM user %s: target %s took the new key but does not show which key it holds, and IAM has not yet shown the new key used by %s; keyrotator changed nothing and will check again.",
				a.who(), strings.Join(waiting, ", "), v.Confirmations[0].UsedBy)
		}
		a.Cause = v.Evidence
		a.Happened += fmt.Sprintf(" Evidence: %s. Freshness: %s. %d more check(s) are left; after the last one the run fails without touching the old key.", v.Evidence, v.Freshness, v.AttemptsLeft)
	}
	a.Safe = "both keys are active: every consumer keeps working with whichever key it holds."
	a.Next = []string{
		"keyrotator status --user " + rotation.UserKey(a.Account, a.User) + "   # where the old key was last used",
		"# give the consumer the evidence names the new key (AWSCURRENT of " + rotation.RecordName(rotation.UserKey(a.Account, a.User)) + "); the run checks again by itself",
	}
	if len(waiting) > 0 {
		a.Next = append(a.Next, "# an unconfirmed Auth0 tenant: make it send a mail (Auth0 Dashboard → Branding → Email Provider → Send Test Email); IAM shows the new key used by ses up to hours later, and the run checks again by itself")
	}
	a.Next = append(a.Next, "keyrotator watch "+d.Execution)
	return a
}

func (n *Notify) approval(in NotifyInput) Alert {
	d := in.Data
	a := n.base(in, "approval", "approval-request")
	if d.Plan != nil {
		a.Approvers, a.MinApprovals = d.Plan.Approvers, max(d.Plan.MinApprovals, 1)
	}
	a.ApprovalURL = n.ApprovalURL
	a.Subject = subject(a.who(), "approve key rotation?")
	a.Happened = fmt.Sprintf("A rotation of the access key of IAM user %s waits for your approval; nothing has changed yet.", a.who())
	if issuing(in) {
		a.Subject = subject(a.who(), "approve key issue?")
		a.Happened = fmt.Sprintf("An issue of a new access key to IAM user %s (it has no active key) waits for your approval; nothing has changed yet.", a.who())
	}
	if d.Plan != nil {
		a.Expires = in.Now.Add(time.Duration(d.Plan.ApprovalTimeoutSecs) * time.Second).UTC()
		a.Happened += fmt.Sprintf(" If nobody answers by %s, it ends changing nothing. Approving lets it:", stamp(a.Expires))
		for _, c := range d.Plan.Changes {
			if !strings.HasPrefix(c, approvalStep) { // this very step
				a.Happened += "\n  - " + c
			}
		}
	}
	a.Safe = "nothing has changed: no key is made before someone approves; rejecting or letting it expire leaves everything as it is."
	a.Next = []string{
		"keyrotator approve " + d.Execution + " --comment '<why>'   # with your own AWS credentials: you must be one of the approvers above",
		"keyrotator reject " + d.Execution + " --comment '<why>'",
	}
	if a.ApprovalURL != "" {
		a.Next = append(a.Next, "# or POST {\"execution\":\""+d.Execution+"\",\"decision\":\"approve\",\"comment\":\"<why>\"} to "+a.ApprovalURL+" signed with SigV4 for service lambda (ApproverPolicy)")
	}
	a.Next = append(a.Next, "# an answer sent with aws stepfunctions send-task-success is not signed by keyrotator: it ends the run as ApprovalForged")
	return a
}

// keepRequest writes the approval request into the run's record (the
// version its lock holds): answerapproval reads it there. It keeps the
// task token's digest, not the token: a record version is a secret value,
// and the token is in the execution's history (TaskScheduled), where
// answerapproval reads it and holds it to this digest.
func (n *Notify) keepRequest(ctx context.Context, in NotifyInput, a Alert) error {
	d := in.Data
	if n.Records == nil || d.Plan == nil || in.Token == "" {
		return &rotation.Internal{Reason: "notify approval: no record store, plan or task token to keep the request with"}
	}
	req := rotation.ApprovalRequest{TokenSHA256: rotation.TokenDigest(in.Token), RunStartedAt: d.Plan.StartedAt, Approvers: d.Plan.Approvers, MinApprovals: a.MinApprovals, RequestedBy: d.Plan.RequestedBy, Expires: a.Expires}
	if _, err := n.Records.PutApprovalRequest(ctx, d.Plan.UserKey(), d.Execution, req); err != nil {
		return fmt.Errorf("keep the approval request of %s: %w", d.Execution, err)
	}
	return nil
}

// rejection names the verified rejector of an ApprovalRejected failure: the
// one the run's record holds. A SendTaskFailure ApprovalRejected anyone
// with states:SendTaskFailure sent is harmless (nothing changes) but is
// not said to be verified. A record that cannot be read leaves it unsaid:
// the alert goes out anyway.
func (n *Notify) rejection(ctx context.Context, in NotifyInput, a *Alert) {
	if a.Error != "ApprovalRejected" || n.Records == nil || in.Data.Plan == nil {
		return
	}
	req, ok, err := n.Records.PendingApproval(ctx, in.Data.Plan.UserKey(), in.Data.Execution)
	if err == nil && ok && req.Rejected != nil && n.sealed(ctx, in.Data.Execution, req) {
		// The record's words, not the cause: a raw SendTaskFailure may
		// have reached the token between answerapproval's write and its
		// own answer.
		by, comment := rotation.Printable(req.Rejected.By, 200), rotation.Printable(req.Rejected.Comment, 300)
		a.RejectedBy = by
		a.Cause = fmt.Sprintf("rejected by %s (verified by answerapproval)", by)
		if comment != "" {
			a.Cause += ": " + comment
		}
		a.Happened += fmt.Sprintf(" The rejection is verified: answerapproval authenticated %s (comment: %q).", by, comment)
		return
	}
	a.Happened += " The run's record holds no verified rejection: whoever sent it answered the task token directly (states:SendTaskFailure), not through answerapproval. Nothing changed either way."
}

// sealed says whether answerapproval sealed the request's answers: anyone
// else who may write the record could have put a rejection there. A seal
// that cannot be checked leaves the rejection unverified.
func (n *Notify) sealed(ctx context.Context, execution string, req rotation.ApprovalRequest) bool {
	if n.Seals == nil || req.Seal == "" {
		return false
	}
	ok, err := n.Seals.Verify(ctx, rotation.SealedAnswers(execution, req), req.Seal)
	return err == nil && ok
}

// answeredFailure is the Approve state's error and cause as an alert may
// repeat them. Whoever holds states:SendTaskFailure and reads the task
// token off the execution's history answers it with any error name and
// cause, so neither is keyrotator's word: the name is kept printable and
// bounded; the cause of ApprovalRejected (whose verified words come from
// the record: rejection) and of ApprovalForged (VerifyApproval's error,
// never Approve's) is not repeated at all, only its size and digest; any
// other cause (notify's own failure, a timeout, or a raw answer) is quoted
// as unverified, printable ASCII, bounded.
var errorNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`) })

func answeredFailure(se rotation.StateError) rotation.StateError {
	name := se.Error
	if !errorNameRE().MatchString(name) {
		name = fmt.Sprintf("(an error name of %d bytes that is no plain name)", len(se.Error))
	}
	sum := sha256.Sum256([]byte(se.Cause))
	digest := fmt.Sprintf("%d bytes, sha256 %s: the execution's history holds it", len(se.Cause), hex.EncodeToString(sum[:8]))
	switch name {
	case "ApprovalRejected":
		return rotation.StateError{Error: name, Cause: "not verified: answerapproval recorded no rejection, so the answer's own cause is not repeated (" + digest + ")"}
	case "ApprovalForged":
		return rotation.StateError{Error: name, Cause: "not verified: only VerifyApproval raises ApprovalForged, and this came to the Approve state's task token directly; its cause is not repeated (" + digest + ")"}
	}
	if se.Cause == "" {
		return rotation.StateError{Error: name}
	}
	return rotation.StateError{Error: name, Cause: "unverified (notify's own failure, or whatever answered the Approve state's task token wrote): " + rotation.Printable(causeMessage(se.Cause), 500)}
}

// failure says which user, which state, what error, what changed and what to do.
func (n *Notify) failure(in NotifyInput) Alert {
	d := in.Data
	states := make([]string, 0, len(d.Failure))
	for s := range d.Failure {
		states = append(states, s)
	}
	sort.Strings(states)
	state, se := "(unknown state)", rotation.StateError{Error: "Unknown", Cause: "no failure was recorded"}
	if len(states) > 0 {
		state, se = states[0], d.Failure[states[0]]
	}
	if state == "Approve" {
		se = answeredFailure(se)
	}
	anchor := anchorFor(state, se.Error)
	a := n.base(in, "failure", anchor)
	a.State, a.Error, a.Cause = state, se.Error, causeMessage(se.Cause)
	a.Subject = subject(a.who(), fmt.Sprintf("%s failed: %s", state, se.Error))
	a.Happened = fmt.Sprintf("keyrotator could not rotate the access key of IAM user %s: %s failed with %s.", a.who(), state, se.Error)
	if issuing(in) {
		a.Happened = fmt.Sprintf("keyrotator could not issue an access key to IAM user %s: %s failed with %s.", a.who(), state, se.Error)
		if se.Error == "KeyLimitReached" {
			a.Happened += " The user has two keys: there is no room for a new one, and an issue never removes a key to make room. Nothing was changed."
		}
	}
	switch anchor {
	case "accessdenied":
		a.Happened += " AWS refused a call for want of permission: a grant is missing or a policy denies it. This is not transient, so it was not retried; it fails the same way until the policy changes."
	case "internal":
		a.Happened += " The error is one keyrotator does not recognise (a bug, or an answer it does not expect): not transient, so it was not retried."
	}
	a.Safe = safe(in, state)
	a.Next = nextCommands(in, a, state, se.Error)
	return a
}

// subject is "keyrotator <user>: <what>", ASCII, under 100 characters
// (SNS's limit, and what a phone notification shows): a long user name is
// shortened, what happened never.
func subject(u, what string) string {
	const limit = 99
	s := "keyrotator " + u + ": " + what
	if over := len(s) - limit; over > 0 {
		keep := max(len(u)-over-3, 1)
		s = "keyrotator " + u[:keep] + "...: " + what
	}
	if len(s) > limit {
		s = s[:limit]
	}
	return s
}

// holds is which key each planned target holds, as far as the run knows.
func holds(in NotifyInput) []TargetHold {
	d := in.Data
	out := []TargetHold{}
	if d.Plan == nil {
		return out
	}
	got := byTarget(d.Receipts)
	for _, t := range d.Plan.Targets {
		h := TargetHold{Target: t.Name, Type: t.Type}
		switch r, ok := got[t.Name]; {
		case ok && r.Unconfirmed != nil && !slices.Contains(confirmedTargets(d), t.Name):
			h.KeyID, h.Status = r.NewKeyID, fmt.Sprintf("was given the new key; not confirmed: it does not show which key it holds, until IAM shows the new key used by %s", r.Unconfirmed.UsedBy)
		case ok:
			h.KeyID, h.Status = r.NewKeyID, "holds the new key"
		case d.Key == nil && d.Plan.Issue:
			h.Status = "holds no key of the user's (no new key was made)"
		case d.Key == nil:
			h.KeyID, h.Status = d.Plan.OldKeyID, "holds the old key (no new key was made)"
		case d.Plan.Issue:
			h.Status = fmt.Sprintf("not confirmed: holds no key yet or the new key %s", d.Key.KeyID)
		default:
			h.Status = fmt.Sprintf("not confirmed: holds the old key %s or the new key %s", d.Plan.OldKeyID, d.Key.KeyID)
		}
		out = append(out, h)
	}
	return out
}

func changed(in NotifyInput) []string {
	d := in.Data
	if d.Key == nil {
		out := []string{"nothing: no key was created, every target still holds the key it had"}
		if locked(in) {
			out = append(out, fmt.Sprintf("this run made the record %s and holds its lock (AWSPENDING): a re-run takes the lock over", recordOf(in)))
		}
		if d.Plan != nil {
			for _, id := range d.Plan.OrphanKeyIDs {
				out = append(out, fmt.Sprintf("orphan key %s of a dead run (nobody held its secret) may have been deleted", id))
			}
		}
		return out
	}
	var out []string
	if d.Plan != nil && d.Plan.RemoveInactiveKeyID != "" {
		out = append(out, fmt.Sprintf("the inactive key %s may have been deleted to make room", d.Plan.RemoveInactiveKeyID))
	}
	for _, r := range d.Key.Removed {
		out = append(out, fmt.Sprintf("deleted key %s: %s", r.KeyID, r.Reason))
	}
	out = append(out, fmt.Sprintf("new key %s exists, kept in %s", d.Key.KeyID, recordOf(in)))
	got := byTarget(d.Receipts)
	if d.Plan != nil {
		for _, t := range d.Plan.Targets {
			if r, ok := got[t.Name]; ok {
				out = append(out, fmt.Sprintf("target %s holds the new key %s", t.Name, r.NewKeyID))
				line := r.Summary()
				if r.Unconfirmed != nil && slices.Contains(confirmedTargets(d), t.Name) {
					line = fmt.Sprintf("cut-over confirmed: IAM showed the new key used by %s", r.Unconfirmed.UsedBy)
				}
				if line != "" {
					out = append(out, "  "+line)
				}
			} else if d.Plan.Issue {
				out = append(out, fmt.Sprintf("target %s: not confirmed; it holds no key yet or the new one", t.Name))
			} else {
				out = append(out, fmt.Sprintf("target %s: not confirmed; it holds the old key %s or the new one", t.Name, d.Plan.OldKeyID))
			}
		}
	}
	if d.Promote != nil {
		out = append(out, fmt.Sprintf("the new key is AWSCURRENT since the cut-over at %s", stamp(d.Promote.At)))
	}
	switch {
	case d.Retire != nil:
		out = append(out, fmt.Sprintf("old key %s: %s", d.Retire.KeyID, d.Retire.Status))
	case d.Plan != nil && d.Plan.Issue:
		out = append(out, "no old key: an issue retires none")
	case d.Plan != nil:
		out = append(out, fmt.Sprintf("old key %s is still active: both keys work, nothing is broken", d.Plan.OldKeyID))
	}
	return out
}

// safe says what on-call may rely on, by how far the run got.
func safe(in NotifyInput, state string) string {
	d := in.Data
	switch {
	case state == "CleanupTargets":
		return "the rotation itself is done: the old key is deleted and every target holds the new one; only the clean-up the cause names is left."
	case d.Retire != nil && d.Retire.Status == "Deleted":
		return "the old key is deleted; every target reported the new key before it went."
	case d.Retire != nil:
		return fmt.Sprintf("the old key %s is inactive, not deleted: `aws iam update-access-key --user-name %s --access-key-id %s --status Active`%s brings it back at once if anything broke.", d.Retire.KeyID, user(in), d.Retire.KeyID, inAccount(account(in)))
	case d.Key == nil:
		return "no key was made: every target still holds the key it had; nothing is urgent."
	case issuing(in):
		return "no key was retired: the new key is the user's only active one, kept in " + recordOf(in) + "; a target not yet given it works no worse than before. A re-run resumes it."
	default:
		return "both keys are active: every consumer keeps working with whichever key it holds; nothing is urgent."
	}
}

// locked reports whether the run took its lock (TakeLock's plan has the claim).
func locked(in NotifyInput) bool { return in.Data.Plan != nil && in.Data.Plan.LockVersionID != "" }

// rerunComment is what a re-run takes over from this run, as its data shows.
func rerunComment(in NotifyInput) string {
	switch {
	case in.Data.Key != nil && locked(in):
		return "the same input; it reuses the new key and the lock of this run"
	case in.Data.Key != nil:
		return "the same input; it reuses the new key of this run"
	case locked(in):
		return "the same input; it takes over the lock of this run (no key was made)"
	default:
		return "the same input; this run made no key and took no lock"
	}
}

// transient are the errors a failure alert may call transient: what the
// state machine retries.
var transient = []string{"Retryable", "OrphanUnconfirmed", "Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
	"Lambda.TooManyRequestsException", "Sandbox.Timedout", "Runtime.ExitError", "Lambda.Unknown"}

// nextCommands are the commands to run, in order, for this failure.
func nextCommands(in NotifyInput, a Alert, state, errName string) []string {
	rerun := []string{
		"aws stepfunctions describe-execution --execution-arn " + a.Execution + " --query input --output text > run.json",
		"keyrotator start --input run.json --wait   # " + rerunComment(in),
	}
	status := "keyrotator status --user " + rotation.UserKey(a.Account, a.User)
	if state == "CleanupTargets" {
		return []string{status, "# fix by hand what the cause names (see the runbook); do not re-run: a re-run starts a new rotation"}
	}
	switch errName {
	case "AccessDenied":
		return append([]string{"# the cause names the action and resource the " + state + " function's role was refused: grant it in that function's policy (the CDK stack), and check SCPs, permission boundaries and resource policies",
			"# then re-run; until the grant is fixed every re-run fails here the same way", status}, rerun...)
	case "Internal":
		return []string{"# read the cause and the " + state + " function's log (CloudWatch Logs, its one line for this execution); it is a bug or an answer keyrotator does not expect: report it",
			status, "# re-run only once the cause is understood or fixed:", rerun[0], rerun[1]}
	case "InvalidInput":
		return append([]string{"# fix the field the cause names in run.json (or the schedule's input in the config; make synth checks it)"}, rerun...)
	case "UserNotFound":
		return []string{"aws iam get-user --user-name " + a.User + inAccount(a.Account), "# fix the user name in the config or the input; nothing was changed"}
	case "MemberAccessDenied": // issue 15: the member role of the rotation's account could not be assumed
		return append([]string{"# nothing was changed. In account " + a.Account + ", as its administrator: is the member stack there, with this stack's ExternalId and MainAccountId?",
			"aws iam get-role --role-name keyrotator-member" + inAccount(a.Account) + "   # NoSuchEntity: deploy the member stack (README, Member accounts)",
			"aws cloudformation list-stack-instances --stack-set-name keyrotator-member   # from the management account: the account's instance and its status",
			"# then re-run; until then every re-run is refused here the same way, before any change"}, rerun...)
	case "KeyLimitReached":
		if issuing(in) {
			return append([]string{status + "   # both keys, their state and last use",
				"# an issue needs room: delete the key nobody uses (aws iam delete-access-key …) and re-run; or, if one is active, rotate it instead (leave out issue)"}, rerun...)
		}
		return append([]string{status + "   # both keys, their state and last use",
			"# deactivate the unused one (aws iam update-access-key --status Inactive …), or re-run with \"allowRemoveInactiveKey\": true if one is inactive"}, rerun...)
	case "RotationInProgress":
		return []string{status + "   # the run in flight", "keyrotator watch <the execution the cause names>"}
	case "OrphanUnconfirmed":
		return append([]string{"aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=EventName,AttributeValue=CreateAccessKey   # who made the key the cause names",
			"# if keyrotator's CreateKey role made it, re-run: keyrotator deletes it; if a person did, it is theirs (see keylimitreached)", status}, rerun...)
	case "TargetFailed":
		return append([]string{"# fix the target the cause names (the runbook lists each cause)", status}, rerun...)
	case "OldKeyStillInUse":
		return append([]string{status + "   # where the old key was last used",
			"# give that consumer the new key (AWSCURRENT of " + rotation.RecordName(rotation.UserKey(a.Account, a.User)) + ")"}, rerun...)
	case "ApprovalRejected":
		return []string{"# nothing to do unless the rejection was a mistake; then:", rerun[0], rerun[1]}
	case "RequestUnsigned":
		return []string{"# a run that needs approval was started without the request endpoint (nothing changed); start it through it:", rerun[0], rerun[1] + " (signs who asks)"}
	case "RequestForged":
		return []string{"# the signed request does not verify (replayed, changed after signing, or forged); nothing changed. Treat it as a security event:",
			"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=StartExecution   # who started " + a.Execution,
			"# if the run was wanted, start it through the endpoint:", rerun[1]}
	case "ApprovalForged": // issue 14: an answer answerapproval did not sign
		return []string{"# the run stopped before CreateKey. Someone answered the approval request around answerapproval: find who (CloudTrail records SendTaskSuccess with the caller):",
			"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=SendTaskSuccess",
			"# treat it as a security event (the runbook says how); to ask again:", rerun[0], rerun[1]}
	case "States.Timeout":
		if state == "Approve" {
			return []string{"# nobody answered the approval request in time; nothing was changed. To ask again:", rerun[0], rerun[1]}
		}
	}
	if slices.Contains(transient, errName) {
		return append([]string{"# a transient error outlasted the retries; re-running is safe, every step is idempotent", status}, rerun...)
	}
	return append([]string{"# an error keyrotator does not name (" + errName + "): read the cause and the execution's history before re-running", status}, rerun...)
}

// anchorFor is the runbook section of a failure.
func anchorFor(state, errName string) string {
	if state == "CleanupTargets" {
		return "cleanup"
	}
	if errName == "States.Timeout" && state == "Approve" {
		return "approvaltimedout"
	}
	for _, n := range rotation.ErrorNames {
		if n == errName {
			return strings.ToLower(n)
		}
	}
	if slices.Contains(transient, errName) {
		return "retryable" // Lambda's own errors and crashes, retried like Retryable
	}
	return "internal" // States.Runtime, an unnamed errorType: a bug
}

// consoleLink is the execution's page in the Step Functions console.
func consoleLink(execution string) string {
	p := strings.Split(execution, ":")
	if len(p) < 8 || p[0] != "arn" || p[2] != "states" {
		return ""
	}
	host := "console.aws.amazon.com"
	switch p[1] {
	case "aws-cn":
		host = "console.amazonaws.cn"
	case "aws-us-gov":
		host = "console.amazonaws-us-gov.com"
	}
	region := p[3]
	return fmt.Sprintf("https://%s.%s/states/home?region=%s#/v2/executions/details/%s", region, host, region, url.PathEscape(execution))
}

func user(in NotifyInput) string {
	if in.Data.Plan != nil {
		return in.Data.Plan.User
	}
	if s, ok := sentField[string](in, "user"); ok && s != "" {
		return s
	}
	return "(unknown user)"
}

func recordOf(in NotifyInput) string {
	if in.Data.Plan != nil {
		return in.Data.Plan.Record
	}
	return rotation.RecordName(rotation.UserKey(account(in), user(in)))
}

// account is the member account of the run (issue 15): the plan's, or
// before there is one the input's as it was sent; "" for the stack's own.
func account(in NotifyInput) string {
	if in.Data.Plan != nil {
		return in.Data.Plan.Account
	}
	if s, ok := sentField[string](in, "account"); ok && rotation.IsAccountID(s) {
		return s
	}
	return ""
}

// inAccount is a command's note that it runs in a member account.
func inAccount(account string) string {
	if account == "" {
		return ""
	}
	return " (in account " + account + ", with its credentials)"
}

// who is the alert's user for a person, with the account when it is a
// member's.
func (a Alert) who() string { return rotation.UserIn(a.Account, a.User) }

// causeMessage takes the message out of a Lambda error's cause, which Step
// Functions passes as the JSON the runtime reported.
func causeMessage(cause string) string {
	var le struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &le) == nil && le.ErrorMessage != "" {
		cause = le.ErrorMessage
	}
	cause = strings.Join(strings.Fields(cause), " ")
	// Long enough for a partial SORACOM repoint's exact list of groups.
	if len(cause) > 24000 {
		cause = cause[:24000] + "…"
	}
	return cause
}

func (n *Notify) runbook() string {
	if n.Runbook != "" {
		return n.Runbook
	}
	return "docs/runbook.md"
}
