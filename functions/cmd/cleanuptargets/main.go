// Command cleanuptargets is the CleanupTargets state's Lambda: wiring only (package steps does the work).
package main

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/connections"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
)

func main() {
	cfg := lambdautil.AWSConfig()
	sm := secretsmanager.NewFromConfig(cfg)
	c := &steps.CleanupTargets{Records: record.New(sm), Soracom: soracom.FromEnv(connections.New(sm), 20*time.Second)}
	lambdautil.Start("cleanuptargets", c.Run, func(in rotation.TaskInput, r steps.CleanupResult) []any {
		return []any{"execution", in.Data.Execution, "lockReleased", r.LockReleased}
	})
}
