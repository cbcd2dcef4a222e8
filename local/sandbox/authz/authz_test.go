package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
)

type identities map[string][]string // principal ARN → policy documents

func (i identities) IdentityPolicies(arn string) ([]iam.IdentityPolicy, error) {
	docs, ok := i[arn]
	if !ok {
		return nil, fmt.Errorf("no such principal %s", arn)
	}
	var out []iam.IdentityPolicy
	for n, d := range docs {
		out = append(out, iam.IdentityPolicy{Name: fmt.Sprint("p", n), Document: json.RawMessage(d)})
	}
	return out, nil
}

type topics struct{ policy, key string }

func (t topics) TopicPolicy(string) (json.RawMessage, bool) {
	return json.RawMessage(t.policy), t.policy != ""
}
func (t topics) TopicKey(string) (string, bool) { return t.key, t.key != "" }

type keys map[string]string

func (k keys) KeyPolicy(id string) (string, bool) { p, ok := k[id]; return p, ok }

const (
	acct    = "111122223333"
	role    = "arn:aws:sts::111122223333:assumed-role/fn-role/fn"
	admin   = "arn:aws:iam::111122223333:user/sandbox-admin"
	topic   = "arn:aws:sns:us-east-1:111122223333:alerts"
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/k1"
	alarm   = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:failed"
	allowAt = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%q,"Resource":%q}]}`
)

func TestAuthorize(t *testing.T) {
	t.Parallel()
	rolePrincipal := sandbox.Principal{ARN: role, Account: acct, Type: "AssumedRole", UserID: "AROAX:fn"}
	cw := sandbox.Principal{ARN: "cloudwatch.amazonaws.com", Type: "AWSService"}
	cwTopicPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish","Resource":"` + topic + `","Condition":{"ArnLike":{"aws:SourceArn":"` + alarm + `"},"StringEquals":{"aws:SourceAccount":"` + acct + `"}}}]}`
	keyPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}]}`
	info := func(name string, proto sandbox.Protocol) sandbox.ServiceInfo {
		return sandbox.ServiceInfo{Name: name, Protocol: proto}
	}
	for _, tt := range []struct {
		name      string
		ids       identities
		topics    topics
		info      sandbox.ServiceInfo
		p         sandbox.Principal
		action    string
		resources []string
		body      string
		ctx       map[string]string
		wantCode  string // "" allowed
	}{
		{"allowed by the role's policy", identities{role: {fmt.Sprintf(allowAt, "iam:GetUser", "arn:aws:iam::111122223333:user/app")}},
			topics{}, info("iam", sandbox.Query), rolePrincipal, "GetUser", []string{"arn:aws:iam::111122223333:user/app"}, "", nil, ""},
		{"another user: IAM's AccessDenied", identities{role: {fmt.Sprintf(allowAt, "iam:GetUser", "arn:aws:iam::111122223333:user/app")}},
			topics{}, info("iam", sandbox.Query), rolePrincipal, "GetUser", []string{"arn:aws:iam::111122223333:user/other"}, "", nil, "AccessDenied"},
		{"the admin is never refused", identities{}, topics{}, info("iam", sandbox.Query),
			sandbox.Principal{ARN: admin, Account: acct, Type: "IAMUser"}, "DeleteAccessKey", []string{"arn:aws:iam::111122223333:user/app"}, "", nil, ""},
		{"Lambda's Invoke is lambda:InvokeFunction", identities{role: {fmt.Sprintf(allowAt, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:f")}},
			topics{}, info("lambda", sandbox.RESTJSON), rolePrincipal, "Invoke", []string{"arn:aws:lambda:us-east-1:111122223333:function:f"}, "", nil, ""},
		{"a JSON service's refusal", identities{role: {}}, topics{}, info("secretsmanager", sandbox.JSON11), rolePrincipal,
			"GetSecretValue", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf"}, "", nil, "AccessDeniedException"},
		{"CreateSecret with Tags needs TagResource", identities{role: {fmt.Sprintf(allowAt, "secretsmanager:CreateSecret", "*")}},
			topics{}, info("secretsmanager", sandbox.JSON11), rolePrincipal, "CreateSecret", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:r-AbCdEf"},
			`{"Name":"r","Tags":[{"Key":"k","Value":"v"}]}`, nil, "AccessDeniedException"},
		{"CreateSecret without Tags does not", identities{role: {fmt.Sprintf(allowAt, "secretsmanager:CreateSecret", "*")}},
			topics{}, info("secretsmanager", sandbox.JSON11), rolePrincipal, "CreateSecret", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:r-AbCdEf"},
			`{"Name":"r"}`, nil, ""},
		{"CloudWatch publishes by the topic policy", identities{}, topics{policy: cwTopicPolicy, key: keyARN}, info("sns", sandbox.Query), cw,
			"Publish", []string{topic}, "", map[string]string{"aws:SourceArn": alarm, "aws:SourceAccount": acct}, ""},
		{"CloudWatch without the topic policy's Allow: SNS's AuthorizationError", identities{}, topics{policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"` + topic + `","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, key: keyARN},
			info("sns", sandbox.Query), cw, "Publish", []string{topic}, "", map[string]string{"aws:SourceArn": alarm, "aws:SourceAccount": acct}, "AuthorizationError"},
		{"CloudWatch for another account's alarm", identities{}, topics{policy: cwTopicPolicy, key: keyARN}, info("sns", sandbox.Query), cw,
			"Publish", []string{topic}, "", map[string]string{"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:444455556666:alarm:x", "aws:SourceAccount": "444455556666"}, "AuthorizationError"},
		{"a publisher without the topic key's grant", identities{role: {fmt.Sprintf(allowAt, "sns:Publish", topic)}}, topics{key: keyARN},
			info("sns", sandbox.Query), rolePrincipal, "Publish", []string{topic}, "", nil, "AuthorizationError"},
		{"a publisher with it", identities{role: {fmt.Sprintf(allowAt, "sns:Publish", topic), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"` + keyARN + `"}]}`}},
			topics{key: keyARN}, info("sns", sandbox.Query), rolePrincipal, "Publish", []string{topic}, "", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := New(Options{IAM: tt.ids, Topics: tt.topics, Keys: keys{keyARN: keyPolicy}, Admins: []string{admin}})
			c := &sandbox.Call{Action: tt.action, Principal: tt.p, Region: "us-east-1", ResourceARNs: tt.resources, Body: []byte(tt.body)}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = sandbox.WithRequestContext(ctx, tt.ctx)
			}
			e := a.Authorize(ctx, c, tt.info)
			switch {
			case tt.wantCode == "" && e != nil:
				t.Fatalf("refused: %s %s", e.Code, e.Message)
			case tt.wantCode != "" && e == nil:
				t.Fatalf("allowed, want %s", tt.wantCode)
			case e != nil && (e.Code != tt.wantCode || !strings.Contains(e.Message, "is not authorized to perform")):
				t.Fatalf("refused with %s %q, want %s with AWS's message", e.Code, e.Message, tt.wantCode)
			}
		})
	}
}

func TestRoleOf(t *testing.T) {
	t.Parallel()
	if got := roleOf("arn:aws:sts::111122223333:assumed-role/R/s"); got != "arn:aws:iam::111122223333:role/R" {
		t.Errorf("roleOf = %s", got)
	}
}

type functions map[string]string // function ARN → policy

func (f functions) FunctionPolicy(arn string) (json.RawMessage, bool) {
	p, ok := f[arn]
	return json.RawMessage(p), ok
}

// A function URL call needs lambda:InvokeFunctionUrl and
// lambda:InvokeFunction, each from the identity or the function's policy;
// a direct Invoke does not carry lambda:InvokedViaFunctionUrl.
func TestFunctionURL(t *testing.T) {
	t.Parallel()
	const fn = "arn:aws:lambda:us-east-1:111122223333:function:answerapproval"
	user := sandbox.Principal{ARN: "arn:aws:iam::111122223333:user/approver", Account: acct, Type: "IAMUser", UserID: "AIDAX", UserName: "approver"}
	stmt := func(principal bool, action, op, key, value string) string {
		p := ""
		if principal {
			p = `"Principal":{"AWS":"` + user.ARN + `"},`
		}
		c := ""
		if op != "" {
			c = fmt.Sprintf(`,"Condition":{%q:{%q:%q}}`, op, key, value)
		}
		return fmt.Sprintf(`{"Effect":"Allow",%s"Action":%q,"Resource":%q%s}`, p, action, fn, c)
	}
	doc := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	urlIAM := func(p bool) string {
		return stmt(p, "lambda:InvokeFunctionUrl", "StringEquals", "lambda:FunctionUrlAuthType", "AWS_IAM")
	}
	viaURL := func(p bool) string {
		return stmt(p, "lambda:InvokeFunction", "Bool", "lambda:InvokedViaFunctionUrl", "true")
	}
	lambdaInfo := sandbox.ServiceInfo{Name: "lambda", Protocol: sandbox.RESTJSON}
	for _, tt := range []struct {
		name     string
		identity []string
		fnPolicy string
		action   string
		allowed  bool
	}{
		{"URL: both in the identity", []string{doc(urlIAM(false), viaURL(false))}, "", "InvokeFunctionUrl", true},
		{"URL: only InvokeFunctionUrl", []string{doc(urlIAM(false))}, "", "InvokeFunctionUrl", false},
		{"URL: only InvokeFunction", []string{doc(viaURL(false))}, "", "InvokeFunctionUrl", false},
		{"URL: both in the function's policy", []string{}, doc(urlIAM(true), viaURL(true)), "InvokeFunctionUrl", true},
		{"URL: one from each", []string{doc(viaURL(false))}, doc(urlIAM(true)), "InvokeFunctionUrl", true},
		{"URL: NONE-conditioned grant", []string{doc(stmt(false, "lambda:InvokeFunctionUrl", "StringEquals", "lambda:FunctionUrlAuthType", "NONE"), viaURL(false))}, "", "InvokeFunctionUrl", false},
		{"direct Invoke: via-URL grant in the identity", []string{doc(viaURL(false))}, "", "Invoke", false},
		{"direct Invoke: via-URL grant in the function's policy", []string{}, doc(viaURL(true)), "Invoke", false},
		{"direct Invoke: unconditional grant", []string{doc(stmt(false, "lambda:InvokeFunction", "", "", ""))}, "", "Invoke", true},
		// As CDK's grantInvokeUrl writes them (aws-lambda function-base.js):
		// the Bool condition's value a JSON boolean.
		{"URL: CDK's grantInvokeUrl statements", []string{doc(urlIAM(false),
			`{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"`+fn+`","Condition":{"Bool":{"lambda:InvokedViaFunctionUrl":true}}}`)}, "", "InvokeFunctionUrl", true},
		{"direct Invoke: CDK's via-URL statement", []string{doc(
			`{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"` + fn + `","Condition":{"Bool":{"lambda:InvokedViaFunctionUrl":true}}}`)}, "", "Invoke", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fns := functions{}
			if tt.fnPolicy != "" {
				fns[fn] = tt.fnPolicy
			}
			var decisions []Decision
			a := New(Options{IAM: identities{user.ARN: tt.identity}, Functions: fns, Record: func(d Decision) { decisions = append(decisions, d) }})
			c := &sandbox.Call{Action: tt.action, Principal: user, Region: "us-east-1", ResourceARNs: []string{fn}}
			e := a.Authorize(context.Background(), c, lambdaInfo)
			if (e == nil) != tt.allowed {
				t.Fatalf("allowed %v (%v), want %v", e == nil, e, tt.allowed)
			}
			if e != nil && (e.Status != 403 || e.Code != "AccessDeniedException") {
				t.Errorf("refusal %d %s", e.Status, e.Code)
			}
			if tt.action == "InvokeFunctionUrl" && tt.allowed {
				if len(decisions) != 2 || decisions[0].Action != "lambda:InvokeFunctionUrl" || decisions[1].Action != "lambda:InvokeFunction" ||
					decisions[1].Context["lambda:InvokedViaFunctionUrl"][0] != "true" || decisions[0].Context["lambda:FunctionUrlAuthType"][0] != "AWS_IAM" {
					t.Errorf("decisions %+v", decisions)
				}
			}
		})
	}
}
