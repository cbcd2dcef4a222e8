// Command updatesecret is the UpdateSecret state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	sm := secretsmanager.NewFromConfig(cfg)
	u := &steps.UpdateTarget{Records: record.NewIn(sm, names), Target: secret.New(sm)}
	lambdautil.Start("updatesecret", u.Run, func(in rotation.TaskInput, r rotation.Receipt) []any {
		return []any{"execution", in.Data.Execution, "target", r.Target, "previousKeyId", r.PreviousKeyID, "newKeyId", r.NewKeyID, "changed", r.Changed}
	})
}
