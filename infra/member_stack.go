package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/keyrotator/keyrotator/infra/member"
)

// MemberStackName is the member-account stack's id in the app: `cdk synth
// KeyRotatorMember` writes the template a stack set deploys.
const MemberStackName = "KeyRotatorMember"

// NewMemberStack is the member-account stack: the member role (infra/member)
// with its values as parameters, so that one template serves every account
// of a stack set; cdk-nag's AwsSolutions rules applied, each suppression
// explained.
func NewMemberStack(scope constructs.Construct, id string, props *awscdk.StackProps) awscdk.Stack {
	if props.Synthesizer == nil {
		// No CDK bootstrap in a member account: a stack set deploys the
		// template as it is (it has no assets), so it must not ask for
		// the bootstrap version parameter.
		props.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{GenerateBootstrapVersionRule: jsii.Bool(false)})
	}
	stack := awscdk.NewStack(scope, &id, props)
	param := func(name string, p *awscdk.CfnParameterProps) awscdk.CfnParameter {
		return awscdk.NewCfnParameter(stack, jsii.String(name), p)
	}
	mainAccount := param("MainAccountId", &awscdk.CfnParameterProps{
		Type: jsii.String("String"), Description: jsii.String("The keyrotator account: the account whose task functions assume the member role."),
		AllowedPattern: jsii.String("^[0-9]{12}$"), ConstraintDescription: jsii.String("an AWS account id: 12 digits"),
	})
	externalID := param("ExternalId", &awscdk.CfnParameterProps{
		Type: jsii.String("String"), Description: jsii.String("The external id the keyrotator tasks pass to sts:AssumeRole (the same for every member account of a stack set is fine: it is not a secret, it tells keyrotator's callers apart)."),
		MinLength: jsii.Number(2), MaxLength: jsii.Number(1224), AllowedPattern: jsii.String(`^[\w+=,.@:/-]*$`),
		ConstraintDescription: jsii.String("2 to 1224 of letters, digits and +=,.@:/-_ (STS's ExternalId)"),
	})
	trusted := param("TrustedRoleNames", &awscdk.CfnParameterProps{
		Type: jsii.String("String"), Default: jsii.String("KeyRotator-*"),
		Description:    jsii.String("Which of the keyrotator account's roles may assume the member role: an ArnLike pattern of role names. The main stack's task roles are named <its stack name>-Rotator...-<random>."),
		AllowedPattern: jsii.String(`^[\w+=,.@/*?-]+$`),
	})
	userPath := param("UserPath", &awscdk.CfnParameterProps{
		Type: jsii.String("String"), Default: jsii.String("/"),
		Description:    jsii.String("The IAM path of the users keyrotator may rotate in this account: / for every user, /service/ for the users under it."),
		AllowedPattern: jsii.String(`^/([\x21-\x7e]*/)?$`), ConstraintDescription: jsii.String("an IAM path: begins and ends with /"),
	})
	appSecrets := param("TargetNamePattern", &awscdk.CfnParameterProps{
		Type: jsii.String("String"), Default: jsii.String(""),
		Description:    jsii.String("The name pattern of this account's Secrets Manager secrets that keyrotator's secret targets update (e.g. app/aws-keys/*); empty: none."),
		AllowedPattern: jsii.String(`^[\w/+=.@*?-]*$`),
	})
	hasSecrets := awscdk.NewCfnCondition(stack, jsii.String("HasAppSecrets"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionNot(awscdk.Fn_ConditionEquals(appSecrets.ValueAsString(), jsii.String(""))),
	})
	m := member.New(stack, "Member", &member.Props{
		MainAccount: mainAccount.ValueAsString(), ExternalID: externalID.ValueAsString(), TrustedRoles: trusted.ValueAsString(),
		UserPath: userPath.ValueAsString(), AppSecrets: appSecrets.ValueAsString(), AppSecretsEnabled: hasSecrets,
	})
	awscdk.NewCfnOutput(stack, jsii.String("MemberRoleArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("The role the keyrotator tasks assume in this account"), Value: m.Role.RoleArn(),
	})
	awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	cdknag.NagSuppressions_AddStackSuppressions(stack, &[]*cdknag.NagPackSuppression{
		{Id: jsii.String("AwsSolutions-IAM5"), Reason: jsii.String(
			"user<UserPath>* are the users under the path the account's owner chose for keyrotator (a stack set serves accounts whose user names it cannot know); " +
				"Resource::* is cloudtrail:LookupEvents, the audit's iam:GenerateCredentialReport and iam:GetCredentialReport, and the fleet sweep's read-only iam:ListUsers (its listing narrowed to UserPath's users by PathPrefix), which support no resource; " +
				"user/* is the audit's read-only calls (ListAccessKeys, ListUserTags, GetAccessKeyLastUsed) on every user: an inventory of every key in the account; " +
				"secret:<TargetNamePattern> is the name pattern of the secrets the account's owner chose, and Secrets Manager adds six random characters to every name; " +
				"key/* is an application secret's customer managed key, usable only through Secrets Manager (kms:ViaService)."),
			AppliesTo: &[]any{
				"Resource::*",
				"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user<UserPath>*",
				"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
				"Resource::arn:<AWS::Partition>:secretsmanager:*:<AWS::AccountId>:secret:<TargetNamePattern>",
				"Resource::arn:<AWS::Partition>:kms:*:<AWS::AccountId>:key/*",
			}},
	}, jsii.Bool(true))
	return stack
}
