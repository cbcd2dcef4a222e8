// Package executions asks Step Functions whether an execution still runs:
// Validate takes over the lock of a run that ended without releasing it.
package executions

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

type api interface {
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opt ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Status reads execution statuses.
type Status struct{ api api }

// New wraps a Step Functions client.
func New(c api) *Status { return &Status{api: c} }

// Running reports whether arn is still RUNNING; an execution that does not
// exist (any more) is not.
func (s *Status) Running(ctx context.Context, arn string) (bool, error) {
	if arn == "" {
		return false, nil
	}
	out, err := s.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var gone *types.ExecutionDoesNotExist
	if errors.As(err, &gone) {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("states DescribeExecution "+arn, err)
	}
	return out.Status == types.ExecutionStatusRunning, nil
}
