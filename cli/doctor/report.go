// Package doctor checks a deployed keyrotator stack against its config,
// read-only, and says what to fix: each function role may make exactly the
// calls each configured rotation will make (IAM's policy simulator over
// the tasks registry's calls, resolved to that rotation's users, records,
// secrets and connections), the alert topic's subscriptions are confirmed,
// the CloudWatch alarms may publish to the topic (its topic policy and KMS
// key policy, evaluated as AWS does), each connection secret is filled and
// well formed, each Auth0 tenant answers with both scopes and an SES
// provider holding the user's key, each SORACOM connection finds the
// credentials and the groups that use them, and each schedule is enabled,
// with its next run. It reads no rotation record's value and prints no
// secret (I1): a connection secret is parsed, never shown.
package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is one check's outcome.
type Status string

// The outcomes. Unconfirmed is not a failure: the check could not see
// what it looks for (Auth0 does not show the key id) and says how it will
// be confirmed.
const (
	OK          Status = "ok"
	Unconfirmed Status = "unconfirmed"
	Failed      Status = "fail"    // a finding: Fix says what to do
	NotChecked  Status = "error"   // the check could not run: Detail says why
	Skipped     Status = "skipped" // nothing to check (e.g. disabled by the config)
)

// Finding is one check of one thing.
type Finding struct {
	Check    string `json:"check"`              // roles, subscriptions, alarms, connections, auth0, soracom, schedules, stack
	Rotation string `json:"rotation,omitempty"` // the config's rotation it is about, if one
	Subject  string `json:"subject"`            // what was checked: a role and task, a subscription, a secret name…
	Status   Status `json:"status"`
	Detail   string `json:"detail"`
	Fix      string `json:"fix,omitempty"` // what to do (findings and checks that could not run)
}

// Report is doctor's answer: its --json document.
type Report struct {
	StateMachineARN string    `json:"stateMachineArn"`
	Config          string    `json:"config,omitempty"`
	Now             time.Time `json:"now"`
	Findings        []Finding `json:"findings"`
	Summary         Summary   `json:"summary"`
}

// Summary counts the findings by status.
type Summary struct {
	OK          int `json:"ok"`
	Unconfirmed int `json:"unconfirmed"`
	Failed      int `json:"failed"`
	NotChecked  int `json:"notChecked"`
	Skipped     int `json:"skipped"`
}

// Exit codes of doctor (docs/cli.md).
const (
	ExitGreen      = 0 // every check passed (unconfirmed ones included)
	ExitFindings   = 1 // at least one finding: each says what to do
	ExitNotChecked = 2 // no finding, but at least one check could not run
)

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// Tally fills the summary.
func (r *Report) Tally() {
	r.Summary = Summary{}
	for _, f := range r.Findings {
		switch f.Status {
		case OK:
			r.Summary.OK++
		case Unconfirmed:
			r.Summary.Unconfirmed++
		case Failed:
			r.Summary.Failed++
		case NotChecked:
			r.Summary.NotChecked++
		case Skipped:
			r.Summary.Skipped++
		}
	}
}

// Code is the exit code the report means: findings first (something is
// known to be wrong), then checks that could not run.
func (r *Report) Code() int {
	r.Tally()
	switch {
	case r.Summary.Failed > 0:
		return ExitFindings
	case r.Summary.NotChecked > 0:
		return ExitNotChecked
	}
	return ExitGreen
}

// Write prints the report for a person: one line per check, and under each
// finding what to do.
func (r *Report) Write(w io.Writer) {
	r.Tally()
	fmt.Fprintf(w, "keyrotator doctor: %s\n", r.StateMachineARN)
	if r.Config != "" {
		fmt.Fprintf(w, "config: %s\n", r.Config)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range r.Findings {
		subject := f.Subject
		if f.Rotation != "" {
			subject = f.Rotation + ": " + subject
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark(f.Status), f.Check, subject, f.Detail)
		if f.Fix != "" && (f.Status == Failed || f.Status == NotChecked || f.Status == Unconfirmed) {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", f.Fix)
		}
	}
	_ = tw.Flush()
	s := r.Summary
	var parts []string
	parts = append(parts, fmt.Sprintf("%d ok", s.OK))
	if s.Unconfirmed > 0 {
		parts = append(parts, fmt.Sprintf("%d unconfirmed", s.Unconfirmed))
	}
	if s.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d to fix", s.Failed))
	}
	if s.NotChecked > 0 {
		parts = append(parts, fmt.Sprintf("%d could not be checked", s.NotChecked))
	}
	if s.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", s.Skipped))
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
}

func mark(s Status) string {
	switch s {
	case OK:
		return "ok"
	case Unconfirmed:
		return "??"
	case Failed:
		return "FIX"
	case NotChecked:
		return "ERR"
	}
	return "--"
}
