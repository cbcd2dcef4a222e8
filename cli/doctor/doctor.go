package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// The AWS calls doctor makes, each a read (infra's OperatorPolicy grants
// them; docs/cli.md lists them).

// MachineAPI reads the state machine's definition: where each task's function is.
type MachineAPI interface {
	DescribeStateMachine(ctx context.Context, in *sfn.DescribeStateMachineInput, opt ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error)
}

// FunctionsAPI reads a function's role and environment.
type FunctionsAPI interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, opt ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// IAMAPI simulates a role's calls and reads the rotated users and their keys.
type IAMAPI interface {
	SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, opt ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
	GetUser(ctx context.Context, in *iam.GetUserInput, opt ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
}

// SecretsAPI describes records and reads connection secrets (never a record's value).
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// TopicAPI reads the alert topic's subscriptions and attributes (its policy, its key).
type TopicAPI interface {
	ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, opt ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error)
	GetTopicAttributes(ctx context.Context, in *sns.GetTopicAttributesInput, opt ...func(*sns.Options)) (*sns.GetTopicAttributesOutput, error)
}

// KeysAPI reads the topic key's policy.
type KeysAPI interface {
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, opt ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opt ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// AlarmsAPI lists the alarms.
type AlarmsAPI interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opt ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// SchedulesAPI lists and reads the schedules.
type SchedulesAPI interface {
	ListSchedules(ctx context.Context, in *scheduler.ListSchedulesInput, opt ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error)
	GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, opt ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
}

// Doctor runs the checks.
type Doctor struct {
	Machine   MachineAPI
	Functions FunctionsAPI
	IAM       IAMAPI
	Secrets   SecretsAPI
	Topic     TopicAPI
	Keys      KeysAPI
	Alarms    AlarmsAPI
	Schedules SchedulesAPI
	// HTTP reaches Auth0 and SORACOM.
	HTTP *http.Client
	// Now is the server's clock (next runs are from it).
	Now func() time.Time

	StateMachineARN string
	Config          Config
}

// stack is what doctor learns of the deployed stack.
type stack struct {
	partition, region, account string
	roles                      map[string]string // task function → role ARN
	topic                      string            // the alert topic's ARN
}

// Run checks everything and returns the report.
func (d *Doctor) Run(ctx context.Context) *Report {
	r := &Report{StateMachineARN: d.StateMachineARN, Now: d.Now(), Findings: []Finding{}}
	st, err := d.stack(ctx)
	if err != nil {
		r.add(Finding{Check: "stack", Subject: d.StateMachineARN, Status: NotChecked, Detail: err.Error(),
			Fix: "check --state-machine/--prefix and that your role has the OperatorPolicy of the stack (states:DescribeStateMachine, lambda:GetFunctionConfiguration)"})
		r.Tally()
		return r
	}
	d.checkRoles(ctx, r, st)
	d.checkTopic(ctx, r, st)
	d.checkConnections(ctx, r)
	d.checkSchedules(ctx, r)
	r.Tally()
	return r
}

// stack finds each task's function from the state machine's definition
// (the ARNs CDK substituted into it), then the function's role; the alert
// topic is the Notify function's ALERT_TOPIC_ARN.
func (d *Doctor) stack(ctx context.Context) (*stack, error) {
	parts := strings.Split(d.StateMachineARN, ":")
	if len(parts) < 7 {
		return nil, fmt.Errorf("%q is not a state machine ARN", d.StateMachineARN)
	}
	st := &stack{partition: parts[1], region: parts[3], account: parts[4], roles: map[string]string{}}
	out, err := d.Machine.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(d.StateMachineARN)})
	if err != nil {
		return nil, fmt.Errorf("describe the state machine: %w", err)
	}
	fns, err := taskFunctions(aws.ToString(out.Definition))
	if err != nil {
		return nil, fmt.Errorf("the state machine's definition: %w", err)
	}
	for _, t := range tasks.All {
		fn := ""
		for _, s := range t.States {
			if fns[s] != "" {
				fn = fns[s]
				break
			}
		}
		if fn == "" {
			return nil, fmt.Errorf("the state machine has no state %v running a function: not keyrotator's, or another version of it", t.States)
		}
		cfg, err := d.Functions.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
		if err != nil {
			return nil, fmt.Errorf("function of %s: %w", t.Name, err)
		}
		st.roles[t.Function()] = aws.ToString(cfg.Role)
		if t.Name == tasks.Notify.Name && cfg.Environment != nil {
			st.topic = cfg.Environment.Variables["ALERT_TOPIC_ARN"]
		}
	}
	return st, nil
}

// taskFunctions maps each Task state of an ASL definition (in Map and
// Parallel states too) to the Lambda function it runs: its Resource when
// that is a function ARN, else its Parameters' or Arguments' FunctionName
// (arn:aws:states:::lambda:invoke).
func taskFunctions(definition string) (map[string]string, error) {
	var def aslStates
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(states map[string]aslState)
	walk = func(states map[string]aslState) {
		for name, s := range states {
			if s.Type == "Task" {
				switch {
				case strings.Contains(s.Resource, ":lambda:") && strings.Contains(s.Resource, ":function:"):
					out[name] = s.Resource
				case s.Parameters.FunctionName != "":
					out[name] = s.Parameters.FunctionName
				case s.Arguments.FunctionName != "":
					out[name] = s.Arguments.FunctionName
				}
			}
			for _, sub := range []*aslStates{s.ItemProcessor, s.Iterator} {
				if sub != nil {
					walk(sub.States)
				}
			}
			for _, b := range s.Branches {
				walk(b.States)
			}
		}
	}
	walk(def.States)
	return out, nil
}

type aslStates struct {
	States map[string]aslState `json:"States"`
}

type aslState struct {
	Type       string `json:"Type"`
	Resource   string `json:"Resource"`
	Parameters struct {
		FunctionName string `json:"FunctionName"`
	} `json:"Parameters"`
	Arguments struct {
		FunctionName string `json:"FunctionName"`
	} `json:"Arguments"`
	ItemProcessor *aslStates  `json:"ItemProcessor"`
	Iterator      *aslStates  `json:"Iterator"`
	Branches      []aslStates `json:"Branches"`
}

// uses says whether a rotation runs task t: the target tasks only for
// their kind of target.
func uses(t tasks.Task, in rotation.Input) bool {
	kind := map[string]string{tasks.UpdateSecret.Name: rotation.TargetSecret, tasks.UpdateAuth0.Name: rotation.TargetAuth0, tasks.UpdateSoracom.Name: rotation.TargetSoracom}[t.Name]
	if kind == "" {
		return true
	}
	return slices.ContainsFunc(in.Targets, func(tg rotation.Target) bool { return tg.Type == kind })
}

// simCall is one simulation: actions on resources with context.
type simCall struct {
	actions   []string
	resources []string
	context   []iamtypes.ContextEntry
	unknown   []string // connection secrets whose ARN could not be read
}

// resolve turns a task's calls into this rotation's resources, as infra
// grants them (infra/rotator.grant).
func (d *Doctor) resolve(st *stack, rot Rotation, userARN, recordARN string, connARNs map[string]string, c tasks.Calls) (simCall, bool) {
	arn := func(service, region, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", st.partition, service, region, st.account, resource)
	}
	sc := simCall{actions: c.Actions}
	switch c.On {
	case tasks.Users:
		sc.resources = []string{userARN}
	case tasks.Records:
		sc.resources = []string{recordARN}
	case tasks.Executions:
		sc.resources = []string{d.StateMachineARN[:strings.LastIndex(d.StateMachineARN, ":stateMachine:")] + ":execution:" + d.StateMachineARN[strings.LastIndex(d.StateMachineARN, ":")+1:] + ":doctor"}
	case tasks.AppSecrets:
		for _, tg := range rot.Input.Targets {
			if tg.Type == rotation.TargetSecret {
				sc.resources = append(sc.resources, secretARN(tg.SecretID, arn("secretsmanager", st.region, "secret:")))
			}
		}
	case tasks.AppSecretKeys:
		for _, tg := range rot.Input.Targets {
			if tg.Type == rotation.TargetSecret && tg.KMSKeyID != "" {
				res := tg.KMSKeyID
				if before, alias, ok := strings.Cut(res, ":alias/"); ok {
					res = before + ":key/00000000-0000-0000-0000-000000000000"
					sc.context = append(sc.context, iamtypes.ContextEntry{ContextKeyName: aws.String("kms:ResourceAliases"), ContextKeyType: iamtypes.ContextKeyTypeEnumStringList, ContextKeyValues: []string{"alias/" + alias}})
				}
				sc.resources = append(sc.resources, res)
			}
		}
		if len(sc.resources) > 0 {
			sc.context = append(sc.context, iamtypes.ContextEntry{ContextKeyName: aws.String("kms:ViaService"), ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{"secretsmanager." + st.region + ".amazonaws.com"}})
		}
	case tasks.Connections:
		// infra grants a connection by its secret's full ARN (the stack's
		// Ref): a made-up suffix would be denied, so an ARN not read is
		// reported as not checked (checkRoles), never guessed.
		for _, tg := range rot.Input.Targets {
			if tg.Type != c.Kind {
				continue
			}
			if connARNs[tg.Connection] == "" {
				sc.unknown = append(sc.unknown, tg.Connection)
			} else if !slices.Contains(sc.resources, connARNs[tg.Connection]) {
				sc.resources = append(sc.resources, connARNs[tg.Connection])
			}
		}
	case tasks.AlertTopic:
		if st.topic != "" {
			sc.resources = []string{st.topic}
		}
	case tasks.Anything:
		sc.resources = []string{"*"}
	}
	return sc, len(sc.resources) > 0
}

// secretARN is a secret target's ARN for the simulation: a full ARN as
// given, else the name (or partial ARN) with six characters where Secrets
// Manager appends its random suffix.
func secretARN(id, prefix string) string {
	switch {
	case strings.HasPrefix(id, "arn:") && len(id) > 7 && id[len(id)-7] == '-' && strings.Count(id, ":") >= 6:
		return id
	case strings.HasPrefix(id, "arn:"):
		return id + "-AbCdEf"
	}
	return prefix + id + "-AbCdEf"
}

// checkRoles simulates, per rotation and task, the task's calls on that
// rotation's resources with the task's role.
func (d *Doctor) checkRoles(ctx context.Context, r *Report, st *stack) {
	names := rotation.Names{Prefix: d.Config.Prefix}
	for _, rot := range d.Config.Rotations {
		user := rot.Input.User
		if rot.Input.Account != "" {
			// Issue 15: a member account's user is reached through its
			// member role, from its account's side; doctor reads this
			// account only.
			r.add(Finding{Check: "roles", Rotation: rot.Name, Subject: "IAM user " + rotation.UserIn(rot.Input.Account, user), Status: Skipped,
				Detail: "a member account's user: the tasks reach it through the member role (record " + names.RecordOf(rot.Input.Account, user) + "); a dry run (keyrotator start --dry-run) checks the member stack end to end"})
			continue
		}
		u, err := d.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
		if err != nil {
			r.add(Finding{Check: "roles", Rotation: rot.Name, Subject: "IAM user " + user, Status: Failed, Detail: "cannot read the user: " + errText(err),
				Fix: "check the rotation's user (and userPath) in the config; the OperatorPolicy grants iam:GetUser on the configured users only"})
			continue
		}
		userARN := aws.ToString(u.User.Arn)
		recordARN := fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s-AbCdEf", st.partition, st.region, st.account, names.Record(user))
		if out, err := d.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(names.Record(user))}); err == nil {
			recordARN = aws.ToString(out.ARN)
		}
		connARNs := map[string]string{}
		for _, tg := range rot.Input.Targets {
			if tg.Connection == "" {
				continue
			}
			if out, err := d.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(tg.Connection)}); err == nil {
				connARNs[tg.Connection] = aws.ToString(out.ARN)
			}
		}
		for _, t := range tasks.All {
			if !uses(t, rot.Input) {
				continue
			}
			role := st.roles[t.Function()]
			var denied []string
			var checked int
			var failed error
			for _, c := range t.Calls {
				sc, ok := d.resolve(st, rot, userARN, recordARN, connARNs, c)
				if len(sc.unknown) > 0 {
					failed = fmt.Errorf("the ARN of connection secret %s: DescribeSecret failed (attach the stack's DoctorPolicy)", strings.Join(sc.unknown, ", "))
					break
				}
				if !ok {
					continue
				}
				res, err := d.simulate(ctx, role, sc)
				if err != nil {
					failed = err
					break
				}
				for _, e := range res {
					checked++
					if e.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
						what := fmt.Sprintf("%s on %s (%s)", aws.ToString(e.EvalActionName), aws.ToString(e.EvalResourceName), e.EvalDecision)
						if len(e.MissingContextValues) > 0 {
							what += " missing context " + strings.Join(e.MissingContextValues, ",")
						}
						denied = append(denied, what)
					}
				}
			}
			subject := fmt.Sprintf("%s role %s", t.Name, roleName(role))
			switch {
			case failed != nil:
				r.add(Finding{Check: "roles", Rotation: rot.Name, Subject: subject, Status: NotChecked, Detail: "could not simulate: " + errText(failed),
					Fix: "attach the stack's OperatorPolicy (iam:SimulatePrincipalPolicy on the function roles) and DoctorPolicy (the connection secrets) to your role"})
			case len(denied) > 0:
				r.add(Finding{Check: "roles", Rotation: rot.Name, Subject: subject, Status: Failed,
					Detail: fmt.Sprintf("%d of %d calls denied: %s", len(denied), checked, strings.Join(denied, "; ")),
					Fix:    "the role lacks a grant the rotation needs: redeploy the stack from this config (make deploy CONFIG=…) so infra grants it, and do not edit the role's policies by hand"})
			default:
				r.add(Finding{Check: "roles", Rotation: rot.Name, Subject: subject, Status: OK, Detail: allowedText(checked)})
			}
		}
	}
}

func (d *Doctor) simulate(ctx context.Context, role string, sc simCall) ([]iamtypes.EvaluationResult, error) {
	var out []iamtypes.EvaluationResult
	p := iam.NewSimulatePrincipalPolicyPaginator(d.IAM, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(role), ActionNames: sc.actions, ResourceArns: sc.resources, ContextEntries: sc.context,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.EvaluationResults...)
	}
	return out, nil
}

func roleName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// errText is an error for a report line: an AWS error's code and message.
func errText(err error) string {
	var ae interface{ ErrorCode() string }
	var em interface{ ErrorMessage() string }
	if errors.As(err, &ae) && errors.As(err, &em) {
		return ae.ErrorCode() + ": " + em.ErrorMessage()
	}
	return err.Error()
}

func allowedText(n int) string {
	if n == 1 {
		return "the 1 call allowed"
	}
	return fmt.Sprintf("all %d calls allowed", n)
}
