package iampolicy

import (
	"errors"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind Kind
		doc  string
		want func(*Policy) bool
	}{
		{"CDK identity policy, statement list", Identity,
			`{"Version":"2012-10-17","Statement":[{"Action":["iam:GetUser","iam:ListAccessKeys"],"Effect":"Allow","Resource":"arn:aws:iam::111122223333:user/svc/app"}]}`,
			func(p *Policy) bool { return len(p.Statements) == 1 && len(p.Statements[0].Actions) == 2 }},
		{"statement as an object, no Version", Identity,
			`{"Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:sns:*:*:t"]}}`,
			func(p *Policy) bool {
				s := p.Statements[0]
				return p.Version == Version2008 && s.NotActionSet && s.NotResourceSet && s.Effect == Deny
			}},
		{"topic policy with service principal and conditions", Resource,
			`{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish","Resource":"*",
			  "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:cloudwatch:*:111122223333:alarm:*"},"StringEquals":{"aws:SourceAccount":["111122223333"]}}}]}`,
			func(p *Policy) bool {
				s := p.Statements[0]
				return p.ID == "x" && s.Sid == "A" && len(s.Principal.Service) == 1 && len(s.Conditions) == 2
			}},
		{"key policy: account id, root ARN, role ARN, Bool as JSON boolean", Resource,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:role/R"]},"Action":"kms:*","Resource":"*",
			  "Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}}]}`,
			func(p *Policy) bool {
				s := p.Statements[0]
				ok := len(s.Principal.AWS) == 3
				for _, c := range s.Conditions {
					ok = ok && (c.Values[0] == "true" || c.Values[0] == "3600")
				}
				return ok
			}},
		{"Principal * and AWS *", Resource,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sns:Publish","Resource":"*"}]}`,
			func(p *Policy) bool { return p.Statements[0].Principal.Wildcard && p.Statements[1].Principal.Wildcard }},
		{"trust policy: Federated, no Resource", Resource,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
			func(p *Policy) bool { return p.Statements[0].NoResource }},
		{"NotPrincipal", Resource,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/a"},"Action":"*","Resource":"*"}]}`,
			func(p *Policy) bool { return p.Statements[0].NotPrincipalSet }},
		{"set operators and IfExists", Identity,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*"]},"Null":{"aws:SourceArn":"true"}}}]}`,
			func(p *Policy) bool { return len(p.Statements[0].Conditions) == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tt.doc), tt.kind)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.want(p) {
				t.Errorf("parsed as %+v", p)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind Kind
		doc  string
	}{
		{"not JSON", Identity, `{"Version":`},
		{"not an object", Identity, `[]`},
		{"unknown top-level element", Identity, `{"Version":"2012-10-17","Statements":[]}`},
		{"bad Version", Identity, `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`},
		{"no Statement", Identity, `{"Version":"2012-10-17"}`},
		{"empty Statement", Identity, `{"Version":"2012-10-17","Statement":[]}`},
		{"unknown statement element", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Actions":"x"}}`},
		{"lower-case effect", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`},
		{"no Effect", Identity, `{"Version":"2012-10-17","Statement":{"Action":"*","Resource":"*"}}`},
		{"Action and NotAction", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","NotAction":"iam:*","Resource":"*"}}`},
		{"no Action", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`},
		{"action without service", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetUser","Resource":"*"}}`},
		{"empty action list", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`},
		{"action not a string", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}`},
		{"identity policy without Resource", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*"}}`},
		{"Resource and NotResource", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}}`},
		{"resource not an ARN", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"my-topic"}}`},
		{"CloudFormation intrinsic left unresolved", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":{"Fn::GetAtt":["T","Arn"]}}}`},
		{"Principal in an identity policy", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`},
		{"resource policy without Principal", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`},
		{"Principal and NotPrincipal", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"*","Resource":"*"}}`},
		{"Principal string other than *", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"111122223333","Action":"*","Resource":"*"}}`},
		{"unknown principal type", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Aws":"*"},"Action":"*","Resource":"*"}}`},
		{"malformed AWS principal", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"*","Resource":"*"}}`},
		{"wildcard service principal", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"*"},"Action":"*","Resource":"*"}}`},
		{"NotPrincipal with Allow", Resource, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}}`},
		{"unknown condition operator", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqual":{"a:b":"c"}}}}`},
		{"NullIfExists", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"a:b":"true"}}}}`},
		{"condition value an object", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a:b":{"c":"d"}}}}}`},
		{"condition with no keys", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}}`},
		{"empty condition value list", Identity, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a:b":[]}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.doc), tt.kind)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse accepted it (err %v); AWS answers MalformedPolicyDocument", err)
			}
		})
	}
}
