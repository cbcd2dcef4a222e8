package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sch "github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
	"github.com/keyrotator/keyrotator/local/sandbox/sqs"
)

const roleARN = "arn:aws:iam::111122223333:role/keyrotator-RotatorSchedulerRole5E623B0F-ABC"

type fixture struct {
	sb    *sandboxtest.Sandbox
	sched *scheduler.Service
	sqs   *sqs.Service
}

func start(t *testing.T) fixture {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	a, _ := sb.Server.Service("scheduler")
	b, _ := sb.Server.Service("sqs")
	return fixture{sb: sb, sched: a.(*scheduler.Service), sqs: b.(*sqs.Service)}
}

func (f fixture) queue(t *testing.T, name string) sqs.Queue {
	t.Helper()
	q, err := f.sqs.CreateQueue("us-east-1", name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// schedule provisions the golden template's schedule shape with the
// expression, target and retries given.
func (f fixture) schedule(t *testing.T, logical, expr, tz, target, dlq string, retries int) string {
	t.Helper()
	props := map[string]any{
		"Description": "keyrotator: rotate", "FlexibleTimeWindow": map[string]any{"Mode": "OFF"},
		"ScheduleExpression": expr, "ScheduleExpressionTimezone": tz, "State": "ENABLED",
		"Target": map[string]any{"Arn": target, "RoleArn": roleARN, "Input": `{"user":"app-aws-user","trigger":"schedule"}`,
			"RetryPolicy":      map[string]any{"MaximumEventAgeInSeconds": float64(86400), "MaximumRetryAttempts": float64(retries)},
			"DeadLetterConfig": map[string]any{"Arn": dlq}},
	}
	p, err := f.sched.Create(context.Background(), cfn.Resource{LogicalID: logical, Type: "AWS::Scheduler::Schedule", StackName: "keyrotator",
		Region: "us-east-1", Account: "111122223333", Partition: "aws", Properties: props})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(p.Ref, "keyrotator-"+logical+"-") || p.Attrs["Arn"] != "arn:aws:scheduler:us-east-1:111122223333:schedule/default/"+p.Ref {
		t.Fatalf("Provisioned %+v", p)
	}
	return p.Ref
}

// invocations waits (real time) until the schedule has fired n times.
func (f fixture) invocations(t *testing.T, name string, n int) []scheduler.Invocation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sc, err := f.sched.Get("", name)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.Invocations) >= n || time.Now().After(deadline) {
			if len(sc.Invocations) != n {
				t.Fatalf("%d invocations, want %d: %+v", len(sc.Invocations), n, sc.Invocations)
			}
			return sc.Invocations
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A clock jump over three of a cron schedule's times fires it once, as the
// schedule's role, and moves it to its next time after the jump.
func TestClockJumpFiresOnceAsTheRole(t *testing.T) {
	t.Parallel()
	f := start(t)
	clock := f.sb.Server.Clock()
	clock.Set(time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC))
	target, dlq := f.queue(t, "target"), f.queue(t, "dead")
	name := f.schedule(t, "Daily", "cron(0 3 * * ? *)", "Asia/Tokyo", target.ARN, dlq.ARN, 3)
	sc, _ := f.sched.Get("", name)
	if want := time.Date(2026, 12, 7, 3, 0, 0, 0, time.FixedZone("JST", 9*3600)); sc.Next == nil || !sc.Next.Equal(want) {
		t.Fatalf("next %v, want %v", sc.Next, want)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(f.sqs.Messages(target.ARN)); n != 0 {
		t.Fatalf("fired before its time: %d messages", n)
	}

	clock.Advance(3 * 24 * time.Hour) // passes Dec 7, 8 and 9 03:00 JST
	inv := f.invocations(t, name, 1)[0]
	if inv.Passed != 3 || inv.Attempts != 1 || inv.Error != "" || inv.DeadLetter != "" {
		t.Fatalf("invocation %+v", inv)
	}
	if !strings.HasPrefix(inv.Principal, "arn:aws:sts::111122223333:assumed-role/keyrotator-RotatorSchedulerRole5E623B0F-ABC/") {
		t.Fatalf("principal %s", inv.Principal)
	}
	msgs := f.sqs.Messages(target.ARN)
	if len(msgs) != 1 || msgs[0].Body != `{"user":"app-aws-user","trigger":"schedule"}` {
		t.Fatalf("target got %+v", msgs)
	}
	calls, _ := f.sb.Server.Calls().Since(0)
	var sends []sandbox.CallRecord
	for _, c := range calls {
		if c.Service == "sqs" && c.Action == "SendMessage" {
			sends = append(sends, c)
		}
	}
	if len(sends) != 1 || sends[0].Principal != inv.Principal {
		t.Fatalf("call log SendMessage %+v, want one by %s", sends, inv.Principal)
	}
	sc, _ = f.sched.Get("", name)
	if want := time.Date(2026, 12, 10, 3, 0, 0, 0, time.FixedZone("JST", 9*3600)); sc.Next == nil || !sc.Next.Equal(want) {
		t.Fatalf("next after the jump %v, want %v", sc.Next, want)
	}
}

// A target that fails is tried 1 + MaximumRetryAttempts times, then the
// event goes to the dead-letter queue with what failed.
func TestFailedTargetRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	f := start(t)
	dlq := f.queue(t, "dead")
	missing := "arn:aws:states:us-east-1:111122223333:stateMachine:gone"
	name := f.schedule(t, "Rate", "rate(1 hour)", "UTC", missing, dlq.ARN, 2)
	inv := f.invocations(t, name, 1)[0] // a rate without a StartDate fires at once
	if inv.Attempts != 3 || inv.Result != "" || !strings.Contains(inv.Error, "StateMachineDoesNotExist") || inv.DeadLetter == "" {
		t.Fatalf("invocation %+v", inv)
	}
	msgs := f.sqs.Messages(dlq.ARN)
	if len(msgs) != 1 {
		t.Fatalf("dead letters %+v", msgs)
	}
	m := msgs[0]
	if m.Attributes["ERROR_CODE"].StringValue != "StateMachineDoesNotExist" || m.Attributes["RETRY_ATTEMPTS"].StringValue != "2" ||
		m.Attributes["TARGET_ARN"].StringValue != missing || !json.Valid([]byte(m.Body)) {
		t.Fatalf("dead letter %+v", m)
	}
	calls, _ := f.sb.Server.Calls().Since(0)
	starts := 0
	for _, c := range calls {
		if c.Service == "states" && c.Action == "StartExecution" {
			starts++
			if !strings.Contains(c.Principal, "assumed-role/keyrotator-RotatorSchedulerRole5E623B0F-ABC/") {
				t.Errorf("StartExecution by %s", c.Principal)
			}
		}
	}
	if starts != 3 {
		t.Fatalf("%d StartExecution calls, want 3", starts)
	}
	// The next hour fires again.
	f.sb.Server.Clock().Advance(time.Hour)
	f.invocations(t, name, 2)
}

// A disabled schedule does not fire; enabled again, it counts from now.
func TestDisabledScheduleDoesNotFire(t *testing.T) {
	t.Parallel()
	f := start(t)
	target, dlq := f.queue(t, "target"), f.queue(t, "dead")
	name := f.schedule(t, "Off", "cron(0 * * * ? *)", "UTC", target.ARN, dlq.ARN, 0)
	if err := f.sched.SetState("", name, scheduler.Disabled); err != nil {
		t.Fatal(err)
	}
	f.sb.Server.Clock().Advance(5 * time.Hour)
	time.Sleep(100 * time.Millisecond)
	if sc, _ := f.sched.Get("", name); len(sc.Invocations) != 0 {
		t.Fatalf("a disabled schedule fired: %+v", sc.Invocations)
	}
	if err := f.sched.SetState("", name, scheduler.Enabled); err != nil {
		t.Fatal(err)
	}
	f.sb.Server.Clock().Advance(time.Hour)
	f.invocations(t, name, 1)
}

// GetSchedule and ListSchedules through the SDK's EventBridge Scheduler client.
func TestAPI(t *testing.T) {
	t.Parallel()
	f := start(t)
	dlq := f.queue(t, "dead")
	name := f.schedule(t, "AppKey", "cron(0 3 1 */2 ? *)", "Asia/Tokyo", "arn:aws:states:us-east-1:111122223333:stateMachine:m", dlq.ARN, 3)
	c := sch.NewFromConfig(f.sb.Config(t))
	ctx := context.Background()
	got, err := c.GetSchedule(ctx, &sch.GetScheduleInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if got.State != schtypes.ScheduleStateEnabled || aws.ToString(got.ScheduleExpression) != "cron(0 3 1 */2 ? *)" ||
		aws.ToString(got.ScheduleExpressionTimezone) != "Asia/Tokyo" || aws.ToString(got.Target.RoleArn) != roleARN ||
		aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts) != 3 || aws.ToString(got.Target.DeadLetterConfig.Arn) != dlq.ARN ||
		got.FlexibleTimeWindow.Mode != schtypes.FlexibleTimeWindowModeOff || got.CreationDate == nil || aws.ToString(got.GroupName) != "default" {
		t.Fatalf("GetSchedule %+v", got)
	}
	list, err := c.ListSchedules(ctx, &sch.ListSchedulesInput{State: schtypes.ScheduleStateEnabled})
	if err != nil || len(list.Schedules) != 1 || aws.ToString(list.Schedules[0].Name) != name {
		t.Fatalf("ListSchedules: %v %+v", err, list)
	}
	_, err = c.GetSchedule(ctx, &sch.GetScheduleInput{Name: aws.String("nope")})
	if nf := (*schtypes.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
		t.Fatalf("GetSchedule nope: %v", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	t.Parallel()
	f := start(t)
	base := func() map[string]any {
		return map[string]any{"FlexibleTimeWindow": map[string]any{"Mode": "OFF"}, "ScheduleExpression": "rate(1 day)",
			"Target": map[string]any{"Arn": "arn:aws:sqs:us-east-1:111122223333:q", "RoleArn": roleARN}}
	}
	for name, change := range map[string]func(map[string]any){
		"bad expression":  func(p map[string]any) { p["ScheduleExpression"] = "cron(0 3 * * * *)" },
		"bad zone":        func(p map[string]any) { p["ScheduleExpressionTimezone"] = "Nowhere/Here" },
		"no window":       func(p map[string]any) { delete(p, "FlexibleTimeWindow") },
		"no role":         func(p map[string]any) { p["Target"] = map[string]any{"Arn": "arn:aws:sqs:us-east-1:111122223333:q"} },
		"bad state":       func(p map[string]any) { p["State"] = "ON" },
		"bad window mode": func(p map[string]any) { p["FlexibleTimeWindow"] = map[string]any{"Mode": "SOMETIMES"} },
	} {
		p := base()
		change(p)
		if _, err := f.sched.Create(context.Background(), cfn.Resource{LogicalID: "S", StackName: "s", Region: "us-east-1", Properties: p}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A one-time schedule fires at its time, in its zone, once; with
// ActionAfterCompletion DELETE it is gone after.
func TestOneTimeScheduleFiresOnceThenDeletes(t *testing.T) {
	t.Parallel()
	f := start(t)
	f.sb.Server.Clock().Set(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)) // 09:00 JST
	target := f.queue(t, "target")
	for _, after := range []string{"NONE", "DELETE"} {
		_, err := f.sched.Create(context.Background(), cfn.Resource{LogicalID: "Once" + after, StackName: "s", Region: "us-east-1",
			Properties: map[string]any{"Name": "once-" + after, "ScheduleExpression": "at(2026-12-06T14:00:00)", "ScheduleExpressionTimezone": "Asia/Tokyo",
				"FlexibleTimeWindow": map[string]any{"Mode": "OFF"}, "ActionAfterCompletion": after,
				"Target": map[string]any{"Arn": target.ARN, "RoleArn": roleARN, "Input": after}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sb.Server.Clock().Advance(4*time.Hour + time.Minute) // 13:01 JST: not yet
	time.Sleep(50 * time.Millisecond)
	if n := len(f.sqs.Messages(target.ARN)); n != 0 {
		t.Fatalf("fired early: %d", n)
	}
	f.sb.Server.Clock().Advance(time.Hour) // 14:01 JST
	if inv := f.invocations(t, "once-NONE", 1); inv[0].Error != "" {
		t.Fatalf("invocation %+v", inv)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := f.sched.Get("", "once-DELETE"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a DELETE one-time schedule is still there after firing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(f.sqs.Messages(target.ARN)); n != 2 {
		t.Fatalf("%d messages, want one from each", n)
	}
	f.sb.Server.Clock().Advance(3 * 24 * time.Hour) // within the queue's 4 days
	time.Sleep(50 * time.Millisecond)
	if n := len(f.sqs.Messages(target.ARN)); n != 2 {
		t.Fatalf("%d messages after 3 days, want still 2", n)
	}
	if sc, _ := f.sched.Get("", "once-NONE"); len(sc.Invocations) != 1 || sc.Next != nil {
		t.Fatalf("once-NONE after: %+v", sc)
	}
}

// A Lambda target (the weekly audit's) is invoked by name with the
// target's Input, as the schedule's role: a function that is not there
// fails each attempt with Lambda's own error, then dead-letters.
func TestLambdaTargetInvoked(t *testing.T) {
	t.Parallel()
	f := start(t)
	dlq := f.queue(t, "dead")
	fn := "arn:aws:lambda:us-east-1:111122223333:function:audit-gone"
	name := f.schedule(t, "Audit", "rate(7 days)", "UTC", fn, dlq.ARN, 1)
	inv := f.invocations(t, name, 1)[0]
	if inv.Attempts != 2 || !strings.Contains(inv.Error, "ResourceNotFoundException") || inv.DeadLetter == "" {
		t.Fatalf("invocation %+v: want Lambda's ResourceNotFoundException, twice, then the dead-letter queue", inv)
	}
	calls, _ := f.sb.Server.Calls().Since(0)
	var invokes int
	for _, c := range calls {
		if c.Service == "lambda" && c.Action == "Invoke" && strings.Contains(c.Principal, "assumed-role") {
			invokes++
		}
	}
	if invokes != 2 {
		t.Errorf("%d lambda Invoke calls as the schedule's role, want 2", invokes)
	}
}
