package sandbox

import (
	"fmt"
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
	ID       int           `json:"id"`
	Service  string        `json:"service"`            // signing name; "" matches any
	Action   string        `json:"action,omitempty"`   // "" matches any
	Resource string        `json:"resource,omitempty"` // e.g. a function name; "" matches any
	Nth      int           `json:"nth,omitempty"`      // first matching call to hit, 1-based; 0 = the next one
	Times    int           `json:"times,omitempty"`    // how many calls to hit; 0 = 1, -1 = every one
	Kind     string        `json:"kind,omitempty"`     // "throttle" or "unavailable": the service's own words for them
	Status   int           `json:"status,omitempty"`
	Code     string        `json:"code,omitempty"`
	Message  string        `json:"message,omitempty"`
	Delay    time.Duration `json:"delay,omitempty"` // before answering (JSON: nanoseconds)
	After    bool          `json:"after,omitempty"` // run the action, then fail
	Crash    bool          `json:"crash,omitempty"` // Lambda: kill the function after its side effect

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

// match counts the call against every rule and returns the first that fires.
func (f *Faults) match(service, action, resource string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hit *Fault
	for _, r := range f.rules {
		if (r.Service != "" && r.Service != service) || (r.Action != "" && r.Action != action) ||
			(r.Resource != "" && !sameResource(r.Resource, resource)) {
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
