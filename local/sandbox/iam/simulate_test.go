package iam_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// SimulatePrincipalPolicy over a role's inline policies, as IAM's simulator
// answers it: allowed, implicitDeny, explicitDeny, the statement that
// decided, the condition keys missing, a resource policy, and pages.
func TestSimulatePrincipalPolicy(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))
	acct := sb.Server.Account()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	r, err := sb.IAM.CreateRole("fn", "/", "", []byte(trust), 0)
	if err != nil {
		t.Fatal(err)
	}
	role := fmt.Sprintf("arn:aws:iam::%s:role/%s", acct, r.Name)
	user := fmt.Sprintf("arn:aws:iam::%s:user/app", acct)
	if err := sb.IAM.PutRolePolicy("fn", "keys", []byte(`{"Version":"2012-10-17","Statement":[
		{"Sid":"Keys","Effect":"Allow","Action":["iam:ListAccessKeys","iam:UpdateAccessKey"],"Resource":"`+user+`"},
		{"Sid":"NoDelete","Effect":"Deny","Action":"iam:DeleteAccessKey","Resource":"*"},
		{"Sid":"ViaSM","Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}`)); err != nil {
		t.Fatal(err)
	}
	type want struct{ action, resource, decision, policy string }
	sim := func(in *iam.SimulatePrincipalPolicyInput) []types.EvaluationResult {
		t.Helper()
		in.PolicySourceArn = aws.String(role)
		var out []types.EvaluationResult
		p := iam.NewSimulatePrincipalPolicyPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("SimulatePrincipalPolicy: %v", err)
			}
			out = append(out, page.EvaluationResults...)
		}
		return out
	}
	got := sim(&iam.SimulatePrincipalPolicyInput{
		ActionNames:  []string{"iam:ListAccessKeys", "iam:DeleteAccessKey", "iam:CreateAccessKey"},
		ResourceArns: []string{user, fmt.Sprintf("arn:aws:iam::%s:user/other", acct)},
		MaxItems:     aws.Int32(2), // three pages
	})
	for i, w := range []want{
		{"iam:ListAccessKeys", user, "allowed", "keys"},
		{"iam:ListAccessKeys", "other", "implicitDeny", ""},
		{"iam:DeleteAccessKey", user, "explicitDeny", "keys"},
		{"iam:DeleteAccessKey", "other", "explicitDeny", "keys"},
		{"iam:CreateAccessKey", user, "implicitDeny", ""},
		{"iam:CreateAccessKey", "other", "implicitDeny", ""},
	} {
		if i >= len(got) {
			t.Fatalf("got %d results, want 6", len(got))
		}
		g := got[i]
		if w.resource == "other" {
			w.resource = fmt.Sprintf("arn:aws:iam::%s:user/other", acct)
		}
		var policy string
		if len(g.MatchedStatements) > 0 {
			policy = aws.ToString(g.MatchedStatements[0].SourcePolicyId)
			if typ := g.MatchedStatements[0].SourcePolicyType; typ != types.PolicySourceTypeRole {
				t.Errorf("%s on %s: SourcePolicyType %q, want role (an inline policy of a role)", w.action, w.resource, typ)
			}
		}
		if aws.ToString(g.EvalActionName) != w.action || aws.ToString(g.EvalResourceName) != w.resource || string(g.EvalDecision) != w.decision || policy != w.policy {
			t.Errorf("result %d: %s on %s → %s by %q; want %s on %s → %s by %q", i, aws.ToString(g.EvalActionName), aws.ToString(g.EvalResourceName), g.EvalDecision, policy, w.action, w.resource, w.decision, w.policy)
		}
	}
	if len(got) != 6 {
		t.Errorf("got %d results over the pages, want 6", len(got))
	}

	// A condition key the request lacks: denied, and named as missing; given, allowed.
	got = sim(&iam.SimulatePrincipalPolicyInput{ActionNames: []string{"kms:Decrypt"}})
	if len(got) != 1 || got[0].EvalDecision != types.PolicyEvaluationDecisionTypeImplicitDeny || !slices.Equal(got[0].MissingContextValues, []string{"kms:ViaService"}) {
		t.Errorf("kms:Decrypt without kms:ViaService: %+v; want implicitDeny missing [kms:ViaService]", got)
	}
	got = sim(&iam.SimulatePrincipalPolicyInput{ActionNames: []string{"kms:Decrypt"}, ContextEntries: []types.ContextEntry{{
		ContextKeyName: aws.String("kms:ViaService"), ContextKeyType: types.ContextKeyTypeEnumString, ContextKeyValues: []string{"secretsmanager.us-east-1.amazonaws.com"}}}})
	if len(got) != 1 || got[0].EvalDecision != types.PolicyEvaluationDecisionTypeAllowed || len(got[0].MissingContextValues) != 0 {
		t.Errorf("kms:Decrypt via Secrets Manager: %+v; want allowed, nothing missing", got)
	}

	// A resource policy allowing the role: allowed by it where the
	// identity policies say nothing; its Deny wins over their Allow.
	topic := fmt.Sprintf("arn:aws:sns:us-east-1:%s:alerts", acct)
	rp := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"sns:Publish","Resource":"` + topic + `"},
		{"Effect":"Deny","Principal":"*","Action":"iam:ListAccessKeys","Resource":"*"}]}`
	got = sim(&iam.SimulatePrincipalPolicyInput{ActionNames: []string{"sns:Publish", "iam:ListAccessKeys"}, ResourceArns: []string{topic}, ResourcePolicy: aws.String(rp)})
	if len(got) != 2 || got[0].EvalDecision != types.PolicyEvaluationDecisionTypeAllowed || got[1].EvalDecision != types.PolicyEvaluationDecisionTypeExplicitDeny {
		t.Errorf("with a resource policy: %+v; want sns:Publish allowed, iam:ListAccessKeys explicitDeny", got)
	}
	if len(got) == 2 && (len(got[0].MatchedStatements) == 0 || got[0].MatchedStatements[0].SourcePolicyType != types.PolicySourceTypeResource) {
		t.Errorf("sns:Publish: matched %+v, want the resource policy", got[0].MatchedStatements)
	}

	// Deleting the statement is a denial: what doctor finds.
	if err := sb.IAM.PutRolePolicy("fn", "keys", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:UpdateAccessKey","Resource":"`+user+`"}]}`)); err != nil {
		t.Fatal(err)
	}
	if got = sim(&iam.SimulatePrincipalPolicyInput{ActionNames: []string{"iam:ListAccessKeys"}, ResourceArns: []string{user}}); len(got) != 1 || got[0].EvalDecision != types.PolicyEvaluationDecisionTypeImplicitDeny {
		t.Errorf("after the statement went: %+v, want implicitDeny", got)
	}

	// Errors as IAM gives them.
	for _, tc := range []struct {
		name string
		in   iam.SimulatePrincipalPolicyInput
		code string
	}{
		{"no such role", iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(fmt.Sprintf("arn:aws:iam::%s:role/none", acct)), ActionNames: []string{"s3:GetObject"}}, "NoSuchEntity"},
		{"a session", iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(fmt.Sprintf("arn:aws:sts::%s:assumed-role/fn/s", acct)), ActionNames: []string{"s3:GetObject"}}, "InvalidInput"},
	} {
		_, err := c.SimulatePrincipalPolicy(ctx, &tc.in)
		if apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}
