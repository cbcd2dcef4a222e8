package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		spec    string
		want    map[string]any
		wantErr string
	}{
		{spec: "type=secret,name=app,secretId=app/aws-access-key",
			want: map[string]any{"type": "secret", "name": "app", "secretId": "app/aws-access-key"}},
		{spec: "type=secret,name=app,secretId=arn:aws:secretsmanager:us-east-1:111122223333:secret:app/key-AbCdEf,keyIdField=id,secretField=secret",
			want: map[string]any{"type": "secret", "name": "app", "secretId": "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/key-AbCdEf", "keyIdField": "id", "secretField": "secret"}},
		{spec: "type=auth0,name=prod,connection=keyrotator/connections/auth0-prod,sesRegion=ap-northeast-1",
			want: map[string]any{"type": "auth0", "name": "prod", "connection": "keyrotator/connections/auth0-prod", "sesRegion": "ap-northeast-1"}},
		{spec: "type=soracom,name=funnel,connection=keyrotator/connections/soracom,credentialPrefix=aws-soracom-funnel,strategy=inPlace",
			want: map[string]any{"type": "soracom", "name": "funnel", "connection": "keyrotator/connections/soracom", "credentialPrefix": "aws-soracom-funnel", "strategy": "inPlace"}},
		{spec: "type=soracom,name=funk,connection=keyrotator/connections/soracom,credentialIds=cred-a,credentialIds=cred-b",
			want: map[string]any{"type": "soracom", "name": "funk", "connection": "keyrotator/connections/soracom", "credentialIds": []string{"cred-a", "cred-b"}}},
		{spec: `{"type":"secret","name":"app","secretId":"app/key"}`,
			want: map[string]any{"type": "secret", "name": "app", "secretId": "app/key"}},
		{spec: "type=secret,name=app,name=other", wantErr: "name given twice"},
		{spec: "type=secret,app", wantErr: `"app" is not key=value`},
		{spec: "=x", wantErr: "is not key=value"},
		{spec: "", wantErr: "empty"},
		{spec: `{"type":`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTarget(%q) error = %v, want %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseTarget(%q) = %#v, want %#v", tt.spec, got, tt.want)
		}
	}
}

func TestExecutionName(t *testing.T) {
	at := time.Date(2026, 3, 1, 3, 4, 5, 0, time.FixedZone("JST", 9*3600))
	tests := []struct{ user, want string }{
		{"app-aws-user", "app-aws-user-20260228T180405Z"},
		{"ses+smtp@example.com", "ses-smtp-example-com-20260228T180405Z"},
		{"a=b,c.d_e", "a-b-c-d_e-20260228T180405Z"},
		{"@@@", "user-20260228T180405Z"},
		{strings.Repeat("u", 64), strings.Repeat("u", 63) + "-20260228T180405Z"}, // 80 in all
	}
	for _, tt := range tests {
		got := ExecutionName(tt.user, at)
		if got != tt.want {
			t.Errorf("ExecutionName(%q) = %q, want %q", tt.user, got, tt.want)
		}
		if len(got) > 80 || !validExecName.MatchString(got) {
			t.Errorf("ExecutionName(%q) = %q breaks Step Functions' name rules", tt.user, got)
		}
	}
}

func TestExecutionARN(t *testing.T) {
	m := "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator"
	got, err := executionARN(m, "app-20260301T030405Z")
	if want := "arn:aws:states:us-east-1:111122223333:execution:keyrotator:app-20260301T030405Z"; err != nil || got != want {
		t.Errorf("executionARN = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"arn:aws:states:us-east-1:1:stateMachine:x", "has space", ""} {
		if _, err := executionARN(m, bad); err == nil {
			t.Errorf("executionARN(%q) accepted", bad)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{12 * time.Second, "12 seconds"},
		{time.Second, "1 second"},
		{14 * time.Minute, "14 minutes"},
		{5*time.Hour + 18*time.Minute, "5.3 hours"},
		{24 * time.Hour, "1 day"},
		{3*24*time.Hour + 5*time.Hour, "3.2 days"},
		{95*24*time.Hour + 20*time.Hour, "95 days"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestWaitProgress(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &activeWait{state: "WaitForUse", start: start, end: start.Add(7 * 24 * time.Hour)}
	got := w.progress(start.Add(84 * time.Hour))
	if !strings.Contains(got, " 50%") || !strings.Contains(got, "3.5 days of 7 days, 3.5 days left") {
		t.Errorf("progress at half = %q", got)
	}
	if got := w.progress(start.Add(-time.Hour)); !strings.Contains(got, "  0%") {
		t.Errorf("progress before start = %q", got)
	}
	if got := w.progress(start.Add(8 * 24 * time.Hour)); !strings.Contains(got, "100%") || !strings.Contains(got, "0 seconds left") {
		t.Errorf("progress after the end = %q", got)
	}
	if secs, ok := waitSeconds("WaitGrace", `{"plan":{"waitSeconds":604800,"graceSeconds":86400}}`); !ok || secs != 86400 {
		t.Errorf("waitSeconds(WaitGrace) = %d, %v", secs, ok)
	}
	if _, ok := waitSeconds("SomeOtherWait", `{"plan":{"waitSeconds":1}}`); ok {
		t.Error("waitSeconds knows a Wait it has no plan field for")
	}
}

func TestServerClock(t *testing.T) {
	local := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &serverClock{now: func() time.Time { return local }}
	if !c.Now().Equal(local) {
		t.Fatalf("no header seen: Now = %v, want local time", c.Now())
	}
	server := local.Add(7 * 24 * time.Hour)
	if !c.observe(server.Format(time.RFC3339Nano)) {
		t.Fatal("RFC 3339 header not read")
	}
	local = local.Add(time.Second)
	if want := server.Add(time.Second); !c.Now().Equal(want) {
		t.Errorf("Now = %v, want %v (server time plus the real time since)", c.Now(), want)
	}
	c.observe(server.Add(-time.Hour).Format(time.RFC3339Nano)) // a late response: ignored
	if c.Now().Before(server) {
		t.Error("the clock went back on a stale header")
	}
	if c.observe("yesterday") {
		t.Error("a bad header was read")
	}
}

// hist numbers events as a history without parallel branches has them:
// each follows the one before.
func hist(events ...types.HistoryEvent) []types.HistoryEvent {
	for i := range events {
		events[i].Id, events[i].PreviousEventId = int64(i+1), int64(i)
	}
	return events
}

func entered(name string) types.HistoryEvent {
	return types.HistoryEvent{Type: types.HistoryEventTypeTaskStateEntered, StateEnteredEventDetails: &types.StateEnteredEventDetails{Name: aws.String(name)}}
}

func scheduled(params string) types.HistoryEvent {
	return types.HistoryEvent{Type: types.HistoryEventTypeTaskScheduled, TaskScheduledEventDetails: &types.TaskScheduledEventDetails{Parameters: aws.String(params)}}
}

func TestPendingApproval(t *testing.T) {
	ask := func(tok string) string {
		return `{"FunctionName":"arn:aws:lambda:us-east-1:1:function:notify","Payload":{"kind":"approval","token":"` + tok + `","data":{}}}`
	}
	tests := []struct {
		name   string
		events []types.HistoryEvent
		want   string
	}{
		{"waiting", hist(entered("Validate"), entered("Approve"), scheduled(ask("T1")), types.HistoryEvent{Type: types.HistoryEventTypeTaskSubmitted}), "T1"},
		{"retried: the newest token", hist(entered("Approve"), scheduled(ask("T1")), types.HistoryEvent{Type: types.HistoryEventTypeTaskFailed}, scheduled(ask("T2"))), "T2"},
		{"answered", hist(entered("Approve"), scheduled(ask("T1")), types.HistoryEvent{Type: types.HistoryEventTypeTaskSucceeded}), ""},
		{"timed out", hist(entered("Approve"), scheduled(ask("T1")), types.HistoryEvent{Type: types.HistoryEventTypeTaskTimedOut}), ""},
		{"execution ended", hist(entered("Approve"), scheduled(ask("T1")), types.HistoryEvent{Type: types.HistoryEventTypeExecutionAborted}), ""},
		{"another state's task", hist(entered("CreateKey"), scheduled(ask("T1"))), ""},
		{"not an approval payload", hist(entered("Approve"), scheduled(`{"FunctionName":"f","Payload":{"kind":"success","token":"T1"}}`)), ""},
		{"never asked", hist(entered("Validate"), entered("CreateKey")), ""},
	}
	for _, tt := range tests {
		got, ok := PendingApproval(tt.events)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: PendingApproval = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

// offline is an environment whose AWS calls reach nothing: a call would
// fail with exit 1, not the usage error these tests want.
var offline = Env{
	Getenv: func(string) string { return "" },
	AWS: []func(*config.LoadOptions) error{
		config.WithRegion("us-east-1"), config.WithBaseEndpoint("http://127.0.0.1:1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDOFFLINE", "offline", "")),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
	},
}

// Bad input is refused before any AWS call (the endpoint reaches nothing):
// exit 2, and the field named — as text and as JSON.
func TestStartRefusesBadInputBeforeAnyCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := 0
	file := func(body string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("run%d.json", n))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		args  []string
		field string
	}{
		{"unknown field", []string{"--input", file(`{"user":"app","targets":[{"type":"secret","name":"app","secretId":"app/key"}],"colour":"blue"}`)}, "colour"},
		{"bad type", []string{"--input", file(`{"user":"app","targets":[{"type":"secret","name":"app","secretId":"app/key"}],"waitDays":"seven"}`)}, "waitDays"},
		{"auth0 target without sesRegion", []string{"--input", file(`{"user":"app","targets":[{"type":"auth0","name":"prod","connection":"keyrotator/connections/auth0"}]}`)}, "targets[0].sesRegion"},
		{"malformed JSON", []string{"--input", file(`{"user":"app",`)}, ""},
		{"flag target missing secretId", []string{"--user", "app", "--target", "type=secret,name=app"}, "targets[0].secretId"},
		{"flag override out of range", []string{"--user", "app", "--target", "type=secret,name=app,secretId=app/key", "--wait-days", "0"}, "waitDays"},
		{"no user", []string{"--target", "type=secret,name=app,secretId=app/key"}, "--user"},
		{"bad target syntax", []string{"--user", "app", "--target", "secret"}, "--target[0]"},
		// Issue 14: who may approve is checked before anything is sent.
		{"approval without approvers", []string{"--user", "app", "--target", "type=secret,name=app,secretId=app/key", "--require-approval"}, "approvers"},
		{"approver is the root user", []string{"--user", "app", "--target", "type=secret,name=app,secretId=app/key", "--require-approval", "--approver", "arn:aws:iam::111122223333:root"}, "approvers[0]"},
		// Issue 15: a member account is 12 digits, checked before anything is sent.
		{"account not 12 digits", []string{"--user", "app", "--account", "2222-3333-4444", "--target", "type=secret,name=app,secretId=app/key"}, "account"},
		{"more approvals than approvers", []string{"--user", "app", "--target", "type=secret,name=app,secretId=app/key", "--require-approval", "--approver", "arn:aws:iam::111122223333:user/a", "--min-approvals", "2"}, "minApprovals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := RunEnv(context.Background(), append([]string{"start", "--json"}, tt.args...), &out, &errOut, offline)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, ExitUsage, out.String(), errOut.String())
			}
			var doc struct {
				Error errorDoc `json:"error"`
			}
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("--json error is not JSON: %v: %s", err, out.String())
			}
			if doc.Error.Code != ExitUsage || doc.Error.Field != tt.field || !strings.Contains(doc.Error.Message, tt.field) {
				t.Errorf("error = %+v, want field %q named", doc.Error, tt.field)
			}
			// The same for people, on stderr.
			out.Reset()
			errOut.Reset()
			if code := RunEnv(context.Background(), append([]string{"start"}, tt.args...), &out, &errOut, offline); code != ExitUsage || !strings.Contains(errOut.String(), tt.field) {
				t.Errorf("human: exit %d, stderr %q: want %d naming %q", code, errOut.String(), ExitUsage, tt.field)
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"watch"}, {"status", "--nope"}, {"approve", "a", "b"}, {"start", "--wait-days", "x"}} {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), args, &out, &errOut); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut.String())
		}
	}
}

// Start's names carry a random suffix and keep Step Functions' rules (80
// characters, letters, digits, - and _) for any user.
func TestUniqueName(t *testing.T) {
	at := time.Date(2026, 3, 1, 3, 4, 5, 0, time.UTC)
	for _, user := range []string{"app", "ses+smtp@example.com", strings.Repeat("u", 64), strings.Repeat("u-", 60)} {
		a, b := uniqueName(user, at, rand.Reader), uniqueName(user, at, rand.Reader)
		if a == b || !strings.Contains(a, "-20260301T030405Z-") {
			t.Errorf("uniqueName(%q) = %q twice in one second: want two names with the time", user, a)
		}
		if len(a) > 80 || !validExecName.MatchString(a) {
			t.Errorf("uniqueName(%q) = %q breaks Step Functions' name rules", user, a)
		}
	}
}

// --poll below MinPoll is refused before any call: --poll 0s read the
// history 61 times a second (issue 11, finding 8).
func TestPollBelowMinimumRefused(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"0s", "1ms", "99ms", "-1s"} {
		var out, errOut bytes.Buffer
		if code := RunEnv(context.Background(), []string{"watch", "app-20260301T030000Z", "--poll", p}, &out, &errOut, offline); code != ExitUsage || !strings.Contains(errOut.String(), "--poll") {
			t.Errorf("--poll %s: exit %d, want %d naming --poll (%s)", p, code, ExitUsage, errOut.String())
		}
	}
}

// Issue 15: --account lands in the input as the member account, and the
// input built from flags passes the schema Validate uses.
func TestStartAccountFlag(t *testing.T) {
	t.Parallel()
	o := startOptions{user: "app", account: "222233334444", targets: []string{"type=secret,name=app,secretId=app/key"}}
	fields, _, err := buildInput(o, func(f string) bool { return f == "account" }, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseInput(fields, "flags")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if fields["account"] != "222233334444" || in.Account != "222233334444" {
		t.Errorf("account %v in the fields, %q in the input", fields["account"], in.Account)
	}
	fields, _, err = buildInput(startOptions{user: "app", targets: o.targets}, func(string) bool { return false }, strings.NewReader(""))
	if _, ok := fields["account"]; err != nil || ok {
		t.Errorf("without --account the input names one: %v %v", fields, err)
	}
}

// Issue 15: the config's fleet templates reach the audit with the
// sweep's schedule and next run, so their tagged users are the sweep's.
func TestFleetTemplatesFromTheConfig(t *testing.T) {
	t.Parallel()
	var f rotationsFile
	if err := json.Unmarshal([]byte(`{"rotations":[],"fleet":{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","templates":[
		{"name":"app-fleet","userPath":"/fleet/","input":{}},{"name":"b-fleet","userPath":"/b/","accounts":["222233334444"],"input":{}}]}}`), &f); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ts := fleetTemplates(f, now)
	want := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // the sweep's next 09:00 UTC
	if len(ts) != 2 || ts[0].Name != "app-fleet" || ts[0].Path != "/fleet/" || !ts[0].Enabled || ts[0].Next == nil || !ts[0].Next.Equal(want) ||
		len(ts[1].Accounts) != 1 || ts[1].Accounts[0] != "222233334444" || ts[1].SweepName() != "sweep.b-fleet" {
		t.Errorf("templates %+v, want app-fleet next %v and b-fleet in 222233334444", ts, want)
	}
	if fleetTemplates(rotationsFile{}, now) != nil {
		t.Error("no fleet, yet templates")
	}
}
