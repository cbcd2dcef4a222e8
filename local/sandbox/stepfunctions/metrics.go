package stepfunctions

import (
	"slices"
	"sync"
	"time"
)

// ExecutionEnd is a closed execution as CloudWatch's AWS/States metrics
// count it (ExecutionsSucceeded, ExecutionsFailed, ExecutionsTimedOut,
// ExecutionsAborted, by StateMachineArn).
// https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html
type ExecutionEnd struct {
	StateMachineARN string
	Status          string // SUCCEEDED, FAILED, TIMED_OUT, ABORTED
	At              time.Time
}

// metrics tells listeners (the sandbox's CloudWatch) of each execution that closes.
type metrics struct {
	mu        sync.Mutex
	listeners []func(ExecutionEnd)
}

// OnExecutionEnd has f called, without any of the service's locks held,
// each time an execution closes. f must not block.
func (s *Service) OnExecutionEnd(f func(ExecutionEnd)) {
	s.metrics.mu.Lock()
	s.metrics.listeners = append(s.metrics.listeners, f)
	s.metrics.mu.Unlock()
}

func (s *Service) executionEnded(e *execution) {
	v := e.view()
	s.metrics.mu.Lock()
	ls := slices.Clone(s.metrics.listeners)
	s.metrics.mu.Unlock()
	for _, f := range ls {
		f(ExecutionEnd{StateMachineARN: v.StateMachineARN, Status: v.Status, At: v.Stop})
	}
}

// ExecutionsEnded counts the executions of machine that closed with status
// in the window (from, to] of the sandbox clock: the Sum of the AWS/States
// metric for that status over the window. It reads the executions kept, so
// the count survives a --state restart.
func (s *Service) ExecutionsEnded(machine, status string, from, to time.Time) int {
	s.mu.Lock()
	all := make([]*execution, 0, len(s.execs))
	for _, e := range s.execs {
		if e.machineARN == machine {
			all = append(all, e)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, e := range all {
		e.mu.Lock()
		if e.status == status && e.stop.After(from) && !e.stop.After(to) {
			n++
		}
		e.mu.Unlock()
	}
	return n
}
