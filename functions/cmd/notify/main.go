// Command notify is the NotifySuccess, AlertStillInUse and NotifyFailure state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/aws/alerts"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/steps"
)

func main() {
	cfg := lambdautil.AWSConfig()
	n := &steps.Notify{
		Topic:   alerts.New(sns.NewFromConfig(cfg), os.Getenv("ALERT_TOPIC_ARN")),
		Runbook: os.Getenv("RUNBOOK_URL"),
	}
	lambdautil.Start("notify", n.Run, func(in steps.NotifyInput, r steps.NotifyResult) []any {
		return []any{"execution", in.Data.Execution, "kind", in.Kind, "error", r.Error, "messageId", r.MessageID}
	})
}
