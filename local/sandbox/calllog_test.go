package sandbox

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"
)

// since is the calls after seq, failing the test if the log evicted any.
func since(t *testing.T, l *CallLog, seq int64) []CallRecord {
	t.Helper()
	calls, err := l.Since(seq)
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

func TestRing(t *testing.T) {
	t.Parallel()
	r := NewRing[int](3)
	if got := r.All(); len(got) != 0 || r.Evicted() != 0 {
		t.Fatalf("empty ring: %v, evicted %d", got, r.Evicted())
	}
	for i := 1; i <= 5; i++ {
		r.Add(i)
	}
	if got := r.All(); !slices.Equal(got, []int{3, 4, 5}) || r.Evicted() != 2 || r.Len() != 3 || r.At(0) != 3 {
		t.Fatalf("after 5 adds: %v, evicted %d, len %d", got, r.Evicted(), r.Len())
	}
	if got := r.From(1); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("From(1): %v", got)
	}
	r.Reset()
	r.Add(6)
	if got := r.All(); !slices.Equal(got, []int{6}) || r.Evicted() != 2 {
		t.Fatalf("after a reset: %v, evicted %d (a reset is not an eviction)", got, r.Evicted())
	}
	r.Restore([]int{1, 2, 3, 4}, 10)
	if got := r.All(); !slices.Equal(got, []int{2, 3, 4}) || r.Evicted() != 11 {
		t.Fatalf("restored: %v, evicted %d", got, r.Evicted())
	}
}

func TestCallLogKeepsRecords(t *testing.T) {
	t.Parallel()
	var l CallLog
	in := CallRecord{Time: time.Unix(1_800_000_000, 0).UTC(), Service: "iam", Action: "CreateAccessKey", Resource: "u", Region: "us-east-1",
		AccessKeyID: "AKIAEXAMPLE", Principal: "arn:aws:iam::111122223333:user/u", ResourceARNs: []string{"arn:aws:iam::111122223333:user/u"}, Status: 409, Error: "LimitExceeded", Write: true,
		Fault: 3, Duration: 1.5, Origin: &Origin{Execution: "e", State: "CreateKey"}, Ordinal: 2}
	l.add(in)
	l.add(CallRecord{Service: "sts", Action: "GetCallerIdentity", Status: 200})
	got := since(t, &l, 0)
	in.Seq = 1
	if len(got) != 2 || !reflect.DeepEqual(got[0], in) || got[1].Seq != 2 || got[1].Error != "" || got[1].Origin != nil {
		t.Fatalf("read back %+v, want %+v first", got, in)
	}
	if got := since(t, &l, 1); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("since 1: %+v", got)
	}
	if got := since(t, &l, 2); len(got) != 0 {
		t.Fatalf("since the last: %+v", got)
	}
}

// A reader that asks for calls the log evicted is told so, with how many
// and where the log now starts, never handed fewer; one that asks from a
// call still held gets every call after it.
func TestCallLogEviction(t *testing.T) {
	t.Parallel()
	l := CallLog{capacity: 4}
	for range 10 {
		l.add(CallRecord{Service: "sts", Action: "GetCallerIdentity", Status: 200})
	}
	if l.Last() != 10 || l.Evicted() != 6 {
		t.Fatalf("last %d, evicted %d; want 10, 6", l.Last(), l.Evicted())
	}
	for _, seq := range []int64{6, 7, 9, 10} {
		got := since(t, &l, seq)
		if len(got) != int(10-seq) || (len(got) > 0 && got[0].Seq != seq+1) {
			t.Fatalf("since %d: %d calls from %v", seq, len(got), got)
		}
	}
	for _, seq := range []int64{0, 1, 5} {
		calls, err := l.Since(seq)
		var ev *EvictedError
		if !errors.As(err, &ev) || calls != nil || ev.Since != seq || ev.Oldest != 7 || ev.Evicted != 6 || ev.Capacity != 4 {
			t.Fatalf("since %d: %d calls, err %v; want an EvictedError (oldest 7, 6 evicted)", seq, len(calls), err)
		}
	}
	// Forgetting on request is not eviction: after a reset, every call
	// since it is there, from any sequence number.
	l.Reset()
	l.add(CallRecord{Service: "sts", Action: "GetCallerIdentity", Status: 200})
	for _, seq := range []int64{0, 10} {
		if got := since(t, &l, seq); len(got) != 1 || got[0].Seq != 11 {
			t.Fatalf("since %d after a reset: %+v", seq, got)
		}
	}
	if l.Evicted() != 6 {
		t.Fatalf("evicted after a reset: %d, want still 6", l.Evicted())
	}
}

// The admin API answers 410 Gone for evicted calls, naming how many.
func TestCallLogAdminGone(t *testing.T) {
	t.Parallel()
	s := &Server{}
	s.calls.capacity = 2
	for range 3 {
		s.calls.add(CallRecord{Service: "sts", Action: "GetCallerIdentity", Status: 200})
	}
	get := func(path string) int {
		w := httptest.NewRecorder()
		s.adminMux().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	if code := get("/_sandbox/calls"); code != http.StatusGone {
		t.Errorf("GET /calls after an eviction: %d, want 410", code)
	}
	if code := get("/_sandbox/calls?since=1"); code != http.StatusOK {
		t.Errorf("GET /calls?since=1 (all held): %d, want 200", code)
	}
}

// Grow keeps what the log holds and makes room for more.
func TestCallLogGrow(t *testing.T) {
	t.Parallel()
	l := CallLog{capacity: 4}
	for range 3 {
		l.add(CallRecord{Service: "sts", Action: "GetCallerIdentity", Status: 200})
	}
	l.Grow(8)
	for range 5 {
		l.add(CallRecord{Service: "iam", Action: "ListUsers", Status: 200})
	}
	got := since(t, &l, 0)
	if len(got) != 8 || got[0].Service != "sts" || got[7].Service != "iam" || l.Evicted() != 0 {
		t.Fatalf("after Grow(8) and 8 calls: %d calls from %v, %d evicted", len(got), got, l.Evicted())
	}
	l.Grow(2) // never shrinks
	if len(since(t, &l, 0)) != 8 {
		t.Fatal("Grow(2) dropped calls")
	}
}
