package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

type topic struct{ subject, body string }

func (f *topic) Publish(_ context.Context, subject, body string) (string, error) {
	f.subject, f.body = subject, body
	return "m-1", nil
}

// The weekly audit reads the sandbox's IAM and publishes one summary.
func TestWeeklyPublishesTheSummary(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	now := sb.Server.Clock().Now()
	for _, u := range []struct {
		name string
		age  int
		tags [][2]string
	}{
		{"old", 120, nil},
		{"rotated", 120, nil},
		{"exempt", 200, [][2]string{{audit.TagExempt, now.AddDate(0, 1, 0).Format(time.DateOnly) + " vendor"}}},
	} {
		if _, err := sb.IAM.CreateUser(u.name, "/", u.tags); err != nil {
			t.Fatal(err)
		}
		k, err := sb.IAM.CreateAccessKey(u.name)
		if err != nil {
			t.Fatal(err)
		}
		sb.IAM.Backdate(k.AccessKeyID, now.AddDate(0, 0, -u.age))
	}
	tp := &topic{}
	w := &audit.Weekly{
		IAM: iam.NewFromConfig(sb.Config(t)), Topic: tp, Now: sb.Server.Clock().Now, WarnDays: 14,
		Account:    func(context.Context) (string, error) { return sb.Server.Account(), nil },
		Managed:    []audit.Managed{{User: "rotated", Rotation: "r", Schedule: "rate(1 day)", Enabled: true}},
		ReportPoll: 10 * time.Millisecond,
	}
	res, err := w.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// old is overdue; rotated is managed; exempt is exempt; the admin's key is new.
	if res.Overdue != 1 || res.Keys != 4 || res.MessageID != "m-1" || tp.subject != "keyrotator audit 111122223333: 1 overdue, 0 due (4 keys)" {
		t.Errorf("result %+v, subject %q", res, tp.subject)
	}
	if !strings.Contains(tp.body, "old") || strings.Contains(tp.body, "rotated ") || !strings.Contains(tp.body, "docs/runbook.md#audit") {
		t.Errorf("body:\n%s", tp.body)
	}
}

// Owners reads the keyrotator:owner tag through ListUserTags.
func TestOwnersFromTheSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	for name, tags := range map[string][][2]string{
		"topic": {{"team", "a"}, {audit.TagOwner, "arn:aws:sns:ap-northeast-1:111122223333:team-a"}},
		"none":  {{"team", "b"}},
		"bad":   {{audit.TagOwner, "nobody"}},
	} {
		if _, err := sb.IAM.CreateUser(name, "/", tags); err != nil {
			t.Fatal(err)
		}
	}
	o := audit.Owners{API: iam.NewFromConfig(sb.Config(t))}
	ctx := context.Background()
	if got, ok, err := o.Owner(ctx, "topic"); err != nil || !ok || got.TopicARN != "arn:aws:sns:ap-northeast-1:111122223333:team-a" {
		t.Errorf("topic: %+v %v %v", got, ok, err)
	}
	if got, ok, err := o.Owner(ctx, "none"); err != nil || ok {
		t.Errorf("none: %+v %v %v", got, ok, err)
	}
	if _, _, err := o.Owner(ctx, "bad"); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("bad: %v", err)
	}
	if _, _, err := o.Owner(ctx, "ghost"); err == nil {
		t.Error("ghost: no error")
	}
}
