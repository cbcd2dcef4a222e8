package pipeline

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// MemberTemplate is the checked-in synth of the member-account stack
// (infra/member), relative to the repository root: kept in step with synth
// by the infra tests, as DefaultTemplate is.
const MemberTemplate = "infra/testdata/member.golden.json"

// StackOptions say what to deploy, into which account and as whom: any
// template, the member-account stack among them.
type StackOptions struct {
	Template  string // the CloudFormation template (JSON)
	StackName string // AWS::StackName
	// Account is where the stack goes (AWS::AccountId, and the account
	// whose IAM, Secrets Manager … its resources belong to); "" is the
	// sandbox's own. A member account must have been added
	// (fullsandbox.Sandbox.AddAccount, Options.Accounts).
	Account string
	// Caller deploys, as CloudFormation calls with the deployer's
	// credentials (a StackSets execution role in a member account); nil
	// is the account's admin identity.
	Caller *sandbox.Principal
	// Parameters are the template's parameter values, beyond its defaults.
	Parameters map[string]string
	// Skip lists resource types to record and skip (cfn.Options.Skip).
	Skip []string
}

// DeployStack deploys a template into an account of w, as CloudFormation
// (or a StackSets stack instance) deploys it there: the pseudo parameters
// are the account's and the sandbox's region, every resource is made in
// the account. A stack deployed before under the same name in the same
// account is updated.
func DeployStack(ctx context.Context, w *fullsandbox.Sandbox, o StackOptions) (*cfn.Stack, error) {
	srv := w.Server
	account := o.Account
	if account == "" {
		account = srv.Account()
	}
	if !srv.HasAccount(account) {
		return nil, fmt.Errorf("deploy %s into account %s: the sandbox does not hold that account (add it with AddAccount)", o.StackName, account)
	}
	caller := o.Caller
	if caller == nil {
		admin, ok := w.AdminOf(account)
		if !ok {
			return nil, fmt.Errorf("deploy %s into account %s: the account has no admin identity (add it with AddAccount)", o.StackName, account)
		}
		caller = &admin.Principal
	}
	if caller.Account != account {
		return nil, fmt.Errorf("deploy %s into account %s: the caller %s is of account %s; CloudFormation deploys with the target account's credentials", o.StackName, account, caller.ARN, caller.Account)
	}
	tpl, err := cfn.ParseFile(o.Template)
	if err != nil {
		return nil, err
	}
	provisioners := Provisioners(srv)
	if account != srv.Account() {
		// Only the services that keep resources per account can make a
		// member account's: a type of another fails the deploy, named.
		provisioners = slices.DeleteFunc(provisioners, func(p cfn.Provisioner) bool {
			_, ok := p.(sandbox.AccountScoped)
			return !ok
		})
	}
	key := cfn.StackKey(srv.Account(), account, o.StackName)
	prev, _ := w.Stacks.Get(key)
	stack, err := cfn.Deploy(ctx, tpl, cfn.Options{
		StackName: o.StackName, Parameters: o.Parameters, Skip: o.Skip, Previous: prev,
		Region: srv.Region(), Account: account, Partition: "aws",
		Provisioners: provisioners, Caller: *caller, Logger: srv.Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("deploy %s into account %s: %w", o.Template, account, err)
	}
	w.Stacks.PutAt(key, stack)
	srv.MarkDirty()
	return stack, nil
}
