// Command deleteoldkey is the DeleteOldKey state's Lambda: wiring only (package steps does the work).
package main

import (
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	r := &steps.DeleteOldKey{Keys: iamkeys.New(iam.NewFromConfig(cfg))}
	lambdautil.Start("deleteoldkey", r.Run, func(in rotation.TaskInput, k rotation.KeyChange) []any {
		return []any{"execution", in.Data.Execution, "keyId", k.KeyID, "status", k.Status, "changed", k.Changed}
	})
}
