package rotation

import (
	"testing"
	"time"
)

func TestPlanDeadline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	in := Input{WaitDays: 7, GraceDays: 1, VerifyAttempts: 3, ApprovalTimeoutHours: 72}
	for _, tc := range []struct {
		name    string
		ageDays int
		mod     func(*Input)
		verdict string
		latest  time.Duration
	}{
		// 60 days old: deadline in 30; the latest deactivation in 21, deleted in 22.
		{name: "ok", ageDays: 60, verdict: DeadlineOK, latest: 21 * 24 * time.Hour},
		// 68: deadline in 22 days, exactly when the key is deleted: still ok.
		{name: "deleted on the deadline", ageDays: 68, verdict: DeadlineOK, latest: 21 * 24 * time.Hour},
		{name: "a day later", ageDays: 69, verdict: DeadlineAtRisk, latest: 21 * 24 * time.Hour},
		// 83: deadline in 7 days, the first check's.
		{name: "first check on the deadline", ageDays: 83, verdict: DeadlineAtRisk, latest: 21 * 24 * time.Hour},
		{name: "past even the first check", ageDays: 84, verdict: DeadlineMissed, latest: 21 * 24 * time.Hour},
		{name: "approval counts", ageDays: 66, verdict: DeadlineAtRisk, latest: 21*24*time.Hour + 72*time.Hour, mod: func(i *Input) { i.RequireApproval = true }},
		{name: "not in a dry run", ageDays: 66, verdict: DeadlineOK, latest: 21 * 24 * time.Hour, mod: func(i *Input) { i.RequireApproval, i.DryRun = true, true }},
		{name: "a longer limit", ageDays: 150, verdict: DeadlineOK, latest: 21 * 24 * time.Hour, mod: func(i *Input) { i.MaxKeyAgeDays = 180 }},
		{name: "no wait", ageDays: 89, verdict: DeadlineOK, latest: 0, mod: func(i *Input) { i.WaitDays, i.GraceDays = 0, 0 }},
	} {
		in := in
		if tc.mod != nil {
			tc.mod(&in)
		}
		created := start.AddDate(0, 0, -tc.ageDays)
		d := PlanDeadline(created, start, in)
		want := created.AddDate(0, 0, in.MaxKeyAgeDays)
		if in.MaxKeyAgeDays == 0 {
			want = created.AddDate(0, 0, 90)
		}
		if d.Verdict != tc.verdict || !d.At.Equal(want) || d.LatestDeactivation.Sub(start) != tc.latest || d.EarliestDeactivation.Sub(start) != time.Duration(in.WaitDays)*24*time.Hour {
			t.Errorf("%s: %+v, want verdict %s, at %s, latest +%s", tc.name, d, tc.verdict, want, tc.latest)
		}
		if d.String() == "" {
			t.Errorf("%s: no sentence", tc.name)
		}
	}
}
