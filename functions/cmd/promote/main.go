// Command promote is the Promote state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)} // the stack prefix the construct set
	p := &steps.Promote{Records: record.NewIn(secretsmanager.NewFromConfig(cfg), names)}
	lambdautil.Start("promote", p.Run, func(in rotation.TaskInput, c rotation.Cutover) []any {
		return []any{"execution", in.Data.Execution, "cutover", c.At}
	})
}
