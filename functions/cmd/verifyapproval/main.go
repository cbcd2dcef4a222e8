// Command verifyapproval is the VerifyApproval state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	v := &steps.VerifyApproval{MAC: kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN"))}
	lambdautil.Start("verifyapproval", v.Run, func(in steps.VerifyApprovalInput, a rotation.Approval) []any {
		by := make([]string, 0, len(a.Approvals))
		for _, e := range a.Approvals {
			by = append(by, e.By) // verified ARNs only: a refused answer's claims are never logged
		}
		return []any{"execution", in.Data.Execution, "approvedBy", by}
	})
}
