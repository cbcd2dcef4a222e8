package rotation

import (
	"fmt"
	"time"
)

// The compliance deadline of the key a rotation retires: Security Hub's
// IAM.3 (the AWS Config rule access-keys-rotated) fails an active access
// key older than maxAccessKeyAge days, 90 by default
// (https://docs.aws.amazon.com/securityhub/latest/userguide/iam-controls.html#iam-3,
// https://docs.aws.amazon.com/config/latest/developerguide/access-keys-rotated.html).
// An inactive key passes, so what must happen before the deadline is the
// old key's deactivation; the grace after it counts too, since a use
// reported late in it switches the key back on (DeleteOldKey).

// The deadline's verdicts.
const (
	DeadlineOK     = "ok"      // deactivated and past its grace before the deadline, whatever the checks find
	DeadlineAtRisk = "at-risk" // only if the approval is answered and the first check passes in time
	DeadlineMissed = "missed"  // even the earliest deactivation comes after the deadline
)

// Deadline is the old key's IAM.3 deadline against the run's plan.
type Deadline struct {
	MaxKeyAgeDays int       `json:"maxKeyAgeDays"`
	At            time.Time `json:"at"` // the old key's creation + MaxKeyAgeDays
	// EarliestDeactivation: the first check finds the key unused (and an
	// approval, if required, is answered at once).
	EarliestDeactivation time.Time `json:"earliestDeactivation"`
	// LatestDeactivation: the approval waited out and every check used.
	LatestDeactivation time.Time `json:"latestDeactivation"`
	// Retired is LatestDeactivation + the grace: deleted, beyond a late use.
	Retired time.Time `json:"retired"`
	Verdict string    `json:"verdict"`
}

// Window is the run's planned waits from its start to the old key's
// deactivation, earliest and latest, and the grace after it.
func (in Input) Window() (earliest, latest, grace time.Duration) {
	day := 24 * time.Hour
	wait := time.Duration(in.WaitDays) * day
	latest = time.Duration(max(in.VerifyAttempts, 1)) * wait
	if in.RequireApproval && !in.DryRun {
		latest += time.Duration(in.ApprovalTimeoutHours) * time.Hour
	}
	return wait, latest, time.Duration(in.GraceDays) * day
}

// PlanDeadline is the deadline of a key made at created, for a run of in
// starting at start.
func PlanDeadline(created, start time.Time, in Input) Deadline {
	maxAge := in.MaxKeyAgeDays
	if maxAge == 0 {
		maxAge = DefaultMaxKeyAgeDays
	}
	earliest, latest, grace := in.Window()
	d := Deadline{
		MaxKeyAgeDays: maxAge, At: created.UTC().AddDate(0, 0, maxAge),
		EarliestDeactivation: start.UTC().Add(earliest), LatestDeactivation: start.UTC().Add(latest),
	}
	d.Retired = d.LatestDeactivation.Add(grace)
	switch {
	case d.EarliestDeactivation.After(d.At):
		d.Verdict = DeadlineMissed
	case d.Retired.After(d.At):
		d.Verdict = DeadlineAtRisk
	default:
		d.Verdict = DeadlineOK
	}
	return d
}

// String says the deadline in one sentence for the plan and the alerts.
func (d Deadline) String() string {
	const f = "2006-01-02 15:04Z"
	s := fmt.Sprintf("IAM.3 deadline %s (created + %d days); deactivation planned %s at the earliest, %s at the latest, deleted by %s",
		d.At.Format(f), d.MaxKeyAgeDays, d.EarliestDeactivation.Format(f), d.LatestDeactivation.Format(f), d.Retired.Format(f))
	switch d.Verdict {
	case DeadlineMissed:
		s += ": MISSED even if the first check passes"
	case DeadlineAtRisk:
		s += ": AT RISK if the approval waits or a check finds the key still in use"
	}
	return s
}
