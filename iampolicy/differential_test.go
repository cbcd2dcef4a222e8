package iampolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

type M = map[string]any

const (
	acctA = "111111111111"
	acctB = "222222222222"

	topicARN  = "arn:aws:sns:us-east-1:111111111111:alerts"
	secretARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-AbCdEf"
	userARN   = "arn:aws:iam::111111111111:user/svc/bob"
	keyARN    = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	queueARN  = "arn:aws:sqs:us-east-1:111111111111:dlq"
	alarmARN  = "arn:aws:cloudwatch:us-east-1:111111111111:alarm:keyrotator-failed"
	roleARN   = "arn:aws:iam::111111111111:role/Worker"
	fnARN     = "arn:aws:lambda:us-east-1:111111111111:function:answerapproval"
)

var (
	alice  = Principal{ARN: "arn:aws:iam::111111111111:user/alice", Account: acctA, Type: User}
	worker = Principal{ARN: "arn:aws:sts::111111111111:assumed-role/Worker/s1", Account: acctA, Type: AssumedRole}
	other  = Principal{ARN: "arn:aws:sts::222222222222:assumed-role/Other/s2", Account: acctB, Type: AssumedRole}
	cw     = Principal{ARN: "cloudwatch.amazonaws.com", Type: Service}
)

func policy(stmts ...M) json.RawMessage {
	return doc(M{"Version": "2012-10-17", "Statement": stmts})
}

func ids(stmts ...M) []refPolicy {
	return []refPolicy{{Name: "identity", Doc: policy(stmts...)}}
}

// tableCase is a hand-picked case with the answer AWS's documentation gives.
// RefereeDiffers, when set, is the documentation that settles a case on
// which iam-simulate answers otherwise; the test then holds us to the
// documentation and the referee to its known answer, and lists the case.
type tableCase struct {
	refCase
	Want           DecisionKind
	Missing        PolicyType
	RefereeDiffers string
	RefereeSays    DecisionKind
}

func tableCases() []tableCase {
	allowPublish := M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
	enforceSSL := M{"Sid": "EnforceSSL", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": topicARN,
		"Condition": M{"Bool": M{"aws:SecureTransport": "false"}}}
	cwPublish := M{"Sid": "AlarmsPublish", "Effect": "Allow", "Principal": M{"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topicARN,
		"Condition": M{"ArnLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:111111111111:alarm:*"}, "StringEquals": M{"aws:SourceAccount": acctA}}}
	rootKey := M{"Sid": "EnableIAM", "Effect": "Allow", "Principal": M{"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}
	cwKey := M{"Effect": "Allow", "Principal": M{"Service": "cloudwatch.amazonaws.com"}, "Action": []string{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"}
	decrypt := M{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": keyARN}
	secure := Context{"aws:SecureTransport": {"true"}}
	viaURL := Context{"aws:SecureTransport": {"true"}, "lambda:FunctionUrlAuthType": {"AWS_IAM"}, "lambda:InvokedViaFunctionUrl": {"true"}}
	urlIAM := M{"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": fnARN, "Condition": M{"StringEquals": M{"lambda:FunctionUrlAuthType": "AWS_IAM"}}}
	invokeViaURL := M{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fnARN, "Condition": M{"Bool": M{"lambda:InvokedViaFunctionUrl": "true"}}}

	notPrincipalDoc := "NotPrincipal: 'you must also specify the account ARN of the not-denied principal. Otherwise, the policy might deny access to the entire account containing the principal' (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html)"
	rc := func(name string, p Principal, action, resource, acct string, ctx Context, id []refPolicy, res json.RawMessage) refCase {
		return refCase{Name: name, Principal: p, Action: action, Resource: resource, ResourceAccount: acct, Context: ctx, Identity: id, ResourcePolicy: res}
	}
	return []tableCase{
		{refCase: rc("NotAction leaves iam out", worker, "iam:GetUser", userARN, acctA, secure,
			ids(M{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), nil), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("NotAction covers sns", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), nil), Want: Allowed},
		{refCase: rc("Deny on plain HTTP applies", worker, "sns:Publish", topicARN, acctA, Context{"aws:SecureTransport": {"false"}},
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:*", "Resource": "*", "Condition": M{"Bool": M{"aws:SecureTransport": "false"}}}), nil),
			Want: ExplicitDeny, Missing: IdentityBased},
		{refCase: rc("Deny on plain HTTP, TLS used", worker, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:*", "Resource": "*", "Condition": M{"Bool": M{"aws:SecureTransport": "false"}}}), nil),
			Want: Allowed},
		{refCase: rc("Bool Deny, key absent: condition false", worker, "sns:Publish", topicARN, acctA, Context{},
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:*", "Resource": "*", "Condition": M{"Bool": M{"aws:SecureTransport": "false"}}}), nil),
			Want: Allowed},
		{refCase: rc("BoolIfExists Deny, key absent: condition true", worker, "sns:Publish", topicARN, acctA, Context{},
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:*", "Resource": "*", "Condition": M{"BoolIfExists": M{"aws:SecureTransport": "false"}}}), nil),
			Want: ExplicitDeny, Missing: IdentityBased},
		{refCase: rc("StringNotEquals Deny, key absent: condition true", worker, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:*", "Resource": "*", "Condition": M{"StringNotEquals": M{"aws:SourceAccount": acctA}}}), nil),
			Want: ExplicitDeny, Missing: IdentityBased},
		{refCase: rc("wildcards inside an ARN", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:*:111111111111:al*ts"}), nil), Want: Allowed},
		{refCase: rc("a region wildcard does not cross a colon", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:*:alerts"}), nil), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("secret name-?????? matches the 6-character suffix", worker, "secretsmanager:GetSecretValue", secretARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-??????"}), nil),
			Want: Allowed},
		{refCase: rc("secret name-?????? needs exactly six", worker, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-AbCdEfG", acctA, secure,
			ids(M{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-??????"}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("secret given by ARN inside the pattern (issue 13)", worker, "secretsmanager:GetSecretValue", secretARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:us-east-1:111111111111:secret:arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-AbCdEf-??????"}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("IAM user with a path (issue 13)", worker, "iam:UpdateAccessKey", userARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "iam:UpdateAccessKey", "Resource": "arn:aws:iam::111111111111:user/bob"}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("action names are case-insensitive", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "SNS:publish", "Resource": topicARN}), nil), Want: Allowed},
		{refCase: rc("cross-account: topic policy names only its own account", other, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Allow", "Principal": M{"AWS": acctA}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("cross-account: both sides allow", other, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Allow", "Principal": M{"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: Allowed},
		{refCase: rc("cross-account: the resource side alone is not enough", other, "sns:Publish", topicARN, acctA, secure,
			nil, policy(M{"Effect": "Allow", "Principal": M{"AWS": other.ARN}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("KMS: root delegation lets the identity policy allow", worker, "kms:Decrypt", keyARN, acctA, secure,
			ids(decrypt), policy(rootKey, cwKey)), Want: Allowed},
		{refCase: rc("KMS: root delegation, no identity Allow", worker, "kms:Decrypt", keyARN, acctA, secure,
			ids(allowPublish), policy(rootKey, cwKey)), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("KMS: no root delegation, identity Allow has no effect", worker, "kms:Decrypt", keyARN, acctA, secure,
			ids(decrypt), policy(cwKey)), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("KMS: the key policy names the role", worker, "kms:Decrypt", keyARN, acctA, secure,
			nil, policy(cwKey, M{"Effect": "Allow", "Principal": M{"AWS": roleARN}, "Action": "kms:Decrypt", "Resource": "*"})), Want: Allowed},
		{refCase: rc("KMS: CloudWatch may use the key", cw, "kms:GenerateDataKey", keyARN, acctA, Context{"aws:SourceAccount": {acctA}},
			nil, policy(rootKey, cwKey)), Want: Allowed},
		{refCase: rc("service principal: alarm publishes with SourceArn and SourceAccount", cw, "sns:Publish", topicARN, acctA,
			Context{"aws:SourceArn": {alarmARN}, "aws:SourceAccount": {acctA}, "aws:SecureTransport": {"true"}},
			nil, policy(enforceSSL, cwPublish)), Want: Allowed},
		{refCase: rc("service principal: another account's alarm", cw, "sns:Publish", topicARN, acctA,
			Context{"aws:SourceArn": {"arn:aws:cloudwatch:us-east-1:222222222222:alarm:x"}, "aws:SourceAccount": {acctB}, "aws:SecureTransport": {"true"}},
			nil, policy(enforceSSL, cwPublish)), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("service principal: EnforceSSL alone allows no one (issue 13)", cw, "sns:Publish", topicARN, acctA,
			Context{"aws:SourceArn": {alarmARN}, "aws:SourceAccount": {acctA}, "aws:SecureTransport": {"true"}},
			nil, policy(enforceSSL)), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("service principal: EnforceSSL denies plain HTTP", cw, "sns:Publish", topicARN, acctA,
			Context{"aws:SourceArn": {alarmARN}, "aws:SourceAccount": {acctA}, "aws:SecureTransport": {"false"}},
			nil, policy(enforceSSL, cwPublish)), Want: ExplicitDeny, Missing: ResourceBased},
		{refCase: rc("service principal: identity policies do not apply", cw, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), nil), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("ForAllValues on a missing key is true", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"ForAllValues:StringEquals": M{"aws:TagKeys": []string{"a", "b"}}}}), nil),
			Want: Allowed},
		{refCase: rc("ForAnyValue on a missing key is false", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"ForAnyValue:StringEquals": M{"aws:TagKeys": []string{"a", "b"}}}}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("ForAllValues with a value outside the set", worker, "sns:Publish", topicARN, acctA, Context{"aws:TagKeys": {"a", "c"}},
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"ForAllValues:StringEquals": M{"aws:TagKeys": []string{"a", "b"}}}}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("NotResource excludes the topic", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:*", "NotResource": topicARN}), nil), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("NotResource covers another queue", worker, "sqs:SendMessage", queueARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sqs:*", "NotResource": "arn:aws:sqs:*:*:other"}), nil), Want: Allowed},
		{refCase: rc("NotPrincipal Deny spares the named user and account", alice, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Deny", "NotPrincipal": M{"AWS": []string{alice.ARN, "arn:aws:iam::111111111111:root"}}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: Allowed},
		{refCase: rc("NotPrincipal Deny spares a role's session by role and account", worker, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Deny", "NotPrincipal": M{"AWS": []string{roleARN, acctA}}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: Allowed},
		{refCase: rc("NotPrincipal Deny hits everyone else", other, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Deny", "NotPrincipal": M{"AWS": []string{alice.ARN, "arn:aws:iam::111111111111:root"}}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: ExplicitDeny, Missing: ResourceBased},
		{refCase: rc("NotPrincipal naming the user but not its account", alice, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Deny", "NotPrincipal": M{"AWS": alice.ARN}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: ExplicitDeny, Missing: ResourceBased, RefereeSays: Allowed, RefereeDiffers: notPrincipalDoc},
		{refCase: rc("NotPrincipal naming the account but not the role", worker, "sns:Publish", topicARN, acctA, secure,
			ids(allowPublish), policy(M{"Effect": "Deny", "NotPrincipal": M{"AWS": []string{alice.ARN, "arn:aws:iam::111111111111:root"}}, "Action": "sns:Publish", "Resource": topicARN})),
			Want: ExplicitDeny, Missing: ResourceBased, RefereeSays: Allowed, RefereeDiffers: notPrincipalDoc},
		{refCase: rc("resource policy naming the role allows its session", worker, "secretsmanager:GetSecretValue", secretARN, acctA, secure,
			nil, policy(M{"Effect": "Allow", "Principal": M{"AWS": roleARN}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})),
			Want: Allowed},
		{refCase: rc("resource policy naming only the account delegates to identity", worker, "secretsmanager:GetSecretValue", secretARN, acctA, secure,
			nil, policy(M{"Effect": "Allow", "Principal": M{"AWS": acctA}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("resource policy Deny naming the account", worker, "secretsmanager:GetSecretValue", secretARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}),
			policy(M{"Effect": "Deny", "Principal": M{"AWS": acctA}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})),
			Want: ExplicitDeny, Missing: ResourceBased},
		{refCase: rc("policy variable in Resource", alice, "iam:GetUser", "arn:aws:iam::111111111111:user/alice", acctA, Context{"aws:username": {"alice"}},
			ids(M{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::111111111111:user/${aws:username}"}), nil),
			Want: Allowed},
		{refCase: rc("policy variable naming someone else", alice, "iam:GetUser", userARN, acctA, Context{"aws:username": {"alice"}},
			ids(M{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::111111111111:user/${aws:username}"}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("ForAnyValue:…IfExists on a missing key is true", worker, "sns:Publish", topicARN, acctA, secure,
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"ForAnyValue:StringEqualsIfExists": M{"aws:TagKeys": "a"}}}), nil),
			Want: Allowed, RefereeSays: ImplicitDeny,
			RefereeDiffers: "IfExists: 'If the key is not present, evaluate the condition element as true' (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists)"},
		{refCase: rc("a 2008-10-17 policy takes ${…} literally", worker, "sns:Publish", topicARN, acctA, Context{"aws:SourceAccount": {acctA}, "aws:SourceArn": {alarmARN}},
			[]refPolicy{{Name: "old", Doc: doc(M{"Version": "2008-10-17", "Statement": []M{allowPublish,
				{"Effect": "Deny", "Action": "sns:Publish", "Resource": "*", "Condition": M{"StringLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:${aws:SourceAccount}:alarm:*"}}}}})}}, nil),
			Want: Allowed, RefereeSays: ExplicitDeny,
			RefereeDiffers: "Version 2008-10-17: policy variables are treated as literal strings (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html)"},
		{refCase: rc("${*} in StringLike is a literal asterisk", worker, "sns:Publish", topicARN, acctA, Context{"aws:SourceArn": {alarmARN}},
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"StringLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:111111111111:alarm:${*}"}}}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("${*} in StringLike matches an asterisk", worker, "sns:Publish", topicARN, acctA, Context{"aws:SourceArn": {"arn:aws:cloudwatch:us-east-1:111111111111:alarm:*"}},
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"StringLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:111111111111:alarm:${*}"}}}), nil),
			Want: Allowed},
		{refCase: rc("kms:ViaService StringLike", worker, "kms:Decrypt", keyARN, acctA, Context{"kms:ViaService": {"secretsmanager.us-east-1.amazonaws.com"}},
			ids(M{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": M{"StringLike": M{"kms:ViaService": "secretsmanager.*.amazonaws.com"}}}),
			policy(rootKey)), Want: Allowed},
		{refCase: rc("DateLessThan on aws:CurrentTime", worker, "sns:Publish", topicARN, acctA, Context{"aws:CurrentTime": {"2026-12-06T04:00:00Z"}},
			ids(M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": M{"DateLessThan": M{"aws:CurrentTime": "2026-06-01T00:00:00Z"}}}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("ArnNotLike on aws:PrincipalArn", worker, "sns:Publish", topicARN, acctA, Context{"aws:PrincipalArn": {roleARN}},
			ids(allowPublish, M{"Effect": "Deny", "Action": "sns:Publish", "Resource": "*", "Condition": M{"ArnNotLike": M{"aws:PrincipalArn": "arn:aws:iam::*:role/Work*"}}}), nil),
			Want: Allowed},
		// Lambda function URLs with AuthType AWS_IAM: a call needs
		// lambda:InvokeFunctionUrl (lambda:FunctionUrlAuthType set) and
		// lambda:InvokeFunction (lambda:InvokedViaFunctionUrl true); a direct
		// Invoke carries no lambda:InvokedViaFunctionUrl
		// (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html).
		{refCase: rc("function URL: InvokeFunctionUrl for AWS_IAM", alice, "lambda:InvokeFunctionUrl", fnARN, acctA, viaURL,
			ids(urlIAM), nil), Want: Allowed},
		{refCase: rc("function URL: a grant for AuthType NONE only", alice, "lambda:InvokeFunctionUrl", fnARN, acctA, viaURL,
			ids(M{"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": fnARN, "Condition": M{"StringEquals": M{"lambda:FunctionUrlAuthType": "NONE"}}}), nil),
			Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("function URL: InvokeFunction through the URL", alice, "lambda:InvokeFunction", fnARN, acctA, viaURL,
			ids(invokeViaURL), nil), Want: Allowed},
		{refCase: rc("function URL: a via-URL grant allows no direct Invoke", alice, "lambda:InvokeFunction", fnARN, acctA, secure,
			ids(invokeViaURL), nil), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("function URL: InvokedViaFunctionUrl false", alice, "lambda:InvokeFunction", fnARN, acctA, Context{"lambda:InvokedViaFunctionUrl": {"false"}},
			ids(invokeViaURL), nil), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("function URL: the function policy names the user", alice, "lambda:InvokeFunction", fnARN, acctA, viaURL,
			nil, policy(M{"Sid": "url", "Effect": "Allow", "Principal": M{"AWS": alice.ARN}, "Action": "lambda:InvokeFunction", "Resource": fnARN,
				"Condition": M{"Bool": M{"lambda:InvokedViaFunctionUrl": "true"}}})), Want: Allowed},
		{refCase: rc("function URL: the function policy's via-URL grant, invoked directly", alice, "lambda:InvokeFunction", fnARN, acctA, secure,
			nil, policy(M{"Sid": "url", "Effect": "Allow", "Principal": M{"AWS": alice.ARN}, "Action": "lambda:InvokeFunction", "Resource": fnARN,
				"Condition": M{"Bool": M{"lambda:InvokedViaFunctionUrl": "true"}}})), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("function URL: the function policy names the account only", alice, "lambda:InvokeFunctionUrl", fnARN, acctA, viaURL,
			nil, policy(M{"Effect": "Allow", "Principal": M{"AWS": "arn:aws:iam::111111111111:root"}, "Action": "lambda:InvokeFunctionUrl", "Resource": fnARN,
				"Condition": M{"StringEquals": M{"lambda:FunctionUrlAuthType": "AWS_IAM"}}})), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("function URL: another account's role, both sides allow", other, "lambda:InvokeFunctionUrl", fnARN, acctA, viaURL,
			ids(urlIAM), policy(M{"Effect": "Allow", "Principal": M{"AWS": "arn:aws:iam::222222222222:root"}, "Action": "lambda:InvokeFunctionUrl", "Resource": fnARN,
				"Condition": M{"StringEquals": M{"lambda:FunctionUrlAuthType": "AWS_IAM"}}})), Want: Allowed},
		{refCase: rc("function URL: another account's role, no function policy", other, "lambda:InvokeFunctionUrl", fnARN, acctA, viaURL,
			ids(urlIAM), nil), Want: ImplicitDeny, Missing: ResourceBased},
	}
}

// TestAgainstIAMSimulate runs every table case and a few hundred generated
// ones through our evaluator and through @cloud-copilot/iam-simulate, and
// fails on any disagreement, printing the case.
func TestAgainstIAMSimulate(t *testing.T) {
	t.Parallel()
	table := tableCases()
	gen := generateCases(500)
	cases := make([]*refCase, 0, len(table)+len(gen))
	for i := range table {
		cases = append(cases, &table[i].refCase)
	}
	cases = append(cases, gen...)
	ref := runReferee(t, cases)

	var differs []string
	for i, c := range cases {
		got := Evaluate(c.input(t))
		r := ref[i]
		if r.Result == "error" {
			t.Errorf("iam-simulate refused case %s: %s\n%s", c.Name, r.Error, c)
			continue
		}
		if i < len(table) {
			tc := table[i]
			if got.Kind != tc.Want {
				t.Errorf("%s: we say %s, AWS's documentation %s\n%s", c.Name, got.Kind, tc.Want, c)
			}
			if tc.Want != Allowed && got.Missing != tc.Missing {
				t.Errorf("%s: we blame the %s policy, want %s (%s)", c.Name, got.Missing, tc.Missing, got.Message)
			}
			want := tc.Want
			if tc.RefereeDiffers != "" {
				want = tc.RefereeSays
				differs = append(differs, fmt.Sprintf("%s: iam-simulate %s, AWS %s (%s)", c.Name, r.Result, tc.Want, tc.RefereeDiffers))
			}
			if r.Result != want.String() {
				t.Errorf("%s: iam-simulate says %s, expected %s\n%s", c.Name, r.Result, want, c)
			}
			continue
		}
		if got.Kind.String() != r.Result {
			t.Errorf("generated case %s: we say %s (%v), iam-simulate %s\n%s", c.Name, got.Kind, got.Statement, r.Result, c)
		}
	}
	for _, d := range differs {
		t.Log("settled by AWS's documentation against iam-simulate: " + d)
	}
	// The generator must reach every outcome, or it tests little.
	seen := map[string]int{}
	for _, r := range ref[len(table):] {
		seen[r.Result]++
	}
	t.Logf("%d table cases, %d generated: iam-simulate outcomes %v", len(table), len(gen), seen)
	for _, k := range []DecisionKind{Allowed, ImplicitDeny, ExplicitDeny} {
		if seen[k.String()] < len(gen)/10 {
			t.Errorf("generated cases reach %s only %d times of %d: %v", k, seen[k.String()], len(gen), seen)
		}
	}
}

// generateCases builds n random cases from small alphabets with a fixed
// seed: the same cases on every run.
func generateCases(n int) []*refCase {
	rnd := rand.New(rand.NewPCG(13, 2026))
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }

	type target struct{ action, resource string }
	targets := []target{
		{"sns:Publish", topicARN},
		{"secretsmanager:GetSecretValue", secretARN},
		{"secretsmanager:PutSecretValue", secretARN},
		{"iam:GetUser", userARN},
		{"iam:UpdateAccessKey", userARN},
		{"kms:Decrypt", keyARN},
		{"kms:GenerateDataKey", keyARN},
		{"sqs:SendMessage", queueARN},
		{"sns:Publish", "arn:aws:sns:us-east-1:222222222222:remote"},
		{"kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/9999abcd-12ab-34cd-56ef-1234567890ab"},
	}
	principals := []Principal{alice, worker, worker, other, cw}
	actions := []string{"*", "sns:*", "sns:Publish", "secretsmanager:Get*", "secretsmanager:*SecretValue", "iam:GetUser",
		"iam:get*", "iam:*AccessKey", "kms:Decrypt", "kms:GenerateDataKey*", "sqs:Send?essage", "s3:*", "kms:*"}
	resources := []string{"*", topicARN, secretARN, userARN, keyARN, queueARN,
		"arn:aws:secretsmanager:us-east-1:111111111111:secret:app/key-??????",
		"arn:aws:secretsmanager:*:111111111111:secret:app/*",
		"arn:aws:sns:*:*:alerts", "arn:aws:sns:us-east-1:222222222222:*",
		"arn:aws:iam::111111111111:user/*", "arn:aws:iam::111111111111:user/svc/*", "arn:aws:iam::*:user/bob",
		"arn:aws:kms:*:111111111111:key/*", "arn:aws:sqs:us-east-1:111111111111:dl?",
		"arn:aws:iam::111111111111:user/svc/${aws:username}"}
	conditions := []M{
		{"Bool": M{"aws:SecureTransport": "false"}},
		{"Bool": M{"aws:SecureTransport": "true"}},
		{"BoolIfExists": M{"aws:SecureTransport": "false"}},
		{"StringEquals": M{"aws:SourceAccount": acctA}},
		{"StringNotEquals": M{"aws:SourceAccount": []string{acctA, acctB}}},
		{"StringEqualsIfExists": M{"aws:SourceAccount": acctB}},
		{"ArnLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:111111111111:alarm:*"}},
		{"ArnEquals": M{"aws:SourceArn": alarmARN}},
		{"ArnNotLike": M{"aws:PrincipalArn": "arn:aws:iam::*:role/Work*"}},
		{"StringLike": M{"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
		{"StringNotLike": M{"kms:ViaService": []string{"sns.*.amazonaws.com", "sqs.*"}}},
		{"StringEqualsIgnoreCase": M{"aws:username": "BOB"}},
		{"ForAllValues:StringEquals": M{"aws:TagKeys": []string{"a", "b"}}},
		{"ForAnyValue:StringLike": M{"aws:TagKeys": []string{"c*"}}},
		{"Null": M{"aws:SourceArn": "true"}},
		{"Null": M{"kms:ViaService": "false"}},
		{"NumericLessThan": M{"aws:MultiFactorAuthAge": "3600"}},
		{"NumericGreaterThanEquals": M{"aws:MultiFactorAuthAge": "7200"}},
		{"DateGreaterThan": M{"aws:CurrentTime": "2026-06-01T00:00:00Z"}},
		{"DateLessThanEquals": M{"aws:CurrentTime": "2026-12-06T04:00:00Z"}},
		{"DateNotEquals": M{"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
		{"NumericNotEquals": M{"aws:MultiFactorAuthAge": []string{"100", "200"}}},
		{"ForAllValues:StringNotEquals": M{"aws:TagKeys": "c1"}},
		{"ForAllValues:StringLikeIfExists": M{"aws:TagKeys": []string{"a", "c*"}}},
		{"StringEquals": M{"aws:TagKeys": "a"}},
		{"StringNotEqualsIgnoreCase": M{"aws:username": "BOB"}},
		{"StringLike": M{"aws:SourceArn": "arn:aws:cloudwatch:*:${aws:SourceAccount}:alarm:*"}},
		{"ArnLike": M{"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:111111111111:*"}},
		{"ArnNotEquals": M{"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:keyrotator-*"}},
		{"Null": M{"aws:TagKeys": []string{"false", "true"}}},
	}
	contextValues := map[string][][]string{
		"aws:SecureTransport":    {{"true"}, {"false"}},
		"aws:SourceAccount":      {{acctA}, {acctB}},
		"aws:SourceArn":          {{alarmARN}, {"arn:aws:cloudwatch:us-east-1:222222222222:alarm:x"}},
		"kms:ViaService":         {{"secretsmanager.us-east-1.amazonaws.com"}, {"sns.us-east-1.amazonaws.com"}},
		"aws:TagKeys":            {{"a", "b"}, {"a", "c"}, {"c1", "c2"}},
		"aws:MultiFactorAuthAge": {{"100"}, {"7200"}},
		"aws:CurrentTime":        {{"2026-12-06T04:00:00Z"}, {"2026-01-01T00:00:00Z"}},
		"aws:username":           {{"bob"}, {"Bob"}},
	}
	contextKeys := make([]string, 0, len(contextValues))
	for k := range contextValues {
		contextKeys = append(contextKeys, k)
	}
	slices.Sort(contextKeys)

	list := func(xs []string, max int) any {
		k := 1 + rnd.IntN(max)
		out := make([]string, k)
		for i := range out {
			out[i] = pick(xs)
		}
		if k == 1 && rnd.IntN(2) == 0 {
			return out[0]
		}
		return out
	}
	// Half the time a statement names the request's own action or resource,
	// so Allow and Deny both come to apply often enough.
	withTarget := func(xs []string, t string) []string {
		if rnd.IntN(2) == 0 {
			return []string{t}
		}
		return xs
	}
	stmt := func(resourcePolicy bool, tg target) M {
		s := M{"Effect": "Allow"}
		if rnd.IntN(10) < 3 {
			s["Effect"] = "Deny"
		}
		if rnd.IntN(8) == 0 {
			s["NotAction"] = list(actions, 2)
		} else {
			s["Action"] = list(withTarget(actions, tg.action), 3)
		}
		if rnd.IntN(8) == 0 {
			s["NotResource"] = list(resources, 2)
		} else {
			s["Resource"] = list(withTarget(resources, tg.resource), 3)
		}
		if rnd.IntN(5) < 2 {
			c := M{}
			for range 1 + rnd.IntN(2) {
				for op, kv := range conditions[rnd.IntN(len(conditions))] {
					if prev, ok := c[op].(M); ok {
						for k, v := range kv.(M) {
							prev[k] = v
						}
					} else {
						cp := M{}
						for k, v := range kv.(M) {
							cp[k] = v
						}
						c[op] = cp
					}
				}
			}
			s["Condition"] = c
		}
		if resourcePolicy {
			principalsDocs := []any{"*", M{"AWS": acctA}, M{"AWS": "arn:aws:iam::222222222222:root"}, M{"AWS": roleARN},
				M{"AWS": worker.ARN}, M{"AWS": alice.ARN}, M{"AWS": []string{alice.ARN, other.ARN}},
				M{"Service": "cloudwatch.amazonaws.com"}, M{"Service": []string{"events.amazonaws.com", "cloudwatch.amazonaws.com"}},
				M{"AWS": "*"}, M{"AWS": acctB}, M{"AWS": other.ARN}}
			p := principalsDocs[rnd.IntN(len(principalsDocs))]
			if s["Effect"] == "Deny" && rnd.IntN(4) == 0 {
				// Lists that name each exempted identity with its account:
				// where a list names one without the other, iam-simulate
				// departs from AWS (see the table).
				s["NotPrincipal"] = [...]M{
					{"AWS": []string{alice.ARN, roleARN, "arn:aws:iam::111111111111:root"}},
					{"AWS": []string{acctB, other.ARN}},
					{"AWS": []string{alice.ARN, worker.ARN, acctA}, "Service": "cloudwatch.amazonaws.com"},
				}[rnd.IntN(3)]
			} else {
				s["Principal"] = p
			}
		}
		if rnd.IntN(3) == 0 {
			s["Sid"] = fmt.Sprintf("S%d", rnd.IntN(100))
		}
		return s
	}
	policyOf := func(resourcePolicy bool, tg target) json.RawMessage {
		k := 1 + rnd.IntN(3)
		stmts := make([]M, k)
		for i := range stmts {
			stmts[i] = stmt(resourcePolicy, tg)
		}
		var body any = stmts
		if k == 1 && rnd.IntN(2) == 0 {
			body = stmts[0]
		}
		d := doc(M{"Version": "2012-10-17", "Statement": body})
		// Some documents in the old language, where ${…} is literal; not
		// those with a variable, on which iam-simulate departs from AWS
		// (see the table).
		if rnd.IntN(10) == 0 && !bytes.Contains(d, []byte("${")) {
			d = doc(M{"Version": "2008-10-17", "Statement": body})
		}
		return d
	}

	out := make([]*refCase, 0, n)
	for i := range n {
		tg := targets[rnd.IntN(len(targets))]
		p := principals[rnd.IntN(len(principals))]
		c := &refCase{
			Name: fmt.Sprintf("gen-%03d", i), Principal: p, Action: tg.action, Resource: tg.resource,
			Context: Context{},
		}
		parts, _ := arnParts(tg.resource)
		c.ResourceAccount = parts[4]
		for _, k := range contextKeys {
			// A service's own keys are in its requests only, as in AWS
			// (and iam-simulate drops the others).
			if k == "kms:ViaService" && tg.action[:4] != "kms:" {
				continue
			}
			if rnd.IntN(2) == 0 {
				vs := contextValues[k]
				c.Context[k] = vs[rnd.IntN(len(vs))]
			}
		}
		if p.Type == AssumedRole {
			c.Context["aws:PrincipalArn"] = []string{"arn:aws:iam::" + p.Account + ":role/" + map[string]string{acctA: "Worker", acctB: "Other"}[p.Account]}
		}
		if p.Type != Service {
			for range rnd.IntN(3) {
				c.Identity = append(c.Identity, refPolicy{Name: fmt.Sprintf("p%d", len(c.Identity)), Doc: policyOf(false, tg)})
			}
		}
		if p.Type == Service || c.keyPolicy() || rnd.IntN(2) == 0 {
			c.ResourcePolicy = policyOf(true, tg)
		}
		out = append(out, c)
	}
	return out
}
