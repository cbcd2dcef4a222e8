package schedexpr_test

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/scheduler/schedexpr"
)

func TestNext(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name, expr, tz, after, want string
	}{
		// The golden template's schedule: 03:00 Tokyo on the 1st of every other month.
		{"every other month, Tokyo", "cron(0 3 1 */2 ? *)", "Asia/Tokyo", "2026-12-06T04:00:00Z", "2027-01-01T03:00:00+09:00"},
		{"the same from the minute it fired", "cron(0 3 1 */2 ? *)", "Asia/Tokyo", "2027-01-01T03:00:00+09:00", "2027-03-01T03:00:00+09:00"},
		{"daily 10:00 UTC", "cron(0 10 * * ? *)", "", "2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"},
		{"every 15 minutes", "cron(0/15 * * * ? *)", "UTC", "2026-03-01T10:07:00Z", "2026-03-01T10:15:00Z"},
		{"weekdays 18:00 by name", "cron(0 18 ? * MON-FRI *)", "UTC", "2026-12-04T18:00:00Z", "2026-12-07T18:00:00Z"},    // Fri → Mon
		{"wrapping day range FRI-MON", "cron(0 0 ? * FRI-MON *)", "UTC", "2026-12-07T00:00:00Z", "2026-12-11T00:00:00Z"}, // Mon → Fri
		{"last day of the month", "cron(0 0 L * ? *)", "UTC", "2028-02-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"last weekday of the month", "cron(0 0 LW * ? *)", "UTC", "2026-01-01T00:00:00Z", "2026-01-30T00:00:00Z"}, // 31st is a Saturday
		{"weekday nearest the 1st, a Saturday", "cron(0 0 1W * ? *)", "UTC", "2026-07-31T00:00:00Z", "2026-08-03T00:00:00Z"},
		{"weekday nearest the 15th, a Sunday", "cron(0 0 15W * ? *)", "UTC", "2026-03-01T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"second Tuesday", "cron(0 12 ? * 3#2 *)", "UTC", "2026-12-01T00:00:00Z", "2026-12-08T12:00:00Z"},
		{"last Friday", "cron(0 12 ? * 6L *)", "UTC", "2026-12-01T00:00:00Z", "2026-12-25T12:00:00Z"},
		{"Feb 29 only in leap years", "cron(30 2 29 2 ? *)", "UTC", "2026-12-06T04:00:00Z", "2028-02-29T02:30:00Z"},
		{"the 31st only in months that have it", "cron(45 23 31 * ? *)", "UTC", "2027-02-27T23:59:00Z", "2027-03-31T23:45:00Z"},
		{"years listed", "cron(0 0 1 1 ? 2030,2032)", "UTC", "2030-01-01T00:00:00Z", "2032-01-01T00:00:00Z"},
		// New York springs forward 2026-03-08 02:00 → 03:00: 02:30 does not
		// exist that day and is skipped.
		{"DST gap skipped", "cron(30 2 * * ? *)", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-09T02:30:00-04:00"},
		{"DST gap: the day before still runs", "cron(30 2 * * ? *)", "America/New_York", "2026-03-06T12:00:00Z", "2026-03-07T02:30:00-05:00"},
		// It falls back 2026-11-01 02:00 → 01:00: 01:30 comes twice, runs once.
		{"DST repeated hour runs once", "cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T01:30:00-04:00"},
		{"DST repeated hour: next is the next day", "cron(30 1 * * ? *)", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T01:30:00-05:00"},
		{"09:00 local across the change", "cron(0 9 * * ? *)", "Europe/Berlin", "2026-03-29T06:00:00Z", "2026-03-29T09:00:00+02:00"},
		{"one-time in its zone", "at(2027-01-15T09:30:00)", "Asia/Tokyo", "2026-12-06T00:00:00Z", "2027-01-15T09:30:00+09:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, err := schedexpr.Parse(c.expr, c.tz)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, ok := e.Next(time.Time{}, utc(c.after))
			if !ok || !got.Equal(utc(c.want)) {
				t.Fatalf("Next(%s) = %v %v, want %s", c.after, got, ok, c.want)
			}
		})
	}
}

func TestNextRateAndAtEnd(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	e, err := schedexpr.Parse("rate(30 days)", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	// A rate without a StartDate invokes at once, then every rate.
	if got, _ := e.Next(start, start.Add(-time.Nanosecond)); !got.Equal(start) {
		t.Errorf("first: %v, want the start", got)
	}
	if got, _ := e.Next(start, start); !got.Equal(start.Add(30 * 24 * time.Hour)) {
		t.Errorf("second: %v", got)
	}
	if got, _ := e.Next(start, start.Add(95*24*time.Hour)); !got.Equal(start.Add(120 * 24 * time.Hour)) {
		t.Errorf("after a jump of 95 days: %v, want day 120", got)
	}
	// Days are 24-hour durations, whatever the zone's DST does.
	ny, _ := schedexpr.Parse("rate(1 day)", "America/New_York")
	s := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	if got, _ := ny.Next(s, s); got.Sub(s) != 24*time.Hour {
		t.Errorf("a rate day across DST lasted %v", got.Sub(s))
	}
	at, _ := schedexpr.Parse("at(2026-01-01T00:00:00)", "UTC")
	if _, ok := at.Next(time.Time{}, start); ok {
		t.Error("an at() in the past is still due")
	}
	if !at.OneTime() {
		t.Error("at() is not one-time")
	}
	yrs, _ := schedexpr.Parse("cron(0 0 1 1 ? 2020)", "UTC")
	if _, ok := yrs.Next(time.Time{}, start); ok {
		t.Error("a cron whose years are over is still due")
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ expr, tz string }{
		{"cron(0 3 1 */2 *)", ""},          // five fields
		{"cron(0 3 1 * * *)", ""},          // neither day field is ?
		{"cron(0 3 ? * ? *)", ""},          // both are
		{"cron(60 3 * * ? *)", ""},         // minute out of range
		{"cron(0 3 * FOO ? *)", ""},        // no such month
		{"cron(0 3 ? * 8 *)", ""},          // no such day
		{"cron(0 3 ? * 3#6 *)", ""},        // no sixth
		{"rate(1 days)", ""},               // 1 wants the singular
		{"rate(5 minute)", ""},             // more wants the plural
		{"rate(0 minutes)", ""},            //
		{"rate(5 weeks)", ""},              // no such unit
		{"at(2026-13-01T00:00:00)", ""},    //
		{"every day", ""},                  //
		{"cron(0 3 * * ? *)", "Mars/Base"}, // no such zone
	} {
		if _, err := schedexpr.Parse(c.expr, c.tz); err == nil {
			t.Errorf("Parse(%q, %q) accepted", c.expr, c.tz)
		}
	}
}
