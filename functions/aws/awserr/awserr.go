// Package awserr sorts AWS SDK errors into the two kinds the state machine
// tells apart: transient ones (throttling, 5xx, network), which become
// rotation.Retryable so Step Functions retries them with backoff after the
// SDK's own retryer gave up, and everything else, returned as it was.
package awserr

import (
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "RequestThrottled": true, "SlowDown": true,
	"ServiceUnavailable": true, "InternalFailure": true, "InternalServiceError": true, "ServiceFailure": true,
}

// Code is the AWS error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Transient reports whether err is worth retrying later.
func Transient(err error) bool {
	if throttleCodes[Code(err)] {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Classify returns a *rotation.Retryable for a transient err, and err
// wrapped with what failed (e.g. "iam ListAccessKeys app") otherwise.
func Classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if Transient(err) {
		return &rotation.Retryable{Reason: what + ": " + err.Error()}
	}
	return fmt.Errorf("%s: %w", what, err)
}
