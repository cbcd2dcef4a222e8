package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

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

func (a *app) auditCmd() *cobra.Command {
	var (
		configPath string
		accounts   []string
		org        bool
		maxAge     int
		warnDays   int
		asCSV      bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Every IAM user access key: age, last use, IAM.3 deadline, and what rotates or exempts it",
		Long: `List every IAM user access key of the account: its status, age, last use
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

Accounts: the caller's own; --account names accounts, --organization lists
the organization's (organizations:ListAccounts). Today only the caller's
own account can be read: any other is reported as not read, exit 1, until
multi-account rotation's member roles reach them.

Exit codes:
  0  no active key that nothing covers is within --warn-days of its deadline
  1  an error, or an account could not be read
  2  bad usage
  6  an uncovered active key is within --warn-days of its deadline (due)
  7  an uncovered active key is past its deadline (overdue)`,
		Example: `  keyrotator audit
  keyrotator audit --warn-days 30 --csv > keys.csv
  keyrotator audit --json | jq '.keys[] | select(.flag=="overdue")'`,
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
			rots, _, err := loadRotations(configPath)
			if err != nil {
				return err
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
			var list audit.Accounts = audit.Configured{{ID: me}}
			switch {
			case org && len(accounts) > 0:
				return usageErr("--organization", "and --account: choose one")
			case org:
				list = orgAccounts{api: organizations.NewFromConfig(cfg)}
			case len(accounts) > 0:
				var ids audit.Configured
				for _, id := range accounts {
					ids = append(ids, audit.Account{ID: id})
				}
				list = ids
			}
			now := a.clock.Now() // the server's, after a call: the sandbox's clock against the sandbox
			rep, err := audit.Run(ctx, list, ownAccount{id: me, iam: iam.NewFromConfig(cfg)}, audit.Options{
				Now: now, MaxAgeDays: maxAge, WarnDays: warnDays, Managed: managedRotations(rots, now),
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
			return auditExit(rep)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the deployment config, for the rotations (default keyrotator.config.json, else keyrotator.config.example.json)")
	f.StringSliceVar(&accounts, "account", nil, "account ids to audit (default: the caller's own)")
	f.BoolVar(&org, "organization", false, "audit every active account of the organization (organizations:ListAccounts; run from the management or a delegated administrator account)")
	f.IntVar(&maxAge, "max-age", audit.DefaultMaxAgeDays, "IAM.3's maxAccessKeyAge: a key's deadline is its creation + this many days")
	f.IntVar(&warnDays, "warn-days", DefaultWarnDays, "flag an uncovered key this many days before its deadline (exit 6)")
	f.BoolVar(&asCSV, "csv", false, "print CSV (a header, one line per key) on stdout")
	return cmd
}

// auditExit is the report's exit: accounts not read first (the rest of the
// report may be missing keys), then overdue, then due.
func auditExit(rep audit.Report) error {
	s := rep.Summary
	switch {
	case s.Failures > 0:
		return &exitError{code: ExitError, kind: "audit", err: fmt.Errorf("audit: %d account(s) could not be read", s.Failures), quiet: true}
	case rep.Verdict() == audit.VerdictOverdue:
		return &exitError{code: ExitAuditOverdue, kind: "audit", err: fmt.Errorf("audit: %d key(s) overdue, %d due", s.Overdue, s.Due), quiet: true}
	case rep.Verdict() == audit.VerdictDue:
		return &exitError{code: ExitAuditDue, kind: "audit", err: fmt.Errorf("audit: %d key(s) due within %d days", s.Due, rep.WarnDays), quiet: true}
	}
	return nil
}

// ownAccount is audit's way into accounts today: the caller's own
// credentials, which reach its own account only. Multi-account rotation
// brings a provider that assumes each member's role.
type ownAccount struct {
	id  string
	iam audit.IAM
}

func (o ownAccount) IAM(_ context.Context, a audit.Account) (audit.IAM, error) {
	if a.ID != o.id {
		return nil, fmt.Errorf("not reachable: keyrotator audit reads the caller's own account (%s) only until multi-account rotation (a member role to assume) is deployed", o.id)
	}
	return o.iam, nil
}

// managedRotations are the config's rotations as the audit matches them,
// each with its next run where the schedule says it (a rate schedule's
// runs depend on when it was made: left unknown).
func managedRotations(f rotationsFile, now time.Time) []audit.Managed {
	var out []audit.Managed
	for _, r := range f.Rotations {
		m := audit.Managed{User: r.Input.User, Rotation: r.Name, Schedule: r.Schedule, Enabled: r.enabled()}
		if s, err := schedule.Parse(r.Schedule); err == nil && m.Enabled {
			loc := time.UTC
			if r.TimeZone != "" {
				if l, err := time.LoadLocation(r.TimeZone); err == nil {
					loc = l
				}
			}
			if next, ok := s.Next(now, loc, time.Time{}); ok {
				n := next.UTC()
				m.Next = &n
			}
		}
		out = append(out, m)
	}
	return out
}
