// Command deactivateoldkey is the DeactivateOldKey state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	r := &steps.DeactivateOldKey{Keys: iamkeys.New(iam.NewFromConfig(cfg)),
		// A member account's IAM, through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.DeactivateOldKey), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Keys: iamkeys.New(iam.NewFromConfig(c))}
		}},
	}
	lambdautil.Start("deactivateoldkey", r.Run, func(in rotation.TaskInput, k rotation.KeyChange) []any {
		return []any{"execution", in.Data.Execution, "keyId", k.KeyID, "status", k.Status, "changed", k.Changed}
	})
}
