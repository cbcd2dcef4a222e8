package stepfunctions

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// HistoryEvent is one entry of GetExecutionHistory, in AWS's JSON shape:
// exactly one of the detail fields is set, as the type says.
type HistoryEvent struct {
	ID              int64             `json:"id"`
	PreviousEventID int64             `json:"previousEventId"`
	Timestamp       sandbox.EpochTime `json:"timestamp"`
	Type            string            `json:"type"`

	ExecutionStarted   *ExecutionStartedDetails `json:"executionStartedEventDetails,omitempty"`
	ExecutionSucceeded *OutputDetails           `json:"executionSucceededEventDetails,omitempty"`
	ExecutionFailed    *ErrorDetails            `json:"executionFailedEventDetails,omitempty"`
	ExecutionAborted   *ErrorDetails            `json:"executionAbortedEventDetails,omitempty"`
	ExecutionTimedOut  *ErrorDetails            `json:"executionTimedOutEventDetails,omitempty"`

	StateEntered *StateEnteredDetails `json:"stateEnteredEventDetails,omitempty"`
	StateExited  *StateExitedDetails  `json:"stateExitedEventDetails,omitempty"`

	TaskScheduled   *TaskScheduledDetails `json:"taskScheduledEventDetails,omitempty"`
	TaskStarted     *TaskDetails          `json:"taskStartedEventDetails,omitempty"`
	TaskStartFailed *TaskDetails          `json:"taskStartFailedEventDetails,omitempty"`
	TaskSubmitted   *TaskDetails          `json:"taskSubmittedEventDetails,omitempty"`
	TaskSucceeded   *TaskDetails          `json:"taskSucceededEventDetails,omitempty"`
	TaskFailed      *TaskDetails          `json:"taskFailedEventDetails,omitempty"`
	TaskTimedOut    *TaskDetails          `json:"taskTimedOutEventDetails,omitempty"`

	LambdaFunctionScheduled *LambdaScheduledDetails `json:"lambdaFunctionScheduledEventDetails,omitempty"`
	LambdaFunctionSucceeded *OutputDetails          `json:"lambdaFunctionSucceededEventDetails,omitempty"`
	LambdaFunctionFailed    *ErrorDetails           `json:"lambdaFunctionFailedEventDetails,omitempty"`
	LambdaFunctionTimedOut  *ErrorDetails           `json:"lambdaFunctionTimedOutEventDetails,omitempty"`

	MapStateStarted     *MapStateStartedDetails `json:"mapStateStartedEventDetails,omitempty"`
	MapIterationStarted *MapIterationDetails    `json:"mapIterationStartedEventDetails,omitempty"`
	MapIterationSucceed *MapIterationDetails    `json:"mapIterationSucceededEventDetails,omitempty"`
	MapIterationFailed  *MapIterationDetails    `json:"mapIterationFailedEventDetails,omitempty"`
}

// ExecutionStartedDetails are executionStartedEventDetails.
type ExecutionStartedDetails struct {
	Input   *string `json:"input,omitempty"`
	RoleARN string  `json:"roleArn,omitempty"`
}

// OutputDetails carry an output (execution or Lambda success).
type OutputDetails struct {
	Output *string `json:"output,omitempty"`
}

// ErrorDetails carry an error and its cause.
type ErrorDetails struct {
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
}

// StateEnteredDetails are stateEnteredEventDetails.
type StateEnteredDetails struct {
	Name  string  `json:"name"`
	Input *string `json:"input,omitempty"`
}

// StateExitedDetails are stateExitedEventDetails.
type StateExitedDetails struct {
	Name   string  `json:"name"`
	Output *string `json:"output,omitempty"`
}

// TaskScheduledDetails are taskScheduledEventDetails. Parameters are the
// resolved Parameters as JSON text: a callback Task's token is in them,
// wherever its Parameters put $$.Task.Token.
type TaskScheduledDetails struct {
	ResourceType       string `json:"resourceType"`
	Resource           string `json:"resource"`
	Region             string `json:"region"`
	Parameters         string `json:"parameters"`
	TimeoutInSeconds   *int64 `json:"timeoutInSeconds,omitempty"`
	HeartbeatInSeconds *int64 `json:"heartbeatInSeconds,omitempty"`
}

// TaskDetails are the details of TaskStarted, TaskSubmitted, TaskSucceeded,
// TaskFailed, TaskStartFailed and TaskTimedOut (each uses the fields it needs).
type TaskDetails struct {
	ResourceType string  `json:"resourceType"`
	Resource     string  `json:"resource"`
	Output       *string `json:"output,omitempty"`
	Error        string  `json:"error,omitempty"`
	Cause        string  `json:"cause,omitempty"`
}

// LambdaScheduledDetails are lambdaFunctionScheduledEventDetails.
type LambdaScheduledDetails struct {
	Resource         string  `json:"resource"`
	Input            *string `json:"input,omitempty"`
	TimeoutInSeconds *int64  `json:"timeoutInSeconds,omitempty"`
}

// MapStateStartedDetails are mapStateStartedEventDetails.
type MapStateStartedDetails struct {
	Length int `json:"length"`
}

// MapIterationDetails are the details of MapIteration* events.
type MapIterationDetails struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
}

// withoutData is the event as includeExecutionData=false shows it.
func (ev HistoryEvent) withoutData() HistoryEvent {
	if d := ev.ExecutionStarted; d != nil {
		ev.ExecutionStarted = &ExecutionStartedDetails{RoleARN: d.RoleARN}
	}
	if ev.ExecutionSucceeded != nil {
		ev.ExecutionSucceeded = &OutputDetails{}
	}
	if d := ev.StateEntered; d != nil {
		ev.StateEntered = &StateEnteredDetails{Name: d.Name}
	}
	if d := ev.StateExited; d != nil {
		ev.StateExited = &StateExitedDetails{Name: d.Name}
	}
	if d := ev.TaskScheduled; d != nil {
		c := *d
		c.Parameters = ""
		ev.TaskScheduled = &c
	}
	if d := ev.TaskSucceeded; d != nil {
		c := *d
		c.Output = nil
		ev.TaskSucceeded = &c
	}
	if d := ev.TaskSubmitted; d != nil {
		c := *d
		c.Output = nil
		ev.TaskSubmitted = &c
	}
	if d := ev.LambdaFunctionScheduled; d != nil {
		ev.LambdaFunctionScheduled = &LambdaScheduledDetails{Resource: d.Resource, TimeoutInSeconds: d.TimeoutInSeconds}
	}
	if ev.LambdaFunctionSucceeded != nil {
		ev.LambdaFunctionSucceeded = &OutputDetails{}
	}
	return ev
}

// runnerEvent is one entry of aws-local-stepfunctions' eventLogs.
type runnerEvent struct {
	Type      string  `json:"type"`
	Timestamp float64 `json:"timestamp"`
	State     *struct {
		Name   string          `json:"name"`
		Type   string          `json:"type"`
		Input  json.RawMessage `json:"input"`
		Output json.RawMessage `json:"output"`
	} `json:"state"`
	Index       *int `json:"index"`
	ParentState *struct {
		Name string `json:"name"`
	} `json:"parentState"`
	Error string          `json:"Error"`
	Cause json.RawMessage `json:"Cause"`
}

func jsonText(raw json.RawMessage) *string {
	s := "null"
	if len(raw) > 0 {
		s = string(raw)
	}
	return &s
}

// record translates one runner event into the AWS history. The execution's
// start and end are the sandbox's own events; Task events come from the
// task bridge; StateRetried and StateCaught have no AWS counterpart (AWS
// shows a retry as another TaskScheduled…, a catch as the next state).
func (s *Service) record(e *execution, ev runnerEvent, r *run) {
	at := time.UnixMilli(int64(ev.Timestamp)).UTC()
	switch ev.Type {
	case "StateEntered":
		st := ev.State
		e.append(st.Type+"StateEntered", at, func(h *HistoryEvent) {
			h.StateEntered = &StateEnteredDetails{Name: st.Name, Input: jsonText(st.Input)}
		})
		if st.Type == "Parallel" {
			e.append("ParallelStateStarted", at, nil)
		}
	case "StateExited":
		st := ev.State
		switch st.Type {
		case "Map":
			// The interpreter may end the Map before it forwards the last
			// iterations' ends (and drops them if the execution ends first).
			for _, i := range r.unfinished(st.Name) {
				e.append("MapIterationSucceeded", at, func(h *HistoryEvent) {
					h.MapIterationSucceed = &MapIterationDetails{Name: st.Name, Index: i}
				})
			}
			e.append("MapStateSucceeded", at, nil)
		case "Parallel":
			e.append("ParallelStateSucceeded", at, nil)
		}
		e.append(st.Type+"StateExited", at, func(h *HistoryEvent) {
			h.StateExited = &StateExitedDetails{Name: st.Name, Output: jsonText(st.Output)}
		})
	case "StateFailed":
		st := ev.State
		switch {
		case st.Type == "Task" && ev.Error == "States.Timeout":
			if t := r.timedOut(st.Name); t != nil {
				cause := ""
				e.appendTo(t.state, t.kind.prefix()+"TimedOut", at, func(h *HistoryEvent) {
					if t.kind == directLambda {
						h.LambdaFunctionTimedOut = &ErrorDetails{Error: "States.Timeout", Cause: cause}
						return
					}
					h.TaskTimedOut = &TaskDetails{ResourceType: t.resourceType, Resource: t.resource, Error: "States.Timeout", Cause: cause}
				})
			}
		case st.Type == "Map":
			e.append("MapStateFailed", at, nil)
		case st.Type == "Parallel":
			e.append("ParallelStateFailed", at, nil)
		}
	case "MapIterationStarted", "MapIterationSucceeded", "MapIterationFailed":
		d := &MapIterationDetails{}
		if ev.ParentState != nil {
			d.Name = ev.ParentState.Name
		}
		if ev.Index != nil {
			d.Index = *ev.Index
		}
		if !r.iteration(d.Name, d.Index, ev.Type == "MapIterationStarted") {
			return // already ended with its Map
		}
		e.append(ev.Type, at, func(h *HistoryEvent) {
			switch ev.Type {
			case "MapIterationStarted":
				h.MapIterationStarted = d
			case "MapIterationSucceeded":
				h.MapIterationSucceed = d
			default:
				h.MapIterationFailed = d
			}
		})
	}
}

// iteration tracks a Map's iterations: started, or ended (it reports
// whether this end is news).
func (r *run) iteration(mapName string, index int, started bool) bool {
	if r.iters == nil {
		r.iters = map[string]map[int]bool{}
	}
	m := r.iters[mapName]
	if m == nil {
		m = map[int]bool{}
		r.iters[mapName] = m
	}
	if started {
		m[index] = false
		return true
	}
	ended, known := m[index]
	if known && ended {
		return false
	}
	m[index] = true
	return true
}

// unfinished ends the iterations of a Map that have not ended and returns
// their indexes, in order.
func (r *run) unfinished(mapName string) []int {
	var out []int
	for i, ended := range r.iters[mapName] {
		if !ended {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	for _, i := range out {
		r.iters[mapName][i] = true
	}
	return out
}
