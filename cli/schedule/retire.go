package schedule

import "time"

// RetiresWithin is, for a rotation whose scheduled run skips a key younger
// than minAge, the longest a key made by one run waits for the run that
// retires it: the largest (first run at least minAge after r) − r over the
// runs r of the year after from, in loc (DST and month lengths included).
// A rate schedule's is minAge rounded up to whole intervals (one at least).
// ok is false when no run of the year has a later one to retire its key
// (a schedule that stops). The config check at synth (infra/config) holds
// it against the key's IAM.3 deadline.
func (s Schedule) RetiresWithin(from time.Time, loc *time.Location, minAge time.Duration) (time.Duration, bool) {
	if s.cron == nil {
		n := max(1, (minAge+s.rate-1)/s.rate)
		return n * s.rate, true
	}
	const year = 366 * 24 * time.Hour
	// Enough runs to find each first-year run's retirer: a year more than
	// minAge past it; a minutely cron is cut short (its gaps are minutes).
	const maxRuns = 200_000
	end := from.Add(year + minAge + year)
	var runs []time.Time
	for t, ok := s.cron.next(from, loc); ok && t.Before(end) && len(runs) < maxRuns; t, ok = s.cron.next(t, loc) {
		runs = append(runs, t)
	}
	var longest time.Duration
	found := false
	j := 0
	for i, r := range runs {
		if r.Sub(from) > year {
			break
		}
		j = max(j, i+1)
		for j < len(runs) && runs[j].Sub(r) < minAge {
			j++
		}
		if j == len(runs) {
			break
		}
		longest, found = max(longest, runs[j].Sub(r)), true
	}
	return longest, found
}
