// Command updatesoracom is the UpdateSoracom state's Lambda: wiring only (package steps does the work).
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
	u := &steps.UpdateTarget{Records: record.NewIn(sm, names), Target: soracom.FromEnv(connections.New(sm), 70*time.Second)} // a whole per-minute window, of its 300 s timeout
	lambdautil.Start("updatesoracom", u.Run, func(in rotation.TaskInput, r rotation.Receipt) []any {
		attrs := []any{"execution", in.Data.Execution, "target", r.Target, "where", r.Where, "previousKeyId", r.PreviousKeyID, "newKeyId", r.NewKeyID, "changed", r.Changed}
		if s := r.Soracom; s != nil {
			attrs = append(attrs, "strategy", s.Strategy, "newCredential", s.NewCredential, "oldCredentials", s.OldCredentials, "groups", len(s.Groups))
		}
		return attrs
	})
}
