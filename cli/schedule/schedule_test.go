package schedule

import (
	"errors"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The expected times are worked out by hand (and checked against Python's
// zoneinfo): the 2026 US DST change is 8 March 02:00 EST → 03:00 EDT and
// 1 November 02:00 EDT → 01:00 EST.
func TestCronNext(t *testing.T) {
	tests := []struct {
		name, expr, zone, after, want string // want "" : no run
	}{
		{"every other month, Tokyo", "cron(0 3 1 */2 ? *)", "Asia/Tokyo", "2026-03-15T00:00:00Z", "2026-04-30T18:00:00Z"},
		{"weekdays by name", "cron(0 10 ? * MON-FRI *)", "UTC", "2026-01-03T12:00:00Z", "2026-01-05T10:00:00Z"},
		{"2 is Monday, strictly after", "cron(30 8 ? * 2 *)", "UTC", "2026-01-05T08:30:00Z", "2026-01-12T08:30:00Z"},
		{"1 is Sunday, 7 Saturday", "cron(0 0 ? * 1,7 *)", "UTC", "2026-01-02T05:00:00Z", "2026-01-03T00:00:00Z"},
		{"L: last day of February", "cron(0 0 L * ? *)", "UTC", "2026-02-10T00:00:00Z", "2026-02-28T00:00:00Z"},
		{"L: leap year", "cron(0 0 L * ? *)", "UTC", "2028-02-10T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"L: 31-day month", "cron(0 0 L * ? *)", "UTC", "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"},
		{"steps and ranges", "cron(0/15 9-17/4 * * ? *)", "UTC", "2026-01-01T13:50:00Z", "2026-01-01T17:00:00Z"},
		{"steps roll to the next day", "cron(0/15 9-17/4 * * ? *)", "UTC", "2026-01-01T17:46:00Z", "2026-01-02T09:00:00Z"},
		{"month names in a list", "cron(0 12 1 JAN,JUL ? *)", "UTC", "2026-01-01T12:00:00Z", "2026-07-01T12:00:00Z"},
		{"year list", "cron(0 0 1 1 ? 2027,2029)", "UTC", "2027-06-01T00:00:00Z", "2029-01-01T00:00:00Z"},
		{"no year left", "cron(0 0 1 1 ? 2020)", "UTC", "2026-01-01T00:00:00Z", ""},
		{"New York, before DST", "cron(0 3 * * ? *)", "America/New_York", "2026-03-06T09:00:00Z", "2026-03-07T08:00:00Z"},
		{"New York, across spring forward", "cron(0 3 * * ? *)", "America/New_York", "2026-03-07T09:00:00Z", "2026-03-08T07:00:00Z"},
		{"spring forward: 02:30 does not exist, skipped", "cron(30 2 * * ? *)", "America/New_York", "2026-03-07T08:00:00Z", "2026-03-09T06:30:00Z"},
		{"fall back: 01:30 first occurrence (EDT)", "cron(30 1 * * ? *)", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"},
		{"fall back: runs once, not again in EST", "cron(30 1 * * ? *)", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		{"fall back: the repeated hour runs once (01:00, 01:30 EST skipped)", "cron(0/30 * * * ? *)", "America/New_York", "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Next(utc(tt.after), loc, time.Time{})
			if tt.want == "" {
				if ok {
					t.Fatalf("Next = %v, want no run", got)
				}
				return
			}
			if !ok || !got.Equal(utc(tt.want)) {
				t.Fatalf("Next(%s) = %v (%v), want %s", tt.after, got.UTC(), ok, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		expr        string
		unsupported bool
	}{
		{"cron(0 0 ? * 6L *)", true},
		{"cron(0 0 ? * L *)", true},
		{"cron(0 0 15W * ? *)", true},
		{"cron(0 0 LW * ? *)", true},
		{"cron(0 0 ? * 2#1 *)", true},
		{"cron(0 0 ? * FRI-MON *)", true},
		{"cron(0 0 * * * *)", false},   // day-of-month and day-of-week both given
		{"cron(0 0 ? * ? *)", false},   // neither
		{"cron(60 0 * * ? *)", false},  // minute out of range
		{"cron(0 0 * * ?)", false},     // five fields
		{"cron(0 0 * FOO ? *)", false}, // not a month
		{"cron(*/0 0 * * ? *)", false}, // step 0
		{"rate(0 days)", false},
		{"rate(5 weeks)", false},
		{"rate(days)", false},
		{"at(2026-01-01T00:00:00)", false},
	}
	for _, tt := range tests {
		_, err := Parse(tt.expr)
		if err == nil {
			t.Errorf("Parse(%q) accepted", tt.expr)
			continue
		}
		if got := errors.Is(err, ErrUnsupported); got != tt.unsupported {
			t.Errorf("Parse(%q) = %v: unsupported %v, want %v", tt.expr, err, got, tt.unsupported)
		}
	}
}

func TestRateNext(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		expr, last, after, want string
	}{
		{"rate(7 days)", "2026-01-01T03:00:00Z", "2026-01-05T00:00:00Z", "2026-01-08T03:00:00Z"},
		{"rate(7 days)", "2026-01-01T03:00:00Z", "2026-01-20T00:00:00Z", "2026-01-22T03:00:00Z"}, // runs missed: the next on the grid
		{"rate(1 day)", "2026-03-07T08:00:00Z", "2026-03-07T09:00:00Z", "2026-03-08T08:00:00Z"},  // 24 h, DST or not
		{"rate(90 minutes)", "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z"},
		{"rate(12 hours)", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T12:00:00Z"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := s.Next(utc(tt.after), ny, utc(tt.last))
		if !ok || !got.Equal(utc(tt.want)) {
			t.Errorf("%s from %s after %s = %v, want %s", tt.expr, tt.last, tt.after, got.UTC(), tt.want)
		}
	}
	s, _ := Parse("rate(7 days)")
	if _, ok := s.Next(utc("2026-01-01T00:00:00Z"), ny, time.Time{}); ok {
		t.Error("rate with no run yet has a next time")
	}
	for expr, want := range map[string]string{"rate(7 days)": "every 7 days", "rate(1 day)": "every day", "rate(90 minutes)": "every 90 minutes", "rate(2 hours)": "every 2 hours"} {
		s, _ := Parse(expr)
		if got := s.Describe(); got != want {
			t.Errorf("Describe(%s) = %q, want %q", expr, got, want)
		}
	}
}
