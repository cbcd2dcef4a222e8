package stepfunctions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Execution statuses.
const (
	Running   = "RUNNING"
	Succeeded = "SUCCEEDED"
	Failed    = "FAILED"
	TimedOut  = "TIMED_OUT"
	Aborted   = "ABORTED"
)

// execution is one run of a state machine with its history.
type execution struct {
	arn, name, machineARN string
	machine               *stateMachine // as it was when the execution started
	input                 string

	mu      sync.Mutex
	status  string
	start   time.Time
	stop    time.Time
	output  *string
	errCode string
	cause   string
	history []HistoryEvent
	// threads is the last event of each state by name, so a state's task
	// events and exit point back to it (previousEventId, as AWS links them)
	// and not to whatever was written just before: in a Map, another
	// iteration's event.
	threads map[string]int64
	done    chan struct{} // closed when the execution ends
	run     *run          // the runner while it lives
}

// Execution is what DescribeExecution says of an execution, for Go callers.
type Execution struct {
	ARN             string    `json:"executionArn"`
	StateMachineARN string    `json:"stateMachineArn"`
	Name            string    `json:"name"`
	Status          string    `json:"status"`
	Start           time.Time `json:"startDate"`
	Stop            time.Time `json:"stopDate,omitzero"`
	Input           string    `json:"input"`
	Output          *string   `json:"output,omitempty"`
	Error           string    `json:"error,omitempty"`
	Cause           string    `json:"cause,omitempty"`
}

func (e *execution) view() Execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Execution{ARN: e.arn, StateMachineARN: e.machineARN, Name: e.name, Status: e.status, Start: e.start, Stop: e.stop,
		Input: e.input, Output: e.output, Error: e.errCode, Cause: e.cause}
}

// append adds an event to the history, numbered and timed: timestamps never
// run backwards, whichever side (runner or sandbox) made the event. state
// names the state a task event belongs to ("" for the others).
func (e *execution) appendLocked(state, typ string, at time.Time, set func(*HistoryEvent)) {
	ev := HistoryEvent{ID: int64(len(e.history) + 1), PreviousEventID: int64(len(e.history)), Type: typ}
	if n := len(e.history); n > 0 {
		if prev := time.Time(e.history[n-1].Timestamp); at.Before(prev) {
			at = prev
		}
	}
	ev.Timestamp = sandbox.EpochTime(at)
	if set != nil {
		set(&ev)
	}
	if d := ev.StateExited; d != nil && state == "" {
		state = d.Name
	}
	if e.threads == nil {
		e.threads = map[string]int64{}
	}
	if last, ok := e.threads[state]; ok && state != "" {
		ev.PreviousEventID = last
	}
	switch d := ev.StateEntered; {
	case d != nil:
		e.threads[d.Name] = ev.ID
	case ev.StateExited != nil:
		delete(e.threads, state)
	case state != "":
		e.threads[state] = ev.ID
	}
	e.history = append(e.history, ev)
}

func (e *execution) append(typ string, at time.Time, set func(*HistoryEvent)) {
	e.appendTo("", typ, at, set)
}

// appendTo is append for an event of state's task.
func (e *execution) appendTo(state, typ string, at time.Time, set func(*HistoryEvent)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.status != Running {
		return // nothing happens after the end
	}
	e.appendLocked(state, typ, at, set)
}

// end closes the execution if it still runs; it reports whether it did.
func (s *Service) end(e *execution, status string, output *string, errCode, cause string) bool {
	at := s.srv.Clock().Now()
	e.mu.Lock()
	if e.status != Running {
		e.mu.Unlock()
		return false
	}
	set := func(ev *HistoryEvent) { ev.ExecutionFailed = &ErrorDetails{Error: errCode, Cause: cause} }
	typ := "ExecutionFailed"
	switch status {
	case Succeeded:
		typ, set = "ExecutionSucceeded", func(ev *HistoryEvent) { ev.ExecutionSucceeded = &OutputDetails{Output: output} }
	case Aborted:
		typ, set = "ExecutionAborted", func(ev *HistoryEvent) { ev.ExecutionAborted = &ErrorDetails{Error: errCode, Cause: cause} }
	case TimedOut:
		typ, set = "ExecutionTimedOut", func(ev *HistoryEvent) { ev.ExecutionTimedOut = &ErrorDetails{Error: errCode, Cause: cause} }
	}
	e.appendLocked("", typ, at, set)
	if n := len(e.history); n > 0 {
		at = time.Time(e.history[n-1].Timestamp)
	}
	e.status, e.stop, e.output, e.errCode, e.cause = status, at, output, errCode, cause
	r := e.run
	e.mu.Unlock()
	close(e.done)
	if r != nil {
		r.cancel()
	}
	s.executionEnded(e)
	s.srv.MarkDirty()
	return true
}

func (s *Service) startExecution(c *sandbox.Call) (any, error) {
	var req struct {
		StateMachineArn string  `json:"stateMachineArn"`
		Name            string  `json:"name"`
		Input           *string `json:"input"`
		TraceHeader     string  `json:"traceHeader"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	input := "{}"
	if req.Input != nil {
		input = *req.Input
	}
	e, err := s.Start(c.HTTP.Context(), req.StateMachineArn, req.Name, input)
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::StepFunctions::Execution", e.ARN)
	c.RequestParameters(map[string]any{"stateMachineArn": req.StateMachineArn, "name": e.Name})
	return map[string]any{"executionArn": e.ARN, "startDate": sandbox.EpochTime(e.Start)}, nil
}

// Start starts an execution as StartExecution does: name "" is a new UUID;
// the same name and input as a running execution is that execution; a name
// already used otherwise is ExecutionAlreadyExists.
func (s *Service) Start(ctx context.Context, machineARN, name, input string) (Execution, error) {
	sm, err := s.machine(machineARN)
	if err != nil {
		return Execution{}, err
	}
	if name == "" {
		name = sandbox.NewUUID()
	}
	if !validName(name) {
		return Execution{}, sandbox.Errorf(400, "InvalidName", "Invalid Name: '%s'", name)
	}
	if len(input) > MaxInput {
		return Execution{}, sandbox.Errorf(400, "InvalidExecutionInput", "Invalid Execution Input: 'The input is %d bytes, more than the %d bytes allowed'", len(input), MaxInput)
	}
	var parsed any
	if err := json.Unmarshal([]byte(input), &parsed); err != nil {
		return Execution{}, sandbox.Errorf(400, "InvalidExecutionInput", "Invalid Execution Input: '%v'", err)
	}
	env, err := s.nodeEnv()
	if err != nil {
		return Execution{}, &sandbox.Error{Status: 500, Code: "ServiceUnavailable",
			Message: "The sandbox cannot run state machines: " + err.Error()}
	}
	arn := s.executionARN(sm.Name, name)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Execution{}, &sandbox.Error{Status: 503, Code: "ServiceUnavailable", Message: "The sandbox is shutting down."}
	}
	if old, ok := s.execs[arn]; ok {
		s.mu.Unlock()
		v := old.view()
		if v.Status == Running && v.Input == input {
			return v, nil
		}
		return Execution{}, sandbox.Errorf(400, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", arn)
	}
	now := s.srv.Clock().Now()
	e := &execution{arn: arn, name: name, machineARN: sm.ARN, machine: sm, input: input, status: Running, start: now, done: make(chan struct{})}
	e.appendLocked("", "ExecutionStarted", now, func(ev *HistoryEvent) {
		ev.ExecutionStarted = &ExecutionStartedDetails{Input: &e.input, RoleARN: sm.RoleARN}
	})
	s.execs[arn] = e
	s.runs.Add(1)
	s.mu.Unlock()
	s.srv.MarkDirty()
	go func() {
		defer s.runs.Done()
		s.execute(e, env)
	}()
	return e.view(), nil
}

func (s *Service) lookup(arn string) (*execution, error) {
	if err := required("executionArn", arn); err != nil {
		return nil, err
	}
	if err := parseARN(arn, "execution"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.execs[arn]
	s.mu.Unlock()
	if !ok {
		return nil, sandbox.Errorf(400, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn)
	}
	return e, nil
}

func (s *Service) describeExecution(c *sandbox.Call) (any, error) {
	var req struct {
		ExecutionArn string `json:"executionArn"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	e, err := s.lookup(req.ExecutionArn)
	if err != nil {
		return nil, err
	}
	v := e.view()
	out := map[string]any{
		"executionArn": v.ARN, "stateMachineArn": v.StateMachineARN, "name": v.Name, "status": v.Status,
		"startDate": sandbox.EpochTime(v.Start), "input": v.Input, "inputDetails": map[string]any{"included": true},
		"redriveCount": 0, "redriveStatus": "NOT_REDRIVABLE",
	}
	if v.Status != Running {
		out["stopDate"] = sandbox.EpochTime(v.Stop)
	}
	if v.Output != nil {
		out["output"] = *v.Output
		out["outputDetails"] = map[string]any{"included": true}
	}
	if v.Error != "" {
		out["error"] = v.Error
	}
	if v.Cause != "" {
		out["cause"] = v.Cause
	}
	return out, nil
}

func (s *Service) listExecutions(c *sandbox.Call) (any, error) {
	var req struct {
		StateMachineArn string `json:"stateMachineArn"`
		StatusFilter    string `json:"statusFilter"`
		MaxResults      int    `json:"maxResults"`
		NextToken       string `json:"nextToken"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	switch req.StatusFilter {
	case "", Running, Succeeded, Failed, TimedOut, Aborted:
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, TIMED_OUT, PENDING_REDRIVE, ABORTED, FAILED, RUNNING]", req.StatusFilter)
	}
	if _, err := s.machine(req.StateMachineArn); err != nil {
		return nil, err
	}
	var all []Execution
	for _, v := range s.Executions() {
		if v.StateMachineARN == req.StateMachineArn && (req.StatusFilter == "" || v.Status == req.StatusFilter) {
			all = append(all, v)
		}
	}
	from, to, next, err := page(len(all), req.MaxResults, req.NextToken)
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, v := range all[from:to] {
		it := map[string]any{"executionArn": v.ARN, "stateMachineArn": v.StateMachineARN, "name": v.Name, "status": v.Status, "startDate": sandbox.EpochTime(v.Start)}
		if v.Status != Running {
			it["stopDate"] = sandbox.EpochTime(v.Stop)
		}
		items = append(items, it)
	}
	out := map[string]any{"executions": items}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// Executions lists every execution, newest first (as ListExecutions does).
func (s *Service) Executions() []Execution {
	s.mu.Lock()
	all := make([]*execution, 0, len(s.execs))
	for _, e := range s.execs {
		all = append(all, e)
	}
	s.mu.Unlock()
	out := make([]Execution, 0, len(all))
	for _, e := range all {
		out = append(out, e.view())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].ARN < out[j].ARN
	})
	return out
}

func (s *Service) getExecutionHistory(c *sandbox.Call) (any, error) {
	var req struct {
		ExecutionArn         string `json:"executionArn"`
		MaxResults           int    `json:"maxResults"`
		NextToken            string `json:"nextToken"`
		ReverseOrder         bool   `json:"reverseOrder"`
		IncludeExecutionData *bool  `json:"includeExecutionData"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	e, err := s.lookup(req.ExecutionArn)
	if err != nil {
		return nil, err
	}
	events := e.events()
	if req.ReverseOrder {
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	from, to, next, err := page(len(events), req.MaxResults, req.NextToken)
	if err != nil {
		return nil, err
	}
	out := events[from:to]
	if req.IncludeExecutionData != nil && !*req.IncludeExecutionData {
		for i := range out {
			out[i] = out[i].withoutData()
		}
	}
	res := map[string]any{"events": out}
	if next != "" {
		res["nextToken"] = next
	}
	return res, nil
}

func (e *execution) events() []HistoryEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]HistoryEvent(nil), e.history...)
}

func (s *Service) stopExecution(c *sandbox.Call) (any, error) {
	var req struct {
		ExecutionArn string `json:"executionArn"`
		Error        string `json:"error"`
		Cause        string `json:"cause"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	e, err := s.lookup(req.ExecutionArn)
	if err != nil {
		return nil, err
	}
	s.Stop(e.arn, req.Error, req.Cause)
	return map[string]any{"stopDate": sandbox.EpochTime(e.view().Stop)}, nil
}

// Stop aborts a running execution (StopExecution); stopping one that has
// ended changes nothing, as in AWS.
func (s *Service) Stop(arn, errCode, cause string) {
	s.mu.Lock()
	e, ok := s.execs[arn]
	s.mu.Unlock()
	if !ok {
		return
	}
	if s.end(e, Aborted, nil, errCode, cause) {
		e.mu.Lock()
		r := e.run
		e.mu.Unlock()
		if r != nil {
			r.abort()
		}
	}
}

// Describe returns an execution as DescribeExecution sees it.
func (s *Service) Describe(arn string) (Execution, bool) {
	s.mu.Lock()
	e, ok := s.execs[arn]
	s.mu.Unlock()
	if !ok {
		return Execution{}, false
	}
	return e.view(), true
}

// History returns an execution's whole history, oldest first.
func (s *Service) History(arn string) ([]HistoryEvent, bool) {
	s.mu.Lock()
	e, ok := s.execs[arn]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	return e.events(), true
}

// WaitForExecution blocks until the execution ends or ctx does, and returns
// it as it ended.
func (s *Service) WaitForExecution(ctx context.Context, arn string) (Execution, error) {
	s.mu.Lock()
	e, ok := s.execs[arn]
	s.mu.Unlock()
	if !ok {
		return Execution{}, fmt.Errorf("execution %s does not exist", arn)
	}
	select {
	case <-e.done:
		return e.view(), nil
	case <-ctx.Done():
		return e.view(), fmt.Errorf("wait for %s: %w", arn, ctx.Err())
	}
}

// page cuts [0,n) into a page from a nextToken (an opaque offset) and
// maxResults; it returns the next page's token, or "".
func page(n, maxResults int, token string) (from, to int, next string, err error) {
	if maxResults < 0 || maxResults > maxPage {
		return 0, 0, "", sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to %d", maxResults, maxPage)
	}
	if maxResults == 0 {
		maxResults = defaultPage
	}
	if token != "" {
		b, derr := base64.RawURLEncoding.DecodeString(token)
		off, perr := strconv.Atoi(string(b))
		if derr != nil || perr != nil || off < 0 || off > n {
			return 0, 0, "", sandbox.Errorf(400, "InvalidToken", "Invalid Token: '%s'", token)
		}
		from = off
	}
	to = min(from+maxResults, n)
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(to)))
	}
	return from, to, next, nil
}
