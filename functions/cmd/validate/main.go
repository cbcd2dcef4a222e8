// Command validate is the Validate state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	v := &steps.Validate{
		Schema:     subset.Check, // not inputschema: its library's init costs a cold start 4 ms
		Keys:       iamkeys.New(iam.NewFromConfig(cfg)),
		Records:    record.NewIn(secretsmanager.NewFromConfig(cfg), names),
		Executions: executions.New(sfn.NewFromConfig(cfg)),
		Makers:     trail.ForIAMEvents(cfg),
		Requests:   kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN")), // the signed request (kms:VerifyMac)
		// A member account's IAM and CloudTrail, through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.Validate), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Keys: iamkeys.New(iam.NewFromConfig(c)), Makers: trail.ForIAMEvents(c)}
		}},
	}
	lambdautil.Start("validate", v.Run,
		func(in steps.ValidateInput, p rotation.Plan) []any {
			return []any{"execution", in.Data.Execution, "user", p.User, "oldKeyId", p.OldKeyID, "dryRun", p.DryRun, "skip", p.Skip}
		})
}
