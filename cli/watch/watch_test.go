package watch

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{12 * time.Millisecond, "12ms"},
		{3200 * time.Millisecond, "3.2s"},
		{7 * 24 * time.Hour, "7d"},
		{7*24*time.Hour - 20*time.Millisecond, "7d"}, // a Wait's exit lands a hair early or late
		{7*24*time.Hour + 20*time.Millisecond, "7d"},
		{26 * time.Hour, "26h0m0s"},
	}
	for _, tt := range tests {
		if got := Human(tt.d); got != tt.want {
			t.Errorf("Human(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestStepsRetryAndCatch(t *testing.T) {
	name := aws.String("Validate")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(typ types.HistoryEventType, d time.Duration) types.HistoryEvent {
		e := types.HistoryEvent{Type: typ, Timestamp: aws.Time(at.Add(d))}
		switch typ {
		case types.HistoryEventTypeTaskStateEntered:
			e.StateEnteredEventDetails = &types.StateEnteredEventDetails{Name: name}
		case types.HistoryEventTypeTaskStateExited:
			e.StateExitedEventDetails = &types.StateExitedEventDetails{Name: name}
		case types.HistoryEventTypeLambdaFunctionFailed:
			e.LambdaFunctionFailedEventDetails = &types.LambdaFunctionFailedEventDetails{Error: aws.String("Retryable")}
		}
		return e
	}
	steps := func(events ...types.HistoryEvent) []string {
		for i := range events {
			events[i].Id, events[i].PreviousEventId = int64(i+1), int64(i) // each follows the one before, as without parallel branches
		}
		tr := tracker{entered: map[string]time.Time{}, scheduled: map[string]int{}, failed: map[string]string{}}
		var out []string
		for _, s := range tr.steps(events) {
			out = append(out, s.String())
		}
		return out
	}
	got := steps(ev(types.HistoryEventTypeTaskStateEntered, 0), ev(types.HistoryEventTypeLambdaFunctionScheduled, 0),
		ev(types.HistoryEventTypeLambdaFunctionFailed, time.Second), ev(types.HistoryEventTypeLambdaFunctionScheduled, 3*time.Second),
		ev(types.HistoryEventTypeLambdaFunctionSucceeded, 4*time.Second), ev(types.HistoryEventTypeTaskStateExited, 4*time.Second))
	want := []string{"→ Validate", "✗ Validate                   failed: Retryable", "↻ Validate                   retrying after Retryable", "✓ Validate                   ok  4s"}
	if !slices.Equal(got, want) {
		t.Errorf("retried then ok:\n%q\nwant\n%q", got, want)
	}
	got = steps(ev(types.HistoryEventTypeTaskStateEntered, 0), ev(types.HistoryEventTypeLambdaFunctionScheduled, 0),
		ev(types.HistoryEventTypeLambdaFunctionFailed, time.Second), ev(types.HistoryEventTypeTaskStateExited, time.Second))
	if want := "✗ Validate                   caught Retryable  1s"; got[len(got)-1] != want {
		t.Errorf("caught: %q, want %q", got[len(got)-1], want)
	}
}

// Map iterations run side by side: each task event belongs to the state its
// previousEventId chain leads to, not to the state entered last, so two
// targets updated at once are not taken for a retry.
func TestParallelIterationsAreNoRetry(t *testing.T) {
	at := aws.Time(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	enter := func(id int64, name string) types.HistoryEvent {
		return types.HistoryEvent{Id: id, PreviousEventId: id - 1, Type: types.HistoryEventTypeTaskStateEntered, Timestamp: at, StateEnteredEventDetails: &types.StateEnteredEventDetails{Name: aws.String(name)}}
	}
	task := func(id, prev int64, typ types.HistoryEventType) types.HistoryEvent {
		return types.HistoryEvent{Id: id, PreviousEventId: prev, Type: typ, Timestamp: at}
	}
	events := []types.HistoryEvent{
		enter(1, "UpdateSecret"), enter(2, "UpdateSoracom"),
		task(3, 1, types.HistoryEventTypeLambdaFunctionScheduled), task(4, 2, types.HistoryEventTypeLambdaFunctionScheduled),
		task(5, 3, types.HistoryEventTypeLambdaFunctionSucceeded), task(6, 4, types.HistoryEventTypeLambdaFunctionSucceeded),
	}
	tr := tracker{entered: map[string]time.Time{}, scheduled: map[string]int{}, failed: map[string]string{}}
	for _, s := range tr.steps(events) {
		if s.Event == Retrying {
			t.Errorf("a retry where there is none: %s", s)
		}
	}
	if got := LastEntered(events, events[2]); got != "UpdateSecret" {
		t.Errorf("event 3 belongs to %s, want UpdateSecret", got)
	}
}
