package lambda

import "testing"

// A function's log keeps its newest lines and counts those it let go, so
// the leak canary can tell it no longer sees every line.
func TestLogRingCountsEvictions(t *testing.T) {
	t.Parallel()
	r := ring{max: 3}
	for i := range 5 {
		r.add(LogLine{PID: i})
	}
	if ls := r.lines(); len(ls) != 3 || ls[0].PID != 2 || r.evictedLines() != 2 {
		t.Fatalf("lines %+v, evicted %d; want the newest 3, 2 evicted", ls, r.evictedLines())
	}
	next := ring{max: 2}
	next.adopt(&r)
	if ls := next.lines(); len(ls) != 2 || ls[0].PID != 3 || next.evictedLines() != 3 {
		t.Fatalf("adopted %+v, evicted %d; want the newest 2, 3 evicted", ls, next.evictedLines())
	}
	r.clear()
	if r.evictedLines() != 0 {
		t.Fatalf("after a clear: %d evicted", r.evictedLines())
	}
}
