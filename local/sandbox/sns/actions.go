package sns

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

const topicType = "AWS::SNS::Topic"

type entryXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type subscriptionXML struct {
	SubscriptionArn string `xml:"SubscriptionArn"`
	Owner           string `xml:"Owner"`
	Protocol        string `xml:"Protocol"`
	Endpoint        string `xml:"Endpoint"`
	TopicArn        string `xml:"TopicArn"`
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "CreateTopic":
		return s.createTopic(c)
	case "DeleteTopic":
		return s.deleteTopic(c)
	case "ListTopics":
		return s.listTopics(c)
	case "GetTopicAttributes":
		return s.getTopicAttributes(c)
	case "SetTopicAttributes":
		return s.setTopicAttributes(c)
	case "Subscribe":
		return s.subscribe(c)
	case "Unsubscribe":
		return s.unsubscribe(c)
	case "ListSubscriptionsByTopic":
		return s.listSubscriptionsByTopic(c)
	case "Publish":
		return s.publish(c)
	}
	return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2010-03-31", c.Action)
}

// attributes reads a Query map (Attributes.entry.N.key/value).
func attributes(c *sandbox.Call) map[string]string {
	m := map[string]string{}
	for _, e := range sandbox.Members(c.Params, "Attributes.entry", "key", "value") {
		m[e["key"]] = e["value"]
	}
	return m
}

func (s *Service) createTopic(c *sandbox.Call) (any, error) {
	name, err := sandbox.Required(c.Params, "Name")
	if err != nil {
		return nil, err
	}
	attrs := attributes(c)
	for k := range attrs {
		if !slices.Contains(settable, k) {
			return nil, invalid("Attributes Reason: Unknown attribute " + k)
		}
	}
	if err := validName(name, attrs["FifoTopic"] == "true"); err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, t := range sandbox.Members(c.Params, "Tags.member", "Key", "Value") {
		tags[t["Key"]] = t["Value"]
	}
	arn := s.topicARN(c.Region, name)
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"name": name})
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.st.Topics[arn]; ok { // idempotent by name, if nothing differs
		for k, v := range attrs {
			if t.Attributes[k] != v {
				return nil, invalid("Attributes Reason: Topic already exists with different attributes")
			}
		}
		if len(tags) > 0 && !maps.Equal(tags, t.Tags) {
			return nil, invalid("Tags Reason: Topic already exists with different tags")
		}
		return struct{ TopicArn string }{arn}, nil
	}
	s.st.Topics[arn] = &Topic{ARN: arn, Name: name, Region: c.Region, Attributes: attrs, Tags: tags, Created: c.Time}
	return struct{ TopicArn string }{arn}, nil
}

func (s *Service) deleteTopic(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "TopicArn")
	if err != nil {
		return nil, err
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn})
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.Topics, arn) // deleting a topic that is gone is no error
	return nil, nil
}

// pageOf cuts n items at a NextToken (the index to start at), 100 a page.
func pageOf(n int, token string) (start, end int, next string, err error) {
	if token != "" {
		i, perr := strconv.Atoi(token)
		if perr != nil || i < 0 || i > n {
			return 0, 0, "", invalid("NextToken")
		}
		start = i
	}
	end = min(n, start+100)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

func (s *Service) listTopics(c *sandbox.Call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.sortedTopics(c.Region)
	start, end, next, err := pageOf(len(ts), c.Params.Get("NextToken"))
	if err != nil {
		return nil, err
	}
	type topicXML struct {
		TopicArn string `xml:"TopicArn"`
	}
	out := struct {
		Topics    []topicXML `xml:"Topics>member"`
		NextToken string     `xml:"NextToken,omitempty"`
	}{Topics: []topicXML{}, NextToken: next}
	for _, t := range ts[start:end] {
		out.Topics = append(out.Topics, topicXML{t.ARN})
	}
	return out, nil
}

func (s *Service) getTopicAttributes(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "TopicArn")
	if err != nil {
		return nil, err
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn})
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topic(arn)
	if err != nil {
		return nil, err
	}
	confirmed, pending := 0, 0
	for _, sub := range t.Subscriptions {
		if sub.Pending {
			pending++
		} else {
			confirmed++
		}
	}
	attrs := map[string]string{
		"TopicArn": t.ARN, "Owner": s.srv.Account(), "DisplayName": "",
		"SubscriptionsConfirmed": strconv.Itoa(confirmed), "SubscriptionsPending": strconv.Itoa(pending), "SubscriptionsDeleted": "0",
	}
	maps.Copy(attrs, t.Attributes)
	out := struct {
		Attributes []entryXML `xml:"Attributes>entry"`
	}{}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		out.Attributes = append(out.Attributes, entryXML{k, attrs[k]})
	}
	return out, nil
}

func (s *Service) setTopicAttributes(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "TopicArn")
	if err != nil {
		return nil, err
	}
	name, err := sandbox.Required(c.Params, "AttributeName")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(settable, name) || name == "FifoTopic" {
		return nil, invalid("AttributeName")
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn, "attributeName": name})
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topic(arn)
	if err != nil {
		return nil, err
	}
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	t.Attributes[name] = c.Params.Get("AttributeValue")
	return nil, nil
}

// validEndpoint checks an endpoint against its protocol as SNS does.
func validEndpoint(protocol, endpoint string) error {
	switch protocol {
	case "email", "email-json":
		if a, err := mail.ParseAddress(endpoint); err != nil || a.Address != endpoint {
			return invalid("Email address")
		}
	case "sqs":
		if !strings.HasPrefix(endpoint, "arn:aws:sqs:") {
			return invalid("SQS endpoint ARN")
		}
	case "lambda":
		if !strings.HasPrefix(endpoint, "arn:aws:lambda:") {
			return invalid("Lambda endpoint ARN")
		}
	case "firehose":
		if !strings.HasPrefix(endpoint, "arn:aws:firehose:") {
			return invalid("Firehose endpoint ARN")
		}
	case "http", "https":
		if !strings.HasPrefix(endpoint, protocol+"://") {
			return invalid("Endpoint must match the specified protocol")
		}
	case "sms", "application":
		if endpoint == "" {
			return invalid("Endpoint")
		}
	default:
		return invalid("Amazon SNS does not support this protocol string: " + protocol)
	}
	return nil
}

func (s *Service) subscribe(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "TopicArn")
	if err != nil {
		return nil, err
	}
	protocol, err := sandbox.Required(c.Params, "Protocol")
	if err != nil {
		return nil, err
	}
	endpoint := c.Params.Get("Endpoint")
	if err := validEndpoint(protocol, endpoint); err != nil {
		return nil, err
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn, "protocol": protocol, "endpoint": endpoint})
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topic(arn)
	if err != nil {
		return nil, err
	}
	var sub *Subscription
	for _, x := range t.Subscriptions {
		if x.Protocol == protocol && x.Endpoint == endpoint {
			sub = x
		}
	}
	if sub == nil {
		pending := protocol == "email" || protocol == "email-json" || protocol == "http" || protocol == "https"
		sub = &Subscription{ARN: arn + ":" + sandbox.NewUUID(), Protocol: protocol, Endpoint: endpoint, Pending: pending, Owner: c.Principal.Account}
		t.Subscriptions = append(t.Subscriptions, sub)
	}
	out := sub.ARN
	if sub.Pending && c.Params.Get("ReturnSubscriptionArn") != "true" {
		out = "pending confirmation"
	}
	return struct{ SubscriptionArn string }{out}, nil
}

func (s *Service) unsubscribe(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "SubscriptionArn")
	if err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"subscriptionArn": arn})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.Topics {
		for i, sub := range t.Subscriptions {
			if sub.ARN == arn {
				t.Subscriptions = slices.Delete(t.Subscriptions, i, i+1)
				return nil, nil
			}
		}
	}
	return nil, sandbox.Errorf(404, "NotFound", "Subscription does not exist")
}

func (s *Service) listSubscriptionsByTopic(c *sandbox.Call) (any, error) {
	arn, err := sandbox.Required(c.Params, "TopicArn")
	if err != nil {
		return nil, err
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn})
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topic(arn)
	if err != nil {
		return nil, err
	}
	start, end, next, err := pageOf(len(t.Subscriptions), c.Params.Get("NextToken"))
	if err != nil {
		return nil, err
	}
	out := struct {
		Subscriptions []subscriptionXML `xml:"Subscriptions>member"`
		NextToken     string            `xml:"NextToken,omitempty"`
	}{Subscriptions: []subscriptionXML{}, NextToken: next}
	for _, sub := range t.Subscriptions[start:end] {
		sa := sub.ARN
		if sub.Pending {
			sa = "PendingConfirmation"
		}
		out.Subscriptions = append(out.Subscriptions, subscriptionXML{SubscriptionArn: sa, Owner: sub.Owner, Protocol: sub.Protocol, Endpoint: sub.Endpoint, TopicArn: t.ARN})
	}
	return out, nil
}

// validSubject applies SNS's rule: ASCII text beginning with a letter,
// number or punctuation mark, no line breaks or control characters, at most
// 100 characters.
func validSubject(subj string) error {
	if subj == "" || len(subj) > 100 || subj[0] == ' ' {
		return invalid("Subject")
	}
	for _, r := range subj {
		if r < 0x20 || r > 0x7e {
			return invalid("Subject")
		}
	}
	return nil
}

// messageAttributes reads and checks MessageAttributes.entry.N.{Name,Value.*},
// returning them with their size toward the message limit.
func messageAttributes(c *sandbox.Call) (map[string]Attribute, int, error) {
	entries := sandbox.Members(c.Params, "MessageAttributes.entry", "Name", "Value.DataType", "Value.StringValue", "Value.BinaryValue")
	if len(entries) > 10 {
		return nil, 0, invalid(fmt.Sprintf("Number of message attributes [%d] exceeds the allowed maximum [10].", len(entries)))
	}
	attrs, size := map[string]Attribute{}, 0
	for _, e := range entries {
		name, typ := e["Name"], e["Value.DataType"]
		if name == "" {
			return nil, 0, invalid("The message attribute name can not be empty.")
		}
		base, _, _ := strings.Cut(typ, ".")
		switch base {
		case "String", "Number":
			if e["Value.StringValue"] == "" {
				return nil, 0, invalid(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, typ))
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(e["Value.StringValue"], 64); err != nil {
					return nil, 0, invalid(fmt.Sprintf("Could not cast message attribute '%s' value to number.", name))
				}
			}
		case "Binary":
			b, err := base64.StdEncoding.DecodeString(e["Value.BinaryValue"])
			if err != nil || len(b) == 0 {
				return nil, 0, invalid(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, typ))
			}
		default:
			return nil, 0, invalid(fmt.Sprintf("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name))
		}
		attrs[name] = Attribute{DataType: typ, StringValue: e["Value.StringValue"], BinaryValue: e["Value.BinaryValue"]}
		size += len(name) + len(typ) + len(e["Value.StringValue"]) + len(e["Value.BinaryValue"])
	}
	return attrs, size, nil
}

func (s *Service) publish(c *sandbox.Call) (any, error) {
	arn := c.Params.Get("TopicArn")
	if arn == "" {
		arn = c.Params.Get("TargetArn")
	}
	if arn == "" {
		if c.Params.Get("PhoneNumber") != "" {
			return nil, invalid("PhoneNumber Reason: SMS is not available in the sandbox")
		}
		return nil, invalid("TopicArn or TargetArn Reason: no value for required parameter")
	}
	if _, ok := c.Params["Message"]; !ok {
		return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null")
	}
	msg := c.Params.Get("Message")
	if msg == "" {
		return nil, invalid("Empty message")
	}
	_, hasSubject := c.Params["Subject"]
	subject := c.Params.Get("Subject")
	if hasSubject {
		if err := validSubject(subject); err != nil {
			return nil, err
		}
	}
	attrs, attrSize, err := messageAttributes(c)
	if err != nil {
		return nil, err
	}
	if len(msg)+attrSize > MaxMessageBytes {
		return nil, invalid("Message too long")
	}
	switch c.Params.Get("MessageStructure") {
	case "":
	case "json":
		var body map[string]any
		if json.Unmarshal([]byte(msg), &body) != nil {
			return nil, invalid("Message Structure - JSON message body failed to parse")
		}
		if _, ok := body["default"].(string); !ok {
			return nil, invalid("Message Structure - No default entry in JSON message body")
		}
	default:
		return nil, invalid("MessageStructure")
	}
	c.Touch(topicType, arn)
	c.RequestParameters(map[string]any{"topicArn": arn})
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.topic(arn)
	if err != nil {
		return nil, err
	}
	group := c.Params.Get("MessageGroupId")
	out := struct {
		MessageID      string `xml:"MessageId" json:"MessageId"`
		SequenceNumber string `xml:"SequenceNumber,omitempty" json:"SequenceNumber,omitempty"`
	}{MessageID: sandbox.NewUUID()}
	if t.Attributes["FifoTopic"] == "true" {
		if group == "" {
			return nil, invalid("The MessageGroupId parameter is required for FIFO topics")
		}
		if c.Params.Get("MessageDeduplicationId") == "" && t.Attributes["ContentBasedDeduplication"] != "true" {
			return nil, invalid("The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		t.Sequence++
		out.SequenceNumber = fmt.Sprintf("%020d", t.Sequence)
	} else if group != "" {
		return nil, invalid("MessageGroupId Reason: The request includes MessageGroupId parameter that is not valid for this topic type")
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	s.st.Messages = append(s.st.Messages, Message{ID: out.MessageID, Topic: arn, Subject: subject, Message: msg, Attributes: attrs, MessageGroupID: group, Time: c.Time})
	return out, nil
}
