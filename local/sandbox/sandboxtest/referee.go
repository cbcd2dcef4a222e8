package sandboxtest

import (
	"github.com/keyrotator/keyrotator/iampolicy/referee"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
)

// RefereeCase is a decision of the sandbox's IAM enforcement as a case for
// the referee (@cloud-copilot/iam-simulate): the same principal, action,
// resource, context and policies, which it must decide the same way.
func RefereeCase(d authz.Decision) referee.Case {
	c := referee.Case{Principal: d.Principal.ARN, Action: d.Action, Resource: d.Resource, ResourceAccount: d.ResourceAccount,
		Context: d.Context, ResourcePolicy: d.ResourcePolicy, SessionPolicy: d.SessionPolicy}
	for _, p := range d.Identity {
		c.Identity = append(c.Identity, referee.Policy{Name: p.Name, Doc: p.Doc})
	}
	return c
}
