package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/fleet"
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

// Issue 15: a user tagged keyrotator:rotation = <template> under the
// template's path is the sweep's (managed, named sweep.<template>), as the
// sweep picks it; a tag naming no template, a user outside the path, and
// a disabled sweep leave its keys unmanaged; a configured rotation of the
// user comes first.
func TestFleetTemplateUsersAreTheSweeps(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	now := sb.Server.Clock().Now()
	tag := func(v string) [][2]string { return [][2]string{{fleet.TagKey, v}} }
	users := []struct {
		name, path string
		tags       [][2]string
		want       string // the row's rotation; "" unmanaged
	}{
		{"f-in", "/fleet/", tag("app-fleet"), "sweep.app-fleet"},
		{"f-deep", "/fleet/team-a/", tag("app-fleet"), "sweep.app-fleet"},
		{"f-outside", "/", tag("app-fleet"), ""},            // the template's grants do not reach it: nor does the sweep
		{"f-other", "/fleet/", tag("no-such-template"), ""}, // a tag naming no template
		{"f-untagged", "/fleet/", nil, ""},
		{"f-configured", "/fleet/", tag("app-fleet"), "configured"}, // a configured rotation first
		{"f-off", "/off/", tag("off-fleet"), "sweep.off-fleet (disabled)"},
	}
	for _, u := range users {
		if _, err := sb.IAM.CreateUser(u.name, u.path, u.tags); err != nil {
			t.Fatal(err)
		}
		k, err := sb.IAM.CreateAccessKey(u.name)
		if err != nil {
			t.Fatal(err)
		}
		sb.IAM.Backdate(k.AccessKeyID, now.AddDate(0, 0, -120))
	}
	next := now.Add(24 * time.Hour)
	rep, err := audit.Run(context.Background(), audit.Configured{{ID: sb.Server.Account()}}, ownIAM{iam.NewFromConfig(sb.Config(t))}, audit.Options{
		Now: now, WarnDays: 14, Home: sb.Server.Account(), ReportPoll: 10 * time.Millisecond,
		Managed:   []audit.Managed{{User: "f-configured", Rotation: "configured", Schedule: "rate(1 day)", Enabled: true}},
		Templates: []audit.Template{{Name: "app-fleet", Path: "/fleet/", Schedule: "cron(0 9 * * ? *)", Enabled: true, Next: &next}, {Name: "off-fleet", Path: "/off/", Schedule: "cron(0 9 * * ? *)"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, row := range rep.Rows {
		for _, u := range users {
			if row.User != u.name {
				continue
			}
			seen++
			got := ""
			if row.Rotation != nil {
				got = row.Rotation.Name
				if !row.Rotation.Enabled {
					got += " (disabled)"
				}
			}
			wantState := audit.StateUnmanaged
			if u.want != "" && !strings.HasSuffix(u.want, "(disabled)") {
				wantState = audit.StateManaged
			}
			if got != u.want || row.State != wantState {
				t.Errorf("%s: rotation %q, state %s; want %q, %s", u.name, got, row.State, u.want, wantState)
			}
			if u.want == "sweep.app-fleet" && (row.Rotation.Next == nil || !row.Rotation.Next.Equal(next)) {
				t.Errorf("%s: next run %v, want the sweep's %v", u.name, row.Rotation.Next, next)
			}
		}
	}
	if seen != len(users) {
		t.Errorf("%d of the %d users' keys in the report", seen, len(users))
	}
}

// ownIAM reaches the one account of an audit with one client.
type ownIAM struct{ api audit.IAM }

func (o ownIAM) IAM(context.Context, audit.Account) (audit.IAM, error) { return o.api, nil }
