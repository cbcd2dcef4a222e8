package sandbox_test

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// A Wait's flow (Flow) waits for every Hold to be released; explicit moves
// (Advance, AdvanceTo) do not, and real time passes throughout.
func TestClockHoldDefersFlow(t *testing.T) {
	t.Parallel()
	c := sandbox.NewClock()
	week := 7 * 24 * time.Hour
	start := c.Now()

	release := c.Hold()
	other := c.Hold()
	c.Flow(start.Add(week))
	c.Flow(start.Add(time.Hour)) // an earlier report changes nothing
	if moved := c.Now().Sub(start); moved > time.Minute {
		t.Fatalf("a held clock flowed %v", moved)
	}
	release()
	release() // idempotent: the other Hold still holds
	if moved := c.Now().Sub(start); moved > time.Minute {
		t.Fatalf("the clock flowed %v with one Hold still in force", moved)
	}
	other()
	if moved := c.Now().Sub(start); moved < week {
		t.Fatalf("after the last release the clock moved %v, want the week a Wait reported", moved)
	}

	// Unheld, Flow moves it at once; Advance is never held back.
	at := c.Now()
	c.Flow(at.Add(time.Hour))
	if moved := c.Now().Sub(at); moved < time.Hour {
		t.Fatalf("an unheld Flow moved the clock %v, want 1h", moved)
	}
	defer c.Hold()()
	at = c.Now()
	c.Advance(time.Hour)
	if moved := c.Now().Sub(at); moved < time.Hour {
		t.Fatalf("Advance under a Hold moved the clock %v, want 1h", moved)
	}
}
