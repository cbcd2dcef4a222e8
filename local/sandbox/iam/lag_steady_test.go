package iam

import (
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// TestLastUsedLagUnderSteadyUse: a key used more often than once a
// reportStep must still show its uses once the lag has passed. Coalescing a
// use into the pending one only when it is less than reportStep after the
// *latest* coalesced use let a steady stream slide the pending entry forward
// for ever: a key in constant use looked unused to GetAccessKeyLastUsed, so
// VerifyOldKeyUnused would deactivate an old key a consumer was still using.
func TestLastUsedLagUnderSteadyUse(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, every := range []time.Duration{time.Second, 30 * time.Second, 59 * time.Second} {
		t.Run(every.String(), func(t *testing.T) {
			s := New(sandbox.New(sandbox.Options{}), DefaultLag)
			s.st.Keys["AKIA1"] = &Key{ID: "AKIA1", Status: "Active"}
			k := s.st.Keys["AKIA1"]
			end := t0.Add(10 * time.Hour)
			for at := t0; !at.After(end); at = at.Add(every) {
				s.MarkUsed("AKIA1", "ses", "us-east-1", at)
			}
			// At end, every use up to end-lag has had its lag: the report is
			// at most one reportStep older than that.
			want := end.Add(-DefaultLag - reportStep)
			if got := k.reported(end, DefaultLag); got == nil || got.At.Before(want) {
				t.Errorf("a key used every %s for 10h shows last use %+v at the end, want at or after %v", every, got, want)
			}
		})
	}
}
