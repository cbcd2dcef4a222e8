// Command requestrun is the request endpoint's Lambda (a function URL with
// AuthType AWS_IAM, and EventBridge Scheduler's target): wiring only
// (package steps does the work).
package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	r := &steps.RequestRun{
		Schema:  subset.Check,
		Key:     kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN")),
		Runs:    executions.NewStarter(sfn.NewFromConfig(cfg), os.Getenv(executions.MachineEnv)),
		Account: ownAccount,
	}
	lambdautil.Start("requestrun", r.Run, describe)
}

// ownAccount is the account of the function's own ARN.
func ownAccount(ctx context.Context) string {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return ""
	}
	if p := strings.Split(lc.InvokedFunctionArn, ":"); len(p) > 4 {
		return p[4]
	}
	return ""
}

// describe is the log line's ids: the path, the caller or schedule, the
// answer's status and execution. Never the input or the body.
func describe(ev json.RawMessage, out any) []any {
	var probe struct {
		Schedule       string `json:"schedule"`
		RequestContext *struct {
			Authorizer *struct {
				IAM *struct {
					UserARN string `json:"userArn"`
				} `json:"iam"`
			} `json:"authorizer"`
		} `json:"requestContext"`
	}
	_ = json.Unmarshal(ev, &probe)
	attrs := []any{}
	if rc := probe.RequestContext; rc != nil {
		attrs = append(attrs, "via", "url")
		if rc.Authorizer != nil && rc.Authorizer.IAM != nil {
			attrs = append(attrs, "caller", rc.Authorizer.IAM.UserARN)
		}
	} else {
		attrs = append(attrs, "via", "direct", "schedule", probe.Schedule)
	}
	switch o := out.(type) {
	case steps.Started:
		attrs = append(attrs, "execution", o.ExecutionARN)
	case events.LambdaFunctionURLResponse:
		attrs = append(attrs, "status", o.StatusCode)
	}
	return attrs
}
