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
	holds  int       // Holds in force
	flowTo time.Time // the furthest a Flow asked for while held
	// watchers are told of every move (Watch).
	watchers map[int]chan struct{}
	nextW    int
}

// Watch returns a channel that is signalled whenever the clock is moved
// (Advance, AdvanceTo, Flow, a Hold's release, Set, SetOffset), so a service
// that acts at times on the clock (the scheduler firing schedules,
// CloudWatch evaluating alarms) notices a jump at once. A signal is never
// blocked on: one pending signal stands for any number of moves. Real time
// passing is no move; watchers keep their own timers for that. stop ends
// the watch.
func (c *Clock) Watch() (moved <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.watchers == nil {
		c.watchers = map[int]chan struct{}{}
	}
	id := c.nextW
	c.nextW++
	c.watchers[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.watchers, id)
		c.mu.Unlock()
	}
}

// notifyLocked signals the watchers; callers hold c.mu.
func (c *Clock) notifyLocked() {
	for _, ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
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
	c.notifyLocked()
	c.mu.Unlock()
	return c.Now()
}

// AdvanceTo moves the clock forward to t; it never moves it back, so two
// executions waiting at once both see time pass once.
func (c *Clock) AdvanceTo(t time.Time) time.Time {
	c.mu.Lock()
	c.advanceToLocked(t)
	c.mu.Unlock()
	return c.Now()
}

func (c *Clock) advanceToLocked(t time.Time) {
	if d := t.Sub(c.now().Add(c.offset)); d > 0 {
		c.offset += d
		c.notifyLocked()
	}
}

// Flow moves the clock forward to t as a shortened Wait does (a Step
// Functions runner reports how far its Wait has got), unless a Hold is in
// force: then when the last Hold is released.
func (c *Clock) Flow(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds > 0 {
		if t.After(c.flowTo) {
			c.flowTo = t
		}
		return
	}
	c.advanceToLocked(t)
}

// Hold keeps shortened Waits from moving the clock (Flow) until release:
// for work that takes milliseconds of real time and must take as little
// sandbox time, such as a simulated application reading its key and then
// calling AWS with it. While any execution Waits, the clock moves days in
// milliseconds (7 days in 60 ms at a WaitScale of 1e-7), so without a Hold
// a call made just after a read could be stamped a week after it — after
// its rotation's cut-over and settle period, a use of the old key no app
// in AWS would make. Real time still passes; Advance, AdvanceTo and Set
// are not held back. Release is idempotent.
func (c *Clock) Hold() (release func()) {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.holds--
			if c.holds == 0 && !c.flowTo.IsZero() {
				c.advanceToLocked(c.flowTo)
				c.flowTo = time.Time{}
			}
		})
	}
}

// Set puts the clock at t (tests only: it may move time backwards).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.offset = t.Sub(c.now())
	c.notifyLocked()
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
	c.notifyLocked()
	c.mu.Unlock()
}
