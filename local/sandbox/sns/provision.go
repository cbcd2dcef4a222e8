package sns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// SNS's resource types, made through SNS's own API (CreateTopic,
// SetTopicAttributes, Subscribe) as the deployer, as CloudFormation makes
// them:
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-topic.html
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-topicpolicy.html
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-subscription.html
const (
	typeTopic        = "AWS::SNS::Topic"
	typeTopicPolicy  = "AWS::SNS::TopicPolicy"
	typeSubscription = "AWS::SNS::Subscription"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{typeTopic, typeTopicPolicy, typeSubscription} }

// Create implements cfn.Provisioner.
func (s *Service) Create(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	switch r.Type {
	case typeTopic:
		return s.createTopicResource(ctx, r)
	case typeTopicPolicy:
		return s.createTopicPolicyResource(ctx, r)
	case typeSubscription:
		return s.createSubscriptionResource(ctx, r)
	}
	return cfn.Provisioned{}, fmt.Errorf("sns: no provisioner for %s", r.Type)
}

func (s *Service) call(ctx context.Context, r cfn.Resource, action string, form url.Values) (any, error) {
	form.Set("Action", action)
	return s.srv.Internal(ctx, "sns", action, "", r.Caller, []byte(form.Encode()))
}

// createTopicResource: CreateTopic with the attributes the template sets,
// then Subscribe for each inline Subscription. Ref is the topic ARN.
func (s *Service) createTopicResource(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	name, err := r.Str("TopicName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	fifo, _ := r.Properties["FifoTopic"].(bool)
	switch {
	case name == "" && r.Previous != nil:
		name = r.Previous.Attrs["TopicName"]
	case name == "":
		name = cfn.PhysicalName(r, 256-len(".fifo"))
		if fifo {
			name += ".fifo"
		}
	}
	form := url.Values{"Name": {name}}
	n := 0
	for _, attr := range []string{"DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication", "SignatureVersion", "TracingConfig", "FifoThroughputScope", "DeliveryPolicy", "DataProtectionPolicy", "ArchivePolicy"} {
		v, ok := r.Properties[attr]
		if !ok || v == nil {
			continue
		}
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case bool:
			text = strconv.FormatBool(x)
		case float64:
			text = strconv.FormatFloat(x, 'f', -1, 64)
		default: // the policies are JSON objects
			b, err := json.Marshal(x)
			if err != nil {
				return cfn.Provisioned{}, fmt.Errorf("property %s: %w", attr, err)
			}
			text = string(b)
		}
		n++
		form.Set(fmt.Sprintf("Attributes.entry.%d.key", n), attr)
		form.Set(fmt.Sprintf("Attributes.entry.%d.value", n), text)
	}
	tags, err := r.Tags("Tags")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	for i, t := range tags {
		form.Set(fmt.Sprintf("Tags.member.%d.Key", i+1), t[0])
		form.Set(fmt.Sprintf("Tags.member.%d.Value", i+1), t[1])
	}
	create := form
	if r.Previous != nil {
		// A stack update: CreateTopic by name answers the existing topic
		// only if nothing differs, so by name alone, then
		// SetTopicAttributes for each attribute.
		create = url.Values{"Name": {name}}
	}
	res, err := s.call(ctx, r, "CreateTopic", create)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	arn := res.(struct{ TopicArn string }).TopicArn
	if r.Previous != nil {
		for i := 1; form.Has(fmt.Sprintf("Attributes.entry.%d.key", i)); i++ {
			attr := form.Get(fmt.Sprintf("Attributes.entry.%d.key", i))
			if attr == "FifoTopic" {
				continue
			}
			val := form.Get(fmt.Sprintf("Attributes.entry.%d.value", i))
			if _, err := s.call(ctx, r, "SetTopicAttributes", url.Values{"TopicArn": {arn}, "AttributeName": {attr}, "AttributeValue": {val}}); err != nil {
				return cfn.Provisioned{}, fmt.Errorf("property %s: %w", attr, err)
			}
		}
	}
	if subs, ok := r.Properties["Subscription"].([]any); ok {
		for i, e := range subs {
			m, _ := e.(map[string]any)
			p, _ := m["Protocol"].(string)
			ep, _ := m["Endpoint"].(string)
			if _, err := s.call(ctx, r, "Subscribe", url.Values{"TopicArn": {arn}, "Protocol": {p}, "Endpoint": {ep}}); err != nil {
				return cfn.Provisioned{}, fmt.Errorf("property Subscription[%d]: %w", i, err)
			}
		}
	}
	return cfn.Provisioned{Ref: arn, Attrs: map[string]string{"TopicArn": arn, "TopicName": name}}, nil
}

// createTopicPolicyResource sets the policy as each topic's Policy
// attribute (SetTopicAttributes), replacing SNS's default policy as
// AWS::SNS::TopicPolicy does. Ref is a generated id.
func (s *Service) createTopicPolicyResource(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	doc, err := r.Document("PolicyDocument")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if doc == nil {
		return cfn.Provisioned{}, errors.New("property PolicyDocument: required")
	}
	topics, err := r.Strings("Topics")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if len(topics) == 0 {
		return cfn.Provisioned{}, errors.New("property Topics: required")
	}
	for _, arn := range topics {
		if _, err := s.call(ctx, r, "SetTopicAttributes", url.Values{"TopicArn": {arn}, "AttributeName": {"Policy"}, "AttributeValue": {string(doc)}}); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Topics (%s): %w", arn, err)
		}
	}
	id := cfn.PhysicalName(r, 128)
	if r.Previous != nil {
		id = r.Previous.Ref
	}
	return cfn.Provisioned{Ref: id, Attrs: map[string]string{"Id": id}}, nil
}

// createSubscriptionResource subscribes as Subscribe does: an email
// subscription stays pending confirmation until someone follows the link
// SNS mails (ConfirmSubscription here). Ref is the subscription ARN, which
// CloudFormation gets even while it is pending (ReturnSubscriptionArn).
func (s *Service) createSubscriptionResource(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	topic, err := r.RequiredStr("TopicArn")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	protocol, err := r.RequiredStr("Protocol")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	endpoint, err := r.Str("Endpoint")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	res, err := s.call(ctx, r, "Subscribe", url.Values{"TopicArn": {topic}, "Protocol": {protocol}, "Endpoint": {endpoint}, "ReturnSubscriptionArn": {"true"}})
	if err != nil {
		return cfn.Provisioned{}, err
	}
	arn := res.(struct{ SubscriptionArn string }).SubscriptionArn
	return cfn.Provisioned{Ref: arn, Attrs: map[string]string{"Arn": arn}}, nil
}

// TopicPolicy is the Policy attribute a topic was given (by a template's
// AWS::SNS::TopicPolicy or SetTopicAttributes), for a policy evaluator;
// ok is false for a topic without one (SNS's default policy applies) or no
// such topic.
func (s *Service) TopicPolicy(arn string) (policy json.RawMessage, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.st.Topics[arn]
	if !found {
		return nil, false
	}
	p, ok := t.Attributes["Policy"]
	return json.RawMessage(p), ok && p != ""
}

// TopicKey is the KMS key a topic encrypts with (its KmsMasterKeyId), for
// a policy evaluator: publishing to an encrypted topic needs the
// publisher's kms:GenerateDataKey* and kms:Decrypt on it.
func (s *Service) TopicKey(arn string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.st.Topics[arn]
	if !found {
		return "", false
	}
	k := t.Attributes["KmsMasterKeyId"]
	return k, k != ""
}

// ConfirmSubscription confirms a pending subscription, as the recipient's
// following SNS's confirmation link does. It reports whether there was such
// a subscription.
func (s *Service) ConfirmSubscription(arn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.Topics {
		if i := slices.IndexFunc(t.Subscriptions, func(x *Subscription) bool { return x.ARN == arn }); i >= 0 {
			t.Subscriptions[i].Pending = false
			s.srv.MarkDirty()
			return true
		}
	}
	return false
}

var _ cfn.Provisioner = (*Service)(nil)
