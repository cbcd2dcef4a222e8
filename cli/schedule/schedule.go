// Package schedule says when an EventBridge Scheduler expression runs next:
// `cron(min hour day-of-month month day-of-week year)` and `rate(n unit)`,
// evaluated in the schedule's time zone as Scheduler does, daylight saving
// time included. `keyrotator status` uses it for "next scheduled run".
// Syntax it does not evaluate is refused as unsupported, never guessed.
package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupported marks valid Scheduler syntax this package does not
// evaluate (W, #, L in day-of-week…): status says so rather than guess.
var ErrUnsupported = errors.New("unsupported")

// Schedule is a parsed expression.
type Schedule struct {
	Expr string
	cron *cron
	rate time.Duration
}

// Parse reads a cron(…) or rate(…) expression.
func Parse(expr string) (Schedule, error) {
	s := Schedule{Expr: expr}
	switch {
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		c, err := parseCron(expr[len("cron(") : len(expr)-1])
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %s: %w", expr, err)
		}
		s.cron = c
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		d, err := parseRate(expr[len("rate(") : len(expr)-1])
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %s: %w", expr, err)
		}
		s.rate = d
	default:
		return Schedule{}, fmt.Errorf("schedule %q: want cron(…) or rate(…)", expr)
	}
	return s, nil
}

// Rate is the interval of a rate(…) schedule; 0 for cron.
func (s Schedule) Rate() time.Duration { return s.rate }

// Describe says a rate schedule's interval in words: "every 7 days".
func (s Schedule) Describe() string {
	if s.cron != nil {
		return s.Expr
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if s.rate%u.d == 0 {
			n := int(s.rate / u.d)
			if n == 1 {
				return "every " + u.name
			}
			return fmt.Sprintf("every %d %ss", n, u.name)
		}
	}
	return "every " + s.rate.String()
}

// Next is the first run strictly after after. For cron, in loc's wall
// clock: a time that does not exist (spring forward) is skipped and one
// that happens twice (fall back) runs once, at its first occurrence, as
// Scheduler documents. For rate, runs are last + k×rate (Scheduler's
// "days" are 24 hours whatever DST does); with no last run the time is
// unknown and ok is false.
func (s Schedule) Next(after time.Time, loc *time.Location, last time.Time) (next time.Time, ok bool) {
	if s.cron == nil {
		if last.IsZero() {
			return time.Time{}, false
		}
		n := last.Add(s.rate)
		if !n.After(after) {
			k := after.Sub(last)/s.rate + 1
			n = last.Add(k * s.rate)
		}
		return n, true
	}
	return s.cron.next(after, loc)
}

func parseRate(body string) (time.Duration, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return 0, errors.New("want rate(value unit)")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("value %q: want a positive whole number", f[0])
	}
	unit := map[string]time.Duration{
		"minute": time.Minute, "minutes": time.Minute,
		"hour": time.Hour, "hours": time.Hour,
		"day": 24 * time.Hour, "days": 24 * time.Hour,
	}[f[1]]
	if unit == 0 {
		return 0, fmt.Errorf("unit %q: want minutes, hours or days", f[1])
	}
	return time.Duration(n) * unit, nil
}

// cron is a parsed cron expression: the allowed values of each field.
type cron struct {
	minutes, hours, months, years []int // sorted
	dom                           set   // nil: ? (any)
	lastDOM                       bool  // L: the last day of the month
	dow                           set   // nil: ? (any); 0 = Sunday
}

type set map[int]bool

type field struct {
	name     string
	min, max int
	names    []string // names[i] is min+i
}

var (
	fMinute = field{name: "minutes", min: 0, max: 59}
	fHour   = field{name: "hours", min: 0, max: 23}
	fDOM    = field{name: "day-of-month", min: 1, max: 31}
	fMonth  = field{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	// AWS numbers days of the week 1-7 from Sunday.
	fDOW  = field{name: "day-of-week", min: 1, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	fYear = field{name: "year", min: 1970, max: 2199}
)

func parseCron(body string) (*cron, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, fmt.Errorf("want 6 fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &cron{}
	var err error
	if c.minutes, err = fMinute.values(f[0]); err != nil {
		return nil, err
	}
	if c.hours, err = fHour.values(f[1]); err != nil {
		return nil, err
	}
	if c.months, err = fMonth.values(f[3]); err != nil {
		return nil, err
	}
	if c.years, err = fYear.values(f[5]); err != nil {
		return nil, err
	}
	domAny, dowAny := f[2] == "?", f[4] == "?"
	if domAny == dowAny {
		return nil, errors.New("one of day-of-month and day-of-week must be ? (and only one)")
	}
	if !domAny {
		switch {
		case f[2] == "L":
			c.lastDOM = true
		case strings.ContainsAny(f[2], "LW"):
			return nil, fmt.Errorf("day-of-month %q: %w (only a plain L, the last day of the month)", f[2], ErrUnsupported)
		default:
			v, err := fDOM.values(f[2])
			if err != nil {
				return nil, err
			}
			c.dom = toSet(v, 0)
		}
	}
	if !dowAny {
		if strings.ContainsAny(f[4], "L#") { // no day name holds an L

			return nil, fmt.Errorf("day-of-week %q: %w (L and # are not evaluated)", f[4], ErrUnsupported)
		}
		v, err := fDOW.values(f[4])
		if err != nil {
			return nil, err
		}
		c.dow = toSet(v, -1) // 1 (SUN) → time.Sunday (0)
	}
	return c, nil
}

func toSet(v []int, shift int) set {
	s := set{}
	for _, x := range v {
		s[x+shift] = true
	}
	return s
}

// values expands one field: *, a value, a name, lists (a,b), ranges (a-b)
// and steps (*/n, a/n, a-b/n).
func (f field) values(expr string) ([]int, error) {
	if expr == "?" {
		return nil, fmt.Errorf("%s: ? is only for day-of-month or day-of-week", f.name)
	}
	seen := set{}
	for part := range strings.SplitSeq(expr, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s %q: step %q is not a positive number", f.name, part, stepText)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return nil, err
			}
			if hi, err = f.value(b); err != nil {
				return nil, err
			}
			if lo > hi {
				return nil, fmt.Errorf("%s %q: %w (a range that wraps around)", f.name, part, ErrUnsupported)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return nil, err
			}
			lo = v
			if !hasStep {
				hi = v // a/n runs from a to the end; a alone is a
			}
		}
		for v := lo; v <= hi; v += step {
			seen[v] = true
		}
	}
	out := make([]int, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func (f field) value(s string) (int, error) {
	if i := slices.Index(f.names, strings.ToUpper(s)); i >= 0 && s != "" {
		return f.min + i, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if strings.ContainsAny(s, "LW#") {
			return 0, fmt.Errorf("%s %q: %w", f.name, s, ErrUnsupported)
		}
		return 0, fmt.Errorf("%s: %q is not a value", f.name, s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %d is out of range %d-%d", f.name, n, f.min, f.max)
	}
	return n, nil
}

// horizon bounds the search: a year list can name only far-off years, or
// none that is left (cron(0 0 1 1 ? 2020)).
const horizon = 10 * 366

func (c *cron) next(after time.Time, loc *time.Location) (time.Time, bool) {
	after = after.In(loc)
	day := time.Date(after.Year(), after.Month(), after.Day(), 0, 0, 0, 0, time.UTC) // a calendar date, no zone
	for range horizon {
		y, m, d := day.Date()
		if y > c.years[len(c.years)-1] {
			return time.Time{}, false
		}
		if c.dayMatches(day) {
			for _, h := range c.hours {
				for _, mi := range c.minutes {
					t, ok := wallTime(y, m, d, h, mi, loc)
					if ok && t.After(after) {
						return t, true
					}
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}, false
}

func (c *cron) dayMatches(day time.Time) bool {
	y, m, d := day.Date()
	if !slices.Contains(c.years, y) || !slices.Contains(c.months, int(m)) {
		return false
	}
	switch {
	case c.lastDOM:
		return day.AddDate(0, 0, 1).Month() != m
	case c.dom != nil:
		return c.dom[d]
	default:
		return c.dow[int(day.Weekday())]
	}
}

// wallTime is the first instant loc's clock reads y-m-d h:mi; ok is false
// when the clock never reads it (skipped by a spring-forward).
func wallTime(y int, m time.Month, d, h, mi int, loc *time.Location) (time.Time, bool) {
	t := time.Date(y, m, d, h, mi, 0, 0, loc)
	if t.Hour() != h || t.Minute() != mi || t.Day() != d {
		return time.Time{}, false
	}
	// A fall-back hour reads twice: Date may pick either; take the first.
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute} {
		if e := t.Add(-back); e.Hour() == h && e.Minute() == mi && e.Day() == d {
			return e, true
		}
	}
	return t, true
}
