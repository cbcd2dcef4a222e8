package steps

import (
	"context"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Clients are the adapters a step calls a rotation's account with (issue
// 15): its IAM keys, who made a key (its CloudTrail), who the step is
// there, its CloudTrail's uses of a key, its users' owner tags, and a
// `secret` target over its Secrets Manager. A step's own fields are the
// stack's own account's; a member account's come from the step's
// Accounts, each step taking the ones it calls. Records, connections, the
// lock, the alert topic and executions are never among them: they stay in
// the keyrotator account.
type Clients struct {
	Keys   keyStore
	Makers keyMakers
	Self   identity
	Trail  trailLookup
	Owners owners
	Secret Target
}

// accounts reaches a rotation's account: which account is the stack's own,
// and a member account's Clients over a session of its member role,
// narrowed to the step's own calls on the rotation's user
// (*member.Clients[steps.Clients] in the Lambdas, over member.Provider). A
// role that cannot be assumed is *rotation.MemberAccessDenied.
type accounts interface {
	Own(ctx context.Context) (string, error)
	Member(ctx context.Context, account, user string) (Clients, error)
}

// memberClients are the Clients of a member account's user, each of need
// present (what the step calls there); a step with no Accounts (a deploy
// that reaches no member account) is refused as MemberAccessDenied before
// any change.
func memberClients(ctx context.Context, a accounts, task, account, user string, need ...string) (Clients, error) {
	if a == nil {
		return Clients{}, &rotation.MemberAccessDenied{Account: account, Task: task, Reason: "this function is not wired for member accounts"}
	}
	c, err := a.Member(ctx, account, user)
	if err != nil {
		return Clients{}, err
	}
	for _, n := range need {
		missing := false
		switch n {
		case "keys":
			missing = c.Keys == nil
		case "makers":
			missing = c.Makers == nil
		case "self":
			missing = c.Self == nil
		case "trail":
			missing = c.Trail == nil
		case "owners":
			missing = c.Owners == nil
		case "secret":
			missing = c.Secret == nil
		}
		if missing {
			return Clients{}, &rotation.Internal{Reason: fmt.Sprintf("%s: no %s client for member account %s", task, n, account)}
		}
	}
	return c, nil
}

// memberAccount is the member account an input names, "" for the stack's
// own (absent, or its id): asked of a only when the input names one.
func memberAccount(ctx context.Context, a accounts, in rotation.Input) (string, error) {
	if in.Account == "" {
		return "", nil
	}
	if a == nil {
		return "", &rotation.MemberAccessDenied{Account: in.Account, Task: "validate", Reason: "this function is not wired for member accounts"}
	}
	own, err := a.Own(ctx)
	if err != nil {
		return "", err
	}
	return in.MemberAccount(own), nil
}
