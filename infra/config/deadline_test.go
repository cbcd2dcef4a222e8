package config

import (
	"strings"
	"testing"
	"time"
)

// A schedule that cannot retire a key before its IAM.3 deadline is refused
// at synth; one that makes it only if the first check passes is a warning.
func TestDeadlineAtSynth(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	doc := func(schedule, input string) string {
		return `{"rotations":[{"name":"r","schedule":"` + schedule + `","timeZone":"Asia/Tokyo","alertEmails":["a@b.co"],
			"input":{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s"}]` + input + `}}]}`
	}
	for _, tc := range []struct {
		name, schedule, input string
		refused, warned       string
	}{
		// Every two months skipping keys under 80 days: a key waits up to
		// 123 days for its retiring run.
		{name: "every two months, minKeyAgeDays 80", schedule: "cron(0 3 1 */2 ? *)", input: `,"minKeyAgeDays":80`, refused: "waits up to 123.0 days"},
		{name: "every 30 days with the default 80", schedule: "rate(30 days)", refused: "waits up to 90.0 days"},
		{name: "the same, the organization's limit is 180", schedule: "rate(30 days)", input: `,"maxKeyAgeDays":180`},
		{name: "disabled: never runs, not checked", schedule: "rate(30 days)", input: `}, "enabled": false, "x":{`},
		// Daily with the defaults: 80 + 7 = 87 at the earliest; 80 + 21 + 1 = 102 at the latest.
		{name: "daily with the defaults", schedule: "cron(0 3 * * ? *)", warned: "a key can be 102.0 days old"},
		{name: "daily, approval counts", schedule: "cron(0 3 * * ? *)", input: `,"minKeyAgeDays":60,"requireApproval":true,"approvers":["arn:aws:iam::111122223333:role/security-*"],"approvalTimeoutHours":720`, warned: "30.0 days of approval"},
		{name: "monthly, minKeyAgeDays 25", schedule: "cron(0 3 1 * ? *)", input: `,"minKeyAgeDays":25`},
	} {
		d := doc(tc.schedule, tc.input)
		if strings.Contains(tc.input, "enabled") {
			d = `{"rotations":[{"name":"r","schedule":"` + tc.schedule + `","timeZone":"UTC","alertEmails":["a@b.co"],"enabled":false,
				"input":{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s"}]}}]}`
		}
		c, err := ParseAt([]byte(d), now)
		switch {
		case tc.refused != "":
			if err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "IAM.3") || !strings.Contains(err.Error(), "rotations[0] (r): schedule") {
				t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.refused)
			}
		case err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.warned != "":
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tc.warned) {
				t.Errorf("%s: warnings %q, want one saying %q", tc.name, c.Warnings, tc.warned)
			}
		case len(c.Warnings) != 0:
			t.Errorf("%s: warnings %q, want none", tc.name, c.Warnings)
		}
	}
}
