package sqs_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sqssvc "github.com/keyrotator/keyrotator/local/sandbox/sqs"
)

func service(t *testing.T, sb *sandboxtest.Sandbox) *sqssvc.Service {
	t.Helper()
	svc, ok := sb.Server.Service("sqs")
	if !ok {
		t.Fatal("no sqs")
	}
	return svc.(*sqssvc.Service)
}

// The golden template's dead-letter queue and its policy, provisioned; then
// the SDK's SQS client (AWS JSON 1.0) sends, receives and deletes, and the
// retention period runs out on the sandbox clock.
func TestQueueFromTemplateAndMessages(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	q := service(t, sb)
	ctx := context.Background()
	res := cfn.Resource{LogicalID: "RotatorScheduleDeadLetters2608AB3E", Type: "AWS::SQS::Queue", StackName: "keyrotator",
		Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"MessageRetentionPeriod": float64(1209600), "SqsManagedSseEnabled": true}}
	made, err := q.Create(ctx, res)
	if err != nil {
		t.Fatalf("Create queue: %v", err)
	}
	name := made.Attrs["QueueName"]
	if !strings.HasPrefix(name, "keyrotator-RotatorScheduleDeadLetters2608AB3E-") || made.Ref != made.Attrs["QueueUrl"] ||
		made.Attrs["Arn"] != "arn:aws:sqs:us-east-1:111122223333:"+name {
		t.Fatalf("Provisioned %+v", made)
	}
	policy := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Deny", "Principal": map[string]any{"AWS": "*"},
		"Action": "sqs:*", "Resource": made.Attrs["Arn"], "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}}}}
	if _, err := q.Create(ctx, cfn.Resource{Type: "AWS::SQS::QueuePolicy", StackName: "keyrotator", LogicalID: "P", Region: "us-east-1",
		Properties: map[string]any{"PolicyDocument": policy, "Queues": []any{made.Ref}}}); err != nil {
		t.Fatalf("Create policy: %v", err)
	}
	if pol, ok := q.QueuePolicy(made.Attrs["Arn"]); !ok || !strings.Contains(pol, "aws:SecureTransport") {
		t.Fatalf("QueuePolicy: %v %q", ok, pol)
	}

	c := sqs.NewFromConfig(sb.Config(t))
	qurl := aws.String(made.Ref)
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl, AttributeNames: []types.QueueAttributeName{"All"}})
	if err != nil || attrs.Attributes["MessageRetentionPeriod"] != "1209600" || attrs.Attributes["SqsManagedSseEnabled"] != "true" ||
		attrs.Attributes["QueueArn"] != made.Attrs["Arn"] || !strings.Contains(attrs.Attributes["Policy"], "Deny") {
		t.Fatalf("GetQueueAttributes: %v %+v", err, attrs)
	}
	for _, body := range []string{`{"n":1}`, `{"n":2}`} {
		if out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String(body)}); err != nil || out.MessageId == nil {
			t.Fatalf("SendMessage: %v", err) // the SDK checks MD5OfMessageBody itself
		}
	}
	count := func() string {
		a, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
		if err != nil {
			t.Fatalf("GetQueueAttributes: %v", err)
		}
		return a.Attributes["ApproximateNumberOfMessages"]
	}
	if n := count(); n != "2" {
		t.Fatalf("ApproximateNumberOfMessages %s, want 2", n)
	}
	var held []sqssvc.Message
	sb.AdminCall(t, http.MethodGet, "/sqs/messages?queue="+url.QueryEscape(made.Attrs["Arn"]), nil, &held)
	if len(held) != 2 || held[1].Body != `{"n":2}` {
		t.Fatalf("admin messages %+v", held)
	}
	got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qurl, MaxNumberOfMessages: 1})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != `{"n":1}` {
		t.Fatalf("ReceiveMessage: %v %+v", err, got)
	}
	if n := count(); n != "1" { // one in flight
		t.Fatalf("after a receive: %s visible, want 1", n)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: qurl, ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if v, ok := q.Visible("us-east-1", name); !ok || v != 1 {
		t.Fatalf("Visible %d %v, want 1", v, ok)
	}
	sb.Server.Clock().Advance(14*24*time.Hour + time.Second) // past the retention period
	if n := count(); n != "0" {
		t.Fatalf("after 14 days: %s messages, want 0", n)
	}

	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(sqssvc.QueueURL("us-east-1", "111122223333", "nope")), MessageBody: aws.String("x")})
	if nq := (*types.QueueDoesNotExist)(nil); !errors.As(err, &nq) {
		t.Fatalf("SendMessage to no queue: %v, want QueueDoesNotExist", err)
	}
}

func TestQueueAttributesRefused(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	q := service(t, sb)
	for _, p := range []map[string]any{
		{"MessageRetentionPeriod": float64(30)},      // under a minute
		{"MessageRetentionPeriod": float64(1209601)}, // over 14 days
		{"QueueName": "bad name"},
	} {
		if _, err := q.Create(context.Background(), cfn.Resource{Type: "AWS::SQS::Queue", StackName: "s", LogicalID: "Q", Region: "us-east-1", Properties: p}); err == nil {
			t.Errorf("Create %v accepted", p)
		}
	}
}
