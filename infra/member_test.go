package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/infra/config"
	"github.com/keyrotator/keyrotator/infra/member"
)

// memberSynth is the member stack, synthesized once per test binary in
// its own app (the same jsii runtime as the main stack's synths).
var memberSynth = sync.OnceValues(func() (awscdk.Stack, assertions.Template) {
	app := awscdk.NewApp(nil)
	stack := NewMemberStack(app, MemberStackName, &awscdk.StackProps{})
	return stack, assertions.Template_FromStack(stack, nil)
})

// memberTemplate is the member stack's template as JSON.
func memberTemplate(t *testing.T) []byte {
	t.Helper()
	_, tmpl := memberSynth()
	b, err := json.MarshalIndent(tmpl.ToJSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The member stack's template is checked in (testdata/member.golden.json):
// what a stack set deploys shows in review as a diff, and the sandbox
// deploys this file into member accounts (local/pipeline.MemberTemplate).
func TestMemberGoldenTemplate(t *testing.T) {
	golden(t, filepath.Join("testdata", "member.golden.json"), append(memberTemplate(t), '\n'))
}

func TestMemberStack(t *testing.T) {
	stack, tmpl := memberSynth()
	run(t, "the role is trusted by the main account's task roles, with the external id, and only so", func(t *testing.T) {
		roles := tmpl.FindResources(jsii.String("AWS::IAM::Role"), nil)
		if len(*roles) != 1 {
			t.Fatalf("%d roles, want the one member role", len(*roles))
		}
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), &map[string]any{
			"RoleName":           member.DefaultRoleName,
			"MaxSessionDuration": 3600,
			"AssumeRolePolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "sts:AssumeRole",
				"Principal": map[string]any{"AWS": map[string]any{"Fn::Sub": []any{"arn:${AWS::Partition}:iam::${MainAccount}:root", map[string]any{"MainAccount": map[string]any{"Ref": "MainAccountId"}}}}},
				"Condition": map[string]any{
					"StringEquals": map[string]any{"sts:ExternalId": map[string]any{"Ref": "ExternalId"}},
					"ArnLike": map[string]any{"aws:PrincipalArn": map[string]any{"Fn::Sub": []any{"arn:${AWS::Partition}:iam::${MainAccount}:role/${Roles}",
						map[string]any{"MainAccount": map[string]any{"Ref": "MainAccountId"}, "Roles": map[string]any{"Ref": "TrustedRoleNames"}}}}},
				},
			}}},
		})
		// One statement exactly: no other principal may assume it.
		for _, r := range *roles {
			doc := (*r)["Properties"].(map[string]any)["AssumeRolePolicyDocument"].(map[string]any)
			if n := len(doc["Statement"].([]any)); n != 1 {
				t.Errorf("the trust policy has %d statements, want 1", n)
			}
		}
	})
	run(t, "the external id and the main account are required parameters", func(t *testing.T) {
		params := (*tmpl.ToJSON())["Parameters"].(map[string]any)
		for _, p := range []string{"MainAccountId", "ExternalId"} {
			if _, hasDefault := params[p].(map[string]any)["Default"]; hasDefault {
				t.Errorf("parameter %s has a default: every stack set must give it", p)
			}
		}
		tmpl.HasParameter(jsii.String("ExternalId"), &map[string]any{"MinLength": 2, "MaxLength": 1224})
	})
	run(t, "grants are the main stack's task calls on users, LookupEvents, and the app secrets when named", func(t *testing.T) {
		want := []string{"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:GetUser", "iam:ListAccessKeys", "iam:ListUserTags", "iam:UpdateAccessKey"} // ListUserTags: notify reads the keyrotator:owner tag (issue 15)
		if got := member.UserActions(); !slices.Equal(got, want) {
			t.Errorf("user actions %v, want %v", got, want)
		}
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), &map[string]any{
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{map[string]any{
				"Sid": "RotatedUsersKeys", "Effect": "Allow", "Action": want,
				"Resource": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::", map[string]any{"Ref": "AWS::AccountId"},
					":user", map[string]any{"Ref": "UserPath"}, "*"}}},
			}})},
		})
		tmpl.HasResource(jsii.String("AWS::IAM::ManagedPolicy"), &map[string]any{
			"Condition":  "HasAppSecrets",
			"Properties": map[string]any{"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"Sid": "AppSecrets"})})}},
		})
	})
	run(t, "the audit reads every user: the report on *, keys, tags and last use on user/*, nothing that writes", func(t *testing.T) {
		if got, want := member.AuditReportActions(), []string{"iam:GenerateCredentialReport", "iam:GetCredentialReport"}; !slices.Equal(got, want) {
			t.Errorf("audit report actions %v, want %v", got, want)
		}
		want := []string{"iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:ListUserTags"}
		if got := member.AuditUserActions(); !slices.Equal(got, want) {
			t.Errorf("audit user actions %v, want %v", got, want)
		}
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), &map[string]any{
			"PolicyDocument": map[string]any{"Statement": []any{
				map[string]any{"Sid": "AuditCredentialReport", "Effect": "Allow", "Action": []any{"iam:GenerateCredentialReport", "iam:GetCredentialReport"}, "Resource": "*"},
				map[string]any{"Sid": "AuditEveryUsersKeys", "Effect": "Allow", "Action": want,
					"Resource": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::", map[string]any{"Ref": "AWS::AccountId"}, ":user/*"}}}},
			}},
			"Roles": []any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^MemberRole"))}},
		})
		// Read-only: every action of the audit's policy is a Get, List or
		// the report's Generate (which makes a report, changes nothing).
		for _, a := range append(member.AuditReportActions(), member.AuditUserActions()...) {
			verb := strings.TrimPrefix(a, "iam:")
			if !strings.HasPrefix(verb, "Get") && !strings.HasPrefix(verb, "List") && verb != "GenerateCredentialReport" {
				t.Errorf("the audit's grant %s is not read-only", a)
			}
		}
	})
	run(t, "the sweep lists the users under UserPath: ListUsers on *, tags and keys on user<UserPath>*, nothing that writes", func(t *testing.T) {
		if got, want := member.SweepListActions(), []string{"iam:ListUsers"}; !slices.Equal(got, want) {
			t.Errorf("sweep list actions %v, want %v", got, want)
		}
		want := []string{"iam:ListAccessKeys", "iam:ListUserTags"}
		if got := member.SweepUserActions(); !slices.Equal(got, want) {
			t.Errorf("sweep user actions %v, want %v", got, want)
		}
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), &map[string]any{
			"PolicyDocument": map[string]any{"Statement": []any{
				map[string]any{"Sid": "SweepListUsers", "Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"},
				map[string]any{"Sid": "SweepTaggedUsers", "Effect": "Allow", "Action": want,
					"Resource": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::", map[string]any{"Ref": "AWS::AccountId"},
						":user", map[string]any{"Ref": "UserPath"}, "*"}}}},
			}},
			"Roles": []any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^MemberRole"))}},
		})
		for _, a := range append(member.SweepListActions(), member.SweepUserActions()...) {
			if !strings.HasPrefix(a, "iam:List") {
				t.Errorf("the sweep's grant %s is not read-only", a)
			}
		}
	})
	run(t, "cdk-nag AwsSolutions: no error", func(t *testing.T) {
		errs := assertions.Annotations_FromStack(stack).FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
		for _, e := range *errs {
			//lint:ignore SA1019 cdk-nag-go's annotations come back as these types; the replacement lives in @aws-cdk/cloud-assembly-api, which has no Go binding
			t.Errorf("cdk-nag: %s: %v", *e.Id, e.Entry.Data) //nolint:staticcheck // SA1019, as above
		}
	})
}

// Issue 15: the member role's default name is one name for the member
// stack, the config and the functions.
func TestMemberRoleNameIsOne(t *testing.T) {
	if member.DefaultRoleName != config.DefaultMemberRoleName || config.DefaultMemberRoleName != rotation.DefaultMemberRoleName {
		t.Errorf("member stack %q, config %q, functions %q", member.DefaultRoleName, config.DefaultMemberRoleName, rotation.DefaultMemberRoleName)
	}
}
