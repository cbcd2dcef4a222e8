// Command sweep is the fleet sweep's Lambda (issue 15), invoked by its
// EventBridge Scheduler schedule: wiring only (package fleet does the
// work, steps.RequestRun signs and starts each run as requestrun does).
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/fleetstore"
	"github.com/keyrotator/keyrotator/functions/aws/iamusers"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/member"
	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// members are the member accounts' directories (issue 15): IAM through
// each account's member role, assumed with the sweep's session policy
// (tasks.Sweep's member calls on every user of the account: read-only),
// one session per account, kept for the run.
type members struct {
	*member.Clients[fleet.Directory]
}

// Directory is account's IAM through its member role.
func (m members) Directory(ctx context.Context, account string) (fleet.Directory, error) {
	return m.Member(ctx, account, "") // "": the session policy's users are the account's every user
}

func main() {
	cfg := lambdautil.AWSConfig()
	names := rotation.Names{Prefix: os.Getenv(rotation.PrefixEnv)}
	store := fleetstore.New(secretsmanager.NewFromConfig(cfg), names)
	runs := &steps.RequestRun{
		Schema: subset.Check,
		Key:    kmsmac.New(kms.NewFromConfig(cfg), os.Getenv("MAC_KEY_ARN")),
		Runs:   executions.NewStarter(sfn.NewFromConfig(cfg), os.Getenv(executions.MachineEnv)),
	}
	s := &fleet.Sweep{
		Config: store, Locks: store, Schema: subset.Check,
		Users: iamusers.New(iam.NewFromConfig(cfg)),
		Members: members{&member.Clients[fleet.Directory]{
			Provider: member.New(cfg, member.FromEnv(os.Getenv), tasks.Sweep),
			Make:     func(c aws.Config) fleet.Directory { return iamusers.New(iam.NewFromConfig(c)) },
		}},
		Start: func(ctx context.Context, schedule string, fired time.Time, input []byte) (string, error) {
			st, err := runs.Scheduled(ctx, steps.ScheduleEvent{Schedule: schedule, Input: input, ScheduledTime: fired.Format(time.RFC3339)})
			if err != nil {
				return "", err
			}
			if st.ExecutionARN == "" { // this firing's run exists: started by an earlier attempt
				return "", &fleet.NameTaken{Name: st.Name}
			}
			return st.ExecutionARN, nil
		},
	}
	lambdautil.Start("sweep", s.Run, func(_ fleet.Event, r fleet.Report) []any {
		return []any{"fired", r.Fired, "candidates", r.Candidates, "due", r.Due, "started", r.Started, "alreadyStarted", r.AlreadyStarted,
			"locked", r.Locked, "notDue", r.NotDue, "noActiveKey", r.NoActiveKey, "unknownTemplate", r.UnknownTemplate,
			"conflicts", r.Conflicts, "outOfScope", r.OutOfScope, "failed", r.Failed, "unreachable", r.Unreachable}
	})
}
