// Package schedexpr reads EventBridge Scheduler's schedule expressions —
// cron(minutes hours day-of-month month day-of-week year), rate(value
// unit) and at(yyyy-mm-ddThh:mm:ss) — in a schedule's time zone, and says
// when each next comes due.
//
// The syntax and its wildcards (, - * ? / L W #) are EventBridge's:
// https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
// and https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html.
// Daylight saving time as the Scheduler guide says: a cron time that falls
// in the spring-forward gap is skipped, one in the repeated autumn hour runs
// once; a rate's days are 24-hour durations.
package schedexpr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Expression is a parsed schedule expression in its time zone.
type Expression struct {
	Text string
	Loc  *time.Location
	kind int // cronKind, rateKind, atKind
	cron *cron
	rate time.Duration
	at   time.Time
}

const (
	cronKind = iota
	rateKind
	atKind
)

// Parse reads expr in the IANA time zone tz ("" is UTC).
func Parse(expr, tz string) (*Expression, error) {
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("ScheduleExpressionTimezone %q: %w", tz, err)
	}
	e := &Expression{Text: expr, Loc: loc}
	switch {
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		e.kind = cronKind
		e.cron, err = parseCron(expr[len("cron(") : len(expr)-1])
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		e.kind = rateKind
		e.rate, err = parseRate(expr[len("rate(") : len(expr)-1])
	case strings.HasPrefix(expr, "at(") && strings.HasSuffix(expr, ")"):
		e.kind = atKind
		e.at, err = time.ParseInLocation("2006-01-02T15:04:05", expr[len("at("):len(expr)-1], loc)
	default:
		err = fmt.Errorf("want cron(...), rate(...) or at(...)")
	}
	if err != nil {
		return nil, fmt.Errorf("invalid schedule expression %q: %w", expr, err)
	}
	return e, nil
}

// OneTime says whether the expression is an at() expression.
func (e *Expression) OneTime() bool { return e.kind == atKind }

// IsRate says whether the expression is a rate() expression.
func (e *Expression) IsRate() bool { return e.kind == rateKind }

// Next is the first time the schedule comes due strictly after after.
// start anchors a rate (the schedule's StartDate, or when it was created: a
// rate schedule without a StartDate invokes its target at once, then every
// rate). ok is false when nothing is due any more (an at() in the past, a
// cron whose years are over).
func (e *Expression) Next(start, after time.Time) (time.Time, bool) {
	switch e.kind {
	case rateKind:
		if after.Before(start) {
			return start, true
		}
		n := after.Sub(start)/e.rate + 1
		return start.Add(n * e.rate), true
	case atKind:
		if e.at.After(after) {
			return e.at, true
		}
		return time.Time{}, false
	}
	return e.cron.next(after.In(e.Loc))
}

func parseRate(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("want rate(value unit)")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("value %q is not a positive integer", f[0])
	}
	unit := f[1]
	// "If the value is equal to 1, then the unit must be singular" (the
	// EventBridge rate syntax the Scheduler shares).
	if (n == 1) != !strings.HasSuffix(unit, "s") {
		return 0, fmt.Errorf("unit %q does not agree with value %d", unit, n)
	}
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		return time.Duration(n) * time.Minute, nil
	case "hour":
		return time.Duration(n) * time.Hour, nil
	case "day":
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("unit %q: want minutes, hours or days", unit)
}

// cron is a parsed six-field cron expression.
type cron struct {
	minutes, hours, months [61]bool // index by value
	years                  map[int]bool
	anyYear                bool
	dom                    dayRule
	dow                    dayRule
	domAny, dowAny         bool // '?' or '*' there
}

// dayRule is what a day field asks for.
type dayRule struct {
	set        [32]bool // plain values (day of month 1-31, day of week 1-7)
	last       bool     // dom L: the month's last day; dow nL: the last weekday n (lastDow)
	lastDow    int
	lastWeek   bool // dom LW: the last weekday (Mon–Fri) of the month
	nearest    int  // dom nW: the weekday nearest day n
	nth, nthOf int  // dow d#n: the nth weekday d of the month
}

var monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

func parseCron(s string) (*cron, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("want 6 fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &cron{years: map[int]bool{}}
	if err := fill(c.minutes[:], f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("minutes: %w", err)
	}
	if err := fill(c.hours[:], f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("hours: %w", err)
	}
	if err := fill(c.months[:], f[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("month: %w", err)
	}
	if f[5] == "*" {
		c.anyYear = true
	} else {
		ys := make([]bool, 2200)
		if err := fill(ys, f[5], 1970, 2199, nil); err != nil {
			return nil, fmt.Errorf("year: %w", err)
		}
		for y, ok := range ys {
			if ok {
				c.years[y] = true
			}
		}
	}
	dom, dow := f[2], f[4]
	// "You can't specify the Day-of-month and Day-of-week fields in the
	// same cron expression. If you specify a value or a * in one of the
	// fields, you must use a ? in the other."
	if (dom == "?") == (dow == "?") {
		return nil, fmt.Errorf("one of day-of-month and day-of-week must be ?, the other not")
	}
	var err error
	if dom == "?" {
		c.domAny = true
		c.dowAny = dow == "*"
		c.dow, err = parseDow(dow)
	} else {
		c.dowAny = true
		c.domAny = dom == "*"
		c.dom, err = parseDom(dom)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func parseDom(s string) (dayRule, error) {
	var r dayRule
	switch {
	case s == "L":
		r.last = true
		return r, nil
	case s == "LW":
		r.lastWeek = true
		return r, nil
	case strings.HasSuffix(s, "W"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "W"))
		if err != nil || n < 1 || n > 31 {
			return r, fmt.Errorf("day-of-month: bad %q", s)
		}
		r.nearest = n
		return r, nil
	}
	if err := fill(r.set[:], s, 1, 31, nil); err != nil {
		return r, fmt.Errorf("day-of-month: %w", err)
	}
	return r, nil
}

func parseDow(s string) (dayRule, error) {
	var r dayRule
	if s == "L" { // L alone: the last day of the week, Saturday
		return parseDow("7")
	}
	if d, ok := strings.CutSuffix(s, "L"); ok {
		n, err := dayValue(d)
		if err != nil {
			return r, fmt.Errorf("day-of-week: %w", err)
		}
		r.last, r.lastDow = true, n
		return r, nil
	}
	if d, nth, ok := strings.Cut(s, "#"); ok {
		n, err := dayValue(d)
		k, kerr := strconv.Atoi(nth)
		if err != nil || kerr != nil || k < 1 || k > 5 {
			return r, fmt.Errorf("day-of-week: bad %q", s)
		}
		r.nthOf, r.nth = n, k
		return r, nil
	}
	if err := fill(r.set[:], s, 1, 7, dayNames); err != nil {
		return r, fmt.Errorf("day-of-week: %w", err)
	}
	return r, nil
}

func dayValue(s string) (int, error) {
	if n, ok := dayNames[strings.ToUpper(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 7 {
		return 0, fmt.Errorf("bad day %q", s)
	}
	return n, nil
}

// fill marks in set the values a field's comma list names: *, a, a-b,
// a/step, */step, a-b/step (a range may wrap: FRI-MON).
func fill(set []bool, field string, lo, hi int, names map[string]int) error {
	value := func(s string) (int, error) {
		if n, ok := names[strings.ToUpper(s)]; ok {
			return n, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("value %q out of %d-%d", s, lo, hi)
		}
		return n, nil
	}
	for item := range strings.SplitSeq(field, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 {
				return fmt.Errorf("bad increment %q", item)
			}
			step = n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if from, err = value(a); err != nil {
				return err
			}
			if to, err = value(b); err != nil {
				return err
			}
		default:
			n, err := value(rng)
			if err != nil {
				return err
			}
			from = n
			if !hasStep {
				to = n
			}
		}
		span := to - from
		if span < 0 { // wraps: FRI-MON
			span += hi - lo + 1
		}
		for i := 0; i <= span; i += step {
			v := from + i
			if v > hi {
				v -= hi - lo + 1
			}
			set[v] = true
		}
	}
	return nil
}

// next is the first minute after t (in t's location) the cron matches.
func (c *cron) next(t time.Time) (time.Time, bool) {
	loc := t.Location()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for y, m, d := day.Date(); y <= 2199; {
		if !c.anyYear && !c.years[y] {
			y, m, d = y+1, time.January, 1
			continue
		}
		if !c.months[m] {
			if m == time.December {
				y, m, d = y+1, time.January, 1
			} else {
				m, d = m+1, 1
			}
			continue
		}
		if d <= daysIn(y, m) && c.dayMatches(y, m, d) {
			for h := 0; h < 24; h++ {
				if !c.hours[h] {
					continue
				}
				for mi := 0; mi < 60; mi++ {
					if !c.minutes[mi] {
						continue
					}
					at := time.Date(y, m, d, h, mi, 0, 0, loc)
					if at.Hour() != h || at.Minute() != mi || at.Day() != d {
						continue // in the spring-forward gap: skipped
					}
					if at.After(t) {
						return at, true
					}
				}
			}
		}
		d++
		if d > daysIn(y, m) {
			if m == time.December {
				y, m, d = y+1, time.January, 1
			} else {
				m, d = m+1, 1
			}
		}
	}
	return time.Time{}, false
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// weekday is 1 (Sunday) to 7 (Saturday), cron's numbering.
func weekday(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()) + 1
}

func (c *cron) dayMatches(y int, m time.Month, d int) bool {
	if !c.domAny {
		r := c.dom
		last := daysIn(y, m)
		switch {
		case r.last:
			return d == last
		case r.lastWeek:
			return d == nearestWeekday(y, m, last)
		case r.nearest > 0:
			return r.nearest <= last && d == nearestWeekday(y, m, r.nearest)
		}
		return r.set[d]
	}
	if !c.dowAny {
		r := c.dow
		wd := weekday(y, m, d)
		switch {
		case r.last:
			return wd == r.lastDow && d+7 > daysIn(y, m)
		case r.nth > 0:
			return wd == r.nthOf && (d-1)/7+1 == r.nth
		}
		return r.set[wd]
	}
	return true
}

// nearestWeekday is the Monday–Friday nearest day n of the month, never
// crossing into another month (Quartz's W, which EventBridge follows).
func nearestWeekday(y int, m time.Month, n int) int {
	switch weekday(y, m, n) {
	case 7: // Saturday: Friday, or Monday if the 1st
		if n == 1 {
			return 3
		}
		return n - 1
	case 1: // Sunday: Monday, or Friday if the last
		if n == daysIn(y, m) {
			return n - 2
		}
		return n + 1
	}
	return n
}
