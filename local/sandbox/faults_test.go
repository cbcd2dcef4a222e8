package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestFaultMatching(t *testing.T) {
	t.Parallel()
	var f Faults
	if _, err := f.Add(Fault{Service: "lambda", Action: "Invoke", Resource: "createkey", Crash: true, Nth: 2, Times: 1}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:111122223333:function:createkey"
	calls := []struct {
		service, action, resource string
		hit                       bool
	}{
		{"lambda", "Invoke", "validate", false},
		{"lambda", "Invoke", arn, false},        // the first matching call: Nth is 2
		{"lambda", "Invoke", "createkey", true}, // by name or ARN alike
		{"lambda", "Invoke", arn, false},        // Times 1: spent
		{"iam", "Invoke", "createkey", false},
	}
	for i, c := range calls {
		if got := f.match(c.service, c.action, c.resource, nil, 0) != nil; got != c.hit {
			t.Errorf("call %d (%s %s %s): hit=%v, want %v", i, c.service, c.action, c.resource, got, c.hit)
		}
	}
	if _, err := f.Add(Fault{Service: "iam"}); err == nil {
		t.Error("a fault that does nothing must be refused")
	}
}

// A rule naming an origin hits only the call of that execution, state,
// item and ordinal: never a call without an origin, never another
// branch's, never another execution's.
func TestFaultMatchesByOrigin(t *testing.T) {
	t.Parallel()
	upd := &Origin{Execution: "e1", State: "UpdateSecret", Item: "app", Invocation: "r1"}
	other := &Origin{Execution: "e1", State: "UpdateSecret", Item: "app2", Invocation: "r2"}
	top := &Origin{Execution: "e1", State: "CreateKey", Invocation: "r3"}
	inRun := &Origin{Execution: "arn:aws:states:us-east-1:111122223333:execution:m:run-1", State: "UpdateSecret", Invocation: "r4"}
	tests := []struct {
		name    string
		rule    Fault
		origin  *Origin
		ordinal int
		hit     bool
	}{
		{"its call", Fault{Service: "secretsmanager", State: "UpdateSecret", Item: "app", Ordinal: 2, Status: 500}, upd, 2, true},
		{"another ordinal", Fault{Service: "secretsmanager", State: "UpdateSecret", Item: "app", Ordinal: 2, Status: 500}, upd, 1, false},
		{"another item", Fault{Service: "secretsmanager", State: "UpdateSecret", Item: "app", Ordinal: 2, Status: 500}, other, 2, false},
		{"no origin", Fault{Service: "secretsmanager", State: "UpdateSecret", Status: 500}, nil, 0, false},
		{"outside a Map", Fault{Service: "secretsmanager", State: "CreateKey", Item: "-", Status: 500}, top, 1, true},
		{"not outside a Map", Fault{Service: "secretsmanager", Item: "-", Status: 500}, upd, 1, false},
		{"no origin named: any", Fault{Service: "secretsmanager", Status: 500}, nil, 0, true},
		{"its execution, by name", Fault{Service: "secretsmanager", Execution: "run-1", Status: 500}, inRun, 1, true},
		{"its execution, by ARN", Fault{Service: "secretsmanager", Execution: inRun.Execution, Status: 500}, inRun, 1, true},
		{"its execution and state", Fault{Service: "secretsmanager", Execution: "run-1", State: "UpdateSecret", Status: 500}, inRun, 1, true},
		{"its execution, another state", Fault{Service: "secretsmanager", Execution: "run-1", State: "CreateKey", Status: 500}, inRun, 1, false},
		{"another execution", Fault{Service: "secretsmanager", Execution: "run-1", Status: 500}, upd, 1, false},
		{"a name ending as its name", Fault{Service: "secretsmanager", Execution: "run-1", Status: 500}, &Origin{Execution: "arn:aws:states:us-east-1:111122223333:execution:m:my-run-1", State: "UpdateSecret"}, 1, false},
		{"an execution, no origin", Fault{Service: "secretsmanager", Execution: "run-1", Status: 500}, nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f Faults
			if _, err := f.Add(tc.rule); err != nil {
				t.Fatal(err)
			}
			if got := f.match("secretsmanager", "PutSecretValue", "", tc.origin, tc.ordinal) != nil; got != tc.hit {
				t.Errorf("hit=%v, want %v", got, tc.hit)
			}
		})
	}
}

// The ordinal counts per execution, state, item, service and action, so
// branches that run side by side each count their own.
func TestOrdinalPerStateAndItem(t *testing.T) {
	t.Parallel()
	var l CallLog
	a := &Origin{Execution: "e", State: "S", Item: "a", Invocation: "1"}
	b := &Origin{Execution: "e", State: "S", Item: "b", Invocation: "2"}
	aRetry := &Origin{Execution: "e", State: "S", Item: "a", Invocation: "3"} // a retry: another invocation, same count
	got := []int{l.ordinal(a, "iam", "X"), l.ordinal(b, "iam", "X"), l.ordinal(a, "iam", "Y"), l.ordinal(aRetry, "iam", "X"), l.ordinal(nil, "iam", "X")}
	want := []int{1, 1, 1, 2, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ordinals %v, want %v", got, want)
			break
		}
	}
}

// External puts a component's calls in the call log by route pattern and
// answers faults: before the handler (no side effect) or after it (the
// side effect happened, the answer is lost).
func TestExternalFaults(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	effects := 0
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		effects++
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	srv := httptest.NewServer(s.External("thing", "op-1", mux))
	defer srv.Close()
	put := func() (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/v1/things/42", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const action = "PUT /v1/things/{id}"
	if _, err := s.Faults().Add(Fault{Service: "thing", Action: action, Kind: "unavailable"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := put(); st != 503 || effects != 0 {
		t.Errorf("before: status %d, effects %d; want 503, 0", st, effects)
	}
	if _, err := s.Faults().Add(Fault{Service: "thing", Action: action, Status: 500, After: true}); err != nil {
		t.Fatal(err)
	}
	if st, body := put(); st != 500 || effects != 1 || strings.Contains(body, "ok") {
		t.Errorf("after: status %d body %s, effects %d; want 500 without the answer, 1", st, body, effects)
	}
	if st, body := put(); st != 200 || effects != 2 || !strings.Contains(body, "ok") {
		t.Errorf("clean: status %d body %s, effects %d", st, body, effects)
	}
	calls := since(t, s.Calls(), 0)
	if len(calls) != 3 {
		t.Fatalf("%d calls logged, want 3: %+v", len(calls), calls)
	}
	for i, want := range []struct {
		status int
		write  bool
	}{{503, false}, {500, true}, {200, true}} {
		c := calls[i]
		if c.Service != "thing" || c.Action != action || c.Resource != "op-1" || c.Status != want.status || c.Write != want.write {
			t.Errorf("call %d: %+v, want status %d write %v", i, c, want.status, want.write)
		}
	}
}

// A call to a component that is not AWS is attributed to the bound process
// that opened its connection (here the test's own), and to nobody unbound.
func TestExternalCallOrigin(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("connections are traced to their process through /proc")
	}
	s := New(Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/x", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(s.External("thing", "op", mux))
	defer srv.Close()
	get := func(c *http.Client) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/x", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(&http.Client{Transport: &http.Transport{}})
	o := Origin{Execution: "e", State: "UpdateAuth0", Item: "prod", Invocation: "r1"}
	unbind := s.BindOrigin(Binding{PID: os.Getpid()}, o)
	get(&http.Client{Transport: &http.Transport{}})
	get(&http.Client{Transport: &http.Transport{}})
	unbind()
	get(&http.Client{Transport: &http.Transport{}})
	calls := since(t, s.Calls(), 0)
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	if calls[0].Origin != nil || calls[3].Origin != nil {
		t.Errorf("unbound calls have an origin: %+v, %+v", calls[0].Origin, calls[3].Origin)
	}
	for i, c := range calls[1:3] {
		if c.Origin == nil || *c.Origin != o || c.Ordinal != i+1 {
			t.Errorf("bound call %d: origin %+v ordinal %d, want %+v and %d", i+1, c.Origin, c.Ordinal, o, i+1)
		}
	}
}

// A call the service itself throttled gives its ordinal back: the retry is
// the same call, so a rate limit that bites in one run and not in another
// does not move the keys after it.
func TestThrottledCallGivesItsOrdinalBack(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("connections are traced to their process through /proc")
	}
	s := New(Options{})
	limited := true
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/x", func(w http.ResponseWriter, r *http.Request) {
		if limited {
			limited = false
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	srv := httptest.NewServer(s.External("thing", "op", mux))
	defer srv.Close()
	defer s.BindOrigin(Binding{PID: os.Getpid()}, Origin{Execution: "e", State: "S", Item: "a", Invocation: "1"})()
	for range 3 { // throttled, its retry, the next call
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var got []int
	for _, c := range since(t, s.Calls(), 0) {
		got = append(got, c.Ordinal)
	}
	if !slices.Equal(got, []int{1, 1, 2}) {
		t.Errorf("ordinals %v, want [1 1 2]: the throttled call and its retry are one", got)
	}
	if !throttled(400, "ThrottlingException") || !throttled(429, "") || throttled(500, "InternalFailure") {
		t.Error("throttled misreads an answer")
	}
}
