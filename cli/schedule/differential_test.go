package schedule_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/cli/schedule"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler/schedexpr"
)

// This package (status's and doctor's "next run") and the sandbox's
// scheduler (schedexpr, which fires the deployed schedules) were written
// apart; they must agree on every expression this package evaluates, in
// every time zone, across DST changes and month ends, or doctor would
// promise a run the scheduler does not make.
func TestAgreesWithTheSandboxScheduler(t *testing.T) {
	t.Parallel()
	exprs := []string{
		"cron(0 3 1 */2 ? *)", "cron(30 2 * * ? *)", "cron(0 1 ? * SUN *)", "cron(15 10 ? * MON-FRI *)",
		"cron(0 0 31 * ? *)", "cron(0 12 29 2 ? *)", "cron(0/20 * * * ? *)", "cron(0 2,14 1-7 * ? *)",
		"cron(0 3 ? * 2,4,6 *)", "cron(0 0 1 JAN,JUL ? 2027-2029)", "cron(45 1 * 3,10 ? *)",
		"rate(1 hour)", "rate(30 days)", "rate(7 days)", "rate(90 minutes)",
	}
	zones := []string{"UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"}
	start := time.Date(2026, 1, 15, 7, 13, 0, 0, time.UTC)
	var compared int
	ambiguous := map[string]bool{}
	for _, expr := range exprs {
		mine, err := schedule.Parse(expr)
		if errors.Is(err, schedule.ErrUnsupported) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		for _, tz := range zones {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := schedexpr.Parse(expr, tz)
			if err != nil {
				t.Fatalf("schedexpr %s %s: %v", expr, tz, err)
			}
			// Every 7 h 3 min for two years: every hour of the day, both DST changes.
			for after := start; after.Before(start.AddDate(2, 0, 0)); after = after.Add(7*time.Hour + 3*time.Minute) {
				a, okA := mine.Next(after, loc, start)
				b, okB := theirs.Next(start, after)
				compared++
				if okA && okB && !a.Equal(b) && fallBackBetween(loc, after.Add(-time.Hour), maxTime(a, b).Add(time.Hour)) {
					// Wall times that happen twice (fall back): each runs them
					// once, this package at their first occurrence, schedexpr
					// at the one time.Date picks (the second). AWS documents
					// only that the schedule "runs only once and doesn't
					// repeat its invocation"
					// (https://repost.aws/knowledge-center/eventbridge-scheduler-adjust-dst),
					// not which: listed, not failed.
					ambiguous[expr+" in "+tz+" on "+a.In(loc).Format("2006-01-02")] = true
					continue
				}
				if okA != okB || !a.Equal(b) {
					t.Fatalf("%s in %s after %s: cli/schedule says %s (%v), the sandbox's scheduler %s (%v)", expr, tz, after, a, okA, b, okB)
				}
			}
		}
	}
	if len(ambiguous) > 0 {
		t.Logf("the two differ only at fall-back wall times (first vs. second occurrence): %v", slices.Sorted(maps.Keys(ambiguous)))
	}
	if compared < 10000 {
		t.Errorf("only %d comparisons", compared)
	}
}

// fallBackBetween says whether loc's clocks go back between from and to.
func fallBackBetween(loc *time.Location, from, to time.Time) bool {
	_, before := from.In(loc).Zone()
	_, after := to.In(loc).Zone()
	return after < before
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
