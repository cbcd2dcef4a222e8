package sns_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	snssvc "github.com/keyrotator/keyrotator/local/sandbox/sns"
)

// The alert topic as keyrotator's stack makes it (the golden template's shape).
const topicTemplate = `{"Resources":{
 "Alerts":{"Type":"AWS::SNS::Topic","Properties":{"DisplayName":"keyrotator alerts","KmsMasterKeyId":"arn:aws:kms:us-east-1:111122223333:key/k"}},
 "Policy":{"Type":"AWS::SNS::TopicPolicy","Properties":{"Topics":[{"Ref":"Alerts"}],"PolicyDocument":{"Version":"2012-10-17","Statement":[
  {"Sid":"AllowPublishThroughSSLOnly","Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":{"Ref":"Alerts"},"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}}},
 "Oncall":{"Type":"AWS::SNS::Subscription","Properties":{"Protocol":"email","Endpoint":"oncall@example.com","TopicArn":{"Ref":"Alerts"}}}},
 "Outputs":{"Topic":{"Value":{"Ref":"Alerts"}},"Name":{"Value":{"Fn::GetAtt":["Alerts","TopicName"]}},"Sub":{"Value":{"Ref":"Oncall"}}}}`

func TestProvisionTopic(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	svc, _ := sb.Server.Service("sns")
	topics := svc.(*snssvc.Service)
	deploy := func(tpl string) (*cfn.Stack, error) {
		parsed, err := cfn.Parse([]byte(tpl))
		if err != nil {
			t.Fatal(err)
		}
		return cfn.Deploy(context.Background(), parsed, cfn.Options{StackName: "stk", Region: sb.Server.Region(), Account: sb.Server.Account(), Provisioners: []cfn.Provisioner{topics}, Caller: sb.Admin.Principal})
	}
	st, err := deploy(topicTemplate)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	arn, name := st.Outputs["Topic"], st.Outputs["Name"]
	if !strings.HasPrefix(name, "stk-Alerts-") || arn != "arn:aws:sns:us-east-1:111122223333:"+name {
		t.Errorf("topic %s named %s", arn, name)
	}
	c := sns.NewFromConfig(sb.Config(t))
	attrs, err := c.GetTopicAttributes(context.Background(), &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["KmsMasterKeyId"] != "arn:aws:kms:us-east-1:111122223333:key/k" || attrs.Attributes["DisplayName"] != "keyrotator alerts" || attrs.Attributes["SubscriptionsPending"] != "1" {
		t.Errorf("attributes %v", attrs.Attributes)
	}
	pol, ok := topics.TopicPolicy(arn)
	if !ok || !strings.Contains(string(pol), `"aws:SecureTransport":"false"`) || !strings.Contains(string(pol), `"Resource":"`+arn+`"`) {
		t.Errorf("topic policy %s %v", pol, ok)
	}
	sub := st.Outputs["Sub"]
	if !strings.HasPrefix(sub, arn+":") {
		t.Errorf("subscription ARN %q (CloudFormation's Ref is the ARN even while pending)", sub)
	}
	// Pending until confirmed, through the admin API.
	sb.AdminCall(t, http.MethodPost, "/sns/subscriptions/confirm?arn="+url.QueryEscape(sub), nil, nil)
	attrs, err = c.GetTopicAttributes(context.Background(), &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil || attrs.Attributes["SubscriptionsConfirmed"] != "1" || attrs.Attributes["SubscriptionsPending"] != "0" {
		t.Errorf("after confirming: %v %v", attrs.Attributes, err)
	}
	if topics.ConfirmSubscription(arn + ":nope") {
		t.Error("confirmed a subscription that does not exist")
	}
	if _, err := deploy(strings.Replace(topicTemplate, `"Endpoint":"oncall@example.com"`, `"Endpoint":"not an address"`, 1)); err == nil || !strings.Contains(err.Error(), "Oncall") || !strings.Contains(err.Error(), "Email address") {
		t.Errorf("a bad endpoint: %v", err)
	}
}
