package iampolicy

import (
	"testing"
)

func mustParse(t testing.TB, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// TestMessages holds the AccessDenied messages to AWS's documented format:
// "User: <arn> is not authorized to perform: <action> on resource: <arn>
// because no identity-based policy allows the <action> action" and "… with
// an explicit deny in an identity-based policy".
// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
func TestMessages(t *testing.T) {
	t.Parallel()
	session := Principal{ARN: "arn:aws:sts::111122223333:assumed-role/R/s", Account: "111122223333", Type: AssumedRole}
	getUser := Request{Principal: session, Action: "iam:GetUser", Resource: "arn:aws:iam::111122223333:user/bob", ResourceAccount: "111122223333"}
	denyAll := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Sid":"NoIAM","Effect":"Deny","Action":"iam:*","Resource":"*"}]}`, Identity)
	topicDeny := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, Resource)
	publish := Request{Principal: Principal{ARN: "cloudwatch.amazonaws.com", Type: Service}, Action: "sns:Publish",
		Resource: "arn:aws:sns:us-east-1:111122223333:t", ResourceAccount: "111122223333"}

	tests := []struct {
		name string
		in   Input
		want string
		by   string
	}{
		{"implicit, identity", Input{Request: getUser},
			"User: arn:aws:sts::111122223333:assumed-role/R/s is not authorized to perform: iam:GetUser on resource: arn:aws:iam::111122223333:user/bob because no identity-based policy allows the iam:GetUser action", ""},
		{"explicit, identity", Input{Request: getUser, IdentityPolicies: []NamedPolicy{{Name: "Guard", Policy: denyAll}}},
			"User: arn:aws:sts::111122223333:assumed-role/R/s is not authorized to perform: iam:GetUser on resource: arn:aws:iam::111122223333:user/bob with an explicit deny in an identity-based policy",
			"identity-based policy Guard statement NoIAM"},
		{"implicit, resource (service principal)", Input{Request: publish},
			"User: cloudwatch.amazonaws.com is not authorized to perform: sns:Publish on resource: arn:aws:sns:us-east-1:111122223333:t because no resource-based policy allows the sns:Publish action", ""},
		{"explicit, resource", func() Input {
			r := publish
			r.Context = Context{"aws:SecureTransport": {"false"}}
			return Input{Request: r, ResourcePolicy: &NamedPolicy{Name: "topic", Policy: topicDeny}}
		}(),
			"User: cloudwatch.amazonaws.com is not authorized to perform: sns:Publish on resource: arn:aws:sns:us-east-1:111122223333:t with an explicit deny in a resource-based policy",
			"resource-based policy topic statement #0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Evaluate(&tt.in)
			if d.Allowed {
				t.Fatal("allowed")
			}
			if d.Message != tt.want {
				t.Errorf("message\n got %s\nwant %s", d.Message, tt.want)
			}
			got := ""
			if d.Statement != nil {
				got = d.Statement.String()
			}
			if got != tt.by {
				t.Errorf("decided by %q, want %q", got, tt.by)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		fold, want bool
	}{
		{"*", "", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbb", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"*b*b*", "abab", false, true},
		{"key-??????", "key-AbCdEf", false, true},
		{"key-??????", "key-AbCdE", false, false},
		{"iam:get*", "iam:GetUser", true, true},
		{"iam:get*", "iam:GetUser", false, false},
		{"ä?", "äö", false, true},
		{`a\*c`, "a*c", false, true},
		{`a\*c`, "abc", false, false},
		{`\?`, "?", false, true},
		{`\?`, "x", false, false},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.s, tt.fold); got != tt.want {
			t.Errorf("glob(%q, %q, %v) = %v, want %v", tt.pattern, tt.s, tt.fold, got, tt.want)
		}
	}
}

// BenchmarkEvaluate measures one decision of the kind the sandbox makes on
// every request: a Lambda role's session with a few inline and managed
// policies, against a secret with a resource policy.
func BenchmarkEvaluate(b *testing.B) {
	session := Principal{ARN: "arn:aws:sts::111122223333:assumed-role/keyrotator-CreateKeyRole-ABC/fn", Account: "111122223333", Type: AssumedRole}
	var ids []NamedPolicy
	for _, doc := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys","iam:GetUser"],"Resource":"arn:aws:iam::111122223333:user/svc/*"},
		  {"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:keyrotator/connections/*"},
		  {"Effect":"Allow","Action":["secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage"],"Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:keyrotator-??????"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"},{"Effect":"Allow","Action":["xray:PutTraceSegments","xray:PutTelemetryRecords"],"Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/*","Condition":{"StringLike":{"kms:ViaService":"secretsmanager.*.amazonaws.com"}}}]}`,
	} {
		ids = append(ids, NamedPolicy{Name: "p", Policy: mustParse(b, doc, Identity)})
	}
	res := mustParse(b, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:*","Resource":"*"}]}`, Resource)
	in := &Input{
		Request: Request{Principal: session, Action: "secretsmanager:PutSecretValue",
			Resource:        "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyrotator-AbCdEf",
			ResourceAccount: "111122223333",
			Context: Context{"aws:SecureTransport": {"true"}, "aws:PrincipalArn": {"arn:aws:iam::111122223333:role/keyrotator-CreateKeyRole-ABC"},
				"aws:CurrentTime": {"2026-12-06T04:00:00Z"}}},
		IdentityPolicies: ids,
		ResourcePolicy:   &NamedPolicy{Name: "secret", Policy: res},
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Evaluate(in); !d.Allowed {
			b.Fatal(d.Message)
		}
	}
}
