package executions

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

// The approval endpoint's calls (issue 14): which run an answer is for, and
// the answer to its task token.

type answerAPI interface {
	api
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, opt ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, opt ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
}

var _ answerAPI = (*sfn.Client)(nil)

// Answerer reads executions and answers their task tokens.
type Answerer struct{ api answerAPI }

// NewAnswerer wraps a Step Functions client.
func NewAnswerer(c answerAPI) *Answerer { return &Answerer{api: c} }

// ErrGone is an execution that does not exist.
var ErrGone = errors.New("executions: no such execution")

// ErrTaskClosed is a task token nobody waits on any more: answered
// already, timed out, or its execution ended
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html#API_SendTaskSuccess_Errors).
var ErrTaskClosed = errors.New("executions: the task no longer waits for an answer")

// Describe returns the execution's status and input.
func (a *Answerer) Describe(ctx context.Context, arn string) (status, input string, err error) {
	out, err := a.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var gone *types.ExecutionDoesNotExist
	var bad *types.InvalidArn
	if errors.As(err, &gone) || errors.As(err, &bad) {
		return "", "", ErrGone
	}
	if err != nil {
		return "", "", awserr.Classify("states DescribeExecution "+arn, err)
	}
	return string(out.Status), aws.ToString(out.Input), nil
}

// Success answers token with output.
func (a *Answerer) Success(ctx context.Context, token, output string) error {
	_, err := a.api.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(output)})
	return answerErr("states SendTaskSuccess", err)
}

// Failure answers token with a named error and cause.
func (a *Answerer) Failure(ctx context.Context, token, name, cause string) error {
	_, err := a.api.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(name), Cause: aws.String(cause)})
	return answerErr("states SendTaskFailure", err)
}

func answerErr(op string, err error) error {
	var closed *types.TaskTimedOut
	var missing *types.TaskDoesNotExist
	var invalid *types.InvalidToken
	switch {
	case err == nil:
		return nil
	case errors.As(err, &closed), errors.As(err, &missing), errors.As(err, &invalid):
		return ErrTaskClosed
	}
	// Never name the token: it answers the run.
	return awserr.Classify(op, err)
}
