// Package awserr sorts AWS SDK errors into the kinds the state machine
// tells apart: transient ones (throttling, 5xx, network), which become
// rotation.Retryable so Step Functions retries them with backoff after the
// SDK's own retryer gave up; a call the role may not make, which becomes
// rotation.AccessDenied; and everything else, returned as it was.
package awserr

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// moreTransient are codes services answer for their own faults that the
// SDK's default lists leave out because they come with a 5xx status, which
// the SDK retries by status; keyrotator sees them by code too.
var moreTransient = map[string]bool{
	"ServiceUnavailable": true, "ServiceUnavailableException": true, "InternalFailure": true,
	"InternalServiceError": true, "InternalServiceErrorException": true, "ServiceFailure": true, "InternalError": true,
	// SNS's throttle: code Throttled, HTTP 429, which neither list has
	// (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors).
	"Throttled": true,
}

// deniedCodes are the codes AWS services answer when the caller's policies
// do not allow the call.
var deniedCodes = map[string]bool{
	"AccessDenied":          true, // IAM, STS, S3 (Query and REST-XML protocols)
	"AccessDeniedException": true, // Secrets Manager, KMS, Lambda, CloudTrail, SES, Step Functions (JSON protocols)
	"UnauthorizedOperation": true, // EC2
	"AuthorizationError":    true, // SNS
}

// Code is the AWS error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Transient reports whether err is worth retrying later: what the SDK's
// own retryer counts as retryable or a throttle (connection errors,
// timeouts, 500/502/503/504, RequestTimeout, the throttling codes), any
// other 5xx, 429 Too Many Requests, and a service's own fault and
// throttle codes.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary ||
		retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return true
	}
	if moreTransient[Code(err)] {
		return true
	}
	var st interface{ HTTPStatusCode() int }
	return errors.As(err, &st) && (st.HTTPStatusCode() >= 500 || st.HTTPStatusCode() == http.StatusTooManyRequests)
}

// onResource finds the resource in AWS's words for a denial: "User: arn:…
// is not authorized to perform: iam:DeleteAccessKey on resource: user alice
// because no identity-based policy allows …". AWS has no field for it.
var onResource = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`on resource:? (.{1,256}?)(?: because |\s*$)`) })

// Denied is err as a *rotation.AccessDenied when AWS refused the call for
// want of permission: the service and the operation from the SDK's
// OperationError, the resource when AWS's message names it.
func Denied(err error) (*rotation.AccessDenied, bool) {
	var ae smithy.APIError
	if !errors.As(err, &ae) || !deniedCodes[ae.ErrorCode()] {
		return nil, false
	}
	d := &rotation.AccessDenied{Code: ae.ErrorCode()}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		d.Service, d.Action = oe.ServiceID, oe.OperationName
	}
	if m := onResource().FindStringSubmatch(ae.ErrorMessage()); m != nil {
		d.Resource = m[1]
	}
	return d, true
}

// Classify returns a *rotation.Retryable for a transient err, a
// *rotation.AccessDenied for a denied one, and err wrapped with what failed
// (e.g. "iam ListAccessKeys app") otherwise.
func Classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if Transient(err) {
		return &rotation.Retryable{Reason: what + ": " + err.Error()}
	}
	if d, ok := Denied(err); ok {
		return d
	}
	return fmt.Errorf("%s: %w", what, err)
}
