package lambda

import (
	"slices"
	"sync"
	"time"
)

// LogLine is one line a function instance wrote to stdout or stderr, or one
// of the lines Lambda adds (START, END, REPORT, timeouts, exits).
type LogLine struct {
	Time      time.Time `json:"time"`
	PID       int       `json:"pid"`
	RequestID string    `json:"requestId,omitempty"` // the invocation in progress, if any
	Message   string    `json:"message"`
}

// ring keeps a function's newest log lines.
type ring struct {
	mu      sync.Mutex
	max     int
	buf     []LogLine
	start   int   // index of the oldest line once the buffer is full
	evicted int64 // lines let go to make room, since the last clear
}

func (r *ring) add(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < r.max {
		r.buf = append(r.buf, l)
		return
	}
	r.buf[r.start] = l
	r.start = (r.start + 1) % r.max
	r.evicted++
}

func (r *ring) evictedLines() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evicted
}

func (r *ring) lines() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LogLine, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

func (r *ring) clear() {
	r.mu.Lock()
	r.buf, r.start, r.evicted = nil, 0, 0
	r.mu.Unlock()
}

// adopt takes the lines of the ring a re-registered function had.
func (r *ring) adopt(old *ring) {
	lines, evicted := old.lines(), old.evictedLines()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evicted = evicted
	if len(lines) > r.max {
		r.evicted += int64(len(lines) - r.max)
		lines = lines[len(lines)-r.max:]
	}
	r.buf, r.start = slices.Clone(lines), 0
}

// KeepLogs makes every function keep up to n log lines (logCap: 5,000) from
// now on: for a world whose many invocations would evict lines before the
// leak canary (which searches every line) reads them (test/e2e
// BenchmarkFleet). A function whose log has already wrapped keeps its cap.
func (s *Service) KeepLogs(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fn := range s.fns {
		fn.logs.mu.Lock()
		if len(fn.logs.buf) < fn.logs.max && n > fn.logs.max {
			fn.logs.max = n
		}
		fn.logs.mu.Unlock()
	}
}
