package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/keyrotator/keyrotator/infra/config"
	"github.com/keyrotator/keyrotator/infra/rotator"
)

// RotationStackProps configure the stack.
type RotationStackProps struct {
	awscdk.StackProps
	Config config.Config
	Dist   string // dist/ with <function>/bootstrap
	ASL    string // statemachine/rotation.asl.json
}

// NewRotationStack is keyrotator's one stack: the rotator construct, with
// cdk-nag's AwsSolutions rules applied and each suppression explained.
func NewRotationStack(scope constructs.Construct, id string, props *RotationStackProps) (awscdk.Stack, *rotator.Rotator) {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	r := rotator.New(stack, "Rotator", &rotator.Props{Config: props.Config, Dist: props.Dist, ASL: props.ASL})
	awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	// Each suppression names exactly what it allows, and why.
	cdknag.NagSuppressions_AddStackSuppressions(stack, &[]*cdknag.NagPackSuppression{
		{Id: jsii.String("AwsSolutions-IAM5"), Reason: jsii.String(
			"<prefix>/users/* are keyrotator's own records, one per rotated user; execution:<prefix>:* are this state machine's executions (Validate reads whether a lock holder still runs; on-call reads and stops them); " +
				"<secret>-?????? is the random suffix Secrets Manager adds to a configured application secret's ARN; key/* with kms:ResourceAliases is the key an application secret's kmsKeyId names by alias (an alias ARN in Resource names the alias, not the key), used only through Secrets Manager (kms:ViaService); Resource::* is for cloudtrail:LookupEvents and X-Ray's PutTrace* calls, and, in the operator and approver policies, states:ListStateMachines, secretsmanager:ListSecrets and cloudtrail:LookupEvents, which support no resource; " +
				"<function>.Arn:* are the versions of our own functions, as CDK grants invoke; kms:GenerateDataKey* is what publishing to the KMS-encrypted alert topic needs, on that one key (CDK's grantPublish); " +
				"alarm:* in the operator policy is cloudwatch:DescribeAlarms listing the region's alarms (read-only), which keyrotator doctor does to find every alarm that publishes to the alert topic; " +
				"role/* is answerapproval's iam:GetRole (read-only): a caller's role session names its role but drops its path, and an approvers pattern with a path (IAM Identity Center's /aws-reserved/sso.amazonaws.com/) needs it; which role is only known at the call; SendTaskSuccess/SendTaskFailure on * are answerapproval's answers to a task token (no resource); " +
				"user/* is the weekly audit's iam:ListAccessKeys, iam:ListUserTags and iam:GetAccessKeyLastUsed: it reads every IAM user's keys and tags (never a secret, no change), which is what an audit of every key is, and Resource::* its iam:GenerateCredentialReport/GetCredentialReport, which have no resource types; " +
				"user/<path>/* are the users a fleet template's path covers (issue 15): the sweep and the tasks act on the users tagged for the template, which are known only at run time, and only under the template's own path (a template may not use \"/\")."),
			AppliesTo: &[]any{
				"Resource::*",
				"Action::kms:GenerateDataKey*",
				map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:[A-Za-z][A-Za-z0-9_-]*\/users\/\*$/g`},
				map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:[A-Za-z][A-Za-z0-9_-]*:\*$/g`},
				map[string]string{"regex": `/^Resource::arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key\/\*$/g`},
				map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:secretsmanager:.*:secret:.*-\?\?\?\?\?\?$/g`},
				map[string]string{"regex": `/^Resource::<Rotator[A-Za-z0-9]+[0-9A-F]{8}\.Arn>:\*$/g`},
				"Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*",
				"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*", // issue 14
				"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
				map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user\/[^*]+\/\*$/g`}, // issue 15: a fleet template's path
			}},
		{Id: jsii.String("AwsSolutions-SQS3"), Reason: jsii.String("This queue is itself the schedules' dead-letter queue.")},
		{Id: jsii.String("AwsSolutions-SMG4"), Reason: jsii.String("Connection secrets hold a third party's API credentials (Auth0, SORACOM): they are rotated on that side, not by a Secrets Manager rotation Lambda. The fleet config secret (issue 15) holds no secret: it is config, changed by a deploy.")},
	}, jsii.Bool(true))
	return stack, r
}
