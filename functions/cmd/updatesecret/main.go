// Command updatesecret is the UpdateSecret state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	sm := secretsmanager.NewFromConfig(cfg)
	u := &steps.UpdateTarget{Records: record.NewIn(sm, names), Target: secret.New(sm),
		// A secret in the rotation's member account, through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.UpdateSecret), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Secret: secret.New(secretsmanager.NewFromConfig(c))}
		}},
	}
	lambdautil.Start("updatesecret", u.Run, func(in rotation.TaskInput, r rotation.Receipt) []any {
		return []any{"execution", in.Data.Execution, "target", r.Target, "previousKeyId", r.PreviousKeyID, "newKeyId", r.NewKeyID, "changed", r.Changed}
	})
}
