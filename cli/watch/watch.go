// Package watch follows a Step Functions execution through its history, as
// the console's graph does, and says what each state did: entered, left
// (with its duration on the workflow's clock), failed, retried. Report is
// the end of a run for a person: keys before and after, what each target
// took, the verification's evidence and one result line. keyrotator-demo
// and `keyrotator watch` both print them.
package watch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Step events.
const (
	Entered  = "entered"
	Exited   = "exited"
	Failed   = "failed"
	Retrying = "retrying"
)

// Step is one thing that happened to a state.
type Step struct {
	State    string
	Type     string // the state's type: Task, Wait, Map, Choice…
	Event    string // entered, exited, failed, retrying
	At       time.Time
	Duration time.Duration // exited: time in the state, on the workflow's clock
	Detail   string        // failed, and exited through a Catch: the error; retrying: the error retried
	Iter     bool          // inside a Map iteration
	// Input (entered) and Output (exited) are the state's data: a Wait's
	// length and the plan come from them. Ids and sentences only (I1).
	Input, Output string
}

// String is the line a person reads.
func (s Step) String() string {
	name := s.State
	if s.Iter {
		name = "  " + name
	}
	switch s.Event {
	case Entered:
		return fmt.Sprintf("→ %s", name)
	case Exited:
		if s.Detail != "" { // left by a Catch
			return fmt.Sprintf("✗ %-26s caught %s  %s", name, s.Detail, Human(s.Duration))
		}
		return fmt.Sprintf("✓ %-26s ok  %s", name, Human(s.Duration))
	case Retrying:
		return fmt.Sprintf("↻ %-26s retrying after %s", name, s.Detail)
	default:
		return fmt.Sprintf("✗ %-26s %s: %s", name, s.Event, s.Detail)
	}
}

// Human prints a duration the way a person says it: 12ms, 3.2s, 7d.
func Human(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d.Round(time.Minute)%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d.Round(time.Minute)/(24*time.Hour))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}

// HistoryAPI is what following an execution calls (*sfn.Client).
type HistoryAPI interface {
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, opt ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opt ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

var _ HistoryAPI = (*sfn.Client)(nil)

// Ended is an execution that has ended, with its whole history.
type Ended struct {
	Execution *sfn.DescribeExecutionOutput
	History   []types.HistoryEvent
}

// Follower polls an execution's history.
type Follower struct {
	API    HistoryAPI
	Every  time.Duration // between polls
	OnStep func(Step)    // each new step, in order
	// OnPoll, if set, runs after every poll with the execution as it is:
	// the CLI redraws a Wait's progress bar there.
	OnPoll func(*sfn.DescribeExecutionOutput)
}

// Follow polls the execution's history every interval, calls emit for each
// new step, and returns the execution once it has ended.
func Follow(ctx context.Context, c HistoryAPI, arn string, every time.Duration, emit func(Step)) (*Ended, error) {
	return Follower{API: c, Every: every, OnStep: emit}.Follow(ctx, arn)
}

// Follow runs until the execution ends or ctx does.
func (f Follower) Follow(ctx context.Context, arn string) (*Ended, error) {
	t := tracker{entered: map[string]time.Time{}, scheduled: map[string]int{}, failed: map[string]string{}}
	for {
		desc, err := f.API.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", arn, err)
		}
		events, err := History(ctx, f.API, arn)
		if err != nil {
			return nil, err
		}
		for _, s := range t.steps(events) {
			if f.OnStep != nil {
				f.OnStep(s)
			}
		}
		if desc.Status != types.ExecutionStatusRunning {
			if len(events) == 0 || !ended(events[len(events)-1]) {
				// The status can lead the history by a moment: read it once more.
				if events, err = History(ctx, f.API, arn); err != nil {
					return nil, err
				}
				for _, s := range t.steps(events) {
					if f.OnStep != nil {
						f.OnStep(s)
					}
				}
			}
			return &Ended{Execution: desc, History: events}, nil
		}
		if f.OnPoll != nil {
			f.OnPoll(desc)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(f.Every):
		}
	}
}

// History reads an execution's whole history, oldest first.
func History(ctx context.Context, c HistoryAPI, arn string) ([]types.HistoryEvent, error) {
	var events []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", arn, err)
		}
		events = append(events, page.Events...)
	}
	return events, nil
}

func ended(e types.HistoryEvent) bool {
	switch e.Type {
	case types.HistoryEventTypeExecutionSucceeded, types.HistoryEventTypeExecutionFailed,
		types.HistoryEventTypeExecutionAborted, types.HistoryEventTypeExecutionTimedOut:
		return true
	}
	return false
}

// tracker turns new history events into steps.
type tracker struct {
	seen      int
	entered   map[string]time.Time
	scheduled map[string]int    // task calls scheduled since the state was entered
	failed    map[string]string // the last task error in the state
}

func (t *tracker) steps(events []types.HistoryEvent) []Step {
	var out []Step
	for _, e := range events[min(t.seen, len(events)):] {
		at := aws.ToTime(e.Timestamp)
		typ := string(e.Type)
		switch {
		case strings.HasSuffix(typ, "StateEntered") && e.StateEnteredEventDetails != nil:
			name := aws.ToString(e.StateEnteredEventDetails.Name)
			t.entered[name] = at
			t.scheduled[name] = 0
			t.failed[name] = ""
			out = append(out, Step{State: name, Type: strings.TrimSuffix(typ, "StateEntered"), Event: Entered, At: at,
				Iter: InMap(events, e), Input: aws.ToString(e.StateEnteredEventDetails.Input)})
		case strings.HasSuffix(typ, "StateExited") && e.StateExitedEventDetails != nil:
			name := aws.ToString(e.StateExitedEventDetails.Name)
			out = append(out, Step{State: name, Type: strings.TrimSuffix(typ, "StateExited"), Event: Exited, At: at, Detail: t.failed[name],
				Duration: at.Sub(t.entered[name]), Iter: InMap(events, e), Output: aws.ToString(e.StateExitedEventDetails.Output)})
		case e.Type == types.HistoryEventTypeTaskScheduled || e.Type == types.HistoryEventTypeLambdaFunctionScheduled:
			// AWS shows a retry as the task scheduled again in the same state.
			name := LastEntered(events, e)
			if t.scheduled[name] > 0 {
				out = append(out, Step{State: name, Type: "Task", Event: Retrying, At: at, Detail: t.failed[name], Iter: InMap(events, e)})
			}
			t.scheduled[name]++
		case e.Type == types.HistoryEventTypeTaskSucceeded || e.Type == types.HistoryEventTypeLambdaFunctionSucceeded:
			t.failed[LastEntered(events, e)] = "" // a retry that worked
		case e.LambdaFunctionFailedEventDetails != nil:
			out = append(out, t.fail(events, e, aws.ToString(e.LambdaFunctionFailedEventDetails.Error)))
		case e.TaskFailedEventDetails != nil:
			out = append(out, t.fail(events, e, aws.ToString(e.TaskFailedEventDetails.Error)))
		case e.LambdaFunctionTimedOutEventDetails != nil:
			out = append(out, t.fail(events, e, aws.ToString(e.LambdaFunctionTimedOutEventDetails.Error)))
		case e.TaskTimedOutEventDetails != nil:
			out = append(out, t.fail(events, e, aws.ToString(e.TaskTimedOutEventDetails.Error)))
		}
	}
	t.seen = len(events)
	return out
}

func (t *tracker) fail(events []types.HistoryEvent, e types.HistoryEvent, errName string) Step {
	name := LastEntered(events, e)
	t.failed[name] = errName
	return Step{State: name, Type: "Task", Event: Failed, At: aws.ToTime(e.Timestamp), Detail: errName, Iter: InMap(events, e)}
}

// LastEntered is the state a task event belongs to: the StateEntered its
// previousEventId chain leads back to. (The event written just before is
// not enough: in a Map, it may be another iteration's.)
func LastEntered(events []types.HistoryEvent, e types.HistoryEvent) string {
	byID := func(id int64) (types.HistoryEvent, bool) {
		// Event ids run 1, 2, 3…: the history is its own index.
		if i := int(id) - 1; i >= 0 && i < len(events) && events[i].Id == id {
			return events[i], true
		}
		for _, x := range events {
			if x.Id == id {
				return x, true
			}
		}
		return types.HistoryEvent{}, false
	}
	for id, hops := e.PreviousEventId, 0; id > 0 && hops < len(events); hops++ {
		x, ok := byID(id)
		if !ok {
			break
		}
		if d := x.StateEnteredEventDetails; d != nil {
			return aws.ToString(d.Name)
		}
		id = x.PreviousEventId
	}
	return "?"
}

// InMap says whether e happened inside a Map iteration (for indenting).
func InMap(events []types.HistoryEvent, e types.HistoryEvent) bool {
	depth := 0
	for _, x := range events {
		if x.Id >= e.Id {
			break
		}
		switch x.Type {
		case types.HistoryEventTypeMapIterationStarted:
			depth++
		case types.HistoryEventTypeMapIterationSucceeded, types.HistoryEventTypeMapIterationFailed, types.HistoryEventTypeMapIterationAborted:
			depth--
		}
	}
	return depth > 0
}
