package rotator

import (
	"encoding/json"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsschedulertargets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// AuditSchedule is when the weekly audit runs: Mondays 00:00 UTC, so the
// summary is there at the start of the week.
const AuditSchedule = "cron(0 0 ? * MON *)"

// AuditWarnDays is the weekly audit's --warn-days: a week and a week's
// margin, so a key due before the next audit is named in this one.
const AuditWarnDays = 14

// audit deploys the weekly audit (issue 15): the Audit function with its
// own role (tasks.Audit's calls: the credential report, every user's keys
// and tags read-only, publish to the alert topic) and its schedule.
func (r *Rotator) audit(c constructs.Construct, p *Props) {
	t := tasks.Audit
	fn := r.function(c, p, t)
	r.Functions[t.Function()] = fn
	// The audit Lambda's own types (functions/cmd/audit decodes them), so
	// the two sides cannot drift apart.
	var rots []audit.Managed
	for _, rot := range p.Config.Rotations {
		rots = append(rots, audit.Managed{Account: rot.Parsed().Account, User: rot.Parsed().User, Rotation: rot.Name, Schedule: rot.Schedule, Enabled: rot.IsEnabled()})
	}
	b, err := json.Marshal(rots)
	if err != nil {
		panic(err)
	}
	fn.AddEnvironment(jsii.String("KEYROTATOR_ROTATIONS"), jsii.String(string(b)), nil)
	if f := p.Config.Fleet; f != nil {
		// Issue 15: the fleet's templates: their tagged users are the
		// sweep's, not unmanaged.
		var ts []audit.Template
		for _, t := range f.Templates {
			ts = append(ts, audit.Template{Name: t.Name, Path: t.UserPath, Accounts: t.Accounts, Schedule: f.Schedule, Enabled: true})
		}
		b, err := json.Marshal(ts)
		if err != nil {
			panic(err)
		}
		fn.AddEnvironment(jsii.String("KEYROTATOR_TEMPLATES"), jsii.String(string(b)), nil)
	}
	fn.AddEnvironment(jsii.String("AUDIT_WARN_DAYS"), jsii.String(strconv.Itoa(AuditWarnDays)), nil)
	if p.Config.RunbookURL != "" {
		fn.AddEnvironment(jsii.String("RUNBOOK_URL"), jsii.String(p.Config.RunbookURL), nil)
	}
	if memberTask(p, t) {
		// Issue 15: the member accounts the rotations name, read through
		// their member role (narrowed to the audit's read-only calls).
		fn.AddToRolePolicy(allow([]string{"sts:AssumeRole"}, memberRoles(p)))
	}
	for _, call := range t.Calls {
		switch call.On {
		case tasks.Anything:
			fn.AddToRolePolicy(allow(call.Actions, jsii.Strings("*")))
		case tasks.AccountUsers:
			fn.AddToRolePolicy(allow(call.Actions, jsii.Strings(arn("iam", "", "user/*"))))
		case tasks.AlertTopic:
			mustBe(t, call, []string{"sns:Publish"})
			r.Topic.GrantPublish(fn)
		default:
			panic("task Audit: calls on " + string(call.On) + ", which infra does not grant it")
		}
	}
	role := awsiam.NewRole(c, jsii.String("AuditSchedulerRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil),
		Description: jsii.String("keyrotator audit schedule: invoke the audit function"),
	})
	awsscheduler.NewSchedule(c, jsii.String("AuditSchedule"), &awsscheduler.ScheduleProps{
		Description: jsii.String("keyrotator: the weekly audit of every IAM user key, summarized to the alert topic"),
		Schedule:    awsscheduler.ScheduleExpression_Expression(jsii.String(AuditSchedule), awscdk.TimeZone_ETC_UTC()),
		Target: awsschedulertargets.NewLambdaInvoke(fn, &awsschedulertargets.ScheduleTargetBaseProps{
			Input:           awsscheduler.ScheduleTargetInput_FromText(jsii.String("{}")),
			DeadLetterQueue: r.DLQ,
			Role:            role,
			RetryAttempts:   jsii.Number(3),
		}),
	})
}
