package cloudwatch_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	snsapi "github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudwatch"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
	"github.com/keyrotator/keyrotator/local/sandbox/sqs"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

const machine = "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator"

// fakeStates stands in for Step Functions: closed executions, as its
// metrics.go reports them.
type fakeStates struct {
	mu    sync.Mutex
	ends  []stepfunctions.ExecutionEnd
	tell  []func(stepfunctions.ExecutionEnd)
	clock *sandbox.Clock
}

func (f *fakeStates) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "states", Protocol: sandbox.JSON10, TargetPrefix: "AWSStepFunctions"}
}
func (f *fakeStates) Handle(context.Context, *sandbox.Call) (any, error) {
	return nil, sandbox.Errorf(400, "UnknownOperationException", "fake")
}
func (f *fakeStates) OnExecutionEnd(fn func(stepfunctions.ExecutionEnd)) {
	f.mu.Lock()
	f.tell = append(f.tell, fn)
	f.mu.Unlock()
}
func (f *fakeStates) ExecutionsEnded(m, status string, from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.ends {
		if e.StateMachineARN == m && e.Status == status && e.At.After(from) && !e.At.After(to) {
			n++
		}
	}
	return n
}
func (f *fakeStates) end(status string) {
	e := stepfunctions.ExecutionEnd{StateMachineARN: machine, Status: status, At: f.clock.Now()}
	f.mu.Lock()
	f.ends = append(f.ends, e)
	tell := append([]func(stepfunctions.ExecutionEnd){}, f.tell...)
	f.mu.Unlock()
	for _, fn := range tell {
		fn(e)
	}
}

// probe records the request context and principal of every SNS Publish.
type probe struct {
	mu   sync.Mutex
	seen []map[string]string
	who  []sandbox.Principal
}

func (p *probe) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "probe", Protocol: sandbox.JSON10, TargetPrefix: "Probe"}
}
func (p *probe) Handle(context.Context, *sandbox.Call) (any, error) { return nil, nil }
func (p *probe) Observe(e sandbox.Event) {
	if e.Call.Service == "sns" && e.Call.Action == "Publish" {
		p.mu.Lock()
		p.seen = append(p.seen, sandbox.RequestContext(e.Call.HTTP.Context()))
		p.who = append(p.who, e.Call.Principal)
		p.mu.Unlock()
	}
}

type world struct {
	srv    *sandbox.Server
	states *fakeStates
	sns    *sns.Service
	sqs    *sqs.Service
	cw     *cloudwatch.Service
	probe  *probe
	topic  string
}

func newWorld(t *testing.T) world {
	t.Helper()
	srv := sandbox.New(sandbox.Options{})
	srv.Clock().Set(time.Date(2026, 12, 6, 4, 31, 0, 0, time.UTC))
	w := world{srv: srv, states: &fakeStates{clock: srv.Clock()}, sns: sns.New(srv), sqs: sqs.New(srv), probe: &probe{}}
	srv.Register(w.states)
	srv.Register(w.sns)
	srv.Register(w.sqs)
	srv.Register(w.probe)
	w.cw = cloudwatch.New(srv)
	srv.Register(w.cw)
	t.Cleanup(func() { _ = srv.Close() })
	w.topic = "arn:aws:sns:us-east-1:111122223333:alerts"
	form := "Action=CreateTopic&Name=alerts"
	if _, err := srv.Internal(context.Background(), "sns", "CreateTopic", "", sandbox.Principal{}, []byte(form)); err != nil {
		t.Fatal(err)
	}
	return w
}

// executionsFailedAlarm is the golden template's alarm on the state machine.
func executionsFailedAlarm(topic, expression string) map[string]any {
	stat := func(name string) map[string]any {
		return map[string]any{"Metric": map[string]any{"Dimensions": []any{map[string]any{"Name": "StateMachineArn", "Value": machine}},
			"MetricName": name, "Namespace": "AWS/States"}, "Period": float64(300), "Stat": "Sum"}
	}
	return map[string]any{
		"AlarmActions": []any{topic}, "AlarmDescription": "A keyrotator execution failed, timed out or was aborted.",
		"ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": float64(1),
		"Metrics": []any{
			map[string]any{"Expression": expression, "Id": "expr_1", "Label": "failed, timed out or aborted", "ReturnData": true},
			map[string]any{"Id": "aborted", "MetricStat": stat("ExecutionsAborted"), "ReturnData": false},
			map[string]any{"Id": "failed", "MetricStat": stat("ExecutionsFailed"), "ReturnData": false},
			map[string]any{"Id": "timedOut", "MetricStat": stat("ExecutionsTimedOut"), "ReturnData": false},
		},
		"Threshold": float64(1), "TreatMissingData": "notBreaching",
	}
}

func (w world) create(t *testing.T, logical string, props map[string]any) string {
	t.Helper()
	p, err := w.cw.Create(context.Background(), cfn.Resource{LogicalID: logical, Type: "AWS::CloudWatch::Alarm", StackName: "keyrotator",
		Region: "us-east-1", Account: "111122223333", Partition: "aws", Properties: props})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if p.Attrs["Arn"] != "arn:aws:cloudwatch:us-east-1:111122223333:alarm:"+p.Ref {
		t.Fatalf("Provisioned %+v", p)
	}
	return p.Ref
}

// waitState waits for the alarm's state (the loop evaluates on its own).
func (w world) waitState(t *testing.T, name, want string) cloudwatch.MetricAlarm {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := w.cw.Alarm(name)
		if err != nil {
			t.Fatal(err)
		}
		if a.State == want {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarm %s is %s (%s), want %s", name, a.State, a.StateReason, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A failed execution puts the math alarm in ALARM at once; its notification
// goes to the topic as cloudwatch.amazonaws.com with the alarm as
// aws:SourceArn; the next period, without failures, is OK again.
func TestExecutionsFailedAlarmPublishes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	name := w.create(t, "RotatorExecutionsFailedDF298BF1", executionsFailedAlarm(w.topic, "FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)"))
	a := w.waitState(t, name, cloudwatch.OK) // no data, notBreaching
	if len(w.sns.Messages(w.topic)) != 0 {
		t.Fatal("published before any failure")
	}
	w.states.end(stepfunctions.Succeeded) // not counted
	w.states.end(stepfunctions.Failed)
	a = w.waitState(t, name, cloudwatch.Alarm)
	if !strings.Contains(a.StateReason, "[1.0 (06/12/26 04:30:00)] was greater than or equal to the threshold (1.0)") {
		t.Errorf("reason %q", a.StateReason)
	}
	var msgs []sns.Message
	for deadline := time.Now().Add(5 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		msgs = w.sns.Messages(w.topic)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the topic, want 1", len(msgs))
	}
	if want := `ALARM: "` + name + `" in US East (N. Virginia)`; msgs[0].Subject != want {
		t.Errorf("subject %q, want %q", msgs[0].Subject, want)
	}
	var n struct {
		AlarmName, NewStateValue, OldStateValue, NewStateReason, StateChangeTime, AlarmArn, AWSAccountId, Region string
		AlarmActions                                                                                             []string
		Trigger                                                                                                  struct {
			Metrics            []map[string]any
			Period             int
			ComparisonOperator string
			Threshold          float64
		}
	}
	if err := json.Unmarshal([]byte(msgs[0].Message), &n); err != nil {
		t.Fatalf("message %s: %v", msgs[0].Message, err)
	}
	if n.AlarmName != name || n.NewStateValue != "ALARM" || n.OldStateValue != "OK" || n.AWSAccountId != "111122223333" ||
		n.AlarmArn != a.ARN || n.Region != "US East (N. Virginia)" || len(n.Trigger.Metrics) != 4 || n.Trigger.Period != 300 ||
		n.Trigger.ComparisonOperator != "GreaterThanOrEqualToThreshold" || n.Trigger.Threshold != 1 || len(n.AlarmActions) != 1 {
		t.Errorf("notification %+v", n)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", n.StateChangeTime); err != nil {
		t.Errorf("StateChangeTime %q: %v", n.StateChangeTime, err)
	}
	w.probe.mu.Lock()
	ctx, who := w.probe.seen[0], w.probe.who[0]
	w.probe.mu.Unlock()
	if ctx["aws:SourceArn"] != a.ARN || ctx["aws:SourceAccount"] != "111122223333" {
		t.Errorf("request context %v", ctx)
	}
	if who.Type != "AWSService" || who.ARN != "cloudwatch.amazonaws.com" {
		t.Errorf("published by %+v", who)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a, _ = w.cw.Alarm(name)
		h := a.History
		if h[len(h)-1].Type == "Action" {
			if h[len(h)-1].Summary != "Successfully executed action "+w.topic {
				t.Errorf("history %+v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Action in the history: %+v", h)
		}
	}

	w.srv.Clock().Advance(5 * time.Minute) // the next period: no failure there
	w.waitState(t, name, cloudwatch.OK)
	if len(w.sns.Messages(w.topic)) != 1 {
		t.Error("OK published: the alarm has no OKActions")
	}
}

// Without FILL, a sum over the execution metrics still counts a period where
// only one of them has a datapoint: AWS documents that metric math's
// arithmetic treats a missing value as 0
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-arithmetic).
// The golden template FILLs each term all the same (infra/rotator alarms()).
func TestSumWithoutFillCountsALoneFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	name := w.create(t, "Unfilled", executionsFailedAlarm(w.topic, "failed + timedOut + aborted"))
	w.waitState(t, name, cloudwatch.OK) // no series has a datapoint: none, notBreaching
	w.states.end(stepfunctions.Failed)
	w.cw.Evaluate(context.Background())
	w.waitState(t, name, cloudwatch.Alarm)
}

// The dead-letter queue alarm: a visible message breaches it; a publish to a
// topic that refuses (here: one that does not exist) is recorded in the
// alarm's history, not lost.
func TestQueueAlarmAndFailedPublish(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	q, err := w.sqs.CreateQueue("us-east-1", "dead", nil)
	if err != nil {
		t.Fatal(err)
	}
	missing := "arn:aws:sns:us-east-1:111122223333:gone"
	name := w.create(t, "RotatorScheduleFailedD8707978", map[string]any{
		"AlarmActions": []any{missing}, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
		"Dimensions": []any{map[string]any{"Name": "QueueName", "Value": "dead"}}, "EvaluationPeriods": float64(1),
		"MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Period": float64(300),
		"Statistic": "Maximum", "Threshold": float64(1), "TreatMissingData": "notBreaching",
	})
	w.waitState(t, name, cloudwatch.OK)
	body := `{"QueueUrl":"` + q.URL + `","MessageBody":"{}"}`
	if _, err := w.srv.Internal(context.Background(), "sqs", "SendMessage", "", sandbox.Principal{}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	w.cw.Evaluate(context.Background())
	a := w.waitState(t, name, cloudwatch.Alarm)
	last := a.History[len(a.History)-1]
	if last.Type != "Action" || !strings.HasPrefix(last.Summary, "Failed to execute action "+missing) || !strings.Contains(last.Summary, "NotFound") {
		t.Fatalf("history %+v", a.History)
	}
}

// DescribeAlarms and DescribeAlarmHistory through the SDK's CloudWatch client.
func TestDescribeAlarms(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	svc, _ := sb.Server.Service("monitoring")
	c := svc.(*cloudwatch.Service)
	ctx := context.Background()
	topic, err := snsapi.NewFromConfig(sb.Config(t)).CreateTopic(ctx, &snsapi.CreateTopicInput{Name: aws.String("alerts")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Create(ctx, cfn.Resource{LogicalID: "RotatorExecutionsFailedDF298BF1", Type: "AWS::CloudWatch::Alarm", StackName: "keyrotator", Region: "us-east-1",
		Properties: executionsFailedAlarm(aws.ToString(topic.TopicArn), "failed + timedOut + aborted")})
	if err != nil {
		t.Fatal(err)
	}
	client := cw.NewFromConfig(sb.Config(t))
	out, err := client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{AlarmNames: []string{p.Ref}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %v %+v", err, out)
	}
	a := out.MetricAlarms[0]
	if aws.ToString(a.AlarmArn) != p.Attrs["Arn"] || a.StateValue != cwtypes.StateValueOk || len(a.Metrics) != 4 ||
		aws.ToString(a.Metrics[0].Expression) != "failed + timedOut + aborted" || aws.ToString(a.Metrics[1].MetricStat.Metric.MetricName) != "ExecutionsAborted" ||
		aws.ToFloat64(a.Threshold) != 1 || a.AlarmActions[0] != aws.ToString(topic.TopicArn) || !aws.ToBool(a.ActionsEnabled) {
		t.Fatalf("alarm %+v", a)
	}
	none, err := client.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{StateValue: cwtypes.StateValueAlarm})
	if err != nil || len(none.MetricAlarms) != 0 {
		t.Fatalf("DescribeAlarms ALARM: %v %+v", err, none)
	}
	h, err := client.DescribeAlarmHistory(ctx, &cw.DescribeAlarmHistoryInput{AlarmName: aws.String(p.Ref)})
	if err != nil || len(h.AlarmHistoryItems) != 2 || h.AlarmHistoryItems[0].HistoryItemType != cwtypes.HistoryItemTypeStateUpdate {
		t.Fatalf("DescribeAlarmHistory: %v %+v", err, h)
	}
}
