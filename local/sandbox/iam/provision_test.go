package iam_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	iamsvc "github.com/keyrotator/keyrotator/local/sandbox/iam"
)

const rolesTemplate = `{"Resources":{
 "Role":{"Type":"AWS::IAM::Role","Properties":{"Path":"/service/","Description":"d",
  "AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]},
  "Policies":[{"PolicyName":"own","PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sns:Publish","Resource":"*"}]}}]}},
 "Named":{"Type":"AWS::IAM::Role","Properties":{"RoleName":"named","AssumeRolePolicyDocument":"{\"Statement\":[]}","ManagedPolicyArns":["arn:aws:iam::aws:policy/ReadOnlyAccess"]}},
 "Default":{"Type":"AWS::IAM::Policy","Properties":{"PolicyName":"RoleDefault","Roles":[{"Ref":"Role"}],
  "PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListAccessKeys","Resource":{"Fn::Sub":"arn:${AWS::Partition}:iam::${AWS::AccountId}:user/app"}}]}}},
 "Operator":{"Type":"AWS::IAM::ManagedPolicy","Properties":{"Description":"ops","Roles":[{"Ref":"Role"}],
  "PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"states:StartExecution","Resource":"*"}]}}}},
 "Outputs":{"RoleArn":{"Value":{"Fn::GetAtt":["Role","Arn"]}},"Policy":{"Value":{"Ref":"Operator"}},"Named":{"Value":{"Fn::GetAtt":["Named","Arn"]}}}}`

func deployRoles(t *testing.T) (*sandbox.Server, *iamsvc.Service, *cfn.Stack) {
	t.Helper()
	srv := sandbox.New(sandbox.Options{})
	svc := iamsvc.New(srv, 0)
	srv.Register(svc)
	tpl, err := cfn.Parse([]byte(rolesTemplate))
	if err != nil {
		t.Fatal(err)
	}
	st, err := cfn.Deploy(context.Background(), tpl, cfn.Options{StackName: "stk", Region: srv.Region(), Account: srv.Account(), Provisioners: []cfn.Provisioner{svc}})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return srv, svc, st
}

func TestProvisionRolesAndPolicies(t *testing.T) {
	t.Parallel()
	_, svc, st := deployRoles(t)
	roleName := st.Resources["Role"].Ref
	if !strings.HasPrefix(roleName, "stk-Role-") || len(roleName) != len("stk-Role-")+12 {
		t.Errorf("generated role name %q, want stk-Role-<12 random>", roleName)
	}
	arn := st.Outputs["RoleArn"]
	if arn != "arn:aws:iam::111122223333:role/service/"+roleName {
		t.Errorf("role ARN %q", arn)
	}
	if st.Resources["Named"].Ref != "named" {
		t.Errorf("RoleName not honoured: %q", st.Resources["Named"].Ref)
	}
	trust, ok := svc.TrustPolicy(arn)
	if !ok || !strings.Contains(string(trust), "lambda.amazonaws.com") {
		t.Errorf("trust policy by ARN: %s %v", trust, ok)
	}

	// A Lambda's session of the role sees the role's inline policies (its
	// own and the AWS::IAM::Policy's) and the managed policy attached.
	cred := svc.IssueRoleCredentials(arn, "fn")
	c, ok := svc.Credential(cred.AccessKeyID)
	if !ok || c.Principal.ARN != "arn:aws:sts::111122223333:assumed-role/"+roleName+"/fn" {
		t.Fatalf("session by role ARN: %+v", c.Principal)
	}
	role, _ := svc.GetRole(roleName)
	if !strings.HasPrefix(c.Principal.UserID, role.ID+":") {
		t.Errorf("session user id %q, want the role's id %s", c.Principal.UserID, role.ID)
	}
	pols, err := svc.IdentityPolicies(c.Principal.ARN)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pols {
		names = append(names, p.Name+"="+p.ARN)
		if !json.Valid(p.Document) {
			t.Errorf("policy %s: document %q", p.Name, p.Document)
		}
	}
	opArn := st.Outputs["Policy"]
	if want := "RoleDefault=,own=," + opArn[strings.LastIndex(opArn, "/")+1:] + "=" + opArn; strings.Join(names, ",") != want {
		t.Errorf("identity policies %v, want %s", names, want)
	}
	if !strings.Contains(string(pols[0].Document), "arn:aws:iam::111122223333:user/app") {
		t.Errorf("the policy's Fn::Sub was not resolved: %s", pols[0].Document)
	}
	if same, err := svc.IdentityPolicies(arn); err != nil || len(same) != 3 {
		t.Errorf("identity policies by role ARN: %v %v", same, err)
	}
	named, err := svc.IdentityPolicies("arn:aws:iam::111122223333:role/named")
	if err != nil || len(named) != 1 || named[0].ARN != "arn:aws:iam::aws:policy/ReadOnlyAccess" || named[0].Document != nil {
		t.Errorf("an AWS managed policy: %+v %v", named, err)
	}
	if _, err := svc.IdentityPolicies("arn:aws:sts::111122223333:assumed-role/nope/x"); err == nil {
		t.Error("identity policies of an unknown role: no error")
	}
}

func TestProvisionRolesRefusals(t *testing.T) {
	t.Parallel()
	srv := sandbox.New(sandbox.Options{})
	svc := iamsvc.New(srv, 0)
	for _, c := range []struct{ name, tpl, want string }{
		{"no trust policy", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{}}}}`, "AssumeRolePolicyDocument: required"},
		{"bad path", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"Path":"x","AssumeRolePolicyDocument":{"Statement":[]}}}}}`, "path is invalid"},
		{"policy on nothing", `{"Resources":{"P":{"Type":"AWS::IAM::Policy","Properties":{"PolicyName":"p","PolicyDocument":{"Statement":[]}}}}}`, "at least one of [Groups, Roles, Users]"},
		{"policy on a missing role", `{"Resources":{"P":{"Type":"AWS::IAM::Policy","Properties":{"PolicyName":"p","Roles":["nope"],"PolicyDocument":{"Statement":[]}}}}}`, "role with name nope cannot be found"},
		{"policy without a statement", `{"Resources":{"P":{"Type":"AWS::IAM::ManagedPolicy","Properties":{"PolicyDocument":{"Version":"2012-10-17"}}}}}`, "MalformedPolicyDocument"},
		{"groups", `{"Resources":{"P":{"Type":"AWS::IAM::ManagedPolicy","Properties":{"Groups":["g"],"PolicyDocument":{"Statement":[]}}}}}`, "no groups"},
	} {
		tpl, err := cfn.Parse([]byte(c.tpl))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfn.Deploy(context.Background(), tpl, cfn.Options{Region: srv.Region(), Account: srv.Account(), Provisioners: []cfn.Provisioner{svc}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestRolesSurviveSnapshot(t *testing.T) {
	t.Parallel()
	srv, svc, st := deployRoles(t)
	raw, err := svc.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	again := iamsvc.New(srv, 0)
	if err := again.Restore(raw); err != nil {
		t.Fatal(err)
	}
	before, _ := svc.IdentityPolicies(st.Outputs["RoleArn"])
	after, err := again.IdentityPolicies(st.Outputs["RoleArn"])
	if err != nil || len(after) != len(before) || len(after) != 3 {
		t.Errorf("after restore: %v %v, before %v", after, err, before)
	}
}
