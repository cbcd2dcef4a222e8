// Command audit is the weekly audit's Lambda (no state's: an EventBridge
// Scheduler schedule invokes it): wiring only (package audit does the work).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/aws/alerts"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
)

func main() {
	cfg := lambdautil.AWSConfig()
	// KEYROTATOR_ROTATIONS: the config's rotations, as infra sets it.
	var managed []audit.Managed
	if err := json.Unmarshal([]byte(os.Getenv("KEYROTATOR_ROTATIONS")), &managed); err != nil {
		fmt.Fprintln(os.Stderr, "audit: KEYROTATOR_ROTATIONS:", err)
		os.Exit(1)
	}
	warn, _ := strconv.Atoi(os.Getenv("AUDIT_WARN_DAYS"))
	w := &audit.Weekly{
		IAM:      iam.NewFromConfig(cfg),
		Topic:    alerts.New(sns.NewFromConfig(cfg), os.Getenv("ALERT_TOPIC_ARN")),
		Managed:  managed,
		Now:      time.Now,
		WarnDays: warn,
		Runbook:  os.Getenv("RUNBOOK_URL"),
		Account:  ownAccount,
	}
	lambdautil.Start("audit", w.Run, func(_ json.RawMessage, r audit.WeeklyResult) []any {
		return []any{"account", r.Account, "keys", r.Keys, "overdue", r.Overdue, "due", r.Due, "messageId", r.MessageID}
	})
}

// ownAccount is the account of the invoked function's ARN.
func ownAccount(ctx context.Context) (string, error) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return "", fmt.Errorf("no Lambda context")
	}
	a, err := arn.Parse(lc.InvokedFunctionArn)
	if err != nil {
		return "", fmt.Errorf("invoked function ARN: %w", err)
	}
	return a.AccountID, nil
}
