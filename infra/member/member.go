// Package member is the member-account side of keyrotator's multi-account
// rotation: the one role the keyrotator account's task functions assume in
// a member account, trusted only by those task roles with an external id,
// and allowed on the member's IAM users only what the main stack's task
// roles do today (functions/tasks: the calls on Users, CloudTrail's
// LookupEvents and the application secrets of `secret` targets), the
// weekly audit's read-only calls on every user (tasks.Audit), and the
// fleet sweep's read-only listing of the users under UserPath
// (tasks.Sweep). Each task
// narrows its session to its own step's calls with a session policy when
// it assumes the role (docs/design.md, "Multi-account: the member stack").
// It is deployed to every member account of an OU with CloudFormation
// StackSets (README, "Deploy: member accounts").
package member

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/tasks"
)

// DefaultRoleName is the member role's name: fixed, so that the keyrotator
// account computes its ARN from the account id
// (arn:<partition>:iam::<member>:role/keyrotator-member).
const DefaultRoleName = "keyrotator-member"

// Props configure the member role. Every value may be a token (a stack
// parameter's): one template serves every account of a stack set.
type Props struct {
	// MainAccount is the keyrotator account's id.
	MainAccount *string
	// ExternalID is what the keyrotator tasks pass as sts:ExternalId.
	ExternalID *string
	// TrustedRoles is the name pattern (ArnLike, * and ?) of the keyrotator
	// account's task roles that may assume the member role: the main
	// stack's roles are named <stack name>-Rotator…Role…-<random>.
	TrustedRoles *string
	// UserPath is the IAM path of the member's users keyrotator rotates
	// ("/" for every user; "/service/" for users under it).
	UserPath *string
	// AppSecrets is the name pattern of the member's application secrets
	// that `secret` targets name (Secrets Manager; a suffix of six random
	// characters follows every name); nil: the role reads and writes none.
	AppSecrets *string
	// AppSecretsEnabled, with AppSecrets a parameter that may be empty, is
	// the CloudFormation condition under which the app-secret grants exist.
	AppSecretsEnabled awscdk.CfnCondition
	// RoleName is the role's name ("" is DefaultRoleName).
	RoleName *string
}

// Member is the member role.
type Member struct {
	constructs.Construct
	Role awsiam.Role
}

// UserActions are the IAM actions the main stack's tasks call on a
// rotated user, every task's together: functions/tasks is their one list.
func UserActions() []string { return actionsOn(tasks.Users) }

// AnyResourceActions are the tasks' actions that take no resource
// (cloudtrail:LookupEvents).
func AnyResourceActions() []string { return actionsOn(tasks.Anything) }

// AppSecretActions are the tasks' actions on application secrets.
func AppSecretActions() []string { return actionsOn(tasks.AppSecrets) }

// AppSecretKeyActions are what Secrets Manager needs of the caller on an
// application secret's customer managed key.
func AppSecretKeyActions() []string { return actionsOn(tasks.AppSecretKeys) }

// AuditUserActions are the weekly audit's (tasks.Audit) read-only calls on
// every user of the account: key ids and status, tags, a key's last use.
func AuditUserActions() []string { return actionsOf([]tasks.Task{tasks.Audit}, tasks.AccountUsers) }

// AuditReportActions are the audit's calls that take no resource: IAM's
// credential report.
func AuditReportActions() []string { return actionsOf([]tasks.Task{tasks.Audit}, tasks.Anything) }

// SweepListActions are the fleet sweep's (tasks.Sweep) member calls that
// take no resource: iam:ListUsers.
func SweepListActions() []string { return memberActionsOf(tasks.Sweep, tasks.Anything) }

// SweepUserActions are the sweep's read-only member calls on a user: its
// opt-in tag and its keys' ages.
func SweepUserActions() []string { return memberActionsOf(tasks.Sweep, tasks.Users) }

// memberActionsOf are t's member calls (tasks.Task.MemberCalls) on r.
func memberActionsOf(t tasks.Task, r tasks.Resource) []string {
	return actionsOf([]tasks.Task{{Name: t.Name, Calls: t.MemberCalls()}}, r)
}

func actionsOn(r tasks.Resource) []string { return actionsOf(tasks.All, r) }

// actionsOf are the actions ts call on r, each once, sorted.
func actionsOf(ts []tasks.Task, r tasks.Resource) []string {
	var out []string
	for _, t := range ts {
		for _, c := range t.Calls {
			if c.On != r {
				continue
			}
			for _, a := range c.Actions {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func strs(xs []string) *[]*string {
	out := make([]*string, len(xs))
	for i, x := range xs {
		out[i] = jsii.String(x)
	}
	return &out
}

// New makes the member role in scope.
func New(scope constructs.Construct, id string, p *Props) *Member {
	c := constructs.NewConstruct(scope, &id)
	name := p.RoleName
	if name == nil {
		name = jsii.String(DefaultRoleName)
	}
	// The trust: the keyrotator account (its root: the account's identity
	// policies must also allow sts:AssumeRole on this role), only its task
	// roles (aws:PrincipalArn), only with the external id
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html,
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
	main := awsiam.NewArnPrincipal(awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:iam::${MainAccount}:root"), &map[string]*string{"MainAccount": p.MainAccount}))
	trusted := awsiam.NewPrincipalWithConditions(main, &map[string]any{
		"ArnLike": map[string]any{"aws:PrincipalArn": awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:iam::${MainAccount}:role/${Roles}"),
			&map[string]*string{"MainAccount": p.MainAccount, "Roles": p.TrustedRoles})},
	})
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		RoleName:    name,
		Description: jsii.String("keyrotator: assumed by the keyrotator account's task functions to rotate this account's IAM user keys"),
		AssumedBy:   trusted,
		ExternalIds: &[]*string{p.ExternalID},
		// A task's session lasts its call (Lambda's 15 minutes at most).
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	users := awsiam.NewManagedPolicy(c, jsii.String("Users"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: what the rotation tasks do on this account's users, and CloudTrail's LookupEvents"),
		Roles:       &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("RotatedUsersKeys"),
				Actions:   strs(UserActions()),
				Resources: &[]*string{jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":iam::" + *awscdk.Aws_ACCOUNT_ID() + ":user" + *p.UserPath + "*")},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("WhoUsedKeys"),
				Actions:   strs(AnyResourceActions()),
				Resources: &[]*string{jsii.String("*")},
			}),
		},
	})
	_ = users
	// The audit (tasks.Audit: the weekly audit Lambda, through this role
	// once the lead wires it) reads every user of the account, not only
	// those under UserPath: an inventory of every key is the point. Read
	// only: no call here changes a user or a key.
	awsiam.NewManagedPolicy(c, jsii.String("Audit"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: the weekly audit's read-only calls: the credential report and every user's keys, tags and last use"),
		Roles:       &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("AuditCredentialReport"),
				Actions:   strs(AuditReportActions()),
				Resources: &[]*string{jsii.String("*")},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("AuditEveryUsersKeys"),
				Actions:   strs(AuditUserActions()),
				Resources: &[]*string{jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":iam::" + *awscdk.Aws_ACCOUNT_ID() + ":user/*")},
			}),
		},
	})
	// The fleet sweep (tasks.Sweep) lists the users under UserPath and
	// reads a candidate's tag and keys, to start the rotations of those
	// tagged for a template. Read only.
	awsiam.NewManagedPolicy(c, jsii.String("Sweep"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyrotator: the fleet sweep's read-only calls: the users under UserPath, their tags and keys"),
		Roles:       &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SweepListUsers"),
				Actions:   strs(SweepListActions()),
				Resources: &[]*string{jsii.String("*")},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SweepTaggedUsers"),
				Actions:   strs(SweepUserActions()),
				Resources: &[]*string{jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":iam::" + *awscdk.Aws_ACCOUNT_ID() + ":user" + *p.UserPath + "*")},
			}),
		},
	})
	if p.AppSecrets != nil {
		secrets := awsiam.NewManagedPolicy(c, jsii.String("AppSecrets"), &awsiam.ManagedPolicyProps{
			Description: jsii.String("keyrotator: the application secrets of this account that secret targets update"),
			Roles:       &[]awsiam.IRole{role},
			Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:       jsii.String("AppSecrets"),
					Actions:   strs(AppSecretActions()),
					Resources: &[]*string{jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":secretsmanager:*:" + *awscdk.Aws_ACCOUNT_ID() + ":secret:" + *p.AppSecrets)},
				}),
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:        jsii.String("AppSecretKeysThroughSecretsManager"),
					Actions:    strs(AppSecretKeyActions()),
					Resources:  &[]*string{jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":kms:*:" + *awscdk.Aws_ACCOUNT_ID() + ":key/*")},
					Conditions: &map[string]any{"StringLike": map[string]any{"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
				}),
			},
		})
		if p.AppSecretsEnabled != nil {
			secrets.Node().DefaultChild().(awsiam.CfnManagedPolicy).CfnOptions().SetCondition(p.AppSecretsEnabled)
		}
	}
	return &Member{Construct: c, Role: role}
}
