// Command notify is the Approve, NotifySuccess, AlertStillInUse and NotifyFailure state's Lambda: wiring only (package steps does the work).
package main

import (
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/aws/alerts"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

func main() {
	cfg := lambdautil.AWSConfig()
	topics := sns.NewFromConfig(cfg)
	n := &steps.Notify{
		Topic:   alerts.New(topics, os.Getenv("ALERT_TOPIC_ARN")),
		Runbook: os.Getenv("RUNBOOK_URL"),
		// Issue 14: the approval request is kept in the run's record.
		Records:     record.NewIn(secretsmanager.NewFromConfig(cfg), rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)}),
		ApprovalURL: os.Getenv("APPROVAL_URL"),
		Seals:       kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN")),
		// The owner topics the config allows (OWNER_TOPICS, comma-separated).
		Owners:      audit.Owners{API: iam.NewFromConfig(cfg)},
		OwnerTopics: map[string]steps.Publisher{},
		// A member account's user's owner tag, through its member role (issue 15).
		Accounts: &member.Clients[steps.Clients]{Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.Notify), Make: func(c aws.Config) steps.Clients {
			return steps.Clients{Owners: audit.Owners{API: iam.NewFromConfig(c)}}
		}},
	}
	for arn := range strings.SplitSeq(os.Getenv("OWNER_TOPICS"), ",") {
		if arn != "" {
			n.OwnerTopics[arn] = alerts.New(topics, arn)
		}
	}
	lambdautil.Start("notify", n.Run, func(in steps.NotifyInput, r steps.NotifyResult) []any {
		return []any{"execution", in.Data.Execution, "kind", in.Kind, "error", r.Error, "messageId", r.MessageID}
	})
}
