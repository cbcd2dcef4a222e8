package steps

import (
	"context"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Planner is one target kind's read-only answer to "what would you change":
// *secret.Target, *auth0.Target and *soracom.Target are Planners.
type Planner interface {
	Plan(ctx context.Context, tg rotation.Target, oldKeyID string) (rotation.Receipt, error)
}

// Preflight is, in one process, what the state machine runs before a run's
// first write: Validate's read-only checks (the input, the user, its keys,
// that the lock is free), then every target's Plan over the adapters, in the
// input's order (the Preflight Map runs them concurrently; each is
// read-only, so the order changes nothing). It writes nothing. The first
// error is returned as the state machine would name it: InvalidInput,
// UserNotFound, KeyLimitReached, RotationInProgress, TargetFailed, …
// A plan that says skip has no target plans.
func Preflight(ctx context.Context, v *Validate, planners map[string]Planner, ev ValidateInput) (rotation.Plan, []rotation.Receipt, error) {
	plan, err := v.Check(ctx, ev)
	if err != nil || plan.Skip {
		return plan, nil, err
	}
	receipts := make([]rotation.Receipt, 0, len(plan.Targets))
	for _, tg := range plan.Targets {
		p, ok := planners[tg.Type]
		if !ok {
			return plan, receipts, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("no planner for target type %s", tg.Type)}
		}
		r, err := p.Plan(ctx, tg, plan.OldKeyID)
		if err != nil {
			return plan, receipts, err
		}
		receipts = append(receipts, r)
	}
	return plan, receipts, nil
}
