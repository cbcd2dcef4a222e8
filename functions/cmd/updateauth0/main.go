// Command updateauth0 is the UpdateAuth0 state's Lambda: wiring only (package steps does the work).
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
	"github.com/keyrotator/keyrotator/functions/targets/auth0"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	sm := secretsmanager.NewFromConfig(cfg)
	// Auth0's rate limit is waited out for up to 20 s of the 60 s timeout
	// (AUTH0_MAX_RATE_WAIT); past that, Step Functions retries with backoff.
	wait := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("AUTH0_MAX_RATE_WAIT")); err == nil && d > 0 {
		wait = d
	}
	u := &steps.UpdateTarget{Records: record.NewIn(sm, names), Target: &auth0.Target{Secrets: connections.New(sm), MaxRateWait: wait}}
	lambdautil.Start("updateauth0", u.Run, func(in rotation.TaskInput, r rotation.Receipt) []any {
		attrs := []any{"execution", in.Data.Execution, "target", r.Target, "tenant", r.Where, "previousKeyId", r.PreviousKeyID, "newKeyId", r.NewKeyID, "changed", r.Changed}
		if r.Unconfirmed != nil { // Auth0 did not show the key id: VerifyOldKeyUnused confirms by the new key's use
			attrs = append(attrs, "unconfirmed", true, "confirmBy", r.Unconfirmed.UsedBy)
		}
		return attrs
	})
}
