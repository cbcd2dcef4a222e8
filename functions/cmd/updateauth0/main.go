// Command updateauth0 is the UpdateAuth0 state's Lambda: wiring only (package steps does the work).
package main

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/connections"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/auth0"
)

func main() {
	cfg := lambdautil.AWSConfig()
	sm := secretsmanager.NewFromConfig(cfg)
	u := &steps.UpdateTarget{
		Records: record.New(sm),
		// Waits out Auth0's rate limit for up to 20 s of the 60 s timeout; past that, Step Functions retries.
		Target: &auth0.Target{Secrets: connections.New(sm), MaxRateWait: 20 * time.Second},
	}
	lambdautil.Start("updateauth0", u.Run, func(in rotation.TaskInput, r rotation.Receipt) []any {
		return []any{"execution", in.Data.Execution, "target", r.Target, "tenant", r.Where, "previousKeyId", r.PreviousKeyID, "newKeyId", r.NewKeyID, "changed", r.Changed}
	})
}
