package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// UpdateTarget is the task of one target kind (UpdateSecret, UpdateAuth0,
// UpdateSoracom): a Preflight item (Plan<Kind>) plans its target; a
// Distribute item (Update<Kind>) gives it the new key, read from the record.
type UpdateTarget struct {
	Records recordStore
	Target  Target
	// Accounts reaches a member account (issue 15): a secret target that
	// lives in the rotation's member account is updated through its
	// member role (Clients.Secret); see targetIn.
	Accounts accounts
}

// Run gives the new key to the item's target and returns the receipt; with
// kind "plan" (the Preflight of every run) it changes nothing and returns
// what it would change.
func (u *UpdateTarget) Run(ctx context.Context, in rotation.TaskInput) (rotation.Receipt, error) {
	d := in.Data
	if in.Kind == "plan" {
		if d.Plan == nil || d.Target == nil {
			return rotation.Receipt{}, errors.New("plan target: the item lacks plan or target")
		}
		t, err := u.targetIn(ctx, d.Plan, *d.Target)
		if err != nil {
			return rotation.Receipt{}, err
		}
		return PlanTarget(ctx, t, *d.Target, d.Plan.Targets, d.Plan.OldKeyID, d.Plan.ResumeKeyID)
	}
	if d.Plan == nil || d.Key == nil || d.Target == nil {
		return rotation.Receipt{}, errors.New("update target: the item lacks plan, key or target")
	}
	t, err := u.targetIn(ctx, d.Plan, *d.Target)
	if err != nil {
		return rotation.Receipt{}, err
	}
	key, err := u.Records.Key(ctx, d.Plan.UserKey(), d.Key.VersionID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	return t.Update(ctx, *d.Target, d.Execution, d.Plan.OldKeyID, key)
}

// targetIn is the code that reaches tg for plan's rotation. Only a
// `secret` target can live in a member account (Auth0 and SORACOM are
// outside AWS): its account is its secretId's ARN's, or, for a name, the
// rotation's account. One in the rotation's member account is updated
// through the member role; one in the stack's own account with the
// Lambda's own role (the config's grants); one in any other account is
// refused (TargetFailed) before anything is written — the member role
// cannot reach it, and keyrotator never writes a secret in an account the
// rotation does not name.
func (u *UpdateTarget) targetIn(ctx context.Context, plan *rotation.Plan, tg rotation.Target) (Target, error) {
	if tg.Type != rotation.TargetSecret || plan.Account == "" {
		return u.Target, nil
	}
	where, isARN := rotation.SecretAccount(tg.SecretID)
	if !isARN || where == plan.Account {
		c, err := memberClients(ctx, u.Accounts, "updatesecret", plan.Account, plan.User, "secret")
		if err != nil {
			return nil, err
		}
		return c.Secret, nil
	}
	if u.Accounts == nil {
		return nil, &rotation.MemberAccessDenied{Account: plan.Account, Task: "updatesecret", Reason: "this function is not wired for member accounts"}
	}
	own, err := u.Accounts.Own(ctx)
	if err != nil {
		return nil, err
	}
	if where == own {
		return u.Target, nil
	}
	return nil, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s is in account %s, neither the rotation's (%s, reached through its member role) nor this stack's: keyrotator updates a secret only in one of those; nothing was changed", tg.SecretID, where, plan.Account)}
}

// byTarget indexes receipts by their target's name.
func byTarget(receipts []rotation.Receipt) map[string]rotation.Receipt {
	out := make(map[string]rotation.Receipt, len(receipts))
	for _, r := range receipts {
		out[r.Target] = r
	}
	return out
}
