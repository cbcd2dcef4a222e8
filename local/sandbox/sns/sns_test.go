package sns_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	snssvc "github.com/keyrotator/keyrotator/local/sandbox/sns"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func messages(t *testing.T, sb *sandboxtest.Sandbox, topic string) []snssvc.Message {
	t.Helper()
	var out []snssvc.Message
	sb.AdminCall(t, http.MethodGet, "/sns/messages?topic="+url.QueryEscape(topic), nil, &out)
	return out
}

func TestTopicsSubscriptionsPublish(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := sns.NewFromConfig(sb.Config(t))
	created, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation"),
		Attributes: map[string]string{"KmsMasterKeyId": "alias/aws/sns", "DisplayName": "Rotation"},
		Tags:       []types.Tag{{Key: aws.String("app"), Value: aws.String("keyrotator")}}})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	arn := aws.ToString(created.TopicArn)
	if arn != "arn:aws:sns:us-east-1:111122223333:rotation" {
		t.Fatalf("TopicArn %q", arn)
	}
	again, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation")})
	if err != nil || aws.ToString(again.TopicArn) != arn {
		t.Fatalf("CreateTopic again: %v %+v", err, again)
	}
	attrs, err := c.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil || attrs.Attributes["KmsMasterKeyId"] != "alias/aws/sns" || attrs.Attributes["TopicArn"] != arn {
		t.Fatalf("GetTopicAttributes: %v %+v", err, attrs)
	}

	sub, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("email"), Endpoint: aws.String("ops@example.com")})
	if err != nil || aws.ToString(sub.SubscriptionArn) != "pending confirmation" {
		t.Fatalf("Subscribe email: %v %+v", err, sub)
	}
	lsub, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("lambda"), Endpoint: aws.String("arn:aws:lambda:us-east-1:111122223333:function:f")})
	if err != nil || !strings.HasPrefix(aws.ToString(lsub.SubscriptionArn), arn+":") {
		t.Fatalf("Subscribe lambda: %v %+v", err, lsub)
	}
	subs, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(arn)})
	if err != nil || len(subs.Subscriptions) != 2 || aws.ToString(subs.Subscriptions[0].SubscriptionArn) != "PendingConfirmation" ||
		aws.ToString(subs.Subscriptions[1].Protocol) != "lambda" {
		t.Fatalf("ListSubscriptionsByTopic: %v %+v", err, subs)
	}

	pub, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Subject: aws.String("Key rotated"), Message: aws.String("user app: new key AKIA…"),
		MessageAttributes: map[string]types.MessageAttributeValue{"stage": {DataType: aws.String("String"), StringValue: aws.String("finished")}}})
	if err != nil || pub.MessageId == nil {
		t.Fatalf("Publish: %v", err)
	}
	got := messages(t, sb, arn)
	if len(got) != 1 || got[0].ID != aws.ToString(pub.MessageId) || got[0].Subject != "Key rotated" || got[0].Message != "user app: new key AKIA…" ||
		got[0].Attributes["stage"].StringValue != "finished" || got[0].Time.IsZero() {
		t.Fatalf("messages: %+v", got)
	}

	// Step Functions publishes in-process, from the form alone.
	form := url.Values{"Action": {"Publish"}, "TopicArn": {arn}, "Message": {"from the state machine"}}
	if _, err := sb.Server.Internal(ctx, "sns", "Publish", "", sb.Admin.Principal, []byte(form.Encode())); err != nil {
		t.Fatalf("internal Publish: %v", err)
	}
	if got := messages(t, sb, arn); len(got) != 2 || got[1].Message != "from the state machine" {
		t.Fatalf("after internal publish: %+v", got)
	}

	topics, err := c.ListTopics(ctx, &sns.ListTopicsInput{})
	if err != nil || len(topics.Topics) != 1 {
		t.Fatalf("ListTopics: %v %+v", err, topics)
	}
	if _, err := c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")}); apiCode(err) != "NotFound" {
		t.Fatalf("publish to a deleted topic: %v", err)
	}
}

func TestErrorsAsAWSWordsThem(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := sns.NewFromConfig(sb.Config(t), func(o *sns.Options) { o.RetryMaxAttempts = 1 })
	topic, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t"), Attributes: map[string]string{"DisplayName": "T"}})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(in sns.PublishInput) func() error {
		return func() error {
			if in.TopicArn == nil {
				in.TopicArn = topic.TopicArn
			}
			_, err := c.Publish(ctx, &in)
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown topic", publish(sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:111122223333:ghost"), Message: aws.String("m")}), "NotFound"},
		{"empty message", publish(sns.PublishInput{Message: aws.String("")}), "InvalidParameter"},
		{"message too long", publish(sns.PublishInput{Message: aws.String(strings.Repeat("x", snssvc.MaxMessageBytes+1))}), "InvalidParameter"},
		{"message at the limit", publish(sns.PublishInput{Message: aws.String(strings.Repeat("x", snssvc.MaxMessageBytes))}), ""},
		{"subject of 101 characters", publish(sns.PublishInput{Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 101))}), "InvalidParameter"},
		{"subject of 100 characters", publish(sns.PublishInput{Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 100))}), ""},
		{"subject with a line break", publish(sns.PublishInput{Message: aws.String("m"), Subject: aws.String("a\nb")}), "InvalidParameter"},
		{"non-ASCII subject", publish(sns.PublishInput{Message: aws.String("m"), Subject: aws.String("clé")}), "InvalidParameter"},
		{"empty subject", publish(sns.PublishInput{Message: aws.String("m"), Subject: aws.String("")}), "InvalidParameter"},
		{"bad attribute type", publish(sns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Date"), StringValue: aws.String("x")}}}), "InvalidParameter"},
		{"json without default", publish(sns.PublishInput{Message: aws.String(`{"email":"x"}`), MessageStructure: aws.String("json")}), "InvalidParameter"},
		{"bad topic name", func() error {
			_, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("no spaces")})
			return err
		}, "InvalidParameter"},
		{"existing topic, other attributes", func() error {
			_, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t"), Attributes: map[string]string{"DisplayName": "U"}})
			return err
		}, "InvalidParameter"},
		{"subscribe to unknown topic", func() error {
			_, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String("arn:aws:sns:us-east-1:111122223333:ghost"), Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:111122223333:q")})
			return err
		}, "NotFound"},
		{"unknown protocol", func() error {
			_, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("pigeon"), Endpoint: aws.String("x")})
			return err
		}, "InvalidParameter"},
		{"bad email", func() error {
			_, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("email"), Endpoint: aws.String("not-an-address")})
			return err
		}, "InvalidParameter"},
		{"list subscriptions of unknown topic", func() error {
			_, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String("arn:aws:sns:us-east-1:111122223333:ghost")})
			return err
		}, "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiCode(tt.call()); got != tt.code {
				t.Fatalf("got %q, want %q", got, tt.code)
			}
		})
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: filepath.Join(t.TempDir(), "state.json")}}
	sb := sandboxtest.Start(t, opts)
	ctx := context.Background()
	c := sns.NewFromConfig(sb.Config(t))
	topic, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	saved(t, opts.StateFile, `"m"`)
	w2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := w2.Server.Service("sns")
	if got := svc.(*snssvc.Service).Messages(aws.ToString(topic.TopicArn)); len(got) != 1 {
		t.Fatalf("messages after restart: %+v", got)
	}
	form := url.Values{"Action": {"Publish"}, "TopicArn": {aws.ToString(topic.TopicArn)}, "Message": {"again"}}
	if _, err := w2.Server.Internal(ctx, "sns", "Publish", "", w2.Admin.Principal, []byte(form.Encode())); err != nil {
		t.Fatalf("topic after restart: %v", err)
	}
}

// saved waits for the sandbox's own save loop to write want into the state
// file (calling SaveState beside it would race on the temporary file).
func saved(t *testing.T, file, want string) {
	t.Helper()
	for range 100 {
		if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("state file never held %q", want)
}
