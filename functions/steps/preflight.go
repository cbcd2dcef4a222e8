package steps

import (
	"context"
	"fmt"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Preflight is, in one process, what the state machine runs before a run's
// first write: Validate's read-only checks (the input, the user, its keys,
// that the lock is free), then every target's Plan over the adapters, in the
// input's order (the Preflight Map runs them concurrently; each is
// read-only, so the order changes nothing). It writes nothing. The first
// error is returned as the state machine would name it: InvalidInput,
// UserNotFound, KeyLimitReached, RotationInProgress, TargetFailed, …
// A plan that says skip has no target plans.
func Preflight(ctx context.Context, v *Validate, targets Targets, ev ValidateInput) (rotation.Plan, []rotation.Receipt, error) {
	plan, err := v.Check(ctx, ev)
	if err != nil || plan.Skip {
		return plan, nil, err
	}
	receipts := make([]rotation.Receipt, 0, len(plan.Targets))
	for _, tg := range plan.Targets {
		p, ok := targets[tg.Type]
		if !ok {
			return plan, receipts, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("no planner for target type %s", tg.Type)}
		}
		r, err := p.Plan(ctx, tg, plan.OldKeyID, plan.ResumeKeyID)
		if err != nil {
			return plan, receipts, err
		}
		for _, o := range receipts {
			if err := samePlace(r, o); err != nil {
				return plan, receipts, err
			}
		}
		receipts = append(receipts, r)
	}
	return plan, receipts, nil
}

// PlanTarget is one Preflight Map item (Update* with kind plan): tg's plan,
// and the plans of the input's other targets of its type, so that two
// targets that resolve to one place — one secret (by DescribeSecret's ARN,
// whatever name or ARN each gave), one Auth0 tenant, one SORACOM operator —
// are refused in every run, dry or not, before its first write (I2): the
// Distribute Map updates them side by side, each reads the place, sets its
// part and writes it back, so one undoes the other while both receipts say
// the new key is in. A peer whose own plan fails is left to its own item.
func PlanTarget(ctx context.Context, p Planner, tg rotation.Target, all []rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error) {
	r, err := p.Plan(ctx, tg, oldKeyID, resumeKeyID)
	if err != nil {
		return r, err
	}
	for _, o := range all {
		if o.Type != tg.Type || o.Name == tg.Name {
			continue
		}
		or, err := p.Plan(ctx, o, oldKeyID, resumeKeyID)
		if err != nil {
			continue
		}
		if err := samePlace(r, or); err != nil {
			return rotation.Receipt{}, err
		}
	}
	return r, nil
}

// samePlace refuses two plans of one type that resolve to the same place,
// naming both targets (in name order, so every item words it alike), the
// place, and why its kind cannot share one (rotation.Kind's Place, Clash).
func samePlace(a, b rotation.Receipt) error {
	k, ok := rotation.KindOf(a.Type)
	if !ok {
		k = rotation.Kind{Place: a.Type + " target", Clash: "both would update it side by side and one would undo the other"}
	}
	if a.Type != b.Type || a.Target == b.Target || a.Where == "" || !k.SamePlace(a.Where, b.Where) {
		return nil
	}
	if b.Target < a.Target {
		a, b = b, a
	}
	return &rotation.TargetFailed{Target: a.Target, Reason: fmt.Sprintf("targets %s and %s resolve to the same %s, %s: %s; nothing was changed", a.Target, b.Target, k.Place, a.Where, k.Clash)}
}
