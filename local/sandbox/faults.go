package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is a rule that makes matching calls misbehave, the way AWS
// sometimes does: fail with a status and code, answer late, or (After) fail
// only once the side effect has happened. Crash is for Lambda: the function
// runs, then its process dies before the result is returned.
type Fault struct {
	ID       int    `json:"id"`
	Service  string `json:"service"`            // signing name; "" matches any
	Action   string `json:"action,omitempty"`   // "" matches any
	Resource string `json:"resource,omitempty"` // e.g. a function name; "" matches any
	// State, Item and Ordinal match a call by its origin (CallRecord.Origin
	// and .Ordinal): the Task state that made it, the Map item that state
	// ran for, and its ordinal among that state and item's calls of this
	// service and action. "" and 0 match any; Item "-" matches only calls
	// made outside a Map. A rule that names an origin never matches a call
	// without one (a consumer's, a test's). Execution matches the
	// execution the call was made for, by ARN or by name: a test's fault
	// for its own run, in a sandbox other tests' runs share.
	Execution string        `json:"execution,omitempty"`
	State     string        `json:"state,omitempty"`
	Item      string        `json:"item,omitempty"`
	Ordinal   int           `json:"ordinal,omitempty"`
	Nth       int           `json:"nth,omitempty"`   // first matching call to hit, 1-based; 0 = the next one
	Times     int           `json:"times,omitempty"` // how many calls to hit; 0 = 1, -1 = every one
	Kind      string        `json:"kind,omitempty"`  // "throttle" or "unavailable": the service's own words for them
	Status    int           `json:"status,omitempty"`
	Code      string        `json:"code,omitempty"`
	Message   string        `json:"message,omitempty"`
	Delay     time.Duration `json:"delay,omitempty"` // before answering (JSON: nanoseconds)
	After     bool          `json:"after,omitempty"` // run the action, then fail
	Crash     bool          `json:"crash,omitempty"` // Lambda: kill the function after its side effect

	seen  int // matching calls so far
	fired int
}

// Faults holds the rules in force.
type Faults struct {
	mu    sync.Mutex
	next  int
	rules []*Fault
}

// Add installs a rule and returns its id.
func (f *Faults) Add(r Fault) (Fault, error) {
	if r.Status == 0 && r.Code == "" && r.Kind == "" && r.Delay == 0 && !r.Crash {
		return Fault{}, fmt.Errorf("fault does nothing: set kind, status/code, delay or crash")
	}
	switch r.Kind {
	case "", "throttle", "unavailable":
	default:
		return Fault{}, fmt.Errorf("fault kind %q: want throttle or unavailable", r.Kind)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	r.ID = f.next
	if r.Nth <= 0 {
		r.Nth = 1
	}
	if r.Times == 0 {
		r.Times = 1
	}
	f.rules = append(f.rules, &r)
	return r, nil
}

// List returns the rules with how often each fired.
func (f *Faults) List() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]any, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, map[string]any{"rule": *r, "seen": r.seen, "fired": r.fired})
	}
	return out
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.mu.Unlock()
}

// Remove deletes one rule.
func (f *Faults) Remove(id int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.rules)
	f.rules = slices.DeleteFunc(f.rules, func(r *Fault) bool { return r.ID == id })
	return len(f.rules) != n
}

// match counts the call against every rule and returns the first that
// fires. o and ordinal are the call's origin and ordinal (nil, 0: unknown).
func (f *Faults) match(service, action, resource string, o *Origin, ordinal int) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hit *Fault
	for _, r := range f.rules {
		if (r.Service != "" && r.Service != service) || (r.Action != "" && r.Action != action) ||
			(r.Resource != "" && !sameResource(r.Resource, resource)) || !r.fromOrigin(o, ordinal) {
			continue
		}
		r.seen++
		if hit == nil && r.seen >= r.Nth && (r.Times < 0 || r.fired < r.Times) {
			r.fired++
			c := *r
			hit = &c
		}
	}
	return hit
}

// fromOrigin says whether a call of origin o and that ordinal is one the
// rule's Execution, State, Item and Ordinal name.
func (r *Fault) fromOrigin(o *Origin, ordinal int) bool {
	if r.Execution == "" && r.State == "" && r.Item == "" && r.Ordinal == 0 {
		return true
	}
	if o == nil {
		return false
	}
	item := o.Item
	if item == "" {
		item = "-"
	}
	return (r.Execution == "" || sameResource(r.Execution, o.Execution)) && (r.State == "" || r.State == o.State) && (r.Item == "" || r.Item == item) && (r.Ordinal == 0 || r.Ordinal == ordinal)
}

// sameResource says whether a rule's resource names the call's: by name or
// by ARN, as callers address a function either way.
func sameResource(rule, resource string) bool {
	return rule == resource || strings.HasSuffix(resource, ":"+rule) || strings.HasSuffix(resource, "/"+rule)
}

// err is the AWS error a fault returns, in the service's own words.
func (r *Fault) err(p Protocol) *Error {
	e := &Error{Status: r.Status, Code: r.Code, Message: r.Message}
	switch r.Kind {
	case "throttle":
		switch p {
		case Query:
			e.Code, e.Status = "Throttling", 400
		case RESTJSON:
			e.Code, e.Status = "TooManyRequestsException", 429
		default:
			e.Code, e.Status = "ThrottlingException", 400
		}
		if e.Message == "" {
			e.Message = "Rate exceeded"
		}
	case "unavailable":
		e.Code, e.Status = "ServiceUnavailable", 503
		if p == RESTJSON {
			e.Code = "ServiceException"
		}
		if e.Message == "" {
			e.Message = "Service is unavailable. Please try again later."
		}
	}
	if e.Code == "" && e.Status == 0 {
		return nil // delay or crash only
	}
	if e.Status == 0 {
		e.Status = 400
	}
	if e.Code == "" {
		e.Code = "InternalFailure"
	}
	if e.Message == "" {
		e.Message = "injected fault " + e.Code
	}
	e.Sender = e.Status < 500
	return e
}

// External wraps the HTTP API of a component that is not AWS (an Auth0
// tenant, a SORACOM operator) so that its calls go through the call log and
// the faults as AWS calls do: service names the component ("auth0",
// "soracom"), resource the tenant or operator, and a call's action is the
// route pattern h (a ServeMux) matches, e.g. "PATCH /api/v2/emails/provider".
// A call's origin is the Lambda invocation whose process opened the
// connection (Server.OriginOfConn). A fault answers with its status (kind
// throttle: 429, unavailable: 503) and a JSON body with statusCode, error,
// code and message (Auth0's and SORACOM's shapes alike): before the handler
// runs, or with After once it ran and its answer was dropped. Crash is for
// Lambda only and does nothing here.
func (s *Server) External(service, resource string, h http.Handler) http.Handler {
	mux, _ := h.(interface {
		Handler(*http.Request) (http.Handler, string)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		action := ""
		if mux != nil {
			_, action = mux.Handler(r)
		}
		if action == "" {
			action = r.Method + " " + r.URL.Path
		}
		var o *Origin
		if v, ok := s.OriginOfConn(r); ok {
			o = &v
		}
		ordinal := s.calls.ordinal(o, service, action)
		rec := CallRecord{Time: s.clock.Now(), Service: service, Action: action, Resource: resource, Origin: o, Ordinal: ordinal}
		fault := s.faults.match(service, action, resource, o, ordinal)
		var ferr *Error
		if fault != nil {
			rec.Fault = fault.ID
			if fault.Delay > 0 {
				select {
				case <-time.After(fault.Delay):
				case <-r.Context().Done():
				}
			}
			ferr = fault.externalErr()
		}
		sw := &statusWriter{ResponseWriter: w}
		switch {
		case ferr != nil && !fault.After:
			writeExternalError(w, ferr)
			rec.Status, rec.Error = ferr.Status, ferr.Code
		case ferr != nil: // the side effect happens, its answer is lost
			lost := &statusWriter{ResponseWriter: discardWriter{h: http.Header{}}}
			h.ServeHTTP(lost, r)
			writeExternalError(w, ferr)
			rec.Status, rec.Error = ferr.Status, ferr.Code
			rec.Write = writes(r) && lost.code() < 400
		default:
			h.ServeHTTP(sw, r)
			rec.Status = sw.code()
			rec.Write = writes(r) && rec.Status < 400
		}
		rec.Duration = float64(time.Since(start).Microseconds()) / 1000
		if fault == nil && throttled(rec.Status, "") {
			s.calls.unthrottled(o, service, action, ordinal)
		}
		s.calls.add(rec)
	})
}

func writes(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// externalErr is the error a fault answers a non-AWS call with; nil for a
// delay or a crash alone.
func (r *Fault) externalErr() *Error {
	e := &Error{Status: r.Status, Code: r.Code, Message: r.Message}
	switch r.Kind {
	case "throttle":
		e.Status, e.Code = http.StatusTooManyRequests, "too_many_requests"
	case "unavailable":
		e.Status, e.Code = http.StatusServiceUnavailable, "unavailable"
	}
	if e.Status == 0 && e.Code == "" {
		return nil
	}
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.Code == "" {
		e.Code = "injected"
	}
	if e.Message == "" {
		e.Message = http.StatusText(e.Status) + " (injected fault)"
	}
	return e
}

func writeExternalError(w http.ResponseWriter, e *Error) {
	WriteJSON(w, e.Status, map[string]any{"statusCode": e.Status, "error": http.StatusText(e.Status), "code": e.Code, "message": e.Message})
}

// statusWriter notes the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// discardWriter drops a response: the answer a lost-after fault never delivers.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
