// Command answerapproval is the approval endpoint's Lambda, behind a
// function URL with AuthType AWS_IAM: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamroles"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)}
	a := &steps.AnswerApproval{
		Executions:   executions.NewAnswerer(sfn.NewFromConfig(cfg)),
		Records:      record.NewIn(secretsmanager.NewFromConfig(cfg), names),
		MAC:          kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN")),
		Roles:        iamroles.New(iam.NewFromConfig(cfg)),
		StateMachine: os.Getenv("STATE_MACHINE_ARN"),
		Account:      os.Getenv("STACK_ACCOUNT"),
	}
	lambdautil.Start("answerapproval", a.HandleURL, func(in events.LambdaFunctionURLRequest, out events.LambdaFunctionURLResponse) []any {
		caller := ""
		if az := in.RequestContext.Authorizer; az != nil && az.IAM != nil {
			caller = rotation.Printable(az.IAM.UserARN, 200) // as AWS authenticated it
		}
		return []any{"caller", caller, "status", out.StatusCode} // never the body: the reply says what happened
	})
}
