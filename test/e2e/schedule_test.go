package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/infra/config"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
)

// goldenConfig is the config the golden template was synthesized from
// (infra's TestGoldenTemplate keeps the two in step).
func goldenConfig(t testing.TB) config.Config {
	t.Helper()
	c, err := config.Load(filepath.Join(root, "infra", "testdata", "config.golden.json"))
	if err != nil {
		t.Fatalf("golden config: %v", err)
	}
	return c
}

// schedulerRole is the stack's role that EventBridge Scheduler assumes: the
// AWS::IAM::Role whose trust policy names scheduler.amazonaws.com. It
// returns its name and ARN.
func (h *H) schedulerRole() (name, arn string) {
	h.t.Helper()
	var found []string
	for _, id := range h.dep.Stack.OfType("AWS::IAM::Role") {
		res := h.dep.Stack.Resources[id]
		b, _ := json.Marshal(res.Properties["AssumeRolePolicyDocument"])
		if strings.Contains(string(b), `"Service":"scheduler.amazonaws.com"`) {
			found = append(found, id)
			name, arn = res.Ref, res.Attrs["Arn"]
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("the stack has %d roles trusted by scheduler.amazonaws.com (%v), want 1", len(found), found)
	}
	return name, arn
}

// scheduleOf is the deployed schedule of a config rotation, found by its
// expression and time zone (what the config says of it), as the sandbox's
// scheduler holds it now.
func (h *H) scheduleOf(rot config.Rotation) scheduler.Schedule {
	h.t.Helper()
	name := ""
	for _, id := range h.dep.Stack.OfType("AWS::Scheduler::Schedule") {
		res := h.dep.Stack.Resources[id]
		if res.Properties["ScheduleExpression"] == rot.Schedule && res.Properties["ScheduleExpressionTimezone"] == rot.TimeZone {
			if name != "" {
				h.t.Fatalf("two schedules of %s %s", rot.Schedule, rot.TimeZone)
			}
			name = res.Ref
		}
	}
	if name == "" {
		h.t.Fatalf("no schedule of rotation %s (%s %s) in the stack (deployed with the schedules?)", rot.Name, rot.Schedule, rot.TimeZone)
	}
	var all []scheduler.Schedule
	h.sb.AdminCall(h.t, http.MethodGet, "/scheduler/schedules", nil, &all)
	for _, sc := range all {
		if sc.Name == name {
			return sc
		}
	}
	h.t.Fatalf("the sandbox's scheduler has no schedule %s", name)
	return scheduler.Schedule{}
}

// awaitInvocations waits until the rotation's schedule has fired n times.
func (h *H) awaitInvocations(rot config.Rotation, n int) scheduler.Schedule {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sc := h.scheduleOf(rot)
		if len(sc.Invocations) >= n {
			return sc
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("schedule %s fired %d times, want %d", sc.Name, len(sc.Invocations), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jumpTo moves the sandbox clock forward to at, as a person would through
// the admin API: the scheduler sees the jump at once.
func (h *H) jumpTo(at time.Time) {
	h.t.Helper()
	h.sb.AdminCall(h.t, http.MethodPost, "/clock", map[string]any{"advanceTo": at}, nil)
}

// The must-show of the schedules: the clock passing a rotation's time makes
// EventBridge Scheduler start the state machine with exactly the config's
// schedule input, as an assumed-role session of the template's scheduler
// role (the call log's principal). A later jump over several of its times
// fires it once more, not once per time. The rotation it starts fails (the
// golden config's user does not exist here) and its alert goes out.
func TestScheduleStartsTheConfigsRotation(t *testing.T) {
	t.Parallel()
	cfg := goldenConfig(t)
	i := slices.IndexFunc(cfg.Rotations, func(r config.Rotation) bool { return r.Name == "app-key" })
	if i < 0 {
		t.Fatal("the golden config has no rotation app-key")
	}
	rot := cfg.Rotations[i]
	// The second jump takes the clock months on, past CloudTrail's 90 days:
	// the leak canary checks everything before it (cp.Check).
	cp := &pipelinetest.Checkpoint{}
	h := StartDeploy(t, pipelinetest.Deploy{Skip: []string{"AWS::CloudWatch::Alarm"}, Checkpoint: cp})
	roleName, roleARN := h.schedulerRole()
	sc := h.scheduleOf(rot)
	if sc.State != scheduler.Enabled || sc.Next == nil || sc.Target.Arn != h.dep.StateMachineARN || sc.Target.RoleArn != roleARN {
		t.Fatalf("schedule %+v: want enabled, with a next time, starting %s as %s", sc, h.dep.StateMachineARN, roleARN)
	}
	if len(sc.Invocations) != 0 {
		t.Fatalf("fired before its time: %+v", sc.Invocations)
	}
	first := *sc.Next
	h.jumpTo(first.Add(time.Minute))

	sc = h.awaitInvocations(rot, 1)
	inv := sc.Invocations[0]
	if !inv.Due.Equal(first) || inv.Passed != 1 || inv.Attempts != 1 || inv.Error != "" || inv.Result == "" {
		t.Fatalf("first invocation %+v: want one attempt, due %s, answered with an execution", inv, first)
	}
	sessionOf := "arn:aws:sts::" + h.sb.Server.Account() + ":assumed-role/" + roleName + "/"
	if !strings.HasPrefix(inv.Principal, sessionOf) || len(inv.Principal) == len(sessionOf) {
		t.Errorf("fired as %q, want a session of the scheduler role (%s…)", inv.Principal, sessionOf)
	}
	// The call log: one StartExecution by that session, on the state machine.
	var starts int
	for _, c := range h.sb.Calls(t, 0) {
		if c.Service == "states" && c.Action == "StartExecution" && c.Principal == inv.Principal {
			starts++
			if c.Status != http.StatusOK || !slices.Contains(c.ResourceARNs, h.dep.StateMachineARN) {
				t.Errorf("StartExecution by the schedule: status %d on %v", c.Status, c.ResourceARNs)
			}
		}
	}
	if starts != 1 {
		t.Errorf("%d StartExecution calls by %s, want 1", starts, inv.Principal)
	}
	// The execution it started has exactly the config's schedule input.
	d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(inv.Result)})
	if err != nil {
		t.Fatalf("DescribeExecution %s: %v", inv.Result, err)
	}
	if got, want := aws.ToString(d.Input), rot.ScheduleInput(); got != want {
		t.Errorf("the schedule's execution has input\n%s\nwant the config's schedule input\n%s", got, want)
	}
	if aws.ToString(d.StateMachineArn) != h.dep.StateMachineARN {
		t.Errorf("started %s, want %s", aws.ToString(d.StateMachineArn), h.dep.StateMachineARN)
	}
	r := h.Wait(inv.Result)
	if r.Status != types.ExecutionStatusFailed || r.Error != "UserNotFound" {
		t.Errorf("the scheduled rotation ended %s %s, want FAILED UserNotFound (its user is not in this sandbox)", r.Status, r.Error)
	}
	if _, a := h.alertOf(r.ARN, "failure"); a.User != rot.Parsed().User {
		t.Errorf("the failure alert names user %q, want %q", a.User, rot.Parsed().User)
	}

	// A jump over several of its times fires it once.
	h.settle()
	cp.Check(t, h.sb)
	second := *h.scheduleOf(rot).Next
	h.jumpTo(second.AddDate(0, 4, 0).Add(time.Minute)) // every 2 months: passes 3 of its times
	sc = h.awaitInvocations(rot, 2)
	inv2 := sc.Invocations[1]
	if !inv2.Due.Equal(second) || inv2.Passed < 2 || inv2.Error != "" || inv2.Result == "" || !strings.HasPrefix(inv2.Principal, sessionOf) {
		t.Errorf("second invocation %+v: want due %s, passing 2 or more times, as the scheduler role", inv2, second)
	}
	h.settle()
	if sc = h.scheduleOf(rot); len(sc.Invocations) != 2 {
		t.Errorf("the schedule fired %d times for two jumps, want 2: %+v", len(sc.Invocations), sc.Invocations)
	}
	var fromSchedule int
	for _, e := range h.listExecutions() {
		d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: e.ExecutionArn})
		if err != nil {
			t.Fatalf("DescribeExecution: %v", err)
		}
		if aws.ToString(d.Input) == rot.ScheduleInput() {
			fromSchedule++
		}
	}
	if fromSchedule != 2 {
		t.Errorf("%d executions with the schedule's input, want 2 (one per jump)", fromSchedule)
	}
}

// listExecutions lists the state machine's executions.
func (h *H) listExecutions() []types.ExecutionListItem {
	h.t.Helper()
	out, err := h.sfn.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.dep.StateMachineARN), MaxResults: 1000})
	if err != nil {
		h.t.Fatalf("ListExecutions: %v", err)
	}
	return out.Executions
}

// settle waits for every execution to end (the other rotation's schedule
// fires on the jumps too), so nothing is still starting when the test
// counts.
func (h *H) settle() {
	h.t.Helper()
	for _, e := range h.listExecutions() {
		if e.Status == types.ExecutionStatusRunning {
			h.Wait(aws.ToString(e.ExecutionArn))
		}
	}
}
