package awserr_test

import (
	"errors"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("boom")}}
	}
	tests := []struct {
		name      string
		err       error
		retryable bool
	}{
		{"throttling", &smithy.GenericAPIError{Code: "Throttling"}, true},
		{"json throttling", &smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		// SNS answers its throttle as code Throttled, HTTP 429, a code the SDK's lists leave out
		// (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors).
		{"sns throttled", &smithy.OperationError{ServiceID: "SNS", OperationName: "Publish", Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 429}}, Err: &smithy.GenericAPIError{Code: "Throttled", Message: "Rate exceeded"}}}}, true},
		{"429", status(429), true},
		{"503", status(503), true},
		{"500", status(500), true},
		{"403", status(403), false},
		{"no such entity", &smithy.GenericAPIError{Code: "NoSuchEntity"}, false},
		{"quota", &smithy.GenericAPIError{Code: "LimitExceeded"}, false}, // IAM's two-key quota is not a throttle
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := awserr.Classify("iam X", tt.err)
			if r := errors.As(got, new(*rotation.Retryable)); r != tt.retryable {
				t.Fatalf("retryable = %v, want %v (%v)", r, tt.retryable, got)
			}
			if !tt.retryable && !errors.Is(got, tt.err) {
				t.Fatalf("the original error must stay reachable: %v", got)
			}
		})
	}
	denied := awserr.Classify("iam DeleteAccessKey AKIA1", &smithy.OperationError{ServiceID: "IAM", OperationName: "DeleteAccessKey",
		Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: iam:DeleteAccessKey on resource: user alice because no identity-based policy allows the iam:DeleteAccessKey action"}})
	var d *rotation.AccessDenied
	if !errors.As(denied, &d) || d.Service != "IAM" || d.Action != "DeleteAccessKey" || d.Resource != "user alice" {
		t.Fatalf("denied: %#v", denied)
	}
	if awserr.Classify("x", nil) != nil {
		t.Fatal("nil stays nil")
	}
}
