package scheduler_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfnapi "github.com/aws/aws-sdk-go-v2/service/sfn"
	snsapi "github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudwatch"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
	sqssvc "github.com/keyrotator/keyrotator/local/sandbox/sqs"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

// resolve replaces the template's Ref, Fn::GetAtt and Fn::Join with the
// values given ("Logical" for a Ref, "Logical.Attr" for a GetAtt): the
// part of the deployer this test stands in for.
func resolve(t *testing.T, v any, values map[string]string) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if r, ok := x["Ref"].(string); ok {
				val, ok := values[r]
				if !ok {
					t.Fatalf("no value for Ref %s", r)
				}
				return val
			}
			if g, ok := x["Fn::GetAtt"].([]any); ok {
				key := g[0].(string) + "." + g[1].(string)
				val, ok := values[key]
				if !ok {
					t.Fatalf("no value for GetAtt %s", key)
				}
				return val
			}
			if j, ok := x["Fn::Join"].([]any); ok {
				var parts []string
				for _, p := range j[1].([]any) {
					parts = append(parts, resolve(t, p, values).(string))
				}
				return strings.Join(parts, j[0].(string))
			}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = resolve(t, e, values)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolve(t, e, values)
		}
		return out
	}
	return v
}

// The golden template's KMS key, dead-letter queue and its policy, a
// schedule and both alarms, created through the services' provisioners
// with the properties the template gives them; the state machine and the
// topic made directly (their provisioners are the deployer's). The
// schedule's target is the request endpoint (requestrun), which this test
// does not deploy: the clock jumps past the schedule's time, the schedule
// invokes it as the scheduler role, Lambda answers that there is no such
// function, and after its retries the schedule sends the event, the
// firing's time filled in, to the dead-letter queue, whose alarm publishes
// to the topic. A scheduled execution that fails (started here) sets off
// the executions alarm. The whole path through requestrun is
// test/e2e/schedule_test.go's.
func TestDeployScheduleAndAlarmFromTheGoldenTemplate(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "testdata", "template.golden.json"))
	if err != nil {
		t.Skipf("no golden template: %v", err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	sb := sandboxtest.Start(t, fullsandbox.Options{WaitScale: 1e-6})
	svc, _ := sb.Server.Service("states")
	sf := svc.(*stepfunctions.Service)
	if err := sf.Ready(); err != nil {
		t.Skipf("Step Functions needs Node.js >= 22 with aws-local-stepfunctions (npm ci at the repository root): %v", err)
	}
	clock := sb.Server.Clock()
	clock.Set(time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC))
	ctx := context.Background()

	// Made directly: a state machine that fails a scheduled run, and the topic.
	def := `{"StartAt":"Check","States":{"Check":{"Type":"Choice","Choices":[{"Variable":"$.trigger","StringEquals":"schedule","Next":"Boom"}],"Default":"Done"},
		"Boom":{"Type":"Fail","Error":"Rotation.Failed","Cause":"a scheduled rotation that fails"},"Done":{"Type":"Succeed"}}}`
	machine, err := sf.Register(ctx, "keyrotator-rotation", def, nil, "arn:aws:iam::111122223333:role/keyrotator-RotatorStateMachineRole")
	if err != nil {
		t.Fatal(err)
	}
	topic, err := snsapi.NewFromConfig(sb.Config(t)).CreateTopic(ctx, &snsapi.CreateTopicInput{Name: aws.String("keyrotator-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{
		"AWS::Partition":                   "aws",
		"RotatorStateMachine14D84FCB":      machine,
		"RotatorAlerts71AB48F1":            aws.ToString(topic.TopicArn),
		"RotatorSchedulerRole5E623B0F.Arn": "arn:aws:iam::111122223333:role/keyrotator-RotatorSchedulerRole5E623B0F-X1",
		"RotatorRequestrun5E2AB10A.Arn":    "arn:aws:lambda:us-east-1:111122223333:function:keyrotator-requestrun",
	}
	provisioners := map[string]cfn.Provisioner{}
	for _, name := range []string{"kms", "sqs", "scheduler", "monitoring"} {
		svc, _ := sb.Server.Service(name)
		p := svc.(cfn.Provisioner)
		for _, typ := range p.Types() {
			provisioners[typ] = p
		}
	}
	// In dependency order, as the deployer would create them.
	for _, logical := range []string{"RotatorAlertKey89F637B3", "RotatorScheduleDeadLetters2608AB3E", "RotatorScheduleDeadLettersPolicy5F542A39",
		"RotatorScheduleAppKey20E40814", "RotatorExecutionsFailedDF298BF1", "RotatorScheduleFailedD8707978"} {
		res, ok := tpl.Resources[logical]
		if !ok {
			t.Fatalf("the golden template has no %s", logical)
		}
		props := resolve(t, res.Properties, values).(map[string]any)
		if logical == "RotatorExecutionsFailedDF298BF1" {
			// See TestSumWithoutFillMissesALoneFailure: as synthesized, the
			// sum has no datapoint for a lone failure. The fill a fix would add:
			for _, m := range props["Metrics"].([]any) {
				if q := m.(map[string]any); q["Expression"] != nil {
					q["Expression"] = "FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)"
				}
			}
		}
		made, err := provisioners[res.Type].Create(ctx, cfn.Resource{LogicalID: logical, Type: res.Type, Properties: props,
			StackName: "keyrotator", Region: "us-east-1", Account: "111122223333", Partition: "aws"})
		if err != nil {
			t.Fatalf("create %s: %v", logical, err)
		}
		values[logical] = made.Ref
		for k, v := range made.Attrs {
			values[logical+"."+k] = v
		}
	}
	svc, _ = sb.Server.Service("scheduler")
	sched := svc.(*scheduler.Service)
	svc, _ = sb.Server.Service("monitoring")
	alarms := svc.(*cloudwatch.Service)

	sc, err := sched.Get("", values["RotatorScheduleAppKey20E40814"])
	if err != nil || sc.State != scheduler.Enabled || sc.Next == nil || !sc.Next.Equal(time.Date(2027, 1, 1, 3, 0, 0, 0, time.FixedZone("", 9*3600))) {
		t.Fatalf("schedule %+v %v", sc, err)
	}
	clock.AdvanceTo(time.Date(2026, 12, 31, 18, 5, 0, 0, time.UTC)) // 03:05 JST on Jan 1
	var inv scheduler.Invocation
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sc, _ = sched.Get("", sc.Name)
		if len(sc.Invocations) > 0 {
			inv = sc.Invocations[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule did not fire")
		}
	}
	if inv.Error == "" || inv.Attempts != 4 || inv.DeadLetter == "" ||
		!strings.Contains(inv.Principal, "assumed-role/keyrotator-RotatorSchedulerRole5E623B0F-X1/") {
		t.Fatalf("invocation %+v: want requestrun invoked as the scheduler role, 3 retries, then the dead-letter queue", inv)
	}
	svc, _ = sb.Server.Service("sqs")
	dead := svc.(*sqssvc.Service).Messages(values["RotatorScheduleDeadLetters2608AB3E.Arn"])
	if len(dead) != 1 || !strings.Contains(dead[0].Body, `"schedule":"app-key","scheduledTime":"2026-12-31T18:00:00Z","input":{`) {
		t.Fatalf("dead letters %+v: want the firing's event, its time filled in", dead)
	}
	// A scheduled execution that fails.
	ex, err := sfnapi.NewFromConfig(sb.Config(t)).StartExecution(ctx, &sfnapi.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(`{"trigger":"schedule"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if exec, err := sf.WaitForExecution(ctx, aws.ToString(ex.ExecutionArn)); err != nil || exec.Status != stepfunctions.Failed {
		t.Fatalf("execution %+v %v", exec, err)
	}
	var msgs []sns.Message
	svc, _ = sb.Server.Service("sns")
	for deadline := time.Now().Add(10 * time.Second); len(msgs) < 2; time.Sleep(10 * time.Millisecond) {
		msgs = svc.(*sns.Service).Messages(aws.ToString(topic.TopicArn))
		if time.Now().After(deadline) {
			a, _ := alarms.Alarm(values["RotatorExecutionsFailedDF298BF1"])
			t.Fatalf("no alarm notification; alarm %+v", a)
		}
	}
	for _, alarm := range []string{values["RotatorExecutionsFailedDF298BF1"], values["RotatorScheduleFailedD8707978"]} {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m.Message, `"NewStateValue":"ALARM"`) && strings.Contains(m.Message, alarm)
		}
		if !found {
			t.Errorf("no ALARM notification of %s: %+v", alarm, msgs)
		}
	}
}
