package sandbox

import (
	"slices"
	"sync"
	"time"
)

// CallRecord is one request the sandbox answered, as tests read it back.
type CallRecord struct {
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	Service     string    `json:"service"`
	Action      string    `json:"action"`
	Resource    string    `json:"resource,omitempty"`
	Region      string    `json:"region,omitempty"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	Principal   string    `json:"principal,omitempty"`
	Status      int       `json:"status"`
	Error       string    `json:"error,omitempty"`
	Write       bool      `json:"write"`
	Fault       int       `json:"fault,omitempty"` // id of the fault rule that shaped this call
	Duration    float64   `json:"durationMs"`
}

// CallLog keeps every call, in order. A sandbox lives for one test run, so
// it is bounded only by a generous cap that drops the oldest.
type CallLog struct {
	mu    sync.Mutex
	seq   int64
	calls []CallRecord
}

const callLogCap = 200_000

func (l *CallLog) add(r CallRecord) CallRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	r.Seq = l.seq
	if len(l.calls) >= callLogCap {
		l.calls = slices.Delete(l.calls, 0, len(l.calls)/10)
	}
	l.calls = append(l.calls, r)
	return r
}

// Since returns the calls with Seq > seq.
func (l *CallLog) Since(seq int64) []CallRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearchFunc(l.calls, seq+1, func(c CallRecord, s int64) int { return int(c.Seq - s) })
	return slices.Clone(l.calls[i:])
}

// Last is the sequence number of the newest call.
func (l *CallLog) Last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Reset forgets every call (sequence numbers keep growing).
func (l *CallLog) Reset() {
	l.mu.Lock()
	l.calls = nil
	l.mu.Unlock()
}
