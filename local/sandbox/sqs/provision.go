package sqs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{"AWS::SQS::Queue", "AWS::SQS::QueuePolicy"} }

// Create implements cfn.Provisioner.
//
// AWS::SQS::Queue: Ref is the queue URL; GetAtt Arn, QueueName, QueueUrl.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html
// AWS::SQS::QueuePolicy: PolicyDocument stored on each of Queues (URLs);
// Ref is a generated id.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queuepolicy.html
func (s *Service) Create(_ context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	p := r.Properties
	switch r.Type {
	case "AWS::SQS::QueuePolicy":
		doc, err := jsonText(p["PolicyDocument"])
		if err != nil || doc == "" {
			return cfn.Provisioned{}, fmt.Errorf("PolicyDocument: required, a JSON object")
		}
		queues, _ := p["Queues"].([]any)
		if len(queues) == 0 {
			return cfn.Provisioned{}, fmt.Errorf("Queues: required")
		}
		for _, q := range queues {
			url, _ := q.(string)
			if err := s.SetPolicy(url, doc); err != nil {
				return cfn.Provisioned{}, fmt.Errorf("Queues: %s: %w", url, err)
			}
		}
		return cfn.Provisioned{Ref: physicalID(r, 13)}, nil
	case "AWS::SQS::Queue":
	default:
		return cfn.Provisioned{}, fmt.Errorf("sqs: no provisioner for %s", r.Type)
	}
	name, _ := p["QueueName"].(string)
	if name == "" {
		// CloudFormation's generated name: stack-logicalid-RANDOM, at most 80.
		name = physicalID(r, 12)
	}
	attrs := map[string]string{}
	for _, k := range []string{"MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds", "MaximumMessageSize",
		"ReceiveMessageWaitTimeSeconds", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "KmsMasterKeyId"} {
		switch v := p[k].(type) {
		case nil:
		case string:
			attrs[k] = v
		case float64:
			attrs[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			attrs[k] = strconv.FormatBool(v)
		default:
			return cfn.Provisioned{}, fmt.Errorf("%s: not a scalar", k)
		}
	}
	if rp, ok := p["RedrivePolicy"]; ok {
		doc, err := jsonText(rp)
		if err != nil {
			return cfn.Provisioned{}, fmt.Errorf("RedrivePolicy: %w", err)
		}
		attrs["RedrivePolicy"] = doc
	}
	q, err := s.CreateQueue(r.Region, name, attrs)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("QueueName %s: %w", name, err)
	}
	return cfn.Provisioned{Ref: q.URL, Attrs: map[string]string{"Arn": q.ARN, "QueueName": q.Name, "QueueUrl": q.URL}}, nil
}

// jsonText is a property that is a JSON document, as text.
func jsonText(v any) (string, error) {
	switch d := v.(type) {
	case nil:
		return "", nil
	case string:
		if !json.Valid([]byte(d)) {
			return "", fmt.Errorf("not JSON")
		}
		return d, nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// physicalID is the name CloudFormation generates for a resource without
// one: "<stack>-<logical id>-<n random characters>", cut to 80.
func physicalID(r cfn.Resource, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	prefix := r.StackName + "-" + r.LogicalID
	if max := 80 - n - 1; len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + "-" + string(b)
}

var _ cfn.Provisioner = (*Service)(nil)
