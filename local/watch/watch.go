// Package watch follows a Step Functions execution through its history, as
// the console's graph does, and says what each state did: entered, left
// (with its duration on the workflow's clock), failed, retried, caught.
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

// Step is one thing that happened to a state.
type Step struct {
	State    string
	Event    string        // entered, exited, failed, retrying
	Duration time.Duration // exited: time in the state, on the workflow's clock
	Detail   string        // failed: the error; retrying: the error retried
	Iter     bool          // inside a Map iteration
}

// String is the line a person reads.
func (s Step) String() string {
	name := s.State
	if s.Iter {
		name = "  " + name
	}
	switch s.Event {
	case "entered":
		return fmt.Sprintf("→ %s", name)
	case "exited":
		return fmt.Sprintf("✓ %-26s ok  %s", name, Human(s.Duration))
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

type historyAPI interface {
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, opt ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opt ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Follow polls the execution's history every interval, calls emit for each
// new step, and returns the execution once it has ended.
func Follow(ctx context.Context, c historyAPI, arn string, every time.Duration, emit func(Step)) (*sfn.DescribeExecutionOutput, error) {
	seen := 0
	entered := map[string]time.Time{}
	var failed string // the error of the last failed task, for its state
	for {
		desc, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", arn, err)
		}
		var events []types.HistoryEvent
		p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("history of %s: %w", arn, err)
			}
			events = append(events, page.Events...)
		}
		for _, e := range events[min(seen, len(events)):] {
			at := aws.ToTime(e.Timestamp)
			typ := string(e.Type)
			switch {
			case strings.HasSuffix(typ, "StateEntered") && e.StateEnteredEventDetails != nil:
				name := aws.ToString(e.StateEnteredEventDetails.Name)
				entered[name] = at
				failed = ""
				emit(Step{State: name, Event: "entered", Iter: inMap(events, e)})
			case strings.HasSuffix(typ, "StateExited") && e.StateExitedEventDetails != nil:
				name := aws.ToString(e.StateExitedEventDetails.Name)
				emit(Step{State: name, Event: "exited", Duration: at.Sub(entered[name]), Iter: inMap(events, e)})
			case e.LambdaFunctionFailedEventDetails != nil:
				failed = aws.ToString(e.LambdaFunctionFailedEventDetails.Error)
				emit(Step{State: lastEntered(events, e), Event: "failed", Detail: failed})
			case e.TaskFailedEventDetails != nil:
				failed = aws.ToString(e.TaskFailedEventDetails.Error)
				emit(Step{State: lastEntered(events, e), Event: "failed", Detail: failed})
			case e.LambdaFunctionTimedOutEventDetails != nil:
				emit(Step{State: lastEntered(events, e), Event: "failed", Detail: aws.ToString(e.LambdaFunctionTimedOutEventDetails.Error)})
			}
		}
		seen = len(events)
		if desc.Status != types.ExecutionStatusRunning {
			return desc, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

// lastEntered is the state a task event belongs to: the last one entered before it.
func lastEntered(events []types.HistoryEvent, e types.HistoryEvent) string {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Id >= e.Id {
			continue
		}
		if d := events[i].StateEnteredEventDetails; d != nil {
			return aws.ToString(d.Name)
		}
	}
	return "?"
}

// inMap says whether e happened inside a Map iteration (for indenting).
func inMap(events []types.HistoryEvent, e types.HistoryEvent) bool {
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
