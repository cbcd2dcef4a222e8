package schedule_test

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/cli/schedule"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler/schedexpr"
)

// RetiresWithin agrees with a brute force over the sandbox scheduler's own
// evaluator (schedexpr, written apart), run by run.
func TestRetiresWithin(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	from := time.Date(2026, 1, 15, 7, 13, 0, 0, time.UTC)
	for _, tc := range []struct {
		expr, tz string
		minAge   time.Duration
		want     time.Duration // 0: brute force only
	}{
		{"rate(1 day)", "UTC", 80 * day, 80 * day},
		{"rate(30 days)", "UTC", 80 * day, 90 * day},
		{"rate(30 days)", "UTC", 0, 30 * day},
		{"rate(7 days)", "UTC", 80 * day, 84 * day},
		{"cron(0 3 1 */2 ? *)", "Asia/Tokyo", 80 * day, 0},
		{"cron(0 3 1 */2 ? *)", "Asia/Tokyo", 50 * day, 0},
		{"cron(0 3 1 * ? *)", "UTC", 25 * day, 0},
		{"cron(0 1 ? * SUN *)", "America/New_York", 80 * day, 0},
		{"cron(30 2 * * ? *)", "Europe/Berlin", 80 * day, 0},
	} {
		s, err := schedule.Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation(tc.tz)
		got, ok := s.RetiresWithin(from, loc, tc.minAge)
		want := tc.want
		if want == 0 {
			theirs, err := schedexpr.Parse(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			var runs []time.Time
			for t, ok := theirs.Next(from, from); ok && t.Before(from.AddDate(3, 0, 0)); t, ok = theirs.Next(from, t) {
				runs = append(runs, t)
			}
			for i, r := range runs {
				if r.After(from.Add(366 * day)) {
					break
				}
				for _, q := range runs[i+1:] {
					if q.Sub(r) >= tc.minAge {
						want = max(want, q.Sub(r))
						break
					}
				}
			}
		}
		if !ok || got != want {
			t.Errorf("%s %s minAge %s: %s %v, want %s", tc.expr, tc.tz, tc.minAge, got, ok, want)
		}
	}
}
