package iam

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// TestLastUsedLag: a use shows in GetAccessKeyLastUsed's data exactly lag
// after it happened, and a key used every second for days keeps a bounded
// list of uses waiting to be reported.
func TestLastUsedLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		lag  time.Duration
		uses []time.Duration // after t0
		now  time.Duration
		want time.Duration // -1: nothing reported
	}{
		{"no lag: at once", 0, []time.Duration{time.Hour}, time.Hour, time.Hour},
		{"within the lag: not yet", DefaultLag, []time.Duration{time.Hour}, time.Hour + DefaultLag - time.Second, -1},
		{"the lag passed: shown", DefaultLag, []time.Duration{time.Hour}, time.Hour + DefaultLag, time.Hour},
		{"an earlier use shows while a later one waits", DefaultLag, []time.Duration{time.Hour, 3 * time.Hour}, 6 * time.Hour, time.Hour},
		{"both shown", DefaultLag, []time.Duration{time.Hour, 3 * time.Hour}, 7 * time.Hour, 3 * time.Hour},
		{"a use marked late, out of order, does not hide the later one", DefaultLag, []time.Duration{3 * time.Hour, time.Hour}, 7 * time.Hour, 3 * time.Hour},
		{"uses in one minute bucket: the later stands", DefaultLag, []time.Duration{time.Hour + 10*time.Second, time.Hour + 50*time.Second}, 6 * time.Hour, time.Hour + 50*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(sandbox.New(sandbox.Options{}), tt.lag)
			s.st.Keys["AKIA1"] = &Key{ID: "AKIA1", Status: "Active"}
			for _, u := range tt.uses {
				s.MarkUsed("AKIA1", "ses", "us-east-1", t0.Add(u))
			}
			got := s.st.Keys["AKIA1"].reported(t0.Add(tt.now), tt.lag)
			switch {
			case tt.want < 0 && got != nil:
				t.Errorf("reported %v, want nothing yet", got.At)
			case tt.want >= 0 && (got == nil || !got.At.Equal(t0.Add(tt.want)) || got.Service != "ses" || got.Region != "us-east-1"):
				t.Errorf("reported %+v, want the use at %v", got, t0.Add(tt.want))
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		s := New(sandbox.New(sandbox.Options{}), DefaultLag)
		s.st.Keys["AKIA1"] = &Key{ID: "AKIA1", Status: "Active"}
		k := s.st.Keys["AKIA1"]
		most := 0
		for i := range 3 * 86400 {
			s.MarkUsed("AKIA1", "ses", "us-east-1", t0.Add(time.Duration(i)*time.Second))
			most = max(most, len(k.Pending))
		}
		if limit := int(DefaultLag/reportStep) + 2; most > limit {
			t.Errorf("%d uses pending at most, want at most %d", most, limit)
		}
		end := t0.Add(3*86400*time.Second - time.Second)
		if got := k.reported(end.Add(DefaultLag), DefaultLag); got == nil || !got.At.Equal(end) {
			t.Errorf("the last use is reported as %+v, want %v", got, end)
		}
	})
}
