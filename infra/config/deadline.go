package config

import (
	"fmt"
	"time"

	"github.com/keyrotator/keyrotator/cli/schedule"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// The IAM.3 deadline against the schedule (issue 15; docs/design.md,
// "Compliance timing"). A key made by one scheduled run is retired by the
// first run at least minKeyAgeDays later: RetiresWithin says how long that
// can take (the worst run of a year, in the schedule's time zone), then the
// run's own waits come on top (rotation.Input.Window). When even the
// earliest deactivation comes after maxKeyAgeDays, every key of the
// rotation fails IAM.3 whatever happens: the config is refused. When only
// the latest (the approval waited out, every check used, the grace) does,
// it is a warning (Config.Warnings), printed at synth.

// checkDeadline refuses or warns for one rotation; from is when the year
// of runs starts (synth's now; tests pass a fixed one).
func checkDeadline(r Rotation, in rotation.Input, from time.Time) (warning string, err error) {
	s, err := schedule.Parse(r.Schedule)
	if err != nil {
		// Syntax the evaluator does not take (W, #, L…) is not guessed at.
		return fmt.Sprintf("schedule %s: the IAM.3 deadline is not checked (%v)", r.Schedule, err), nil
	}
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		return "", err
	}
	day := 24 * time.Hour
	wait, ok := s.RetiresWithin(from, loc, time.Duration(in.MinKeyAgeDays)*day)
	if !ok {
		return fmt.Sprintf("schedule %s: no run of the coming year has a later run to retire its key: the IAM.3 deadline is not checked", r.Schedule), nil
	}
	earliest, latest, grace := in.Window()
	limit := time.Duration(in.MaxKeyAgeDays) * day
	days := func(d time.Duration) string { return fmt.Sprintf("%.1f days", d.Hours()/24) }
	switch {
	case wait+earliest > limit:
		return "", fmt.Errorf("a key made by one run waits up to %s for the run that retires it (schedule %s in %s, minKeyAgeDays %d), then waitDays %d until the earliest deactivation: %s, past maxKeyAgeDays %d (Security Hub IAM.3): run more often, lower minKeyAgeDays or waitDays, or set maxKeyAgeDays to your organization's limit",
			days(wait), r.Schedule, r.TimeZone, in.MinKeyAgeDays, in.WaitDays, days(wait+earliest), in.MaxKeyAgeDays)
	case wait+latest+grace > limit:
		return fmt.Sprintf("rotations (%s): a key can be %s old before it is retired (up to %s for its retiring run, %s of approval and %d checks %d days apart, %d days of grace), past maxKeyAgeDays %d: it makes Security Hub IAM.3 only if the first check passes in time",
			r.Name, days(wait+latest+grace), days(wait), days(latest-time.Duration(max(in.VerifyAttempts, 1))*earliest), in.VerifyAttempts, in.WaitDays, in.GraceDays, in.MaxKeyAgeDays), nil
	}
	return "", nil
}
