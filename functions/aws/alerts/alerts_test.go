package alerts

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

type fakeSNS struct{ in *sns.PublishInput }

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

// SNS refuses subjects over 100 characters or with anything but printable ASCII.
func TestSubjectIsWhatSNSAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct{ subject, want string }{
		{"keyrotator: rotated", "keyrotator: rotated"},
		{"two\nlines", "two?lines"},
		{"→ arrow", "? arrow"},
		{strings.Repeat("x", 140), strings.Repeat("x", 97) + "..."},
	}
	for _, tt := range tests {
		f := &fakeSNS{}
		id, err := New(f, "arn:aws:sns:us-east-1:1:t").Publish(context.Background(), tt.subject, "body")
		if err != nil || id != "m-1" {
			t.Fatalf("Publish: %v %s", err, id)
		}
		if got := aws.ToString(f.in.Subject); got != tt.want || len(got) > 100 {
			t.Errorf("subject %q → %q, want %q", tt.subject, got, tt.want)
		}
	}
}
