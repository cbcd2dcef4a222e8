package sandbox

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unique"
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
	// ResourceARNs are what IAM authorizes the call on (ResourceNamer).
	ResourceARNs []string `json:"resourceArns,omitempty"`
	Status       int      `json:"status"`
	Error        string   `json:"error,omitempty"`
	Write        bool     `json:"write"`
	Fault        int      `json:"fault,omitempty"` // id of the fault rule that shaped this call
	Duration     float64  `json:"durationMs"`
	// Origin is which state of which execution made the call, through which
	// Lambda invocation, when the sandbox can tell (Origin); Ordinal counts
	// the calls of this service and action within that execution, state and
	// item, from 1, in the order they reached the sandbox.
	Origin  *Origin `json:"origin,omitempty"`
	Ordinal int     `json:"ordinal,omitempty"`
	// RateLimited says the call was answered by one of the server's rate
	// limits (RateLimit), not by the service or a fault.
	RateLimited bool `json:"rateLimited,omitempty"`
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

// CallLog keeps the newest CallLogCapacity calls, in order, and counts the
// older ones it evicted to stay that size (a sandbox left running, or a
// soak, makes hundreds of calls a second for hours). Since tells a reader
// that asks for an evicted call so (EvictedError), never hands it fewer.
type CallLog struct {
	mu       sync.Mutex
	seq      int64
	calls    *Ring[entry]
	dropped  int64 // the newest sequence number evicted; 0 if none was
	capacity int   // CallLogCapacity unless a test sets it
	ordinals map[ordinalKey]int
}

// CallLogCapacity is how many calls the log keeps: 30 times what the
// longest test that reads it makes. That is one fault-matrix case — a
// three-target rotation with its consumers running, faulted, then re-run —
// whose sandbox logs 1,400–3,300 calls (3–23 s, by the machine's load;
// the clean run 1,700, TestHappyPath 560). About 12 MiB when full; at the
// soak's 235 calls a second it holds the last 7 minutes.
const CallLogCapacity = 100_000

// entry is a CallRecord as the log keeps it: its strings interned, so a
// kept call costs about 120 bytes and never pins the request it came from
// (an access key id cut from the Authorization header, an action from the
// form body).
type entry struct {
	seq                                                      int64
	time                                                     time.Time
	service, action, resource, region, keyID, principal, err unique.Handle[string]
	status, fault, ordinal                                   int32
	write, rateLimited                                       bool
	duration                                                 float64
	origin                                                   *Origin
	resources                                                []unique.Handle[string]
}

func intern(s string) unique.Handle[string] { return unique.Make(s) }

func (e *entry) record() CallRecord {
	return CallRecord{
		Seq: e.seq, Time: e.time, Service: e.service.Value(), Action: e.action.Value(), Resource: e.resource.Value(),
		Region: e.region.Value(), AccessKeyID: e.keyID.Value(), Principal: e.principal.Value(), Status: int(e.status),
		Error: e.err.Value(), Write: e.write, Fault: int(e.fault), Duration: e.duration, Origin: e.origin, Ordinal: int(e.ordinal), RateLimited: e.rateLimited,
		ResourceARNs: values(e.resources),
	}
}

func values(hs []unique.Handle[string]) []string {
	if hs == nil {
		return nil
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Value()
	}
	return out
}

// EvictedError is the answer to a reader that asks for calls the log has
// evicted: the calls after Since are no longer all there.
type EvictedError struct {
	Since    int64 // what the reader asked for: the calls after it
	Oldest   int64 // the oldest call the log still holds (0: none)
	Evicted  int64 // how many calls the log has evicted in all
	Capacity int   // how many calls the log keeps
}

func (e *EvictedError) Error() string {
	return fmt.Sprintf("the call log keeps the newest %d calls and has evicted %d: the calls after %d are no longer all there (the oldest it holds is %d)",
		e.Capacity, e.Evicted, e.Since, e.Oldest)
}

// ordinalKey is what a call's Ordinal counts within.
type ordinalKey struct {
	origin          Origin
	service, action string
}

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
	e := entry{
		time: r.Time, service: intern(r.Service), action: intern(r.Action), resource: intern(r.Resource), region: intern(r.Region),
		keyID: intern(r.AccessKeyID), principal: intern(r.Principal), err: intern(r.Error),
		status: int32(r.Status), fault: int32(r.Fault), ordinal: int32(r.Ordinal), write: r.Write, rateLimited: r.RateLimited, duration: r.Duration, origin: r.Origin,
	}
	if r.ResourceARNs != nil {
		e.resources = make([]unique.Handle[string], len(r.ResourceARNs))
		for i, a := range r.ResourceARNs {
			e.resources[i] = intern(a)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = NewRing[entry](cmp.Or(l.capacity, CallLogCapacity))
	}
	l.seq++
	e.seq = l.seq
	if l.calls.Len() == l.calls.Cap() {
		l.dropped = l.calls.At(0).seq
	}
	l.calls.Add(e)
}

// Since returns the calls with Seq > seq, oldest first; an *EvictedError if
// the log has evicted any of them since the last Reset.
func (l *CallLog) Since(seq int64) ([]CallRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		return []CallRecord{}, nil
	}
	if seq < l.dropped {
		e := &EvictedError{Since: seq, Evicted: l.calls.Evicted(), Capacity: l.calls.Cap()}
		if l.calls.Len() > 0 {
			e.Oldest = l.calls.At(0).seq
		}
		return nil, e
	}
	i, _ := sort.Find(l.calls.Len(), func(i int) int { return cmp.Compare(seq+1, l.calls.At(i).seq) })
	out := make([]CallRecord, 0, l.calls.Len()-i)
	for ; i < l.calls.Len(); i++ {
		e := l.calls.At(i)
		out = append(out, e.record())
	}
	return out, nil
}

// Last is the sequence number of the newest call.
func (l *CallLog) Last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Evicted is how many calls the log has evicted to stay within its capacity.
func (l *CallLog) Evicted() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		return 0
	}
	return l.calls.Evicted()
}

// Grow makes the log keep up to n calls from now on, keeping those it
// holds (n below its capacity changes nothing): for a world that makes
// more calls than a test reads (test/e2e BenchmarkFleet, whose leak
// canary reads them all).
func (l *CallLog) Grow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= cmp.Or(l.capacity, CallLogCapacity) {
		return
	}
	l.capacity = n
	if l.calls == nil {
		return
	}
	grown := NewRing[entry](n)
	for i := range l.calls.Len() {
		grown.Add(l.calls.At(i))
	}
	l.calls = grown
}

// Reset forgets every call (sequence numbers keep growing), evicted ones
// included: it is the caller's own choice, so Since does not report it, and
// Since(0) after it is every call since. Evicted still counts them.
func (l *CallLog) Reset() {
	l.mu.Lock()
	if l.calls != nil {
		l.calls.Reset()
	}
	l.dropped = 0
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
