package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/iampolicy"
)

// checkTopic checks the alert topic: every subscription confirmed, and
// every alarm whose action is the topic able to publish to it.
func (d *Doctor) checkTopic(ctx context.Context, r *Report, st *stack) {
	if st.topic == "" {
		r.add(Finding{Check: "subscriptions", Subject: "alert topic", Status: Failed, Detail: "the Notify function names no alert topic (ALERT_TOPIC_ARN)",
			Fix: "redeploy the stack (make deploy): infra sets the Notify function's ALERT_TOPIC_ARN"})
		return
	}
	d.checkSubscriptions(ctx, r, st.topic)
	d.checkAlarms(ctx, r, st)
}

// checkSubscriptions: a subscription still PendingConfirmation delivers
// nothing; a topic with none delivers to no one.
// https://docs.aws.amazon.com/sns/latest/api/API_Subscription.html
func (d *Doctor) checkSubscriptions(ctx context.Context, r *Report, topic string) {
	var subs int
	p := sns.NewListSubscriptionsByTopicPaginator(d.Topic, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.add(Finding{Check: "subscriptions", Subject: topic, Status: NotChecked, Detail: "cannot list the subscriptions: " + errText(err),
				Fix: "attach the stack's OperatorPolicy (sns:ListSubscriptionsByTopic on the alert topic)"})
			return
		}
		for _, s := range page.Subscriptions {
			subs++
			who := aws.ToString(s.Protocol) + " " + aws.ToString(s.Endpoint)
			if arn := aws.ToString(s.SubscriptionArn); arn == "PendingConfirmation" || arn == "Deleted" || !strings.HasPrefix(arn, "arn:") {
				r.add(Finding{Check: "subscriptions", Subject: who, Status: Failed, Detail: "not confirmed: alerts are not delivered to it",
					Fix: "open the confirmation mail AWS Notifications sent to " + aws.ToString(s.Endpoint) + " and follow its link (or resubscribe: aws sns subscribe --topic-arn " + topic + " --protocol " + aws.ToString(s.Protocol) + " --notification-endpoint " + aws.ToString(s.Endpoint) + ")"})
				continue
			}
			r.add(Finding{Check: "subscriptions", Subject: who, Status: OK, Detail: "confirmed"})
		}
	}
	if subs == 0 {
		r.add(Finding{Check: "subscriptions", Subject: topic, Status: Failed, Detail: "the alert topic has no subscription: no one hears of a failure",
			Fix: "name alertEmails in the config's rotations and redeploy, then confirm each mail"})
	}
}

// checkAlarms evaluates, as AWS does, cloudwatch.amazonaws.com publishing
// to the topic with each alarm's ARN as aws:SourceArn against the topic
// policy, and using the topic's KMS key against its key policy
// (kms:GenerateDataKey* and kms:Decrypt;
// https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
// Neither IAM simulator API takes a service principal, so the stack's
// policies are evaluated here with iampolicy, the evaluator the sandbox
// enforces with (differential-tested against @cloud-copilot/iam-simulate).
func (d *Doctor) checkAlarms(ctx context.Context, r *Report, st *stack) {
	attrs, err := d.Topic.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(st.topic)})
	if err != nil {
		r.add(Finding{Check: "alarms", Subject: st.topic, Status: NotChecked, Detail: "cannot read the topic's policy: " + errText(err),
			Fix: "attach the stack's OperatorPolicy (sns:GetTopicAttributes on the alert topic)"})
		return
	}
	var alarms []string
	p := cloudwatch.NewDescribeAlarmsPaginator(d.Alarms, &cloudwatch.DescribeAlarmsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.add(Finding{Check: "alarms", Subject: st.topic, Status: NotChecked, Detail: "cannot list the alarms: " + errText(err),
				Fix: "attach the stack's OperatorPolicy (cloudwatch:DescribeAlarms)"})
			return
		}
		for _, a := range page.MetricAlarms {
			if slices.Contains(a.AlarmActions, st.topic) {
				alarms = append(alarms, aws.ToString(a.AlarmArn))
			}
		}
	}
	if len(alarms) == 0 {
		r.add(Finding{Check: "alarms", Subject: st.topic, Status: Failed, Detail: "no CloudWatch alarm publishes to the alert topic: a failed execution whose own alert did not go out reaches no one (I4)",
			Fix: "redeploy the stack (make deploy): infra makes the ExecutionsFailed and ScheduleFailed alarms"})
		return
	}
	var topicPolicy *iampolicy.NamedPolicy
	if doc := attrs.Attributes["Policy"]; doc != "" {
		pol, err := iampolicy.Parse([]byte(doc), iampolicy.Resource)
		if err != nil {
			r.add(Finding{Check: "alarms", Subject: st.topic, Status: NotChecked, Detail: "the topic policy does not parse: " + err.Error(), Fix: "redeploy the stack (make deploy)"})
			return
		}
		topicPolicy = &iampolicy.NamedPolicy{Name: "topic policy", Policy: pol}
	}
	var keyPolicy *iampolicy.NamedPolicy
	keyARN := attrs.Attributes["KmsMasterKeyId"]
	if keyARN != "" {
		dk, err := d.Keys.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
		if err != nil {
			r.add(Finding{Check: "alarms", Subject: keyARN, Status: NotChecked, Detail: "cannot read the topic's KMS key: " + errText(err),
				Fix: "attach the stack's OperatorPolicy (kms:DescribeKey and kms:GetKeyPolicy on the alert key)"})
			return
		}
		keyARN = aws.ToString(dk.KeyMetadata.Arn)
		kp, err := d.Keys.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyARN)})
		if err != nil {
			r.add(Finding{Check: "alarms", Subject: keyARN, Status: NotChecked, Detail: "cannot read the key policy: " + errText(err),
				Fix: "attach the stack's OperatorPolicy (kms:GetKeyPolicy on the alert key)"})
			return
		}
		pol, err := iampolicy.Parse([]byte(aws.ToString(kp.Policy)), iampolicy.Resource)
		if err != nil {
			r.add(Finding{Check: "alarms", Subject: keyARN, Status: NotChecked, Detail: "the key policy does not parse: " + err.Error(), Fix: "redeploy the stack (make deploy)"})
			return
		}
		keyPolicy = &iampolicy.NamedPolicy{Name: "key policy", Policy: pol}
	}
	for _, alarm := range alarms {
		var denied []string
		ask := func(action, resource string, policy *iampolicy.NamedPolicy, key bool) {
			in := &iampolicy.Input{
				Request: iampolicy.Request{
					Principal: iampolicy.Principal{ARN: "cloudwatch.amazonaws.com", Type: iampolicy.Service},
					Action:    action, Resource: resource, ResourceAccount: st.account,
					Context: iampolicy.Context{"aws:SourceArn": {alarm}, "aws:SourceAccount": {st.account}, "aws:SecureTransport": {"true"}},
				},
				ResourcePolicy: policy, KeyPolicy: key,
			}
			if dec := iampolicy.Evaluate(in); !dec.Allowed {
				denied = append(denied, fmt.Sprintf("%s on %s (%s)", action, resource, dec.Kind))
			}
		}
		ask("sns:Publish", st.topic, topicPolicy, false)
		if keyPolicy != nil {
			ask("kms:GenerateDataKey", keyARN, keyPolicy, true)
			ask("kms:Decrypt", keyARN, keyPolicy, true)
		}
		name := alarm[strings.LastIndex(alarm, ":")+1:]
		if len(denied) > 0 {
			r.add(Finding{Check: "alarms", Subject: name, Status: Failed, Detail: "CloudWatch may not publish this alarm to the alert topic: " + strings.Join(denied, "; "),
				Fix: "the topic policy (or its key policy) must allow cloudwatch.amazonaws.com with this alarm's ARN as aws:SourceArn: redeploy the stack (make deploy) and do not replace the topic policy by hand"})
			continue
		}
		r.add(Finding{Check: "alarms", Subject: name, Status: OK, Detail: "may publish to the alert topic" + map[bool]string{true: " through its KMS key", false: ""}[keyPolicy != nil]})
	}
}
