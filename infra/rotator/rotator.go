// Package rotator is keyrotator as a reusable CDK construct: props in (the
// rotations config, where the built Lambdas and the state machine file are),
// resources out (the state machine, its functions, the alert topic, the
// schedules). Least privilege throughout: IAM key actions only on the
// configured users, Secrets Manager only on keyrotator's records and the
// configured application secrets.
package rotator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsschedulertargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/infra/config"
)

// Props configure the construct.
type Props struct {
	Config        config.Config
	Dist          string // dist/: <function>/bootstrap for linux/arm64
	ASL           string // statemachine/rotation.asl.json
	LogRetention  awslogs.RetentionDays
	RemovalPolicy awscdk.RemovalPolicy // of log groups and the key; RETAIN by default
}

// Rotator is what the construct made.
type Rotator struct {
	constructs.Construct
	StateMachine awsstepfunctions.StateMachine
	Functions    map[string]awslambda.Function
	Topic        awssns.Topic
	Alarm        awscloudwatch.Alarm
	DLQ          awssqs.Queue
	DLQAlarm     awscloudwatch.Alarm
	Schedules    []awsscheduler.Schedule
	// Connections are the target API credentials' secrets, by name.
	Connections map[string]awssecretsmanager.Secret
	// Operator is the managed policy for the people who run the keyrotator
	// CLI (start, watch, status, approve, reject) and the runbook's reads:
	// attach it to their role. It reads no key and changes none.
	Operator awsiam.ManagedPolicy
	// Rollback is the managed policy for the runbook's hands-on steps:
	// switching an old key back on (iam:UpdateAccessKey on the managed
	// users) and stopping a stuck run. Attach it to on-call's break-glass
	// role, not to everyone who runs the CLI.
	Rollback awsiam.ManagedPolicy
	// Doctor is the managed policy that lets `keyrotator doctor` read the
	// connection secrets (to check them and reach Auth0 and SORACOM with
	// them): attach it, beside Operator, to whoever runs doctor. Nil when
	// the config names no connection.
	Doctor awsiam.ManagedPolicy
	// AlertKey encrypts the alert topic and the schedules' dead-letter queue.
	AlertKey awskms.Key
	// Issue 14 (approvals).
	// MacKey is the KMS HMAC key that signs approvals (and requests): only
	// the functions the task registry grants kms:GenerateMac may sign.
	MacKey awskms.Key
	// URLs are the endpoints' function URLs (AuthType AWS_IAM), by function.
	URLs map[string]awslambda.FunctionUrl
	// Approver is the managed policy for the people who answer approval
	// requests (keyrotator approve/reject): the answerapproval function
	// URL, and the reads the CLI makes. Whether they may approve a run is
	// that run's approvers list, which answerapproval checks.
	Approver awsiam.ManagedPolicy
	// FleetConfig is the fleet sweep's config secret (issue 15), nil
	// without a "fleet" in the config.
	FleetConfig awssecretsmanager.Secret
}

// arn is an ARN in the partition, region and account the stack is deployed
// to (the AWS::Partition, AWS::Region and AWS::AccountId pseudo parameters),
// whatever environment synth ran in: a template synthesized once deploys
// anywhere. region "" is for global services (IAM).
func arn(service, region, resource string) string {
	if region != "" {
		region = *awscdk.Aws_REGION()
	}
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", *awscdk.Aws_PARTITION(), service, region, *awscdk.Aws_ACCOUNT_ID(), resource)
}

// deployRegion marks an ARN as regional for arn().
const deployRegion = "region"

// New builds keyrotator in scope.
func New(scope constructs.Construct, id string, p *Props) *Rotator {
	c := constructs.NewConstruct(scope, jsii.String(id))
	r := &Rotator{Construct: c, Functions: map[string]awslambda.Function{}, Connections: map[string]awssecretsmanager.Secret{}, URLs: map[string]awslambda.FunctionUrl{}}
	stack := awscdk.Stack_Of(c)
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_THREE_MONTHS
	}
	if p.RemovalPolicy == "" {
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}

	key := awskms.NewKey(c, jsii.String("AlertKey"), &awskms.KeyProps{
		Description:       jsii.String("keyrotator: encrypts the alert topic and the schedule dead-letter queue"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     p.RemovalPolicy,
	})
	r.AlertKey = key
	r.Topic = awssns.NewTopic(c, jsii.String("Alerts"), &awssns.TopicProps{
		DisplayName: jsii.String("keyrotator alerts"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	for _, e := range p.Config.AlertEmails() {
		r.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e), nil))
	}
	// CloudWatch alarms publish to the encrypted topic: the key must let them
	// (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
	// Unconditioned: AWS documents aws:SourceArn/aws:SourceAccount for the
	// topic policy (below), but not that CloudWatch's use of the key through
	// SNS carries them, and a condition the request lacks would silence the
	// alarms. The key encrypts only this stack's topic and queue.
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Resources:  jsii.Strings("*"),
	}), nil)

	names := p.Config.Names()
	users := userARNs(p.Config.IAMUsers())
	*users = append(*users, userScopes(p.Config)...) // issue 15: the fleet templates' paths
	records := jsii.String(arn("secretsmanager", deployRegion, "secret:"+names.RecordPrefix()+"*"))
	subs := map[string]*string{"AlertTopicArn": r.Topic.TopicArn()}
	r.macKey(c, p) // issue 14: before the functions, which are told its ARN
	for _, t := range tasks.All {
		fn := r.function(c, p, t)
		r.Functions[t.Function()] = fn
		subs[t.Placeholder()] = fn.FunctionArn()
	}
	r.sweepFunction(c, p) // issue 15: before endpoints(), whose key policy names every signer
	r.endpoints(c, p)     // issue 14
	r.connections(c, p)
	r.grant(p, users, records)

	smLogs := awslogs.NewLogGroup(c, jsii.String("StateMachineLogs"), &awslogs.LogGroupProps{
		Retention: p.LogRetention, RemovalPolicy: p.RemovalPolicy,
	})
	definition, err := withTimeout(p.ASL, p.Config.LongestRun())
	if err != nil {
		panic(err) // synth-time: a definition file that cannot be read is a broken checkout
	}
	r.StateMachine = awsstepfunctions.NewStateMachine(c, jsii.String("StateMachine"), &awsstepfunctions.StateMachineProps{
		StateMachineName:        jsii.String(names.StateMachine()),
		StateMachineType:        awsstepfunctions.StateMachineType_STANDARD,
		DefinitionBody:          awsstepfunctions.DefinitionBody_FromString(jsii.String(definition)),
		DefinitionSubstitutions: &subs,
		TracingEnabled:          jsii.Bool(true),
		Logs: &awsstepfunctions.LogOptions{
			Destination:          smLogs,
			Level:                awsstepfunctions.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(false), // execution data stays in the history: the logs need none of it
		},
	})
	for _, t := range tasks.All {
		r.Functions[t.Function()].GrantInvoke(r.StateMachine)
	}
	r.Topic.GrantPublish(r.StateMachine) // NotifyFailureRaw, when the notify function fails
	r.alarms(c)
	r.schedules(c, p)
	r.audit(c, p)                 // the weekly audit (audit.go)
	r.sweep(c, p, users, records) // issue 15: the fleet sweep (sweep.go)
	r.operator(c, stack, p, users, records)
	r.approver(c, stack, p) // issue 14
	return r
}

// connections makes a secret for each target connection the config names.
// The template never holds a credential: Secrets Manager fills each with a
// random placeholder, and an operator puts the real JSON in after the first
// deploy (README, Deploy). Kept when the stack goes: they are the operator's.
func (r *Rotator) connections(c constructs.Construct, p *Props) {
	for _, name := range p.Config.Connections() {
		r.Connections[name] = awssecretsmanager.NewSecret(c, jsii.String("Connection"+exported(strings.ReplaceAll(strings.TrimPrefix(name, p.Config.Names().ConnectionPrefix()), "/", "-"))), &awssecretsmanager.SecretProps{
			SecretName:    jsii.String(name),
			Description:   jsii.String("keyrotator: API credentials of a target (fill in after deploy; see the README)"),
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
		// The tag marks it as keyrotator's own: a `secret` target naming it,
		// by any name or ARN, is refused (I1).
		awscdk.Tags_Of(r.Connections[name]).Add(jsii.String("keyrotator:kind"), jsii.String("connection"), nil)
	}
}

// withTimeout is the definition file with a TimeoutSeconds that covers the
// longest configured run: CDK's Timeout prop is not applied to a definition
// it does not render, and the file itself cannot know the config.
func withTimeout(path string, longest time.Duration) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("state machine definition: %w", err)
	}
	var def map[string]any
	if err := json.Unmarshal(b, &def); err != nil {
		return "", fmt.Errorf("state machine definition %s: %w", path, err)
	}
	def["TimeoutSeconds"] = int64(longest.Seconds())
	out, err := json.Marshal(def)
	if err != nil {
		return "", fmt.Errorf("state machine definition: %w", err)
	}
	return string(out), nil
}

func (r *Rotator) function(c constructs.Construct, p *Props, t tasks.Task) awslambda.Function {
	id := exported(t.Function())
	logs := awslogs.NewLogGroup(c, jsii.String(id+"Logs"), &awslogs.LogGroupProps{Retention: p.LogRetention, RemovalPolicy: p.RemovalPolicy})
	// An own role with only its log group's write rights: no AWSLambdaBasicExecutionRole.
	role := awsiam.NewRole(c, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("keyrotator " + t.Function() + " function"),
	})
	logs.GrantWrite(role)
	// KEYROTATOR_PREFIX: the functions compute the record names under it.
	env := map[string]*string{"ALERT_TOPIC_ARN": r.Topic.TopicArn(), rotation.PrefixEnv: jsii.String(p.Config.Prefix())}
	if t.Name == tasks.Notify.Name && p.Config.RunbookURL != "" {
		env["RUNBOOK_URL"] = jsii.String(p.Config.RunbookURL) // the alerts' links
	}
	if usesMacKey(t) { // issue 14
		env["MAC_KEY_ARN"] = r.MacKey.KeyArn()
	}
	var name *string
	if len(t.States) == 0 { // an endpoint (issue 14): a name people and the CLI can find
		name = jsii.String(p.Config.Prefix() + "-" + t.Function())
	}
	if memberTask(p, t) { // issue 15: how it assumes a member account's role
		env[rotation.MemberRoleNameEnv] = jsii.String(p.Config.MemberRoleName())
		env[rotation.MemberExternalIDEnv] = jsii.String(p.Config.Member.ExternalID)
	}
	if t.Name == tasks.Notify.Name && len(p.Config.OwnerTopics) > 0 {
		env["OWNER_TOPICS"] = jsii.String(strings.Join(p.Config.OwnerTopics, ",")) // issue 15: the owners' topics it may publish to
	}
	fn := awslambda.NewFunction(c, jsii.String(id), &awslambda.FunctionProps{
		FunctionName:  name,
		Description:   jsii.String("keyrotator: the " + t.Function() + " task"),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       jsii.String("bootstrap"),
		Code:          awslambda.Code_FromAsset(jsii.String(filepath.Join(p.Dist, t.Function())), nil),
		MemorySize:    jsii.Number(256),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(t.Timeout.Seconds())),
		Role:          role,
		LogGroup:      logs,
		LoggingFormat: awslambda.LoggingFormat_JSON,
		Tracing:       awslambda.Tracing_ACTIVE,
		Environment:   &env,
	})
	// The task whose code this is: the sandbox deploys the template's
	// functions from its own build of the task this names (its Code is an
	// S3 asset), local/sandbox/lambda.TaskMetadata.
	fn.Node().DefaultChild().(awslambda.CfnFunction).AddMetadata(jsii.String("keyrotator:task"), t.Function())
	return fn
}

// userARNs are the users' ARNs: arn:…:user<path><name>, the path as the
// config gives it ("/" by default). IAM calls take the name only.
func userARNs(users []config.User) *[]*string {
	var arns []*string
	for _, u := range users {
		arns = append(arns, jsii.String(arn("iam", "", "user"+u.Path+u.Name)))
	}
	return &arns
}

// fullSecretARN matches a secret's full ARN: its name ends in Secrets
// Manager's "-" and six random characters. A partial ARN (the name only)
// does not; AWS advises against names that end like a suffix
// (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen).
var fullSecretARN = regexp.MustCompile(`^arn:[^:]+:secretsmanager:[^:]+:[0-9]{12}:secret:.+-[A-Za-z0-9]{6}$`)

// secretARN is what grants a secret target's calls: a full ARN as given; a
// partial ARN, or a name in the deploy's region and account, with "-??????"
// for the six random characters Secrets Manager appends.
func secretARN(id string) string {
	switch {
	case fullSecretARN.MatchString(id):
		return id
	case strings.HasPrefix(id, "arn:"):
		return id + "-??????"
	default:
		return arn("secretsmanager", deployRegion, "secret:"+id+"-??????")
	}
}

// kmsKeyStatement lets a function use an application secret's customer
// managed key, only through Secrets Manager in the deploy's region
// (kms:ViaService; https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
// An alias ARN in Resource would name the alias, not its key
// (https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html):
// the key is then any key of that account and region that has the alias
// (kms:ResourceAliases).
func kmsKeyStatement(actions []string, keyID string) awsiam.PolicyStatement {
	cond := map[string]any{"StringEquals": map[string]any{"kms:ViaService": "secretsmanager." + *awscdk.Aws_REGION() + ".amazonaws.com"}}
	res := keyID
	if before, alias, ok := strings.Cut(keyID, ":alias/"); ok {
		res = before + ":key/*"
		cond["ForAnyValue:StringEquals"] = map[string]any{"kms:ResourceAliases": "alias/" + alias}
	}
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings(actions...), Resources: jsii.Strings(res), Conditions: &cond})
}

func allow(actions []string, resources *[]*string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings(actions...), Resources: resources})
}

// grant gives each function exactly the calls its task makes
// (tasks.Task.Calls), each kind of resource resolved to this stack's ARNs.
// A kind the config has none of (no application secrets, no SORACOM
// connection) grants nothing.
func (r *Rotator) grant(p *Props, users *[]*string, records *string) {
	executions := jsii.String(arn("states", deployRegion, "execution:"+p.Config.Names().StateMachine()+":*"))
	var appSecrets []*string
	var appKeys []string
	for _, s := range p.Config.AppSecrets() {
		appSecrets = append(appSecrets, jsii.String(secretARN(s.ID)))
		if s.KMSKeyID != "" && !slices.Contains(appKeys, s.KMSKeyID) {
			appKeys = append(appKeys, s.KMSKeyID)
		}
	}
	arns := map[tasks.Resource]*[]*string{
		tasks.Users:      users,
		tasks.Records:    {records},
		tasks.Executions: {executions},
		tasks.AppSecrets: &appSecrets,
		tasks.Anything:   jsii.Strings("*"),
		// The config's ownerTopics (issue 15): none, no grant.
		tasks.OwnerTopics: jsii.Strings(p.Config.OwnerTopics...),
	}
	arns[tasks.MacKey] = &[]*string{r.MacKey.KeyArn()}                    // issue 14
	arns[tasks.Roles] = &[]*string{jsii.String(arn("iam", "", "role/*"))} // issue 14: answerapproval's iam:GetRole
	// issue 14: requestrun starts runs; by the fixed name, as the endpoints are made before the state machine.
	arns[tasks.StateMachine] = &[]*string{jsii.String(arn("states", deployRegion, "stateMachine:"+p.Config.Names().StateMachine()))}
	// The scheduled ones (the audit) grant their own calls (audit.go).
	for _, t := range slices.Concat(tasks.All, tasks.Endpoints) {
		fn := r.Functions[t.Function()]
		if memberTask(p, t) {
			// Issue 15: exactly the tasks that reach members, exactly the
			// member roles of the accounts the config names. Their calls
			// there are the member role's grants narrowed by each task's
			// session policy (tasks.Task.SessionPolicy).
			fn.AddToRolePolicy(allow([]string{"sts:AssumeRole"}, memberRoles(p)))
		}
		for _, c := range t.Calls {
			switch c.On {
			case tasks.Connections:
				// Exactly the value: CDK's GrantRead would add DescribeSecret,
				// which no target calls.
				mustBe(t, c, tasks.ReadKey)
				var arns []*string
				for _, name := range p.Config.Connections(c.Kind) {
					arns = append(arns, r.Connections[name].SecretArn())
				}
				if len(arns) > 0 {
					fn.AddToRolePolicy(allow(c.Actions, &arns))
				}
			case tasks.AlertTopic:
				mustBe(t, c, []string{"sns:Publish"})
				r.Topic.GrantPublish(fn)
			case tasks.AppSecretKeys:
				for _, k := range appKeys {
					fn.AddToRolePolicy(kmsKeyStatement(c.Actions, k))
				}
			default:
				res, ok := arns[c.On]
				if !ok {
					panic(fmt.Sprintf("task %s: calls on %q, a kind of resource infra does not know", t.Name, c.On))
				}
				if len(*res) > 0 {
					fn.AddToRolePolicy(allow(c.Actions, res))
				}
			}
		}
	}
}

// memberTask says whether t assumes the member roles of the config's
// member accounts (issue 15): a state task that reaches members
// (tasks.MemberTasks), the weekly audit, which reads the member accounts
// the rotations name (its session policy: tasks.Audit's read-only
// calls), or the fleet sweep, which lists the users of the accounts its
// templates name (tasks.Sweep's read-only calls), in a config that names
// a member account (a rotation's, or a fleet template's: the rotations
// the sweep starts run in those accounts).
func memberTask(p *Props, t tasks.Task) bool {
	if p.Config.Member == nil || len(p.Config.MemberAccounts()) == 0 {
		return false
	}
	if t.Name == tasks.Sweep.Name {
		return p.Config.Fleet != nil
	}
	return t.Name == tasks.Audit.Name || slices.ContainsFunc(tasks.MemberTasks(), func(m tasks.Task) bool { return m.Name == t.Name })
}

// memberRoles are the member roles of the config's member accounts (the
// rotations' and the fleet templates'):
// arn:<partition>:iam::<account>:role/<member.roleName>, one per account,
// never a wildcard account.
func memberRoles(p *Props) *[]*string {
	var out []*string
	for _, a := range p.Config.MemberAccounts() {
		out = append(out, jsii.String(fmt.Sprintf("arn:%s:iam::%s:role/%s", *awscdk.Aws_PARTITION(), a, p.Config.MemberRoleName())))
	}
	return &out
}

// mustBe refuses, at synth, calls a construct's grant would not match:
// GrantRead and GrantPublish give their own set of actions.
func mustBe(t tasks.Task, c tasks.Calls, actions []string) {
	if !slices.Equal(c.Actions, actions) {
		panic(fmt.Sprintf("task %s: %v on %s: the grant for %s gives exactly %v", t.Name, c.Actions, c.On, c.On, actions))
	}
}

// operator is what the keyrotator CLI calls and the runbook's commands
// read (docs/runbook.md), and nothing that reads a key or changes one: the
// rotation records are described (their stages), never read.
func (r *Rotator) operator(c constructs.Construct, stack awscdk.Stack, p *Props, users *[]*string, records *string) {
	sm := r.StateMachine.StateMachineArn()
	executions := jsii.String(arn("states", deployRegion, "execution:"+p.Config.Names().StateMachine()+":*"))
	var roles, functions []*string
	for _, t := range tasks.Every() {
		fn, ok := r.Functions[t.Function()]
		if !ok { // a scheduled one the config does not deploy (no "fleet": no sweep)
			continue
		}
		roles = append(roles, fn.Role().RoleArn())
		functions = append(functions, fn.FunctionArn())
	}
	// keyrotator doctor's reads (cli/doctor): the definition names each
	// task's function, the function its role and the alert topic; the
	// topic its subscriptions, policy and key; the alarms and schedules.
	// ListSchedules has no resource-level permissions; DescribeAlarms lists
	// the account's alarms in the region.
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridgescheduler.html,
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
	doctor := []awsiam.PolicyStatement{
		allow([]string{"states:DescribeStateMachine"}, &[]*string{sm}),
		allow([]string{"lambda:GetFunctionConfiguration"}, &functions),
		allow([]string{"sns:ListSubscriptionsByTopic", "sns:GetTopicAttributes"}, &[]*string{r.Topic.TopicArn()}),
		allow([]string{"kms:DescribeKey", "kms:GetKeyPolicy"}, &[]*string{r.AlertKey.KeyArn()}),
		allow([]string{"cloudwatch:DescribeAlarms"}, jsii.Strings(arn("cloudwatch", deployRegion, "alarm:*"))),
		allow([]string{"scheduler:ListSchedules"}, jsii.Strings("*")),
	}
	if len(r.Schedules) > 0 {
		var schedules []*string
		for _, s := range r.Schedules {
			schedules = append(schedules, s.ScheduleArn())
		}
		doctor = append(doctor, allow([]string{"scheduler:GetSchedule"}, &schedules))
	}
	r.Operator = awsiam.NewManagedPolicy(c, jsii.String("OperatorPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: what a person running the keyrotator CLI needs (start, watch, status) and the runbook's reads; changes no key (approving is ApproverPolicy's)"),
		Statements: ptr(append([]awsiam.PolicyStatement{
			allow([]string{"states:StartExecution", "states:ListExecutions"}, &[]*string{sm}),
			allow([]string{"states:DescribeExecution", "states:GetExecutionHistory"}, &[]*string{executions}),
			// None of these takes a resource: ListStateMachines and
			// ListSecrets list; CloudTrail's LookupEvents (the runbook's "who
			// made this key") has no resource-level permissions. No
			// states:SendTask* (issue 14): approvals go through answerapproval
			// (ApproverPolicy), and a raw answer ends the run ApprovalForged.
			allow([]string{"states:ListStateMachines", "secretsmanager:ListSecrets", "cloudtrail:LookupEvents"}, jsii.Strings("*")),
			allow([]string{"iam:GetUser", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"}, users),
			allow([]string{"secretsmanager:DescribeSecret"}, &[]*string{records}),
			// The runbook's accessdenied check: what a function's role may do.
			allow([]string{"iam:SimulatePrincipalPolicy"}, &roles),
		}, append(doctor, invokeURL(r.Functions[tasks.RequestRun.Function()])...)...)),
	})
	if names := p.Config.Connections(); len(names) > 0 {
		var conns []*string
		for _, name := range names {
			conns = append(conns, r.Connections[name].SecretArn())
		}
		r.Doctor = awsiam.NewManagedPolicy(c, jsii.String("DoctorPolicy"), &awsiam.ManagedPolicyProps{
			Description: jsii.String("keyrotator: lets keyrotator doctor read the connection secrets (Auth0 and SORACOM API credentials) to check them; reads no access key"),
			Statements: &[]awsiam.PolicyStatement{
				allow([]string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}, &conns),
			},
		})
		awscdk.NewCfnOutput(stack, jsii.String("DoctorPolicyArn"), &awscdk.CfnOutputProps{
			Value:       r.Doctor.ManagedPolicyArn(),
			Description: jsii.String("attach, beside OperatorPolicyArn, to whoever runs keyrotator doctor (it reads the connection secrets)"),
		})
	}
	r.Rollback = awsiam.NewManagedPolicy(c, jsii.String("RollbackPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: the runbook's rollback (switch an old key back on) and stopping a stuck run; reads no key"),
		Statements: &[]awsiam.PolicyStatement{
			// Which key was the old one (the alert, the execution) and its
			// state: then aws iam update-access-key --status Active.
			allow([]string{"iam:ListAccessKeys", "iam:UpdateAccessKey"}, users),
			allow([]string{"states:DescribeExecution", "states:StopExecution"}, &[]*string{executions}),
		},
	})
	awscdk.NewCfnOutput(stack, jsii.String("OperatorPolicyArn"), &awscdk.CfnOutputProps{
		Value:       r.Operator.ManagedPolicyArn(),
		Description: jsii.String("attach to the role of whoever runs the keyrotator CLI"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("RollbackPolicyArn"), &awscdk.CfnOutputProps{
		Value:       r.Rollback.ManagedPolicyArn(),
		Description: jsii.String("attach to on-call's role for the runbook's rollback (switch an old key back on, stop a stuck run)"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("StateMachineArn"), &awscdk.CfnOutputProps{
		Value:       sm,
		Description: jsii.String("KEYROTATOR_STATE_MACHINE for the keyrotator CLI"),
	})
}

// alarms are the second path to on-call (I4): when an execution fails,
// times out or is aborted, whether or not its own alert went out, and when a
// schedule could not start one.
func (r *Rotator) alarms(c constructs.Construct) {
	period := awscdk.Duration_Minutes(jsii.Number(5))
	// Step Functions publishes each of these metrics only in a period where
	// an execution closed so: after one failure only failed has a
	// datapoint. Metric math's arithmetic treats a missing value as 0, so
	// the bare sum would count it too; each term is FILLed all the same, so
	// the sum does not rest on that rule, and a period without any closed
	// execution is 0 (not breaching), as TreatMissingData says it would be.
	// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-arithmetic
	failures := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"failed":   r.StateMachine.MetricFailed(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}),
			"timedOut": r.StateMachine.MetricTimedOut(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}),
			"aborted":  r.StateMachine.MetricAborted(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}),
		},
		Period: period,
		Label:  jsii.String("keyrotator executions failed, timed out or aborted"),
	})
	r.Alarm = awscloudwatch.NewAlarm(c, jsii.String("ExecutionsFailed"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String("A keyrotator execution failed, timed out or was aborted. See docs/runbook.md#alarm-executions-failed-timed-out-or-aborted"),
		Metric:             failures,
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	r.Alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(r.Topic))

	r.DLQ = awssqs.NewQueue(c, jsii.String("ScheduleDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	r.DLQAlarm = awscloudwatch.NewAlarm(c, jsii.String("ScheduleFailed"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String("A keyrotator schedule could not start its rotation (see the dead-letter queue)."),
		Metric:             r.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Maximum")}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	r.DLQAlarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(r.Topic))

	// EnforceSSL's topic policy replaces SNS's default one, which let the
	// account's services publish: CloudWatch needs its own Allow, for this
	// stack's alarms only (confused-deputy protection: CloudWatch sends the
	// alarm's ARN as aws:SourceArn and its account as aws:SourceAccount;
	// https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html#sns-allow-cloudwatch-alarm-in-another-account,
	// https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).
	r.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowThisStacksAlarms"),
		Actions:    jsii.Strings("sns:Publish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Resources:  &[]*string{r.Topic.TopicArn()},
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
			"ArnEquals":    map[string]any{"aws:SourceArn": []*string{r.Alarm.AlarmArn(), r.DLQAlarm.AlarmArn()}},
		},
	}))
}

// schedules makes one EventBridge Scheduler schedule per rotation. Each
// invokes the request endpoint (requestrun) directly with
// {"schedule": name, "scheduledTime": …, "input": the rotation's input}: it
// signs the run as "schedule <name>" and starts it, so a scheduled run is
// verified the way a person's is (issue 14). The schedules share one role,
// which may invoke only requestrun: the one principal granted
// lambda:InvokeFunction on it without the lambda:InvokedViaFunctionUrl
// condition (the trust boundary, docs/design.md).
func (r *Rotator) schedules(c constructs.Construct, p *Props) {
	role := awsiam.NewRole(c, jsii.String("SchedulerRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil),
		Description: jsii.String("keyrotator schedules: invoke the request endpoint (requestrun), which signs and starts the run"),
	})
	requestrun := r.Functions[tasks.RequestRun.Function()]
	// EventBridge Scheduler invokes requestrun asynchronously: an error is
	// retried by Lambda (twice), then the event goes to the schedules'
	// dead-letter queue, whose alarm tells on-call
	// (https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html,
	// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq).
	requestrun.Node().DefaultChild().(awslambda.CfnFunction).SetDeadLetterConfig(&awslambda.CfnFunction_DeadLetterConfigProperty{TargetArn: r.DLQ.QueueArn()})
	// Lambda needs sqs:SendMessage on it, and only that
	// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq).
	requestrun.AddToRolePolicy(allow([]string{"sqs:SendMessage"}, &[]*string{r.DLQ.QueueArn()}))
	for _, rot := range p.Config.Rotations {
		target := awsschedulertargets.NewLambdaInvoke(requestrun, &awsschedulertargets.ScheduleTargetBaseProps{
			Input:           awsscheduler.ScheduleTargetInput_FromText(jsii.String(rot.RequestInput())),
			DeadLetterQueue: r.DLQ,
			Role:            role,
			RetryAttempts:   jsii.Number(3),
		})
		sc := awsscheduler.NewSchedule(c, jsii.String("Schedule"+exported(rot.Name)), &awsscheduler.ScheduleProps{
			Description: jsii.String("keyrotator: rotate the key of IAM user " + rot.Parsed().User),
			Schedule:    awsscheduler.ScheduleExpression_Expression(jsii.String(rot.Schedule), awscdk.TimeZone_Of(jsii.String(rot.TimeZone))),
			Target:      target,
			Enabled:     jsii.Bool(rot.IsEnabled()),
		})
		// requestrun knows the state machine by its fixed name, not a Ref:
		// a rate schedule fires when it is made, so it must come after the
		// state machine it starts.
		sc.Node().AddDependency(r.StateMachine)
		r.Schedules = append(r.Schedules, sc)
	}
}

// invokeURL is what a person needs to call an endpoint through its
// function URL and nothing else: lambda:InvokeFunctionUrl for an AWS_IAM
// URL, and lambda:InvokeFunction only when invoked through the URL (so
// not a direct invoke, which could carry a forged requestContext).
// https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
func invokeURL(fn awslambda.Function) []awsiam.PolicyStatement {
	return []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("lambda:InvokeFunctionUrl"), Resources: &[]*string{fn.FunctionArn()},
			Conditions: &map[string]any{"StringEquals": map[string]any{"lambda:FunctionUrlAuthType": "AWS_IAM"}},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("lambda:InvokeFunction"), Resources: &[]*string{fn.FunctionArn()},
			Conditions: &map[string]any{"Bool": map[string]any{"lambda:InvokedViaFunctionUrl": "true"}},
		}),
		// keyrotator start finds the URL by the function's name.
		allow([]string{"lambda:GetFunctionUrlConfig"}, &[]*string{fn.FunctionArn()}),
	}
}

func ptr[T any](v T) *T { return &v }

// exported turns a name like "app-key" into a construct id like "AppKey".
func exported(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			b.WriteString(strings.ToUpper(string(r)))
			up = false
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// --- Issue 14: approvals nobody can forge (approvals helper). ---

// usesMacKey says whether t signs or verifies with the HMAC key.
func usesMacKey(t tasks.Task) bool {
	return slices.ContainsFunc(t.Calls, func(c tasks.Calls) bool { return c.On == tasks.MacKey })
}

// macKey is the KMS HMAC key (KeySpec HMAC_256, KeyUsage
// GENERATE_VERIFY_MAC) that signs approvals: it never leaves KMS, and the
// functions the registry grants kms:GenerateMac are the only ones that can
// sign (the key policy denies everyone else, below, in keyPolicy). HMAC keys
// have no automatic rotation
// (https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html).
func (r *Rotator) macKey(c constructs.Construct, p *Props) {
	r.MacKey = awskms.NewKey(c, jsii.String("MacKey"), &awskms.KeyProps{
		Description:   jsii.String("keyrotator: signs approvals and run requests (HMAC-SHA-256); only answerapproval and requestrun may sign"),
		KeySpec:       awskms.KeySpec_HMAC_256,
		KeyUsage:      awskms.KeyUsage_GENERATE_VERIFY_MAC,
		RemovalPolicy: p.RemovalPolicy,
	})
}

// endpoints are the Lambdas behind function URLs (tasks.Endpoints), each
// with AuthType AWS_IAM: AWS authenticates the caller (SigV4) and hands
// the function who they are (requestContext.authorizer.iam).
// https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
func (r *Rotator) endpoints(c constructs.Construct, p *Props) {
	stack := awscdk.Stack_Of(c)
	for _, t := range tasks.Endpoints {
		fn := r.function(c, p, t)
		r.Functions[t.Function()] = fn
		// The state machine by its ARN, built from its fixed name (not a
		// Ref: notify, which the state machine runs, is told this URL).
		fn.AddEnvironment(jsii.String("STATE_MACHINE_ARN"), jsii.String(arn("states", deployRegion, "stateMachine:"+p.Config.Names().StateMachine())), nil)
		fn.AddEnvironment(jsii.String("STACK_ACCOUNT"), awscdk.Aws_ACCOUNT_ID(), nil)
		u := fn.AddFunctionUrl(&awslambda.FunctionUrlOptions{AuthType: awslambda.FunctionUrlAuthType_AWS_IAM})
		r.URLs[t.Function()] = u
		awscdk.NewCfnOutput(stack, jsii.String(exported(t.Function())+"Url"), &awscdk.CfnOutputProps{
			Value:       u.Url(),
			Description: jsii.String("the " + t.Function() + " function URL (AuthType AWS_IAM): sign requests with SigV4 for service lambda"),
		})
	}
	if u, ok := r.URLs[tasks.AnswerApproval.Function()]; ok {
		r.Functions[tasks.Notify.Function()].AddEnvironment(jsii.String("APPROVAL_URL"), u.Url(), nil) // the approval request says where to answer
	}
	r.keyPolicy()
}

// keyPolicy denies kms:GenerateMac on the HMAC key to every principal but
// the roles the registry grants it: the key's default policy lets the
// account's IAM policies grant it, and an identity with kms:* on *
// (PowerUserAccess) could otherwise sign an approval.
func (r *Rotator) keyPolicy() {
	var signers []*string
	for _, t := range tasks.Every() {
		for _, c := range t.Calls {
			if fn, ok := r.Functions[t.Function()]; ok && c.On == tasks.MacKey && slices.Contains(c.Actions, "kms:GenerateMac") {
				signers = append(signers, fn.Role().RoleArn())
			}
		}
	}
	r.MacKey.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyKeyrotatorSigns"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:GenerateMac"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": signers}},
	}), nil)
	// That Deny holds only while the key policy does: the default policy
	// lets the account's IAM policies grant kms:PutKeyPolicy (kms:* on *,
	// as PowerUserAccess has), and a new policy without the Deny would let
	// its writer sign. So only CloudFormation may rewrite it, through the
	// CDK bootstrap's execution role (cdk-<qualifier>-cfn-exec-role-
	// <account>-<region>, https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html),
	// which deploys this stack and whose trust admits CloudFormation only.
	// KMS's lockout check lets the creating principal (that role) keep
	// PutKeyPolicy (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
	r.MacKey.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyCloudFormationRewritesThisPolicy"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:PutKeyPolicy"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnNotLike": map[string]any{"aws:PrincipalArn": arn("iam", "", "role/cdk-*-cfn-exec-role-"+*awscdk.Aws_ACCOUNT_ID()+"-*")}},
	}), nil)
}

// approver is ApproverPolicy: answering approval requests through the
// answerapproval function URL, and what keyrotator approve/reject read.
// Since October 2025 a function URL's caller needs both
// lambda:InvokeFunctionUrl and lambda:InvokeFunction; the conditions keep
// both to the URL (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html):
// an unconditional lambda:InvokeFunction would let its holder invoke the
// function directly with a requestContext of their own making.
func (r *Rotator) approver(c constructs.Construct, stack awscdk.Stack, p *Props) {
	fn := r.Functions[tasks.AnswerApproval.Function()]
	answer := &[]*string{fn.FunctionArn()}
	executions := jsii.String(arn("states", deployRegion, "execution:"+p.Config.Names().StateMachine()+":*"))
	r.Approver = awsiam.NewManagedPolicy(c, jsii.String("ApproverPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: answer approval requests (keyrotator approve/reject) through the answerapproval function URL; whether a person may approve a run is that run's approvers list"),
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("lambda:InvokeFunctionUrl"), Resources: answer,
				Conditions: &map[string]any{"StringEquals": map[string]any{"lambda:FunctionUrlAuthType": "AWS_IAM"}}}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("lambda:InvokeFunction"), Resources: answer,
				Conditions: &map[string]any{"Bool": map[string]any{"lambda:InvokedViaFunctionUrl": "true"}}}),
			allow([]string{"lambda:GetFunctionUrlConfig"}, answer), // the CLI finds the URL by the function's name
			allow([]string{"states:DescribeExecution"}, &[]*string{executions}),
			allow([]string{"states:ListExecutions"}, &[]*string{r.StateMachine.StateMachineArn()}),
			allow([]string{"states:ListStateMachines"}, jsii.Strings("*")), // cli/machine.go: the state machine by name (a list: no resource)
		},
	})
	awscdk.NewCfnOutput(stack, jsii.String("ApproverPolicyArn"), &awscdk.CfnOutputProps{
		Value:       r.Approver.ManagedPolicyArn(),
		Description: jsii.String("attach to the roles of the people who approve rotations (they must also be in a rotation's approvers)"),
	})
}

// --- end of issue 14 (approvals). ---
