// Package alerts publishes keyrotator's notices to its SNS topic: the
// failure alerts on-call reads (I4), warnings and success notices.
package alerts

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

type api interface {
	Publish(ctx context.Context, in *sns.PublishInput, opt ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ api = (*sns.Client)(nil)

// Topic is the alert topic.
type Topic struct {
	api api
	arn string
}

// New returns the topic arn reached through c.
func New(c api, arn string) *Topic { return &Topic{api: c, arn: arn} }

// Publish sends one notice. SNS subjects are ASCII, 100 characters at most.
func (t *Topic) Publish(ctx context.Context, subject, message string) (string, error) {
	subject = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, subject)
	if len(subject) > 100 {
		subject = subject[:97] + "..."
	}
	out, err := t.api.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(t.arn), Subject: aws.String(subject), Message: aws.String(message)})
	if err != nil {
		return "", awserr.Classify("sns Publish "+t.arn, err)
	}
	return aws.ToString(out.MessageId), nil
}
