package scheduler_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudwatch"
	"github.com/keyrotator/keyrotator/local/sandbox/kms"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
	"github.com/keyrotator/keyrotator/local/sandbox/sqs"
)

// Keys, queues (with their messages), schedules (with their next times and
// firings) and alarms survive a --state restart.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	first, err := fullsandbox.New(fullsandbox.Options{Options: sandbox.Options{StateFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	svc := func(sb *fullsandbox.Sandbox, name string) any { s, _ := sb.Server.Service(name); return s }
	key, err := svc(first, "kms").(*kms.Service).CreateKey("us-east-1", "k", "", true)
	if err != nil {
		t.Fatal(err)
	}
	q, err := svc(first, "sqs").(*sqs.Service).CreateQueue("us-east-1", "dead", map[string]string{"MessageRetentionPeriod": "1209600"})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := svc(first, "scheduler").(*scheduler.Service).CreateSchedule(scheduler.Schedule{Name: "s", Region: "us-east-1",
		Expression: "cron(0 3 1 */2 ? *)", Timezone: "Asia/Tokyo", FlexibleTimeWindow: scheduler.FlexibleTimeWindow{Mode: "OFF"},
		Target: scheduler.Target{Arn: q.ARN, RoleArn: roleARN}})
	if err != nil {
		t.Fatal(err)
	}
	alarm, err := svc(first, "monitoring").(*cloudwatch.Service).Create(ctx, cfn.Resource{LogicalID: "A", StackName: "s", Region: "us-east-1",
		Properties: map[string]any{"ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": float64(1), "Threshold": float64(1),
			"MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Period": float64(300), "Statistic": "Maximum",
			"Dimensions": []any{map[string]any{"Name": "QueueName", "Value": "dead"}}, "TreatMissingData": "notBreaching"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Server.Close(); err != nil { // saves the state
		t.Fatal(err)
	}

	second, err := fullsandbox.New(fullsandbox.Options{Options: sandbox.Options{StateFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Server.Close() })
	if pol, ok := svc(second, "kms").(*kms.Service).KeyPolicy(key.ARN); !ok || pol != key.Policy {
		t.Errorf("key policy after restart: %v %q", ok, pol)
	}
	if got, ok := svc(second, "sqs").(*sqs.Service).Queue(q.URL); !ok || got.Attributes["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("queue after restart: %v %+v", ok, got)
	}
	got, err := svc(second, "scheduler").(*scheduler.Service).Get("", "s")
	if err != nil || got.Next == nil || !got.Next.Equal(*sc.Next) || got.Timezone != "Asia/Tokyo" {
		t.Errorf("schedule after restart: %v %+v", err, got)
	}
	if a, err := svc(second, "monitoring").(*cloudwatch.Service).Alarm(alarm.Ref); err != nil || a.MetricName != "ApproximateNumberOfMessagesVisible" || a.State == "" {
		t.Errorf("alarm after restart: %v %+v", err, a)
	}
}
