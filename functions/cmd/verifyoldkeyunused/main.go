// Command verifyoldkeyunused is the VerifyOldKeyUnused state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/connections"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	// The kinds whose service reports the use of a target's credentials
	// (steps.UsageReporter); their connections are granted in
	// functions/tasks (VerifyOldKeyUnused).
	v := &steps.VerifyOldKeyUnused{Keys: iamkeys.New(iam.NewFromConfig(cfg)), Trail: trail.New(cloudtrail.NewFromConfig(cfg)), Targets: steps.Targets{
		rotation.TargetSoracom: soracom.FromEnv(connections.New(secretsmanager.NewFromConfig(cfg)), 20*time.Second),
	},
		// A member account's IAM and CloudTrail, through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.VerifyOldKeyUnused), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Keys: iamkeys.New(iam.NewFromConfig(c)), Trail: trail.New(cloudtrail.NewFromConfig(c))}
		}},
	}
	lambdautil.Start("verifyoldkeyunused", v.Run, func(in rotation.TaskInput, r rotation.Verification) []any {
		return []any{"execution", in.Data.Execution, "attempt", r.Attempt, "unused", r.Unused}
	})
}
