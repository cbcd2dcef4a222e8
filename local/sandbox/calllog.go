package sandbox

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// Origin is which state of which execution made the call, through which
	// Lambda invocation, when the sandbox can tell (Origin); Ordinal counts
	// the calls of this service and action within that execution, state and
	// item, from 1, in the order they reached the sandbox.
	Origin  *Origin `json:"origin,omitempty"`
	Ordinal int     `json:"ordinal,omitempty"`
}

// Origin says who made a call, as far as the sandbox can tell: a Task state
// of an execution (Step Functions knows it when it invokes a Lambda), the
// Map item that state ran for, and the Lambda invocation whose process made
// the call (Lambda knows which instance runs which invocation, and each
// instance has credentials of its own). Calls from anyone else (a
// consumer, a test) have no origin.
type Origin struct {
	Execution  string `json:"execution,omitempty"`
	State      string `json:"state,omitempty"`
	Item       string `json:"item,omitempty"`       // the Map item the state ran for ("" outside a Map)
	Invocation string `json:"invocation,omitempty"` // the Lambda request id; "" for Step Functions' own call
}

type originKey struct{}

// WithOrigin is ctx carrying o: what Step Functions hands the Lambda it invokes.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom is the origin ctx carries, if any.
func OriginFrom(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

// Binding is how a call is known to come from a Lambda invocation: AWS calls
// by the access key they are signed with (every instance has its own), other
// calls (Auth0, SORACOM) by the process that opened the connection.
type Binding struct {
	AccessKeyID string
	PID         int
}

// origins are the bindings in force: which instance runs which invocation now.
type origins struct {
	mu    sync.Mutex
	byKey map[string]Origin
	byPID map[int]Origin
}

func (b *origins) bind(k Binding, o Origin) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey == nil {
		b.byKey, b.byPID = map[string]Origin{}, map[int]Origin{}
	}
	if k.AccessKeyID != "" {
		b.byKey[k.AccessKeyID] = o
	}
	if k.PID > 0 {
		b.byPID[k.PID] = o
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if cur, ok := b.byKey[k.AccessKeyID]; ok && cur == o {
			delete(b.byKey, k.AccessKeyID)
		}
		if cur, ok := b.byPID[k.PID]; ok && cur == o {
			delete(b.byPID, k.PID)
		}
	}
}

func (b *origins) ofKey(id string) (Origin, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byKey[id]
	return o, ok
}

func (b *origins) pids() map[int]Origin {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int]Origin, len(b.byPID))
	for p, o := range b.byPID {
		out[p] = o
	}
	return out
}

// CallLog keeps every call, in order. A sandbox lives for one test run, so
// it is bounded only by a generous cap that drops the oldest.
type CallLog struct {
	mu       sync.Mutex
	seq      int64
	calls    []CallRecord
	ordinals map[ordinalKey]int
}

// ordinalKey is what a call's Ordinal counts within.
type ordinalKey struct {
	origin          Origin
	service, action string
}

const callLogCap = 200_000

// ordinal counts a call with an origin and returns its ordinal (0 without one).
func (l *CallLog) ordinal(o *Origin, service, action string) int {
	if o == nil {
		return 0
	}
	k := keyOf(o, service, action)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ordinals == nil {
		l.ordinals = map[ordinalKey]int{}
	}
	l.ordinals[k]++
	return l.ordinals[k]
}

func keyOf(o *Origin, service, action string) ordinalKey {
	return ordinalKey{origin: Origin{Execution: o.Execution, State: o.State, Item: o.Item}, service: service, action: action}
}

// unthrottled gives back the ordinal of a call the service itself
// throttled (its rate limit, not a fault): the caller's retry is the same
// call, so how often a rate limit happened to bite does not move the
// ordinals after it. Only the newest ordinal can be given back.
func (l *CallLog) unthrottled(o *Origin, service, action string, ordinal int) {
	if o == nil || ordinal == 0 {
		return
	}
	k := keyOf(o, service, action)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ordinals[k] == ordinal {
		l.ordinals[k]--
	}
}

// throttled says whether an answer is a rate limit's.
func throttled(status int, code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "too_many_requests":
		return true
	}
	return status == 429
}

func (l *CallLog) add(r CallRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	r.Seq = l.seq
	if len(l.calls) >= callLogCap {
		l.calls = slices.Delete(l.calls, 0, len(l.calls)/10)
	}
	l.calls = append(l.calls, r)
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

// connOwner finds, among the bound processes, the one that holds the client
// end of a loopback TCP connection (remote is the client's address as the
// server sees it, local the server's): the socket whose local port is the
// client's and whose peer port is the server's, by its inode in
// /proc/net/tcp{,6}, then that inode among each process's descriptors.
// Linux only; elsewhere (or for a process not bound) it finds nothing.
func connOwner(remote, local string, bound map[int]Origin) (Origin, bool) {
	if len(bound) == 0 {
		return Origin{}, false
	}
	cport, ok1 := portOf(remote)
	sport, ok2 := portOf(local)
	if !ok1 || !ok2 {
		return Origin{}, false
	}
	inode := ""
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			lp, ok1 := hexPort(fs[1])
			rp, ok2 := hexPort(fs[2])
			if ok1 && ok2 && lp == cport && rp == sport {
				inode = fs[9]
				break
			}
		}
		if inode != "" {
			break
		}
	}
	if inode == "" || inode == "0" {
		return Origin{}, false
	}
	want := "socket:[" + inode + "]"
	for pid, o := range bound {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
				return o, true
			}
		}
	}
	return Origin{}, false
}

func portOf(addr string) (int, bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return n, err == nil
}

// hexPort reads the port of a /proc/net/tcp address (IP:PORT in hex).
func hexPort(a string) (int, bool) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(a[i+1:], 16, 16)
	return int(n), err == nil
}
