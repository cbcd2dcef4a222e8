package watch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Key is an access key as IAM lists it.
type Key struct {
	ID     string `json:"accessKeyId"`
	Status string `json:"status"` // Active, Inactive
}

// keysAPI is the IAM call ListKeys makes (*iam.Client).
type keysAPI interface {
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
}

var _ keysAPI = (*iam.Client)(nil)

// ListKeys is user's access keys now, as IAM has them (ids only).
func ListKeys(ctx context.Context, c keysAPI, user string) ([]Key, error) {
	var keys []Key
	p := iam.NewListAccessKeysPaginator(c, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("iam: list access keys of %s: %w", user, err)
		}
		for _, k := range page.AccessKeyMetadata {
			keys = append(keys, Key{ID: aws.ToString(k.AccessKeyId), Status: string(k.Status)})
		}
	}
	return keys, nil
}

// Report is how a run ended, for a person and (as JSON) for a script.
type Report struct {
	Execution   string                  `json:"execution"`
	User        string                  `json:"user,omitempty"`
	Status      string                  `json:"status"` // SUCCEEDED, FAILED, TIMED_OUT, ABORTED
	Error       string                  `json:"error,omitempty"`
	Cause       string                  `json:"cause,omitempty"`
	FailedState string                  `json:"failedState,omitempty"` // the state whose error ended the run
	DryRun      bool                    `json:"dryRun,omitempty"`
	Issue       bool                    `json:"issue,omitempty"`       // Issuance: a first key, no old key
	Changes     []string                `json:"changes,omitempty"`     // a dry run's plan: every change it would make
	TargetPlans []rotation.Receipt      `json:"targetPlans,omitempty"` // a dry run: what each target, read, said it would change
	Skipped     string                  `json:"skipped,omitempty"`     // a scheduled run of a young key: why
	OldKeyID    string                  `json:"oldKeyId,omitempty"`
	NewKeyID    string                  `json:"newKeyId,omitempty"`
	KeysAfter   []Key                   `json:"keysAfter"`
	Targets     int                     `json:"targets"` // how many the run was to update
	Receipts    []rotation.Receipt      `json:"receipts"`
	Verify      *rotation.Verification  `json:"verification,omitempty"`
	Approval    *rotation.Approval      `json:"approval,omitempty"`
	Cleanup     *rotation.CleanupResult `json:"cleanup,omitempty"`
}

// NewReport reads how the run ended: from its output when it succeeded,
// else from the last data a top-level state left in the history.
func NewReport(e *Ended, keysAfter []Key) Report {
	d := e.Execution
	r := Report{Execution: aws.ToString(d.ExecutionArn), Status: string(d.Status), Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), KeysAfter: keysAfter}
	var data rotation.ExecutionData // its input raw: a run refused for bad input still gets a report
	if d.Status == types.ExecutionStatusSucceeded && d.Output != nil {
		_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &data)
	} else {
		data = lastData(e.History)
	}
	if len(data.Input) == 0 {
		data.Input = json.RawMessage(aws.ToString(d.Input))
	}
	var in struct {
		User    string            `json:"user"`
		Targets []json.RawMessage `json:"targets"`
		Issue   bool              `json:"issue"`
	}
	_ = json.Unmarshal(data.Input, &in)
	r.User, r.Targets, r.Issue = in.User, len(in.Targets), in.Issue
	if p := data.Plan; p != nil {
		r.User, r.OldKeyID, r.Targets, r.Issue = p.User, p.OldKeyID, len(p.Targets), p.Issue
		r.DryRun = p.DryRun || data.DryRun
		if r.DryRun {
			r.Changes, r.TargetPlans = p.Changes, data.TargetPlans
		}
		if p.Skip {
			r.Skipped = p.SkipReason
			if r.Skipped == "" {
				r.Skipped = "the key is younger than minKeyAgeDays"
			}
		}
	}
	if data.Key != nil {
		r.NewKeyID = data.Key.KeyID
	}
	r.Receipts, r.Verify, r.Approval, r.Cleanup = data.Receipts, data.Verify, data.Approval, data.Cleanup
	if r.Receipts == nil {
		r.Receipts = []rotation.Receipt{}
	}
	if r.KeysAfter == nil {
		r.KeysAfter = []Key{}
	}
	for state := range data.Failure {
		if r.FailedState == "" || state < r.FailedState { // one in practice; stable if not
			r.FailedState = state
		}
	}
	if r.FailedState == "" && d.Status != types.ExecutionStatusSucceeded {
		r.FailedState = lastState(e.History)
	}
	return r
}

// lastData is the newest top-level state data in the history: the output
// of the last state that exited outside a Map iteration.
func lastData(events []types.HistoryEvent) rotation.ExecutionData {
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.StateExitedEventDetails == nil || InMap(events, ev) {
			continue
		}
		var probe map[string]json.RawMessage
		out := aws.ToString(ev.StateExitedEventDetails.Output)
		if json.Unmarshal([]byte(out), &probe) != nil || probe["input"] == nil {
			continue
		}
		var d rotation.ExecutionData
		if json.Unmarshal([]byte(out), &d) == nil {
			return d
		}
	}
	return rotation.ExecutionData{}
}

// lastState is the last state entered: where a run stopped or timed out.
func lastState(events []types.HistoryEvent) string {
	for i := len(events) - 1; i >= 0; i-- {
		if d := events[i].StateEnteredEventDetails; d != nil {
			return aws.ToString(d.Name)
		}
	}
	return ""
}

// Write prints the report's body: the plan of a dry run, or the keys
// before and after, what each target took and the verification's evidence.
func (r Report) Write(out io.Writer) {
	if r.DryRun {
		what := ""
		if r.Issue {
			what = "an issue to "
		}
		fmt.Fprintf(out, "\ndry run of %s%s: %d changes planned, none made:\n", what, r.User, len(r.Changes))
		for i, c := range r.Changes {
			fmt.Fprintf(out, "  %d. %s\n", i+1, c)
		}
		if len(r.TargetPlans) > 0 {
			fmt.Fprintln(out, "what each target, read now, says it would change:")
			for _, t := range r.TargetPlans {
				fmt.Fprintf(out, "  %s (%s, %s), holding %s:\n", t.Target, t.Type, t.Where, cmp.Or(t.PreviousKeyID, "no key"))
				for _, c := range t.Planned {
					fmt.Fprintf(out, "    - %s\n", c)
				}
			}
		}
		return
	}
	if r.Skipped != "" {
		fmt.Fprintf(out, "\nskipped: %s\n", r.Skipped)
		return
	}
	fmt.Fprintf(out, "\nkeys of %s:\n", r.User)
	if r.OldKeyID != "" {
		fmt.Fprintf(out, "  before: %s (Active)\n", r.OldKeyID)
	} else if r.Issue {
		fmt.Fprintln(out, "  before: no active key (an issue)")
	}
	fmt.Fprint(out, "  after: ")
	if len(r.KeysAfter) == 0 {
		fmt.Fprint(out, " none")
	}
	for _, k := range r.KeysAfter {
		fmt.Fprintf(out, " %s (%s)", k.ID, k.Status)
	}
	fmt.Fprintln(out)
	if a := r.Approval; a != nil { // verified by VerifyApproval (issue 14)
		fmt.Fprintf(out, "requested by %s\n", a.RequestedBy)
		for _, e := range a.Approvals {
			fmt.Fprintf(out, "approved by %s at %s", e.By, e.At.UTC().Format(time.RFC3339))
			if e.Comment != "" {
				fmt.Fprintf(out, ": %q", e.Comment)
			}
			fmt.Fprintln(out)
		}
	}
	fmt.Fprintln(out, "targets:")
	if len(r.Receipts) == 0 {
		fmt.Fprintf(out, "  none updated (of %d)\n", r.Targets)
	}
	for _, rc := range r.Receipts {
		fmt.Fprintf(out, "  %-11s %s: %s → %s\n", rc.Target, rc.Where, cmp.Or(rc.PreviousKeyID, "no key"), rc.NewKeyID)
		for _, line := range rc.Details() { // a SORACOM target's groups, one a line
			fmt.Fprintf(out, "  %-11s   %s\n", "", line)
		}
	}
	if v := r.Verify; v != nil && v.Attempt > 0 {
		fmt.Fprintf(out, "verification (check %d): %s\n", v.Attempt, v.Evidence)
		if v.Freshness != "" {
			fmt.Fprintf(out, "  %s\n", v.Freshness)
		}
		if n := len(v.CloudTrail); n > 0 {
			fmt.Fprintf(out, "  CloudTrail: %d events with the old key after the cut-over\n", n)
		}
	}
	if c := r.Cleanup; c != nil {
		for _, t := range c.Targets {
			fmt.Fprintf(out, "cleanup: %s\n", t)
		}
	}
}

// Err says why the run did not do its job; nil when it did: it succeeded
// and, unless it was a dry run or skipped, the old key is gone, the new
// one active and every target holds it.
func (r Report) Err() error {
	if r.Status != string(types.ExecutionStatusSucceeded) {
		var b strings.Builder
		b.WriteString(r.Status)
		if r.FailedState != "" {
			b.WriteString(" at " + r.FailedState)
		}
		if r.Error != "" {
			b.WriteString(": " + r.Error)
		}
		if r.Cause != "" {
			b.WriteString(": " + r.Cause)
		}
		return errors.New(b.String())
	}
	if r.DryRun || r.Skipped != "" {
		return nil
	}
	oldGone := !slices.ContainsFunc(r.KeysAfter, func(k Key) bool { return k.ID == r.OldKeyID })
	newActive := slices.ContainsFunc(r.KeysAfter, func(k Key) bool { return k.ID == r.NewKeyID && k.Status == "Active" })
	var missed []string
	for _, rc := range r.Receipts {
		if rc.NewKeyID != r.NewKeyID {
			missed = append(missed, rc.Target)
		}
	}
	sort.Strings(missed)
	switch {
	case !oldGone:
		return fmt.Errorf("the old key %s is still there", r.OldKeyID)
	case r.NewKeyID == "" || !newActive:
		return errors.New("no active new key")
	case len(r.Receipts) != r.Targets:
		return fmt.Errorf("%d of %d targets updated", len(r.Receipts), r.Targets)
	case len(missed) > 0:
		return fmt.Errorf("targets %s do not hold the new key", strings.Join(missed, ", "))
	}
	return nil
}

// Line is the one line that says how it went.
func (r Report) Line() string {
	what := "rotation"
	if r.Issue {
		what = "issue"
	}
	if err := r.Err(); err != nil {
		return what + " failed: " + err.Error()
	}
	switch {
	case r.DryRun && r.Issue:
		return fmt.Sprintf("dry run of an issue succeeded: user=%s changes=%d (none made)", r.User, len(r.Changes))
	case r.DryRun:
		return fmt.Sprintf("dry run succeeded: user=%s changes=%d (none made)", r.User, len(r.Changes))
	case r.Skipped != "":
		return fmt.Sprintf("rotation skipped: user=%s: %s", r.User, r.Skipped)
	case r.Issue:
		return fmt.Sprintf("issue succeeded: user=%s new=%s (active) targets=%d/%d", r.User, r.NewKeyID, len(r.Receipts), r.Targets)
	}
	return fmt.Sprintf("rotation succeeded: user=%s old=%s (deleted) new=%s (active) targets=%d/%d",
		r.User, r.OldKeyID, r.NewKeyID, len(r.Receipts), r.Targets)
}
