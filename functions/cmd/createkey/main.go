// Command createkey is the CreateKey state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/aws/prove"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	c := &steps.CreateKey{
		Keys:    iamkeys.New(iam.NewFromConfig(cfg)),
		Records: record.NewIn(secretsmanager.NewFromConfig(cfg), names),
		Prover:  prove.New(cfg),
		Makers:  trail.ForIAMEvents(cfg),
		Self:    prove.NewSelf(cfg),
		// A member account's IAM and CloudTrail, and who CreateKey is there
		// (the member role's session), through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.CreateKey), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Keys: iamkeys.New(iam.NewFromConfig(c)), Makers: trail.ForIAMEvents(c), Self: prove.NewSelf(c)}
		}},
	}
	lambdautil.Start("createkey", c.Run, func(in rotation.TaskInput, k rotation.NewKey) []any {
		return []any{"execution", in.Data.Execution, "newKeyId", k.KeyID, "reused", k.Reused}
	})
}
