// Package audit is keyrotator's inventory of IAM user access keys (the
// `keyrotator audit` command and the weekly audit): every IAM user with
// keys, in every account it is given, each key's age, last use, Security
// Hub IAM.3 deadline (created + maxAccessKeyAge, 90 days by default) and
// whether a rotation manages it, a keyrotator:exempt tag exempts it, or
// nothing does. It stands beside the rotation's workflow, not in it: it
// reads, never changes.
//
// Accounts come in through two small interfaces, an Accounts lister
// (configured accounts, or the organization's) and a Clients provider (an
// account's IAM client: the CLI's caller's own credentials for its account
// and a role it assumes in each other; the weekly audit's own), so the
// inventory does not change when the way into an account does.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/functions/fleet"
)

// DefaultMaxAgeDays is Security Hub IAM.3's maxAccessKeyAge: the AWS
// Config rule access-keys-rotated with its default of 90 days
// (https://docs.aws.amazon.com/securityhub/latest/userguide/iam-controls.html#iam-3).
const DefaultMaxAgeDays = 90

// IAM is the calls the audit makes in one account.
type IAM interface {
	reportAPI
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, opt ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opt ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
}

var _ IAM = (*iam.Client)(nil)

// Account is one AWS account to audit.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Accounts lists the accounts to audit.
type Accounts interface {
	Accounts(ctx context.Context) ([]Account, error)
}

// Configured is a fixed list of accounts (the config's, or the caller's own).
type Configured []Account

// Accounts implements Accounts.
func (c Configured) Accounts(context.Context) ([]Account, error) { return c, nil }

// Clients gives the IAM client of an account, or says why it cannot.
type Clients interface {
	IAM(ctx context.Context, account Account) (IAM, error)
}

// Managed is one configured rotation, as the audit matches keys to it.
type Managed struct {
	// Account is the rotation's account; "" is Options.Home (the stack's
	// own), or any account when Home is "" too (an audit of one account).
	// A user name is unique only within an account: a rotation of app in
	// one account does not manage app in another.
	Account  string     `json:"account,omitempty"`
	User     string     `json:"user"`              // the IAM user name
	Rotation string     `json:"rotation"`          // the rotation's name
	Schedule string     `json:"schedule"`          // its schedule expression
	Enabled  bool       `json:"enabled"`           // a disabled schedule retires nothing: its keys count as unmanaged
	Next     *time.Time `json:"nextRun,omitempty"` // its next run, when known
}

// Template is a fleet template (issue 15, the sweep): the users tagged
// keyrotator:rotation = Name whose IAM path starts with Path, in
// Accounts (none: the stack's own, Options.Home), are the sweep's to
// rotate, as functions/fleet picks them.
type Template struct {
	Name     string     `json:"name"`
	Path     string     `json:"userPath"`
	Accounts []string   `json:"accounts,omitempty"`
	Schedule string     `json:"schedule"`          // the sweep's schedule expression
	Enabled  bool       `json:"enabled"`           // the sweep's schedule is enabled
	Next     *time.Time `json:"nextRun,omitempty"` // the sweep's next run, when known
}

// scope is t as the sweep reads it (no input: the audit asks only which
// users it covers).
func (t Template) scope() fleet.Template {
	return fleet.Template{Name: t.Name, UserPath: t.Path, Accounts: t.Accounts}
}

// SweepName is how a row names a template's rotation: the schedule name
// the sweep signs its runs as (sweep.<template>).
func (t Template) SweepName() string { return "sweep." + t.Name }

// Options are what one audit needs beside its accounts.
type Options struct {
	Now        time.Time
	MaxAgeDays int // IAM.3's maxAccessKeyAge; 0 is DefaultMaxAgeDays
	WarnDays   int // a key within this many days of its deadline is due
	Managed    []Managed
	// Templates are the fleet's (issue 15): a user a configured rotation
	// does not name is the sweep's when its tag and path fit one.
	Templates []Template
	// Home is the account of the rotations that name none (the stack's
	// own); "" matches them to any account.
	Home string
	// ReportPoll and ReportAttempts pace the wait for IAM's credential
	// report (0: 2 s, 30 times).
	ReportPoll     time.Duration
	ReportAttempts int
}

// Run audits every account accounts lists, reading each through clients.
// An account that cannot be read is in the report with its error; the
// others are audited all the same.
func Run(ctx context.Context, accounts Accounts, clients Clients, opt Options) (Report, error) {
	if opt.MaxAgeDays == 0 {
		opt.MaxAgeDays = DefaultMaxAgeDays
	}
	if opt.ReportPoll == 0 {
		opt.ReportPoll = 2 * time.Second
	}
	if opt.ReportAttempts == 0 {
		opt.ReportAttempts = 30
	}
	list, err := accounts.Accounts(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list accounts: %w", err)
	}
	r := Report{At: opt.Now.UTC(), MaxAgeDays: opt.MaxAgeDays, WarnDays: opt.WarnDays, Rows: []Row{}}
	for _, a := range list {
		sum := AccountSummary{Account: a}
		rows, gen, err := auditAccount(ctx, a, clients, opt)
		if err != nil {
			sum.Error = err.Error()
		}
		if !gen.IsZero() {
			sum.CredentialReport = &gen
		}
		sum.Keys = len(rows)
		r.Accounts = append(r.Accounts, sum)
		r.Rows = append(r.Rows, rows...)
	}
	slices.SortStableFunc(r.Rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.User, b.User), a.Created.Compare(b.Created), cmp.Compare(a.KeyID, b.KeyID))
	})
	r.Summary = r.summarize()
	return r, nil
}

func auditAccount(ctx context.Context, a Account, clients Clients, opt Options) ([]Row, time.Time, error) {
	api, err := clients.IAM(ctx, a)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("account %s: %w", a.ID, err)
	}
	rep, err := fetchReport(ctx, api, opt.ReportPoll, opt.ReportAttempts)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("account %s: %w", a.ID, err)
	}
	var rows []Row
	for _, u := range rep.Users {
		if !u.hasKeys() {
			continue
		}
		ur, err := auditUser(ctx, a, api, u, opt)
		if err != nil {
			return rows, rep.Generated, fmt.Errorf("account %s: %w", a.ID, err)
		}
		rows = append(rows, ur...)
	}
	return rows, rep.Generated, nil
}

func auditUser(ctx context.Context, a Account, api IAM, u reportUser, opt Options) ([]Row, error) {
	var keys []types.AccessKeyMetadata
	p := iam.NewListAccessKeysPaginator(api, &iam.ListAccessKeysInput{UserName: aws.String(u.Name)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if nse := (*types.NoSuchEntityException)(nil); errors.As(err, &nse) {
			return nil, nil // deleted since the report
		}
		if err != nil {
			return nil, fmt.Errorf("list access keys of %s: %w", u.Name, err)
		}
		keys = append(keys, out.AccessKeyMetadata...)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	tp := iam.NewListUserTagsPaginator(api, &iam.ListUserTagsInput{UserName: aws.String(u.Name)})
	for tp.HasMorePages() {
		out, err := tp.NextPage(ctx)
		if nse := (*types.NoSuchEntityException)(nil); errors.As(err, &nse) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", u.Name, err)
		}
		for _, t := range out.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	tagged := readTags(tags, opt.Now)
	rot := managedBy(opt.Managed, opt.Home, a.ID, u.Name)
	if rot == nil {
		rot = sweptBy(opt.Templates, opt.Home, a.ID, u, tags)
	}
	var rows []Row
	for _, k := range keys {
		created := aws.ToTime(k.CreateDate).UTC()
		row := Row{
			Account: a.ID, User: u.Name, KeyID: aws.ToString(k.AccessKeyId), Status: string(k.Status),
			Created: created, AgeDays: int(opt.Now.Sub(created) / (24 * time.Hour)),
			Deadline: created.AddDate(0, 0, opt.MaxAgeDays),
			Owner:    tagged.owner, OwnerProblem: tagged.ownerProblem,
			Exemption: tagged.exemption,
		}
		row.DaysLeft = daysUntil(opt.Now, row.Deadline)
		if rk, ok := u.match(created); ok {
			row.LastUsed, row.LastUsedFrom = rk.LastUsed, FromCredentialReport
		} else {
			lu, err := lastUsed(ctx, api, row.KeyID)
			if err != nil {
				return nil, err
			}
			row.LastUsed, row.LastUsedFrom = lu, FromGetAccessKeyLastUsed
		}
		if rot != nil {
			row.Rotation = &RotationRef{Name: rot.Rotation, Schedule: rot.Schedule, Enabled: rot.Enabled, Next: rot.Next}
		}
		row.State = classify(row)
		row.Flag = flag(row, opt.WarnDays)
		rows = append(rows, row)
	}
	return rows, nil
}

// daysUntil is the whole days from now to t, rounded down; negative once
// t is past.
func daysUntil(now, t time.Time) int {
	d := t.Sub(now)
	n := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		n--
	}
	return n
}

func lastUsed(ctx context.Context, api IAM, keyID string) (*LastUsed, error) {
	out, err := api.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(keyID)})
	if err != nil {
		return nil, fmt.Errorf("last used of %s: %w", keyID, err)
	}
	if out.AccessKeyLastUsed == nil || out.AccessKeyLastUsed.LastUsedDate == nil {
		return nil, nil
	}
	l := out.AccessKeyLastUsed
	return &LastUsed{Date: l.LastUsedDate.UTC(), Service: aws.ToString(l.ServiceName), Region: aws.ToString(l.Region)}, nil
}

// tagged is what a user's keyrotator tags say.
type tagged struct {
	owner, ownerProblem string
	exemption           *ExemptionView
}

func readTags(tags map[string]string, now time.Time) tagged {
	var t tagged
	if v, ok := tags[TagOwner]; ok {
		if o, err := ParseOwner(v); err != nil {
			t.ownerProblem = err.Error()
		} else {
			t.owner = o.String()
		}
	}
	if v, ok := tags[TagExempt]; ok {
		e, err := ParseExempt(v)
		if err != nil {
			t.exemption = &ExemptionView{Problem: err.Error()}
		} else {
			t.exemption = &ExemptionView{Until: e.Until.Format(time.DateOnly), Reason: e.Reason, Expired: !e.ActiveAt(now)}
		}
	}
	return t
}

// managedBy is the rotation of user in account: an enabled one before a
// disabled one. A rotation naming no account is home's.
func managedBy(ms []Managed, home, account, user string) *Managed {
	var found *Managed
	for i, m := range ms {
		in := cmp.Or(m.Account, home)
		if m.User != user || (in != "" && in != account) {
			continue
		}
		if found == nil || (m.Enabled && !found.Enabled) {
			found = &ms[i]
		}
	}
	return found
}

// sweptBy is the fleet template that the sweep rotates u of account by,
// with u's tags, as a Managed; nil if none. Whether a template covers u
// is the sweep's own rule (fleet.Template.Covers), not a copy of it. A
// template naming no account covers home's, or any account when the
// audit knows no home (each audited account is then its own home), as a
// rotation naming none does (managedBy). A configured rotation of u
// comes first (managedBy), as in the sweep.
func sweptBy(ts []Template, home, account string, u reportUser, tags map[string]string) *Managed {
	for _, t := range ts {
		if !t.scope().Covers(cmp.Or(home, account), account, u.Path, tags) {
			continue
		}
		return &Managed{Account: account, User: u.Name, Rotation: t.SweepName(), Schedule: t.Schedule, Enabled: t.Enabled, Next: t.Next}
	}
	return nil
}

// classify: a rotation that runs manages the key; else a current
// exemption exempts it; an expired or malformed one counts as none.
func classify(r Row) State {
	switch e := r.Exemption; {
	case r.Rotation != nil && r.Rotation.Enabled:
		return StateManaged
	case e != nil && e.Problem != "":
		return StateExemptionMalformed
	case e != nil && e.Expired:
		return StateExemptionExpired
	case e != nil:
		return StateExempt
	}
	return StateUnmanaged
}

// flag marks an active key no rotation or exemption covers that is past
// its deadline (overdue) or within warnDays of it (due). Inactive keys
// pass IAM.3, which checks active keys only.
func flag(r Row, warnDays int) Flag {
	if r.Status != string(types.StatusTypeActive) || r.State == StateManaged || r.State == StateExempt {
		return FlagNone
	}
	switch {
	case r.DaysLeft < 0:
		return FlagOverdue
	case r.DaysLeft <= warnDays:
		return FlagDue
	}
	return FlagNone
}
