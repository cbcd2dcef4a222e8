package sandbox

import (
	"sync"
	"time"
)

// Clock is the sandbox's notion of now: real time plus an offset that tests
// move forward (or back) and that shortened Wait states advance, so key ages,
// last-used dates and CloudTrail event times move as they would over days.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	now    func() time.Time
}

// NewClock returns a clock at real time.
func NewClock() *Clock { return &Clock{now: time.Now} }

// Now is the sandbox time, in UTC.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now().Add(c.offset).UTC()
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
	return c.Now()
}

// AdvanceTo moves the clock forward to t; it never moves it back, so two
// executions waiting at once both see time pass once.
func (c *Clock) AdvanceTo(t time.Time) time.Time {
	c.mu.Lock()
	if d := t.Sub(c.now().Add(c.offset)); d > 0 {
		c.offset += d
	}
	c.mu.Unlock()
	return c.Now()
}

// Set puts the clock at t (tests only: it may move time backwards).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.offset = t.Sub(c.now())
	c.mu.Unlock()
}

// Offset is how far the sandbox is ahead of real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// SetOffset restores an offset saved with the state.
func (c *Clock) SetOffset(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}
