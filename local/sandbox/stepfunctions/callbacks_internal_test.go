package stepfunctions

import (
	"testing"
	"time"
)

func TestCallbackWait(t *testing.T) {
	t.Parallel()
	const hour, day = 3600, 24 * 3600
	tests := []struct {
		name    string
		opts    Options
		seconds int64
		want    time.Duration
	}{
		{"e2e scale: 1 h times out fast", Options{WaitScale: 1e-7}, hour, 83333 * time.Microsecond},
		{"e2e scale: 72 h leave time to approve", Options{WaitScale: 1e-7}, 3 * day, 6 * time.Second},
		{"e2e scale: 30 days", Options{WaitScale: 1e-7}, 30 * day, 60 * time.Second},
		{"a WaitScale above the floor is used as it is", Options{WaitScale: 1e-3}, hour, 3600 * time.Millisecond},
		{"no WaitScale: real time", Options{}, hour, time.Hour},
		{"CallbackScale wins", Options{WaitScale: 1e-7, CallbackScale: 1e-2}, 3 * day, 2592 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil, tc.opts)
			if got := s.callbackWait(tc.seconds); (got - tc.want).Abs() > time.Millisecond {
				t.Errorf("callbackWait(%d) = %v, want %v", tc.seconds, got, tc.want)
			}
		})
	}
}
