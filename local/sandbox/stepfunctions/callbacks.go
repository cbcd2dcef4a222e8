package stepfunctions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sort"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Callback Tasks (.waitForTaskToken): the runner gives each attempt its own
// token (runner.mjs, newToken), which the Task's Parameters carry to the
// function they call; the Task then waits, here, until SendTaskSuccess or
// SendTaskFailure brings the token back, or its timeout or heartbeat passes.

// Task token shape, as runner.mjs makes it: standard base64 of a version
// byte, "sbx" and 64 random bytes. A token of another shape is InvalidToken.
const (
	tokenBytes  = 68
	tokenPrefix = "\x01sbx"
	maxTokenLen = 2048 // taskToken's length constraint
	maxOutput   = 256 * 1024
	maxError    = 256
	maxCause    = 32768
)

// CallbackScaleFloor is the least real time a callback Task's timeout or
// heartbeat lasts per unit of workflow time: one second for 12 hours. Wait
// states and Retry pauses are shortened by WaitScale alone, but a callback
// waits on someone outside the workflow (a person approving, a test acting
// as one) who works in real time. A timeout of d lasts
//
//	d × max(WaitScale, CallbackScaleFloor)
//
// of real time: at the end-to-end tests' WaitScale 1e-7 an approval
// window of 1 hour (the shortest keyrotator allows) times out in 83 ms,
// while the default 72 hours leave 6 s to approve and 30 days 60 s. A floor
// on the scale rather than on the duration keeps timeouts in proportion to
// each other: a test sees a short window time out fast and still has time
// to act within a long one.
const CallbackScaleFloor = 1.0 / (12 * 60 * 60)

// callbackWait is how long, in real time, a callback Task's timeout or
// heartbeat of the given seconds of workflow time lasts.
func (s *Service) callbackWait(seconds int64) time.Duration {
	scale := s.opts.CallbackScale
	if scale <= 0 {
		scale = max(s.opts.WaitScale, CallbackScaleFloor)
	}
	return time.Duration(float64(seconds) * float64(time.Second) * scale)
}

// callback is one callback Task's token and its wait.
type callback struct {
	token     string
	execution string
	state     string
	r         *run  // nil once restored from a snapshot
	t         *task // nil once restored from a snapshot

	// Guarded by Service.cbmu.
	open       bool
	status     string   // PENDING, then how it closed: SUCCEEDED, FAILED, TIMED_OUT, ABORTED
	submitted  bool     // the service call returned: TaskSubmitted is in the history
	queued     *outcome // a result sent back before the call returned
	timer      *time.Timer
	beat       *time.Timer
	beatEvery  time.Duration
	deadline   time.Time // real time the timeout fires, zero if none
	stopOnDone func() bool
}

func wellFormedToken(tok string) bool {
	b, err := base64.StdEncoding.DecodeString(tok)
	return err == nil && len(b) == tokenBytes && string(b[:len(tokenPrefix)]) == tokenPrefix
}

// register makes t's token answer SendTask* calls, and starts its timers.
func (s *Service) register(r *run, t *task, token string) *callback {
	cb := &callback{token: token, execution: r.e.arn, state: t.state, r: r, t: t, open: true, status: "PENDING"}
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	s.tokens[token] = cb
	if t.timeout > 0 {
		d := s.callbackWait(t.timeout)
		cb.deadline = time.Now().Add(d)
		cb.timer = time.AfterFunc(d, func() { s.settle(cb, outcome{timedOut: true}) })
	}
	if t.heartbeat > 0 {
		cb.beatEvery = s.callbackWait(t.heartbeat)
		cb.beat = time.AfterFunc(cb.beatEvery, func() { s.settle(cb, outcome{timedOut: true}) })
	}
	// The execution ends (stopped, timed out, failed elsewhere): the wait ends with it.
	cb.stopOnDone = context.AfterFunc(r.ctx, func() { s.abandon(cb) })
	return cb
}

// closeLocked ends cb's wait. Callers hold s.cbmu.
func (cb *callback) closeLocked(status string) {
	cb.open = false
	cb.status = status
	if cb.timer != nil {
		cb.timer.Stop()
	}
	if cb.beat != nil {
		cb.beat.Stop()
	}
	if cb.stopOnDone != nil {
		cb.stopOnDone()
	}
}

// live says whether cb still waits: open, in an execution that runs.
// Callers hold s.cbmu.
func (cb *callback) live() bool {
	return cb.open && cb.r != nil && cb.r.ctx.Err() == nil
}

// settle ends cb's wait with o; it reports false if the wait had ended.
// A success or failure sent before the service call returned is held until
// TaskSubmitted is in the history; a timeout ends the Task at once.
func (s *Service) settle(cb *callback, o outcome) bool {
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	if !cb.live() {
		return false
	}
	status := Succeeded
	switch {
	case o.timedOut:
		status = TimedOut
	case o.failed:
		status = Failed
	}
	cb.closeLocked(status)
	if !cb.submitted && !o.timedOut {
		cb.queued = &o
		return true
	}
	cb.r.deliver(cb.t, o)
	return true
}

// submitted is the end of a callback Task's service call: a failed call
// fails the Task (as the integration without the callback would); a call
// that worked is TaskSubmitted, and the Task goes on waiting for its token.
func (s *Service) submitted(cb *callback, out json.RawMessage, errName, cause string) {
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	cb.submitted = true
	if errName != "" {
		if cb.live() {
			cb.closeLocked(Failed)
			cb.r.deliver(cb.t, outcome{failed: true, err: errName, cause: cause})
		} else if q := cb.queued; q != nil {
			cb.queued = nil
			cb.r.deliver(cb.t, *q)
		}
		return
	}
	if cb.r.hasTask(cb.t.id) {
		text := string(out)
		cb.r.e.appendTo(cb.t.state, "TaskSubmitted", s.srv.Clock().Now(), func(h *HistoryEvent) {
			h.TaskSubmitted = &TaskDetails{ResourceType: cb.t.resourceType, Resource: cb.t.resource, Output: &text}
		})
	}
	if q := cb.queued; q != nil {
		cb.queued = nil
		cb.r.deliver(cb.t, *q)
	}
}

// abandon ends a wait whose execution ended.
func (s *Service) abandon(cb *callback) {
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	if cb.open {
		cb.closeLocked(Aborted)
	}
}

// findToken resolves a SendTask* call's token, as AWS words what is wrong
// with it: the wrong shape is InvalidToken, a token this sandbox never
// issued is TaskDoesNotExist, and a token whose Task has ended (succeeded,
// failed, timed out, or its execution stopped) is TaskTimedOut, which AWS
// documents as "the task token has either expired or the task associated
// with the token has already been closed".
func (s *Service) findToken(tok string) (*callback, error) {
	if err := required("taskToken", tok); err != nil {
		return nil, err
	}
	if len(tok) > maxTokenLen {
		return nil, tooLong("taskToken", maxTokenLen)
	}
	if !wellFormedToken(tok) {
		return nil, sandbox.Errorf(400, "InvalidToken", "Invalid Token: 'Invalid token'")
	}
	s.cbmu.Lock()
	cb, ok := s.tokens[tok]
	live := ok && cb.live()
	s.cbmu.Unlock()
	switch {
	case !ok:
		return nil, sandbox.Errorf(400, "TaskDoesNotExist", "Task Does Not Exist: 'Provided task does not exist'")
	case !live:
		return nil, taskClosed()
	}
	return cb, nil
}

func taskClosed() error {
	return sandbox.Errorf(400, "TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'")
}

func tooLong(field string, n int) error {
	return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, n)
}

func (s *Service) sendTaskSuccess(c *sandbox.Call) (any, error) {
	var req struct {
		TaskToken string  `json:"taskToken"`
		Output    *string `json:"output"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if req.Output == nil {
		return nil, required("output", "")
	}
	if len(*req.Output) > maxOutput {
		return nil, tooLong("output", maxOutput)
	}
	cb, err := s.findToken(req.TaskToken)
	if err != nil {
		return nil, err
	}
	if !json.Valid([]byte(*req.Output)) {
		return nil, sandbox.Errorf(400, "InvalidOutput", "Invalid Output: 'The output is not valid JSON'")
	}
	if !s.settle(cb, outcome{output: json.RawMessage(*req.Output)}) {
		return nil, taskClosed()
	}
	return struct{}{}, nil
}

func (s *Service) sendTaskFailure(c *sandbox.Call) (any, error) {
	var req struct {
		TaskToken string `json:"taskToken"`
		Error     string `json:"error"`
		Cause     string `json:"cause"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if len(req.Error) > maxError {
		return nil, tooLong("error", maxError)
	}
	if len(req.Cause) > maxCause {
		return nil, tooLong("cause", maxCause)
	}
	cb, err := s.findToken(req.TaskToken)
	if err != nil {
		return nil, err
	}
	if !s.settle(cb, outcome{failed: true, err: req.Error, cause: req.Cause}) {
		return nil, taskClosed()
	}
	return struct{}{}, nil
}

// sendTaskHeartbeat restarts the heartbeat clock; it adds nothing to the
// history, as in AWS. A Task without HeartbeatSeconds accepts it too.
func (s *Service) sendTaskHeartbeat(c *sandbox.Call) (any, error) {
	var req struct {
		TaskToken string `json:"taskToken"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	cb, err := s.findToken(req.TaskToken)
	if err != nil {
		return nil, err
	}
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	if !cb.live() {
		return nil, taskClosed()
	}
	if cb.beat != nil {
		cb.beat.Reset(cb.beatEvery)
	}
	return struct{}{}, nil
}

// TaskToken is a callback Task's token as the admin API lists it.
type TaskToken struct {
	Token        string    `json:"taskToken"`
	ExecutionARN string    `json:"executionArn"`
	State        string    `json:"state"`
	Status       string    `json:"status"` // PENDING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED
	Timeout      int64     `json:"timeoutSeconds,omitempty"`
	Deadline     time.Time `json:"realDeadline,omitzero"` // wall-clock time the (shortened) timeout fires
}

// TaskTokens lists every token issued (and kept across restarts), pending
// ones first, then by execution.
func (s *Service) TaskTokens() []TaskToken {
	s.cbmu.Lock()
	out := make([]TaskToken, 0, len(s.tokens))
	for _, cb := range s.tokens {
		tt := TaskToken{Token: cb.token, ExecutionARN: cb.execution, State: cb.state, Status: cb.status}
		if cb.open && !cb.live() {
			tt.Status = Aborted
		}
		if cb.t != nil {
			tt.Timeout = cb.t.timeout
		}
		if tt.Status == "PENDING" {
			tt.Deadline = cb.deadline
		}
		out = append(out, tt)
	}
	s.cbmu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if pi, pj := out[i].Status == "PENDING", out[j].Status == "PENDING"; pi != pj {
			return pi
		}
		if out[i].ExecutionARN != out[j].ExecutionARN {
			return out[i].ExecutionARN < out[j].ExecutionARN
		}
		return out[i].Token < out[j].Token
	})
	return out
}
