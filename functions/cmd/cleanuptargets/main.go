// Command cleanuptargets is the CleanupTargets state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

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
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	sm := secretsmanager.NewFromConfig(cfg)
	// The kinds that keep something for the old key (steps.Cleaner); their
	// connections are granted in functions/tasks (CleanupTargets).
	c := &steps.CleanupTargets{Records: record.NewIn(sm, names), Targets: steps.Targets{
		rotation.TargetSoracom: soracom.FromEnv(connections.New(sm), 20*time.Second),
	}}
	lambdautil.Start("cleanuptargets", c.Run, func(in rotation.TaskInput, r steps.CleanupResult) []any {
		return []any{"execution", in.Data.Execution, "lockReleased", r.LockReleased}
	})
}
