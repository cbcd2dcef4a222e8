package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// publisher sends one message to the alert topic.
type publisher interface {
	Publish(ctx context.Context, subject, message string) (string, error)
}

// Weekly is the scheduled audit (functions/cmd/audit): the caller's
// account and every member account a rotation names, audited as
// `keyrotator audit` does, and a summary published to the alert topic:
// the counts, and every flagged key and malformed tag.
type Weekly struct {
	IAM IAM // the function's own account's
	// Members reaches a member account's IAM (the member role, narrowed to
	// the audit's read-only calls); nil: the member accounts are reported
	// not read.
	Members func(ctx context.Context, account string) (IAM, error)
	Account func(ctx context.Context) (string, error) // the function's own account
	Topic   publisher
	Managed []Managed
	// Templates are the fleet's (issue 15): their tagged users are the
	// sweep's.
	Templates []Template
	Now       func() time.Time
	// MaxAgeDays (0: 90) and WarnDays are --max-age and --warn-days.
	MaxAgeDays, WarnDays int
	Runbook              string // base URL of docs/runbook.md (its #audit section)
	// ReportPoll paces the credential report's wait (0: 2 s).
	ReportPoll time.Duration
}

// WeeklyResult is what the invocation returns (and logs).
type WeeklyResult struct {
	Account   string `json:"account"`
	Keys      int    `json:"keys"`
	Due       int    `json:"due"`
	Overdue   int    `json:"overdue"`
	MessageID string `json:"messageId"`
}

// maxListed bounds the keys a summary lists: an SNS message holds 256 KiB
// (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
const maxListed = 500

// Run audits and publishes. The event is the schedule's ({}), unread.
func (w *Weekly) Run(ctx context.Context, _ json.RawMessage) (WeeklyResult, error) {
	account, err := w.Account(ctx)
	if err != nil {
		return WeeklyResult{}, fmt.Errorf("audit: own account: %w", err)
	}
	accounts := w.accounts(account)
	rep, err := Run(ctx, accounts, weeklyClients{own: account, api: w.IAM, members: w.Members}, Options{
		Now: w.Now(), MaxAgeDays: w.MaxAgeDays, WarnDays: w.WarnDays, Managed: w.Managed, Templates: w.Templates, Home: account, ReportPoll: w.ReportPoll,
	})
	if err != nil {
		return WeeklyResult{}, err
	}
	label := account
	if len(accounts) > 1 {
		label = fmt.Sprintf("%s +%d accounts", account, len(accounts)-1)
	}
	subject, body := rep.Summary.subject(label, len(accounts)), rep.summaryBody(w.Runbook)
	id, err := w.Topic.Publish(ctx, subject, body)
	if err != nil {
		return WeeklyResult{}, fmt.Errorf("audit: publish the summary: %w", err)
	}
	return WeeklyResult{Account: account, Keys: rep.Summary.Keys, Due: rep.Summary.Due, Overdue: rep.Summary.Overdue, MessageID: id}, nil
}

// accounts are the function's own account, then every other account a
// rotation or a fleet template names (issue 15), each once, in order.
func (w *Weekly) accounts(own string) Configured {
	out := Configured{{ID: own}}
	var members []string
	add := func(a string) {
		if a != "" && a != own && !slices.Contains(members, a) {
			members = append(members, a)
		}
	}
	for _, m := range w.Managed {
		add(m.Account)
	}
	for _, t := range w.Templates { // the fleet's member accounts (issue 15)
		for _, a := range t.Accounts {
			add(a)
		}
	}
	slices.Sort(members)
	for _, a := range members {
		out = append(out, Account{ID: a})
	}
	return out
}

// weeklyClients reach the own account with its client and a member
// account through Members.
type weeklyClients struct {
	own     string
	api     IAM
	members func(ctx context.Context, account string) (IAM, error)
}

func (c weeklyClients) IAM(ctx context.Context, a Account) (IAM, error) {
	switch {
	case a.ID == c.own:
		return c.api, nil
	case c.members == nil:
		return nil, fmt.Errorf("account %s: not reachable from account %s (no member role configured)", a.ID, c.own)
	}
	return c.members(ctx, a.ID)
}

// subject fits a phone notification: ASCII, under 100 characters.
func (s Summary) subject(account string, accounts int) string {
	switch {
	case s.Failures > 0 && accounts <= 1:
		return fmt.Sprintf("keyrotator audit %s: could not read the account", account)
	case s.Failures > 0:
		return fmt.Sprintf("keyrotator audit %s: %d not read, %d overdue, %d due", account, s.Failures, s.Overdue, s.Due)
	case s.Overdue+s.Due == 0:
		return fmt.Sprintf("keyrotator audit %s: %d keys, none overdue or due", account, s.Keys)
	}
	return fmt.Sprintf("keyrotator audit %s: %d overdue, %d due (%d keys)", account, s.Overdue, s.Due, s.Keys)
}

// summaryBody is the counts, then the keys worth a look (flagged, or with
// a malformed tag), as the CLI's table, and where to read on.
func (r Report) summaryBody(runbook string) string {
	var b bytes.Buffer
	listed := r
	listed.Rows = nil
	for _, row := range r.Rows {
		if row.Flag != FlagNone || row.State == StateExemptionMalformed || row.OwnerProblem != "" {
			listed.Rows = append(listed.Rows, row)
		}
	}
	cut := 0
	if len(listed.Rows) > maxListed {
		cut, listed.Rows = len(listed.Rows)-maxListed, listed.Rows[:maxListed]
	}
	fmt.Fprintf(&b, "The weekly keyrotator audit: every IAM user access key of this account and of each member account a rotation names, against its Security Hub IAM.3 deadline.\n\n")
	listed.WriteText(&b)
	if cut > 0 {
		fmt.Fprintf(&b, "(%d more not listed: run keyrotator audit)\n", cut)
	}
	if runbook == "" {
		runbook = "docs/runbook.md"
	}
	fmt.Fprintf(&b, "\nEvery key: keyrotator audit (--json, --csv). What to do: %s#audit\n", runbook)
	return b.String()
}
