package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/keyrotator/keyrotator/cli/endpoint"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// The endpoints' function URLs, when --request-url / --approval-url do not
// give them.
const (
	RequestURLEnv  = "KEYROTATOR_REQUEST_URL"
	ApprovalURLEnv = "KEYROTATOR_APPROVAL_URL"
)

// answerApproval is the approval endpoint's function (the approvals
// branch registers it as tasks.AnswerApproval): <prefix>-answerapproval.
const answerApproval = "answerapproval"

type urlConfigAPI interface {
	GetFunctionUrlConfig(ctx context.Context, in *lambda.GetFunctionUrlConfigInput, opt ...func(*lambda.Options)) (*lambda.GetFunctionUrlConfigOutput, error)
}

// endpointURL is an endpoint's function URL: the flag, else the
// environment, else the URL of the stack's function <prefix>-<function>
// (lambda:GetFunctionUrlConfig; the stack also outputs it).
func (a *app) endpointURL(ctx context.Context, c urlConfigAPI, flag, flagValue, env, function string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := a.getenv(env); v != "" {
		return v, nil
	}
	name := a.names().StateMachine() + "-" + function
	out, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)})
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); ok {
		return "", usageErr(flag, "no function URL of %s in this account and region (give --%s or set %s)", name, flag, env)
	}
	if err != nil {
		return "", fmt.Errorf("find the function URL of %s: %w", name, err)
	}
	if out.AuthType != types.FunctionUrlAuthTypeAwsIam {
		// Never send a request an unauthenticated URL would take as anyone's.
		return "", fmt.Errorf("the function URL of %s has AuthType %s, not AWS_IAM: refusing to use it", name, out.AuthType)
	}
	return aws.ToString(out.FunctionUrl), nil
}

// requestURL is the request endpoint's URL (requestrun).
func (a *app) requestURL(ctx context.Context) (string, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return "", err
	}
	return a.endpointURL(ctx, lambda.NewFromConfig(cfg), "request-url", a.requestURLFlag, RequestURLEnv, tasks.RequestRun.Function())
}

// approvalURL is the approval endpoint's URL (answerapproval).
func (a *app) approvalURL(ctx context.Context) (string, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return "", err
	}
	return a.endpointURL(ctx, lambda.NewFromConfig(cfg), "approval-url", a.approvalURLFlag, ApprovalURLEnv, answerApproval)
}

// endpointClient signs with the caller's own credentials. Against the
// sandbox (AWS_ENDPOINT_URL), requests go to its endpoint with the URL's
// host, which routes them.
func (a *app) endpointClient(ctx context.Context) (*endpoint.Client, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	// Signed at the wall clock, as the SDK signs: AWS checks X-Amz-Date
	// against its own (the sandbox's against the real time, whatever its
	// workflow clock says), not the server time the CLI reports.
	c := &endpoint.Client{Credentials: cfg.Credentials, Region: cfg.Region, HTTP: a.httpClient}
	if cfg.BaseEndpoint != nil {
		c.Endpoint = *cfg.BaseEndpoint
	}
	return c, nil
}
