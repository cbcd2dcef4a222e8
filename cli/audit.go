package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyrotator/keyrotator/cli/schedule"
	"github.com/keyrotator/keyrotator/functions/audit"
)

// Audit's exit codes beside the common ones (docs/cli.md).
const (
	ExitAuditDue     = 6 // an active key no rotation or exemption covers is within --warn-days of its deadline
	ExitAuditOverdue = 7 // ... is past its deadline
)

// DefaultWarnDays is audit's --warn-days.
const DefaultWarnDays = 14

// AuditSessionName is the role session audit opens in each account it
// reaches through --role-name: CloudTrail's record of the audit there.
const AuditSessionName = "keyrotator-audit"

func (a *app) auditCmd() *cobra.Command {
	var (
		configPath   string
		accounts     []string
		org          bool
		roleName     string
		externalID   string
		stackAccount string
		maxAge       int
		warnDays     int
		asCSV        bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Every IAM user access key: age, last use, IAM.3 deadline, and what rotates or exempts it",
		Long: `List every IAM user access key of the accounts: its status, age, last use
(date, service, region), its Security Hub IAM.3 deadline (created +
--max-age days), and whether a rotation of the config manages it (with its
next run), a keyrotator:exempt tag exempts it ("<until yyyy-mm-dd>
<reason>"; an expired or malformed one counts as none), or nothing does.
The keyrotator:owner tag (an SNS topic ARN or an e-mail address) is shown.

Where each figure comes from: the users with keys and each key's last use
from IAM's credential report (one call per account, but up to 4 hours old:
a key made since has its last use read by GetAccessKeyLastUsed, marked *);
key ids and status from ListAccessKeys; tags from ListUserTags; rotations
from the config (--config, else keyrotator.config.json, else the example).

Accounts: the stack's own (--stack-account, default the caller's) and every
account a rotation of the config names ("account" in its input); or
--accounts; or --organization, every active account of the organization
(organizations:ListAccounts). The caller's own account is read with the
caller's credentials, any other through --role-name: a role in each account
that the caller may assume (with --external-id if its trust asks for one).
Use a read-only audit role (e.g. one with the AWS managed SecurityAudit
policy), not keyrotator-member, which trusts only keyrotator's functions.
An account that cannot be read (no such role, a trust that does not allow
the caller, a wrong external id) is reported with its error; the others are
audited all the same, and the exit is 1.

A rotation manages the user of its own account only: user names are unique
within an account. CSV cells that begin with = + - or @ get a leading
apostrophe, so a spreadsheet reads text, not a formula; --json is exact.

Exit codes:
  0  no active key that nothing covers is within --warn-days of its deadline
  1  an error, or an account could not be read (whatever the rest says)
  2  bad usage
  6  an uncovered active key is within --warn-days of its deadline (due)
  7  an uncovered active key is past its deadline (overdue)`,
		Example: `  keyrotator audit
  keyrotator audit --warn-days 30 --csv > keys.csv
  keyrotator audit --json | jq '.keys[] | select(.flag=="overdue")'
  keyrotator audit --organization --role-name SecurityAudit
  keyrotator audit --accounts 222233334444,333344445555 --role-name SecurityAudit --external-id kr-audit`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if maxAge < 1 || maxAge > 3650 {
				return usageErr("--max-age", "is %d: want 1 to 3650 days", maxAge)
			}
			if warnDays < 0 || warnDays > maxAge {
				return usageErr("--warn-days", "is %d: want 0 to --max-age (%d)", warnDays, maxAge)
			}
			if asCSV && a.json {
				return usageErr("--csv", "and --json: choose one")
			}
			if org && len(accounts) > 0 {
				return usageErr("--organization", "and --accounts: choose one")
			}
			for _, id := range accounts {
				if !accountIDPattern.MatchString(id) {
					return usageErr("--accounts", "%q is not an AWS account id (12 digits)", id)
				}
			}
			if stackAccount != "" && !accountIDPattern.MatchString(stackAccount) {
				return usageErr("--stack-account", "%q is not an AWS account id (12 digits)", stackAccount)
			}
			if roleName != "" && !roleNamePattern.MatchString(roleName) {
				return usageErr("--role-name", "%q is not an IAM role name (up to 64 of letters, digits and +=,.@_-, after an optional path)", roleName)
			}
			if externalID != "" && (roleName == "" || len(externalID) < 2 || len(externalID) > 1224 || !externalIDPattern.MatchString(externalID)) {
				return usageErr("--external-id", "want 2 to 1224 of letters, digits and +=,.@:/-_, with --role-name")
			}
			rots, _, err := loadRotations(configPath)
			if err != nil {
				return err
			}
			for _, r := range rots.Rotations {
				if acct := r.Input.Account; acct != "" && !accountIDPattern.MatchString(acct) {
					return usageErr("--config", "rotation %s: input.account %q is not an AWS account id (12 digits)", r.Name, acct)
				}
			}
			ctx := cmd.Context()
			cfg, err := a.config(ctx)
			if err != nil {
				return err
			}
			self, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
			}
			me := aws.ToString(self.Account)
			partition := "aws"
			if p, err := arn.Parse(aws.ToString(self.Arn)); err == nil {
				partition = p.Partition
			}
			home := cmp.Or(stackAccount, me)
			var list audit.Accounts
			switch {
			case org:
				list = orgAccounts{api: organizations.NewFromConfig(cfg)}
			case len(accounts) > 0:
				list = configured(accounts)
			default:
				list = configured(configAccounts(home, rots))
			}
			now := a.clock.Now() // the server's, after a call: the sandbox's clock against the sandbox
			clients := &accountClients{self: me, partition: partition, cfg: cfg, roleName: roleName, externalID: externalID}
			rep, err := audit.Run(ctx, list, clients, audit.Options{
				Now: now, MaxAgeDays: maxAge, WarnDays: warnDays, Managed: managedRotations(rots, now), Templates: fleetTemplates(rots, now), Home: home,
			})
			if err != nil {
				return err
			}
			switch {
			case a.json:
				writeJSON(a.stdout, rep)
			case asCSV:
				if err := rep.WriteCSV(a.stdout); err != nil {
					return err
				}
			default:
				rep.WriteText(a.stdout)
			}
			return auditExit(rep, a.json)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the deployment config, for the rotations (default keyrotator.config.json, else keyrotator.config.example.json)")
	f.StringSliceVar(&accounts, "accounts", nil, "account ids to audit, comma-separated (default: the stack's own and every account the config's rotations name)")
	f.BoolVar(&org, "organization", false, "audit every active account of the organization (organizations:ListAccounts; run from the management or a delegated administrator account)")
	f.StringVar(&roleName, "role-name", "", "the role to assume in every account but the caller's own: a read-only audit role, e.g. with SecurityAudit (without it only the caller's account can be read)")
	f.StringVar(&externalID, "external-id", "", "the external id that role's trust asks for (sts:ExternalId)")
	f.StringVar(&stackAccount, "stack-account", "", "the keyrotator stack's account: the account of the config's rotations that name none (default: the caller's)")
	f.IntVar(&maxAge, "max-age", audit.DefaultMaxAgeDays, "IAM.3's maxAccessKeyAge: a key's deadline is its creation + this many days")
	f.IntVar(&warnDays, "warn-days", DefaultWarnDays, "flag an uncovered key this many days before its deadline (exit 6)")
	f.BoolVar(&asCSV, "csv", false, "print CSV (a header, one line per key) on stdout")
	// --account, the flag's first name, is --accounts still.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "account" {
			name = "accounts"
		}
		return pflag.NormalizedName(name)
	})
	return cmd
}

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// A role name after an optional path
	// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html):
	// nothing that could end the ARN it is put in.
	roleNamePattern = regexp.MustCompile(`^(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	// STS's ExternalId (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

func configured(ids []string) audit.Configured {
	out := make(audit.Configured, 0, len(ids))
	for _, id := range ids {
		out = append(out, audit.Account{ID: id})
	}
	return out
}

// configAccounts are the audit's default accounts: the stack's own, then
// every other account a rotation names, sorted.
func configAccounts(home string, f rotationsFile) []string {
	var others []string
	for _, r := range f.Rotations {
		if acct := r.Input.Account; acct != "" && acct != home && !slices.Contains(others, acct) {
			others = append(others, acct)
		}
	}
	slices.Sort(others)
	return append([]string{home}, others...)
}

// auditExit is the report's exit: accounts not read first (the rest of the
// report may be missing keys, so no verdict read from it can be 0), then
// overdue, then due. Accounts not read are said on stderr as well, unless
// the output is JSON (whose accounts[].error says it): a CSV has no place
// for them.
func auditExit(rep audit.Report, asJSON bool) error {
	s := rep.Summary
	switch {
	case s.Failures > 0:
		var why []string
		for _, a := range rep.Accounts {
			if a.Error != "" {
				why = append(why, a.Error)
			}
		}
		return &exitError{code: ExitError, kind: "audit", quiet: asJSON,
			err: fmt.Errorf("audit: %d account(s) not read (their keys are not in the report): %s", s.Failures, strings.Join(why, "; "))}
	case rep.Verdict() == audit.VerdictOverdue:
		return &exitError{code: ExitAuditOverdue, kind: "audit", err: fmt.Errorf("audit: %d key(s) overdue, %d due", s.Overdue, s.Due), quiet: true}
	case rep.Verdict() == audit.VerdictDue:
		return &exitError{code: ExitAuditDue, kind: "audit", err: fmt.Errorf("audit: %d key(s) due within %d days", s.Due, rep.WarnDays), quiet: true}
	}
	return nil
}

// accountClients are audit's way into accounts (audit.Clients): the
// caller's own with the caller's credentials, any other through roleName,
// assumed with the caller's credentials (stscreds, which renews the
// session as it nears its end).
type accountClients struct {
	self, partition      string
	cfg                  aws.Config
	roleName, externalID string
}

// IAM implements audit.Clients. It assumes the role at once, so that an
// account it cannot reach is reported as that, naming the role, before
// any IAM call.
func (c *accountClients) IAM(ctx context.Context, a audit.Account) (audit.IAM, error) {
	if a.ID == c.self {
		return iam.NewFromConfig(c.cfg), nil
	}
	if !accountIDPattern.MatchString(a.ID) {
		return nil, errors.New("not an AWS account id (12 digits): not read")
	}
	if c.roleName == "" {
		return nil, fmt.Errorf("not reachable: the caller's credentials reach account %s only; name a role to assume in each account with --role-name (docs/cli.md, audit)", c.self)
	}
	role := "arn:" + c.partition + ":iam::" + a.ID + ":role/" + c.roleName
	creds := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(c.cfg), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = AuditSessionName
		if c.externalID != "" {
			o.ExternalID = aws.String(c.externalID)
		}
	}))
	if _, err := creds.Retrieve(ctx); err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" {
			// One answer for four causes
			// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html#API_AssumeRole_Errors).
			return nil, fmt.Errorf("cannot assume role %s: the role is missing, its trust does not allow the caller, the external id is wrong or missing, or the caller's own policy does not allow sts:AssumeRole on it (AWS does not say which): %w", role, err)
		}
		return nil, fmt.Errorf("cannot assume role %s: %w", role, err)
	}
	cfg := c.cfg.Copy()
	cfg.Credentials = creds
	return iam.NewFromConfig(cfg), nil
}

// fleetTemplates are the config's fleet templates (issue 15) as the audit
// matches users to them, with the sweep's next run.
func fleetTemplates(f rotationsFile, now time.Time) []audit.Template {
	if f.Fleet == nil {
		return nil
	}
	next := nextRunUTC(f.Fleet.Schedule, f.Fleet.TimeZone, now)
	var out []audit.Template
	for _, t := range f.Fleet.Templates {
		out = append(out, audit.Template{Name: t.Name, Path: t.UserPath, Accounts: t.Accounts, Schedule: f.Fleet.Schedule, Enabled: true, Next: next})
	}
	return out
}

// managedRotations are the config's rotations as the audit matches them,
// each with its account (input.account; "" the stack's own) and its next
// run where the schedule says it (a rate schedule's runs depend on when it
// was made: left unknown).
func managedRotations(f rotationsFile, now time.Time) []audit.Managed {
	var out []audit.Managed
	for _, r := range f.Rotations {
		m := audit.Managed{Account: r.Input.Account, User: r.Input.User, Rotation: r.Name, Schedule: r.Schedule, Enabled: r.enabled()}
		if m.Enabled {
			m.Next = nextRunUTC(r.Schedule, r.TimeZone, now)
		}
		out = append(out, m)
	}
	return out
}

// nextRunUTC is a schedule expression's next run after now in its time
// zone ("" or unknown: UTC), in UTC; nil when the expression does not say
// (a rate schedule's runs depend on when it was made) or cannot be read.
func nextRunUTC(expr, tz string, now time.Time) *time.Time {
	s, err := schedule.Parse(expr)
	if err != nil {
		return nil
	}
	loc := time.UTC
	if l, err := time.LoadLocation(tz); err == nil && tz != "" {
		loc = l
	}
	next, ok := s.Next(now, loc, time.Time{})
	if !ok {
		return nil
	}
	n := next.UTC()
	return &n
}
