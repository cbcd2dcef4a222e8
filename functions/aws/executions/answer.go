package executions

import (
	"context"
	"encoding/json"
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
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, opt ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
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

// PendingToken is the task token the execution's Approve state waits on:
// the last TaskScheduled whose payload is a notify approval
// ({"kind":"approval","token":…}), with no task closed after it. ok is
// false when it waits for none.
func (a *Answerer) PendingToken(ctx context.Context, arn string) (token string, ok bool, err error) {
	p := sfn.NewGetExecutionHistoryPaginator(a.api, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 200})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var gone *types.ExecutionDoesNotExist
		if errors.As(err, &gone) {
			return "", false, nil
		}
		if err != nil {
			return "", false, awserr.Classify("states GetExecutionHistory "+arn, err)
		}
		for _, e := range page.Events {
			switch {
			case e.TaskScheduledEventDetails != nil:
				var params struct {
					Payload struct {
						Kind  string `json:"kind"`
						Token string `json:"token"`
					} `json:"Payload"`
				}
				if json.Unmarshal([]byte(aws.ToString(e.TaskScheduledEventDetails.Parameters)), &params) == nil && params.Payload.Kind == "approval" && params.Payload.Token != "" {
					token = params.Payload.Token
				}
			case e.TaskSucceededEventDetails != nil, e.TaskFailedEventDetails != nil, e.TaskTimedOutEventDetails != nil:
				token = ""
			}
		}
	}
	return token, token != "", nil
}
