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

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/aws/alerts"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	// KEYROTATOR_ROTATIONS: the config's rotations, as infra sets it.
	var managed []audit.Managed
	if err := json.Unmarshal([]byte(os.Getenv("KEYROTATOR_ROTATIONS")), &managed); err != nil {
		fmt.Fprintln(os.Stderr, "audit: KEYROTATOR_ROTATIONS:", err)
		os.Exit(1)
	}
	// KEYROTATOR_TEMPLATES: the fleet's templates (issue 15), when it has one.
	var templates []audit.Template
	if v := os.Getenv("KEYROTATOR_TEMPLATES"); v != "" {
		if err := json.Unmarshal([]byte(v), &templates); err != nil {
			fmt.Fprintln(os.Stderr, "audit: KEYROTATOR_TEMPLATES:", err)
			os.Exit(1)
		}
	}
	warn, _ := strconv.Atoi(os.Getenv("AUDIT_WARN_DAYS"))
	// The member accounts the rotations name, through their member role
	// with the audit's read-only calls as the session policy (issue 15).
	members := member.New(cfg, member.FromEnv(os.Getenv), tasks.Audit)
	w := &audit.Weekly{
		IAM: iam.NewFromConfig(cfg),
		Members: func(ctx context.Context, account string) (audit.IAM, error) {
			c, err := members.Config(ctx, account, "") // "": every user (user/*), read-only
			if err != nil {
				return nil, err
			}
			return iam.NewFromConfig(c), nil
		},
		Topic:     alerts.New(sns.NewFromConfig(cfg), os.Getenv("ALERT_TOPIC_ARN")),
		Managed:   managed,
		Templates: templates,
		Now:       time.Now,
		WarnDays:  warn,
		Runbook:   os.Getenv("RUNBOOK_URL"),
		Account:   members.Own,
	}
	lambdautil.Start("audit", w.Run, func(_ json.RawMessage, r audit.WeeklyResult) []any {
		return []any{"account", r.Account, "keys", r.Keys, "overdue", r.Overdue, "due", r.Due, "messageId", r.MessageID}
	})
}
