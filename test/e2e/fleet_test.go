package e2e

import (
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
)

// fleetAccounts are the fleet's accounts (BenchmarkFleet, issue 15: 1,000
// users across 5 accounts): five member accounts, none of them the
// stack's own. Five members and not the own account and four: an
// organization's keyrotator account holds no application users (AWS's
// own key rotation sample runs from one account into every member the
// same way), so every rotation takes the one path a fleet takes, through
// the member role, and the per-rotation figures are one path's; and each
// account's CloudTrail bucket (2 lookups a second per account and
// region) serves a fifth of the fleet, the keyrotator account's buckets
// none of it.
var fleetAccounts = []string{"510000000001", "520000000002", "530000000003", "540000000004", "550000000005"}

// fleetWorld is keyrotator deployed in the sandbox's own account with
// the member stack (infra/member) deployed into each of accounts, as
// StackSets would: trusting the main stack's task roles with the golden
// config's external id, scoped to the golden fleet template's path
// (/fleet/) and its secrets (fleet/*). The template's tasks may assume
// every one of those member roles (grantMemberRoles), and the deployed
// fleet config's golden template names the accounts, so the sweep lists
// each through its member role.
type fleetWorld struct {
	*H
	accounts []string
	admin    map[string]aws.Config // each member account's administrator
}

func startFleet(t testing.TB, opts fullsandbox.Options, accounts []string) *fleetWorld {
	t.Helper()
	opts.Accounts = accounts
	h := startIn(t, opts, pipelinetest.Deploy{AnyUser: true, Edit: grantMemberRoles(accounts...)})
	w := &fleetWorld{H: h, accounts: accounts, admin: map[string]aws.Config{}}
	for _, acct := range accounts {
		w.admin[acct] = h.adminConfig(t, acct)
		if _, err := pipeline.DeployStack(t.Context(), h.sb.Sandbox, pipeline.StackOptions{
			Template: filepath.Join(root, pipeline.MemberTemplate), StackName: "keyrotator-member", Account: acct,
			Parameters: map[string]string{"MainAccountId": h.sb.Server.Account(), "ExternalId": memberExtID, "UserPath": "/fleet/",
				"TrustedRoleNames": pipeline.StackName + "-*", "TargetNamePattern": "fleet/*"},
		}); err != nil {
			t.Fatalf("deploy the member stack into %s: %v", acct, err)
		}
	}
	h.editFleetConfig(t, func(m map[string]any) {
		ts, _ := m["templates"].([]any)
		for _, tm := range ts {
			if tm := tm.(map[string]any); tm["name"] == goldenTemplate {
				tm["accounts"] = accounts
				return
			}
		}
		t.Fatalf("the deployed fleet config has no template %s: %v", goldenTemplate, m)
	})
	return w
}
