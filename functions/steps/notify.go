package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// publisher is the alert topic (*alerts.Topic).
type publisher interface {
	Publish(ctx context.Context, subject, message string) (string, error)
}

// Notify is the NotifySuccess, AlertStillInUse and NotifyFailure states: it
// tells people what happened in words they can act on at 3 am (I4).
type Notify struct {
	Topic   publisher
	Runbook string // base URL of docs/runbook.md; sections are #<error>
}

// NotifyInput is Notify's event. The input is kept raw: a failure alert must
// be sent even for input that never parsed.
type NotifyInput struct {
	Kind string    `json:"kind"`
	Now  time.Time `json:"now"`
	Data struct {
		Input     json.RawMessage                `json:"input"`
		Execution string                         `json:"execution"`
		Plan      *rotation.Plan                 `json:"plan"`
		Key       *rotation.NewKey               `json:"key"`
		Receipts  []rotation.Receipt             `json:"receipts"`
		Promote   *rotation.Cutover              `json:"promote"`
		Verify    *rotation.Verification         `json:"verify"`
		Retire    *rotation.KeyChange            `json:"retire"`
		Warning   *rotation.Notice               `json:"warning"`
		Cleanup   *rotation.CleanupResult        `json:"cleanup"`
		Failure   map[string]rotation.StateError `json:"failure"`
	} `json:"data"`
}

// NotifyResult is what the state machine keeps: the Fail state takes the
// execution's error and cause from it.
type NotifyResult = rotation.Notice

// Run composes and publishes one notice.
func (n *Notify) Run(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	var subject, body string
	var res NotifyResult
	switch in.Kind {
	case "success":
		subject, body = n.success(in)
	case "warning":
		subject, body = n.warning(in)
	default:
		res.Error, res.Cause, subject, body = n.failure(in)
	}
	id, err := n.Topic.Publish(ctx, subject, body)
	if err != nil {
		return NotifyResult{}, err
	}
	res.MessageID = id
	return res, nil
}

func user(in NotifyInput) string {
	if in.Data.Plan != nil {
		return in.Data.Plan.User
	}
	var loose struct {
		User any `json:"user"`
	}
	_ = json.Unmarshal(in.Data.Input, &loose)
	if s, ok := loose.User.(string); ok && s != "" {
		return s
	}
	return "(unknown: the input names no user)"
}

func (n *Notify) success(in NotifyInput) (string, string) {
	d := in.Data
	u := user(in)
	var b strings.Builder
	fmt.Fprintf(&b, "keyrotator rotated the access key of IAM user %s.\n\n", u)
	if d.Plan != nil && d.Key != nil {
		fmt.Fprintf(&b, "Old key: %s (deleted)\nNew key: %s (active, AWSCURRENT in %s)\n", d.Plan.OldKeyID, d.Key.KeyID, d.Plan.Record)
	}
	for _, r := range d.Receipts {
		fmt.Fprintf(&b, "Target %s (%s, %s): %s → %s\n", r.Target, r.Type, r.Where, r.PreviousKeyID, r.NewKeyID)
		if line := soracomLine(r); line != "" {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	if d.Verify != nil {
		fmt.Fprintf(&b, "Verification: %s\n", d.Verify.Evidence)
	}
	if d.Cleanup != nil {
		for _, line := range d.Cleanup.Targets {
			fmt.Fprintf(&b, "Cleanup: %s\n", line)
		}
	}
	fmt.Fprintf(&b, "\nExecution: %s\n", d.Execution)
	return "keyrotator: rotated the key of " + u, b.String()
}

func (n *Notify) warning(in NotifyInput) (string, string) {
	d := in.Data
	u := user(in)
	var b strings.Builder
	fmt.Fprintf(&b, "The old access key of IAM user %s still looks in use after the cut-over. Nothing was changed: both keys stay active.\n\n", u)
	if v := d.Verify; v != nil {
		fmt.Fprintf(&b, "Evidence: %s\nFreshness: %s\n", v.Evidence, v.Freshness)
		fmt.Fprintf(&b, "\nkeyrotator waits again and checks %d more time(s); after the last check the run fails without touching the old key.\n", v.AttemptsLeft)
	}
	fmt.Fprintf(&b, "What to do: find the consumer named by the evidence and give it the new key (AWSCURRENT of %s). See %s#oldkeystillinuse\n", rotation.RecordName(u), n.runbook())
	fmt.Fprintf(&b, "\nExecution: %s\n", d.Execution)
	return "keyrotator: old key of " + u + " still in use", b.String()
}

// failure says which user, which state, what error, what changed and what to do.
func (n *Notify) failure(in NotifyInput) (errName, cause, subject, body string) {
	d := in.Data
	u := user(in)
	states := make([]string, 0, len(d.Failure))
	for s := range d.Failure {
		states = append(states, s)
	}
	sort.Strings(states)
	state, se := "(unknown state)", rotation.StateError{Error: "Unknown", Cause: "no failure was recorded"}
	if len(states) > 0 {
		state, se = states[0], d.Failure[states[0]]
	}
	errName, cause = se.Error, causeMessage(se.Cause)

	var b strings.Builder
	fmt.Fprintf(&b, "keyrotator could not rotate the access key of IAM user %s.\n\n", u)
	fmt.Fprintf(&b, "State:  %s\nError:  %s\nCause:  %s\n\n", state, errName, cause)
	b.WriteString("What has changed:\n")
	for _, line := range changed(in) {
		fmt.Fprintf(&b, "  - %s\n", line)
	}
	fmt.Fprintf(&b, "\nWhat to do: %s\nRunbook: %s#%s\n\nExecution: %s\n", nextStep(state, errName), n.runbook(), strings.ToLower(anchor(errName)), d.Execution)
	return errName, cause, fmt.Sprintf("keyrotator: %s failed for %s: %s", state, u, errName), b.String()
}

func changed(in NotifyInput) []string {
	d := in.Data
	if d.Key == nil {
		return []string{"nothing: no key was created, every target still holds the key it had"}
	}
	var out []string
	if d.Plan != nil && d.Plan.RemoveInactiveKeyID != "" {
		out = append(out, fmt.Sprintf("the inactive key %s may have been deleted to make room", d.Plan.RemoveInactiveKeyID))
	}
	out = append(out, fmt.Sprintf("new key %s exists, kept in %s (AWSPENDING)", d.Key.KeyID, recordOf(in)))
	held := map[string]rotation.Receipt{}
	for _, r := range d.Receipts {
		held[r.Target] = r
	}
	if d.Plan != nil {
		for _, t := range d.Plan.Targets {
			if r, ok := held[t.Name]; ok {
				out = append(out, fmt.Sprintf("target %s holds the new key %s", t.Name, r.NewKeyID))
				if line := soracomLine(r); line != "" {
					out = append(out, "  "+line)
				}
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
	case d.Plan != nil:
		out = append(out, fmt.Sprintf("old key %s is still active: both keys work, nothing is broken", d.Plan.OldKeyID))
	}
	return out
}

func recordOf(in NotifyInput) string {
	if in.Data.Plan != nil {
		return in.Data.Plan.Record
	}
	return rotation.RecordName(user(in))
}

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

func anchor(errName string) string {
	for _, n := range rotation.ErrorNames {
		if n == errName {
			return n
		}
	}
	return "retryable"
}

// soracomLine says which credential a SORACOM target uses now and which
// groups were moved to it.
func soracomLine(r rotation.Receipt) string {
	s := r.Soracom
	if s == nil {
		return ""
	}
	if s.Strategy == "inPlace" {
		return fmt.Sprintf("credential %s updated in place; %d group(s) use it", s.NewCredential, len(s.Groups))
	}
	ids := make([]string, 0, len(s.Groups))
	for _, g := range s.Groups {
		ids = append(ids, g.GroupID+" ("+g.Namespace+")")
	}
	return fmt.Sprintf("new credential %s (old: %s); %d group(s) use it: %s", s.NewCredential, strings.Join(s.OldCredentials, ", "), len(s.Groups), strings.Join(ids, ", "))
}

func nextStep(state, errName string) string {
	if state == "CleanupTargets" {
		return "the rotation itself is done: the old key is deleted and every target holds the new one. Fix by hand what the cause names (a SORACOM group still on the old credential cannot deliver: repoint it to the new credential), then delete what is left. Do not re-run: a re-run starts a new rotation."
	}
	switch errName {
	case "InvalidInput":
		return "fix the field the cause names, in the schedule's config or the input you started with, and start again. Nothing was changed."
	case "UserNotFound":
		return "check the user name; nothing was changed."
	case "KeyLimitReached":
		return "the user has two keys. Delete or deactivate the unused one, or re-run with allowRemoveInactiveKey if one is inactive. An active key is never removed."
	case "RotationInProgress":
		return "another run for this user is in flight; let it finish, or stop it, then re-run (the new run takes over its lock and key)."
	case "TargetFailed":
		return "fix the target the cause names, then re-run: both keys stay active until every target holds the new one."
	case "OldKeyStillInUse":
		return "find the consumer the evidence points at, give it the new key (AWSCURRENT of the record), and re-run. The old key was not touched."
	case "ApprovalRejected":
		return "nothing to do unless the rejection was a mistake."
	default:
		return "check the execution's history for the failed state; re-running is safe, every step is idempotent."
	}
}

func (n *Notify) runbook() string {
	if n.Runbook != "" {
		return n.Runbook
	}
	return "docs/runbook.md"
}
