package doctor

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// Every task's states are found in the real definition, once its
// placeholders are ARNs, Map iterations included.
func TestTaskFunctionsOfTheDefinition(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "statemachine", "rotation.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	def := string(b)
	for _, tk := range tasks.All {
		def = strings.ReplaceAll(def, "${"+tk.Placeholder()+"}", "arn:aws:lambda:us-east-1:111122223333:function:"+tk.Function())
	}
	fns, err := taskFunctions(def)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks.All {
		for _, s := range tk.States {
			if want := "arn:aws:lambda:us-east-1:111122223333:function:" + tk.Function(); fns[s] != want {
				t.Errorf("state %s: function %q, want %q", s, fns[s], want)
			}
		}
	}
}

func TestSecretARN(t *testing.T) {
	t.Parallel()
	prefix := "arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:"
	for _, tc := range []struct{ id, want string }{
		{"app/aws-key", prefix + "app/aws-key-AbCdEf"},
		{prefix + "app/aws-key", prefix + "app/aws-key-AbCdEf"},             // a partial ARN
		{prefix + "app/aws-key-Xy12Zq", prefix + "app/aws-key-Xy12Zq"},      // a full ARN
		{prefix + "app/aws-key-short", prefix + "app/aws-key-short-AbCdEf"}, // five characters: a name, not a suffix
	} {
		if got := secretARN(tc.id, prefix); got != tc.want {
			t.Errorf("secretARN(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestUses(t *testing.T) {
	t.Parallel()
	in := rotation.Input{Targets: []rotation.Target{{Type: rotation.TargetSecret}}}
	for tk, want := range map[string]bool{tasks.Validate.Name: true, tasks.UpdateSecret.Name: true, tasks.UpdateAuth0.Name: false, tasks.UpdateSoracom.Name: false, tasks.Notify.Name: true} {
		for _, t2 := range tasks.All {
			if t2.Name == tk && uses(t2, in) != want {
				t.Errorf("uses(%s) = %v, want %v", tk, !want, want)
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		statuses []Status
		want     int
	}{
		{[]Status{OK, OK, Skipped}, ExitGreen},
		{[]Status{OK, Unconfirmed}, ExitGreen},
		{[]Status{OK, NotChecked}, ExitNotChecked},
		{[]Status{NotChecked, Failed}, ExitFindings},
		{[]Status{Failed}, ExitFindings},
	} {
		r := &Report{}
		for _, s := range tc.statuses {
			r.add(Finding{Check: "x", Subject: "y", Status: s, Fix: "do z"})
		}
		if got := r.Code(); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.statuses, got, tc.want)
		}
		var out bytes.Buffer
		r.Write(&out)
		if hasFix := strings.Contains(out.String(), "fix:"); hasFix != (tc.want != ExitGreen || strings.Contains(strings.Join(statusStrings(tc.statuses), ","), "unconfirmed")) {
			t.Errorf("%v: the text report's fix lines:\n%s", tc.statuses, out.String())
		}
	}
}

func statusStrings(ss []Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, string(s))
	}
	return out
}

func TestJWTScopes(t *testing.T) {
	t.Parallel()
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"scope":"read:email_provider update:email_provider","gty":"client-credentials"}`))
	if got := jwtScopes("eyJhbGciOiJSUzI1NiJ9." + payload + ".sig"); strings.Join(got, " ") != "read:email_provider update:email_provider" {
		t.Errorf("scopes %v", got)
	}
	if got := jwtScopes("opaque-token"); got != nil {
		t.Errorf("an opaque token: %v, want none", got)
	}
}

func TestNextRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	out := &scheduler.GetScheduleOutput{CreationDate: aws.Time(created)}
	for _, tc := range []struct{ expr, tz, want string }{
		// The 1st of every odd month at 03:00 Tokyo: 2027-01-01 03:00 JST.
		{"cron(0 3 1 */2 ? *)", "Asia/Tokyo", "next run 2027-01-01 03:00 JST (2026-12-31T18:00:00Z)"},
		// Every 30 days from creation.
		{"rate(30 days)", "UTC", "next run 2026-12-31 00:00 UTC (2026-12-31T00:00:00Z)"},
		{"cron(0 3 ? * MON#1 *)", "UTC", "next run not computed"},
	} {
		if got := nextRun(tc.expr, tc.tz, out, now); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %s: %q, want %q", tc.expr, tc.tz, got, tc.want)
		}
	}
}

type noSchedules struct{}

func (noSchedules) ListSchedules(context.Context, *scheduler.ListSchedulesInput, ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error) {
	return &scheduler.ListSchedulesOutput{}, nil
}

func (noSchedules) GetSchedule(context.Context, *scheduler.GetScheduleInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error) {
	return nil, errors.New("none")
}

// A rotation the fleet sweep starts (schedule "sweep", issue 15) has no
// schedule of its own: doctor skips it, saying so, instead of failing it.
func TestSweptRotationNeedsNoSchedule(t *testing.T) {
	t.Parallel()
	d := &Doctor{Schedules: noSchedules{}, StateMachineARN: "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator", Now: time.Now,
		Config: Config{Rotations: []Rotation{{Name: "swept", Schedule: "sweep", Input: rotation.Input{User: "u"}}, {Name: "own", Schedule: "rate(30 days)", TimeZone: "UTC", Input: rotation.Input{User: "v"}}}}}
	var r Report
	d.checkSchedules(context.Background(), &r)
	got := map[string]Status{}
	for _, f := range r.Findings {
		got[f.Rotation] = f.Status
	}
	if got["swept"] != Skipped || got["own"] != Failed {
		t.Fatalf("findings %+v: want swept skipped, own failed (no schedule deployed)", r.Findings)
	}
}
