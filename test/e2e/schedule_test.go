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

	"github.com/keyrotator/keyrotator/functions/rotation"
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
		// The rotations' schedules' role, not the weekly audit's nor the fleet sweep's (issue 15).
		if strings.Contains(string(b), `"Service":"scheduler.amazonaws.com"`) && !strings.HasPrefix(id, "RotatorAudit") && !strings.HasPrefix(id, "RotatorSweep") {
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
// EventBridge Scheduler invoke the request endpoint (requestrun), as an
// assumed-role session of the template's scheduler role (the call log's
// principal), which starts the state machine with exactly the config's
// schedule input, signed "schedule <name>" (issue 14) and verified by
// Validate. A later jump over several of its times fires it once more, not
// once per time. The rotation it starts fails (the golden config's user
// does not exist here) and its alert goes out.
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
	requestrun := h.dep.Functions["requestrun"]
	if sc.State != scheduler.Enabled || sc.Next == nil || sc.Target.Arn != requestrun || sc.Target.RoleArn != roleARN {
		t.Fatalf("schedule %+v: want enabled, with a next time, invoking %s as %s", sc, requestrun, roleARN)
	}
	if len(sc.Invocations) != 0 {
		t.Fatalf("fired before its time: %+v", sc.Invocations)
	}
	first := *sc.Next
	h.jumpTo(first.Add(time.Minute))

	sc = h.awaitInvocations(rot, 1)
	inv := sc.Invocations[0]
	if !inv.Due.Equal(first) || inv.Passed != 1 || inv.Attempts != 1 || inv.Error != "" {
		t.Fatalf("first invocation %+v: want one attempt, due %s, delivered", inv, first)
	}
	sessionOf := "arn:aws:sts::" + h.sb.Server.Account() + ":assumed-role/" + roleName + "/"
	if !strings.HasPrefix(inv.Principal, sessionOf) || len(inv.Principal) == len(sessionOf) {
		t.Errorf("fired as %q, want a session of the scheduler role (%s…)", inv.Principal, sessionOf)
	}
	// Lambda invokes requestrun asynchronously: its run appears.
	started := h.awaitScheduled(rot.Name, 1)
	scheduled := started[0]
	// The call log: one Invoke of requestrun by that session, and the one
	// StartExecution of its run, by requestrun's role, on the state machine.
	var invokes, starts int
	for _, c := range h.sb.Calls(t, 0) {
		switch {
		case c.Service == "lambda" && c.Action == "Invoke" && c.Principal == inv.Principal:
			invokes++
			if !slices.Contains(c.ResourceARNs, requestrun) {
				t.Errorf("the schedule invoked %v, want requestrun", c.ResourceARNs)
			}
		case c.Service == "states" && c.Action == "StartExecution":
			starts++
			if c.Status != http.StatusOK || !slices.Contains(c.ResourceARNs, h.dep.StateMachineARN) || !strings.Contains(c.Principal, "Requestrun") {
				t.Errorf("StartExecution by %s: status %d (%s) on %v, want requestrun's role on the state machine", c.Principal, c.Status, c.Error, c.ResourceARNs)
			}
		}
	}
	// The other rotation's schedule may fire on the jump too: one start per run.
	if runs := len(h.listExecutions()); invokes != 1 || starts != runs {
		t.Errorf("%d Invoke calls by %s and %d StartExecution calls for %d runs, want 1 and one per run", invokes, inv.Principal, starts, runs)
	}
	// The execution it started has exactly the config's schedule input,
	// and the request requestrun signed for it, as the schedule.
	d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(scheduled)})
	if err != nil {
		t.Fatalf("DescribeExecution %s: %v", scheduled, err)
	}
	if !sameInput(t, aws.ToString(d.Input), rot.ScheduleInput()) {
		t.Errorf("the schedule's execution has input\n%s\nwant the config's schedule input\n%s (and its request)", aws.ToString(d.Input), rot.ScheduleInput())
	}
	req, ok, err := rotation.ParseSignedRequest([]byte(aws.ToString(d.Input)))
	if err != nil || !ok || req.RequestedBy != "schedule "+rot.Name || req.Execution != aws.ToString(d.Name) || !req.At.Equal(first) {
		t.Errorf("the request %+v (%v %v): want signed as schedule %s for %s at %s", req, ok, err, rot.Name, aws.ToString(d.Name), first)
	}
	if aws.ToString(d.StateMachineArn) != h.dep.StateMachineARN {
		t.Errorf("started %s, want %s", aws.ToString(d.StateMachineArn), h.dep.StateMachineARN)
	}
	r := h.Wait(scheduled)
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
	if !inv2.Due.Equal(second) || inv2.Passed < 2 || inv2.Error != "" || !strings.HasPrefix(inv2.Principal, sessionOf) {
		t.Errorf("second invocation %+v: want due %s, passing 2 or more times, as the scheduler role", inv2, second)
	}
	h.awaitScheduled(rot.Name, 2)
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
		if sameInput(t, aws.ToString(d.Input), rot.ScheduleInput()) {
			fromSchedule++
		}
	}
	if fromSchedule != 2 {
		t.Errorf("%d executions with the schedule's input, want 2 (one per jump)", fromSchedule)
	}
}

// sameInput says whether an execution's input is want with a signed
// request added: the same value without it (rotation.InputDigest).
func sameInput(t *testing.T, got, want string) bool {
	t.Helper()
	g, err := rotation.InputDigest([]byte(got))
	if err != nil {
		t.Fatalf("input %s: %v", got, err)
	}
	w, _ := rotation.InputDigest([]byte(want))
	return g == w
}

// awaitScheduled waits until n runs signed "schedule <name>" exist (a
// schedule's run starts asynchronously, through requestrun) and answers
// their ARNs, oldest first.
func (h *H) awaitScheduled(name string, n int) []string {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var runs []string
		all := h.listExecutions()
		for i := len(all) - 1; i >= 0; i-- {
			d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: all[i].ExecutionArn})
			if err != nil {
				h.t.Fatalf("DescribeExecution: %v", err)
			}
			if req, ok, _ := rotation.ParseSignedRequest([]byte(aws.ToString(d.Input))); ok && req.RequestedBy == "schedule "+name {
				runs = append(runs, aws.ToString(d.ExecutionArn))
			}
		}
		if len(runs) >= n {
			return runs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d runs of schedule %s after 30 s, want %d", len(runs), name, n)
		}
		time.Sleep(20 * time.Millisecond)
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
