package rotator

// --- Issue 15: fleet scale, the sweep (sweep helper). ---

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsschedulertargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/fleetstore"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/infra/config"
)

// sweep deploys the fleet sweep when the config has a "fleet": the Sweep
// function with its own role (tasks.Sweep's calls), the fleet config
// secret it reads (<prefix>/fleet: the templates and the entries whose
// schedule is "sweep"), and its one schedule. The sweep signs and starts
// each run as requestrun does, so it may sign (kms:GenerateMac; the HMAC
// key's policy admits it, keyPolicy) and start executions of this state
// machine only.
func (r *Rotator) sweep(c constructs.Construct, p *Props, users *[]*string, records *string) {
	if p.Config.Fleet == nil {
		return
	}
	t := tasks.Sweep
	fn := r.Functions[t.Function()]
	fn.AddEnvironment(jsii.String(executions.MachineEnv), jsii.String(arn("states", deployRegion, "stateMachine:"+p.Config.Names().StateMachine())), nil)
	r.FleetConfig = awssecretsmanager.NewSecret(c, jsii.String("FleetConfig"), &awssecretsmanager.SecretProps{
		SecretName:        jsii.String(fleetstore.SecretName(p.Config.Names())),
		Description:       jsii.String("keyrotator: the fleet sweep's templates and entries (not a secret: kept here for its 64 KB, its versions and its one reader)"),
		SecretStringValue: awscdk.SecretValue_UnsafePlainText(jsii.String(p.Config.FleetSecret())),
		RemovalPolicy:     p.RemovalPolicy,
	})
	// keyrotator's own: a secret target naming it is refused (I1).
	awscdk.Tags_Of(r.FleetConfig).Add(jsii.String("keyrotator:kind"), jsii.String("fleet"), nil)
	if memberTask(p, t) {
		// Issue 15: the member accounts (the templates' and the entries'),
		// listed through their member role, narrowed by the sweep's
		// session policy (tasks.Sweep's read-only member calls). A member
		// account's users are never granted here (users: the own
		// account's only).
		fn.AddToRolePolicy(allow([]string{"sts:AssumeRole"}, memberRoles(p)))
	}
	for _, call := range t.Calls {
		switch call.On {
		case tasks.FleetConfig:
			fn.AddToRolePolicy(allow(call.Actions, &[]*string{r.FleetConfig.SecretArn()}))
		case tasks.Anything:
			fn.AddToRolePolicy(allow(call.Actions, jsii.Strings("*")))
		case tasks.Users:
			fn.AddToRolePolicy(allow(call.Actions, users))
		case tasks.Records:
			fn.AddToRolePolicy(allow(call.Actions, &[]*string{records}))
		case tasks.MacKey:
			fn.AddToRolePolicy(allow(call.Actions, &[]*string{r.MacKey.KeyArn()}))
		case tasks.StateMachine:
			fn.AddToRolePolicy(allow(call.Actions, &[]*string{r.StateMachine.StateMachineArn()}))
		default:
			panic("task Sweep: calls on " + string(call.On) + ", which infra does not grant it")
		}
	}
	// A sweep that fails is retried by Lambda (twice), then its event goes
	// to the schedules' dead-letter queue, whose alarm tells on-call, as
	// a rotation's schedule's does.
	fn.Node().DefaultChild().(awslambda.CfnFunction).SetDeadLetterConfig(&awslambda.CfnFunction_DeadLetterConfigProperty{TargetArn: r.DLQ.QueueArn()})
	fn.AddToRolePolicy(allow([]string{"sqs:SendMessage"}, &[]*string{r.DLQ.QueueArn()}))
	role := awsiam.NewRole(c, jsii.String("SweepSchedulerRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil),
		Description: jsii.String("keyrotator sweep schedule: invoke the sweep function"),
	})
	f := p.Config.Fleet
	sc := awsscheduler.NewSchedule(c, jsii.String("SweepSchedule"), &awsscheduler.ScheduleProps{
		Description: jsii.String("keyrotator: the fleet sweep, which starts every due rotation of the fleet"),
		Schedule:    awsscheduler.ScheduleExpression_Expression(jsii.String(f.Schedule), awscdk.TimeZone_Of(jsii.String(f.TimeZone))),
		Target: awsschedulertargets.NewLambdaInvoke(fn, &awsschedulertargets.ScheduleTargetBaseProps{
			Input:           awsscheduler.ScheduleTargetInput_FromText(jsii.String(`{"scheduledTime":"` + config.ScheduledTimeAttribute + `"}`)),
			DeadLetterQueue: r.DLQ,
			Role:            role,
			RetryAttempts:   jsii.Number(3),
		}),
	})
	sc.Node().AddDependency(r.StateMachine) // it starts executions by the machine's fixed name
	r.Schedules = append(r.Schedules, sc)
}

// sweepFunction makes the sweep's function, if the config has a fleet,
// before the HMAC key's policy is written (it names every signer).
func (r *Rotator) sweepFunction(c constructs.Construct, p *Props) {
	if p.Config.Fleet != nil {
		r.Functions[tasks.Sweep.Function()] = r.function(c, p, tasks.Sweep)
	}
}

// userScopes are the fleet templates' users: user<path>* for each
// template's path (the tagged users are not known at synth).
func userScopes(c config.Config) []*string {
	var out []*string
	for _, p := range c.UserPaths() {
		out = append(out, jsii.String(arn("iam", "", "user"+p+"*")))
	}
	return out
}

// --- end of issue 15 (sweep). ---
