package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every alert of a run that Validate has planned shows the old key's IAM.3
// deadline and the planned deactivation, with the verdict when at risk.
func TestEveryAlertShowsTheDeadline(t *testing.T) {
	t.Parallel()
	const plan = `"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","targets":[{"type":"secret","name":"app","secretId":"app/k"}],` +
		`"deadline":{"maxKeyAgeDays":90,"at":"2026-12-20T00:00:00Z","earliestDeactivation":"2026-12-08T03:00:00Z","latestDeactivation":"2026-12-22T03:00:00Z","retired":"2026-12-23T03:00:00Z","verdict":"at-risk"}}`
	for _, kind := range []string{"success", "warning", "approval", "failure"} {
		var in NotifyInput
		in.Kind, in.Now, in.Token = kind, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), "tok"
		data := `{"input":{"user":"mailer"},"execution":"arn:aws:states:ap-northeast-1:111122223333:execution:keyrotator:x",` + plan +
			`,"failure":{"CreateKey":{"Error":"Internal","Cause":"x"}}}`
		if err := json.Unmarshal([]byte(data), &in.Data); err != nil {
			t.Fatal(err)
		}
		topic := &fakeTopic{}
		if _, err := (&Notify{Topic: topic, Records: &fakeApprovals{}}).Run(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		want := "Old key AKIAOLD: IAM.3 deadline 2026-12-20 00:00Z (created + 90 days); deactivation planned 2026-12-08 03:00Z at the earliest, 2026-12-22 03:00Z at the latest, deleted by 2026-12-23 03:00Z: AT RISK"
		if !strings.Contains(topic.body, want) || !strings.Contains(topic.body, `"verdict": "at-risk"`) {
			t.Errorf("the %s alert does not show the deadline %q:\n%s", kind, want, topic.body)
		}
	}
}
