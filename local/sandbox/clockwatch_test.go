package sandbox_test

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Every way of moving the clock signals its watchers; a stopped watch and
// a move that moves nothing (AdvanceTo the past) do not.
func TestClockWatchSignalsMoves(t *testing.T) {
	t.Parallel()
	c := sandbox.NewClock()
	moved, stop := c.Watch()
	signalled := func() bool {
		select {
		case <-moved:
			return true
		default:
			return false
		}
	}
	moves := []struct {
		name string
		move func()
	}{
		{"Advance", func() { c.Advance(time.Hour) }},
		{"AdvanceTo", func() { c.AdvanceTo(c.Now().Add(time.Hour)) }},
		{"Flow", func() { c.Flow(c.Now().Add(time.Hour)) }},
		{"Set", func() { c.Set(c.Now().Add(-time.Hour)) }},
		{"SetOffset", func() { c.SetOffset(48 * time.Hour) }},
		{"Hold released", func() { r := c.Hold(); c.Flow(c.Now().Add(time.Hour)); _ = signalled(); r() }},
	}
	for _, m := range moves {
		m.move()
		if !signalled() {
			t.Errorf("%s: no signal", m.name)
		}
	}
	c.AdvanceTo(c.Now().Add(-time.Hour))
	if signalled() {
		t.Error("AdvanceTo the past moved nothing but signalled")
	}
	c.Advance(time.Hour)
	c.Advance(time.Hour)
	if !signalled() || signalled() {
		t.Error("two moves: want one pending signal")
	}
	stop()
	c.Advance(time.Hour)
	if signalled() {
		t.Error("a stopped watch was signalled")
	}
}
