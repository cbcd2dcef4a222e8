package pipeline_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/iampolicy/referee"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsts "github.com/keyrotator/keyrotator/local/sandbox/sts"
)

const (
	mainAccount = "111122223333"
	memberB     = "222233334444"
	memberC     = "333344445555"
	externalID  = "kr-ext-7f3a"
	memberRole  = "arn:aws:iam::" + memberB + ":role/keyrotator-member"
)

// apiCode is the AWS error code of err ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// memberWorld is a sandbox (IAM enforced) with the keyrotator account and
// two member accounts, the member stack deployed into B through the
// sandbox's CloudFormation as B's admin, a task role in the keyrotator
// account that may assume keyrotator-member roles, and B's users.
type memberWorld struct {
	sb        *sandboxtest.Sandbox
	task      aws.Config // a session of the task role, as a Lambda function holds it
	decisions *decisions
}

// decisions are what the enforcement decided, with the documents it
// decided from: put to @cloud-copilot/iam-simulate by agree.
type decisions struct {
	mu  sync.Mutex
	all []authz.Decision
}

func (d *decisions) add(x authz.Decision) {
	d.mu.Lock()
	d.all = append(d.all, x)
	d.mu.Unlock()
}

// agree puts every decision (trust policies, session policies, B's
// identity policies) to the referee, which must decide the same.
func (d *decisions) agree(t *testing.T, wantDenials int) {
	t.Helper()
	d.mu.Lock()
	all := slices.Clone(d.all)
	d.mu.Unlock()
	var cases []referee.Case
	denials := 0
	for _, x := range all {
		cases = append(cases, sandboxtest.RefereeCase(x))
		if !x.Allowed {
			denials++
		}
	}
	out, err := referee.Run(t.Context(), filepath.Join("..", ".."), cases)
	if errors.Is(err, referee.ErrMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out {
		if (r.Result == "Allowed") != all[i].Allowed {
			t.Errorf("the sandbox decided allowed=%v, iam-simulate %s %s: %s %s on %s", all[i].Allowed, r.Result, r.Error, all[i].Principal.ARN, all[i].Action, all[i].Resource)
		}
	}
	if denials < wantDenials {
		t.Errorf("%d denials among %d decisions put to iam-simulate, want at least %d", denials, len(all), wantDenials)
	}
	t.Logf("%d decisions (%d denials) agree with iam-simulate", len(all), denials)
}

func newMemberWorld(t *testing.T) memberWorld {
	t.Helper()
	rec := &decisions{}
	sb := sandboxtest.Start(t, fullsandbox.Options{Options: sandbox.Options{Accounts: []string{memberB}}, EnforceIAM: true, IAMLag: fullsandbox.NoIAMLag, RecordIAM: rec.add})
	if _, err := sb.AddAccount(memberC); err != nil { // the admin call a later e2e test makes
		t.Fatal(err)
	}
	stack, err := pipeline.DeployStack(t.Context(), sb.Sandbox, pipeline.StackOptions{
		Template: filepath.Join("..", "..", pipeline.MemberTemplate), StackName: "keyrotator-member", Account: memberB,
		Parameters: map[string]string{"MainAccountId": mainAccount, "ExternalId": externalID, "UserPath": "/service/"},
	})
	if err != nil {
		t.Fatalf("deploy the member stack into %s: %v", memberB, err)
	}
	if got := stack.Outputs["MemberRoleArn"]; got != memberRole {
		t.Fatalf("MemberRoleArn output %q, want %s", got, memberRole)
	}
	if _, ok := sb.IAM.InAccount(mainAccount).GetRole("keyrotator-member"); ok {
		t.Fatal("the member role was made in the keyrotator account too")
	}
	// The keyrotator account's task role (named as the main stack names
	// them: <stack>-Rotator…Role…-<random>), allowed to assume any
	// account's member role.
	a := sb.IAM
	if _, err := a.CreateRole("KeyRotator-RotatorValidateRole1A2B3C-XYZ", "/", "task", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRolePolicy("KeyRotator-RotatorValidateRole1A2B3C-XYZ", "member", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/keyrotator-member"}]}`)); err != nil {
		t.Fatal(err)
	}
	b := sb.IAM.InAccount(memberB)
	for _, u := range []struct{ name, path string }{{"app", "/service/"}, {"human", "/"}} {
		if _, err := b.CreateUser(u.name, u.path, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.CreateAccessKey(u.name); err != nil {
			t.Fatal(err)
		}
	}
	cred := a.IssueRoleCredentials("KeyRotator-RotatorValidateRole1A2B3C-XYZ", "validate")
	return memberWorld{sb: sb, task: sb.ConfigAs(t, cred.AccessKeyID, cred.Secret, cred.SessionToken), decisions: rec}
}

// assume assumes role from cfg.
func assume(ctx context.Context, cfg aws.Config, in *sts.AssumeRoleInput) (*sts.AssumeRoleOutput, error) {
	return sts.NewFromConfig(cfg).AssumeRole(ctx, in)
}

func (w memberWorld) as(t *testing.T, c *ststypes.Credentials) aws.Config {
	t.Helper()
	return w.sb.ConfigAs(t, *c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
}

// The member stack deployed into account B through the sandbox; a session
// of the keyrotator account's task role assumes its role with the external
// id and calls IAM on B's users: what the member stack grants runs, in B;
// the rest is refused as AWS refuses it.
func TestMemberRoleFromTheKeyrotatorAccount(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	ctx := t.Context()
	out, err := assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("validate-app"), ExternalId: aws.String(externalID), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || *c.SessionToken == "" || c.Expiration == nil {
		t.Fatalf("credentials %s token=%t expiration=%v", *c.AccessKeyId, *c.SessionToken != "", c.Expiration)
	}
	if d := c.Expiration.Sub(w.sb.Server.Clock().Now()); d < 899e9 || d > 901e9 {
		t.Errorf("the session lasts %v, want 900 s", d)
	}
	wantARN := "arn:aws:sts::" + memberB + ":assumed-role/keyrotator-member/validate-app"
	if *out.AssumedRoleUser.Arn != wantARN || !strings.HasSuffix(*out.AssumedRoleUser.AssumedRoleId, ":validate-app") {
		t.Errorf("assumed role user %s %s", *out.AssumedRoleUser.Arn, *out.AssumedRoleUser.AssumedRoleId)
	}
	member := w.as(t, c)
	id, err := sts.NewFromConfig(member).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Account != memberB || *id.Arn != wantARN {
		t.Fatalf("GetCallerIdentity: %v %+v", err, id)
	}
	iamB := iam.NewFromConfig(member)
	keys, err := iamB.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("ListAccessKeys on B's app user: %v", err)
	}
	// The key listed is B's: A has no user app.
	if _, ok := w.sb.IAM.Keys("app"); ok {
		t.Error("the keyrotator account has B's user")
	}
	created, err := iamB.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("app")})
	if err != nil {
		t.Fatalf("CreateAccessKey on B's app user: %v", err)
	}
	if _, err := iamB.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: created.AccessKey.AccessKeyId}); err != nil {
		t.Fatalf("DeleteAccessKey: %v", err)
	}
	// The audit's read-only grant reaches every user, outside UserPath too.
	if _, err := iamB.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("human")}); err != nil {
		t.Errorf("ListAccessKeys on a user outside /service/ (the audit's user/* grant): %v", err)
	}
	// Outside the grants: a change to a user outside UserPath, an action the tasks never call, a secret.
	for name, call := range map[string]func() error{
		"CreateAccessKey on a user outside /service/": func() error {
			_, err := iamB.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("human")})
			return err
		},
		"CreateUser": func() error {
			_, err := iamB.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("intruder"), Path: aws.String("/service/")})
			return err
		},
		"secretsmanager:ListSecrets without TargetNamePattern": func() error {
			_, err := secretsmanager.NewFromConfig(member).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/k"), SecretString: aws.String("x")})
			return err
		},
	} {
		if err == nil {
			err = call()
		}
		if code := apiCode(err); code != "AccessDenied" && code != "AccessDeniedException" {
			t.Errorf("%s: %v, want AccessDenied", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), wantARN) {
			t.Errorf("%s: the refusal does not name the session: %v", name, err)
		}
		err = nil
	}
	// The calls landed in B's CloudTrail, not A's; A's holds the AssumeRole.
	ctB := cloudtrail.NewFromConfig(member)
	evs, err := ctB.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyAccessKeyId, AttributeValue: c.AccessKeyId}}})
	if err != nil {
		t.Fatalf("LookupEvents in B: %v", err)
	}
	names := map[string]bool{}
	for _, e := range evs.Events {
		names[*e.EventName] = true
	}
	if !names["CreateAccessKey"] || !names["DeleteAccessKey"] {
		t.Errorf("B's event history for the session's key: %v", names)
	}
	evA, err := cloudtrail.NewFromConfig(w.sb.Config(t)).LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateAccessKey")}}})
	if err != nil {
		t.Fatalf("LookupEvents in A: %v", err)
	}
	for _, e := range evA.Events {
		if *e.AccessKeyId == *c.AccessKeyId {
			t.Errorf("A's event history holds B's CreateAccessKey")
		}
	}
	evAssume, err := ctB.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("AssumeRole")}}})
	if err != nil || len(evAssume.Events) != 1 {
		t.Errorf("B's event history has %d AssumeRole events (%v), want the one", len(evAssume.Events), err)
	}
}

// A session policy narrows the member role to one step's calls.
func TestMemberSessionPolicyNarrows(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	ctx := t.Context()
	out, err := assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("deactivate"), ExternalId: aws.String(externalID),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:ListAccessKeys","iam:UpdateAccessKey"],"Resource":"arn:aws:iam::` + memberB + `:user/service/*"}]}`)})
	if err != nil {
		t.Fatalf("AssumeRole with a session policy: %v", err)
	}
	if out.PackedPolicySize == nil {
		t.Error("no PackedPolicySize for a session policy")
	}
	iamB := iam.NewFromConfig(w.as(t, out.Credentials))
	keys, err := iamB.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")})
	if err != nil {
		t.Fatalf("ListAccessKeys, in the session policy: %v", err)
	}
	_, err = iamB.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: keys.AccessKeyMetadata[0].AccessKeyId})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "because no session policy allows the iam:DeleteAccessKey action") {
		t.Errorf("DeleteAccessKey, which the role allows and the session policy not: %v", err)
	}
	// A session policy cannot grant more than the role: CreateUser stays refused.
	out, err = assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("greedy"), ExternalId: aws.String(externalID),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = iam.NewFromConfig(w.as(t, out.Credentials)).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("x"), Path: aws.String("/service/")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "because no identity-based policy allows") {
		t.Errorf("CreateUser with a broad session policy: %v", err)
	}
	// A managed session policy (PolicyArns, a policy of the role's account) narrows alike.
	pol, err := w.sb.IAM.InAccount(memberB).CreatePolicy("list-only", "/", "", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListAccessKeys","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err = assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("managed"), ExternalId: aws.String(externalID),
		PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String(pol.ARN)}}})
	if err != nil {
		t.Fatalf("AssumeRole with PolicyArns: %v", err)
	}
	managed := iam.NewFromConfig(w.as(t, out.Credentials))
	if _, err := managed.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")}); err != nil {
		t.Errorf("ListAccessKeys under the managed session policy: %v", err)
	}
	_, err = managed.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: keys.AccessKeyMetadata[0].AccessKeyId, Status: "Inactive"})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "no session policy allows") {
		t.Errorf("UpdateAccessKey outside the managed session policy: %v", err)
	}
	w.decisions.agree(t, 3)
}

// Each refusal of AssumeRole as AWS words it: the caller learns only that
// it may not assume that role.
func TestAssumeRoleRefusals(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	ctx := t.Context()
	// The trust names only the keyrotator account's KeyRotator-* roles:
	// another role of that account, allowed by its own policy, is refused.
	a := w.sb.IAM
	if _, err := a.CreateRole("other-team", "/", "", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRolePolicy("other-team", "all", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)); err != nil {
		t.Fatal(err)
	}
	oc := a.IssueRoleCredentials("other-team", "s")
	other := w.sb.ConfigAs(t, oc.AccessKeyID, oc.Secret, oc.SessionToken)
	// A role of the keyrotator account's naming whose policy lacks sts:AssumeRole.
	if _, err := a.CreateRole("KeyRotator-RotatorNotifyRole9Z-Q", "/", "", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	nc := a.IssueRoleCredentials("KeyRotator-RotatorNotifyRole9Z-Q", "s")
	notify := w.sb.ConfigAs(t, nc.AccessKeyID, nc.Secret, nc.SessionToken)
	for _, c := range []struct {
		name    string
		cfg     aws.Config
		role    string
		ext     *string
		code    string
		message string
	}{
		{"wrong external id", w.task, memberRole, aws.String("kr-wrong"), "AccessDenied", "is not authorized to perform: sts:AssumeRole on resource: " + memberRole},
		{"no external id", w.task, memberRole, nil, "AccessDenied", "is not authorized to perform: sts:AssumeRole on resource: " + memberRole},
		{"no member role in C (stack not deployed)", w.task, "arn:aws:iam::" + memberC + ":role/keyrotator-member", aws.String(externalID), "AccessDenied",
			"is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + memberC + ":role/keyrotator-member"},
		{"an account the sandbox does not hold", w.task, "arn:aws:iam::999988887777:role/keyrotator-member", aws.String(externalID), "AccessDenied", "on resource: arn:aws:iam::999988887777:role/keyrotator-member"},
		{"the trust does not name the caller", other, memberRole, aws.String(externalID), "AccessDenied", "assumed-role/other-team/s is not authorized to perform: sts:AssumeRole on resource: " + memberRole},
		{"the caller's policy lacks sts:AssumeRole", notify, memberRole, aws.String(externalID), "AccessDenied", "because no identity-based policy allows the sts:AssumeRole action"},
	} {
		_, err := assume(ctx, c.cfg, &sts.AssumeRoleInput{RoleArn: aws.String(c.role), RoleSessionName: aws.String("s1"), ExternalId: c.ext})
		if apiCode(err) != c.code || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: %v, want %s …%s", c.name, err, c.code, c.message)
		}
		if err != nil && strings.Contains(err.Error(), "trust") {
			t.Errorf("%s: the refusal tells the caller about the trust policy: %v", c.name, err)
		}
	}
	// Validation, before any decision.
	for _, c := range []struct {
		name string
		in   *sts.AssumeRoleInput
		msg  string
	}{
		{"session name with a space", &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("a b"), ExternalId: aws.String(externalID)}, "roleSessionName"},
		{"duration under 900", &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("s1"), ExternalId: aws.String(externalID), DurationSeconds: aws.Int32(899)}, "durationSeconds"},
		{"duration over the role's maximum", &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("s1"), ExternalId: aws.String(externalID), DurationSeconds: aws.Int32(7200)}, "MaxSessionDuration"},
		{"malformed session policy", &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("s1"), ExternalId: aws.String(externalID), Policy: aws.String(`{"Statement":`)}, "policy"},
	} {
		_, err := assume(ctx, w.task, c.in)
		if code := apiCode(err); (code != "ValidationError" && code != "MalformedPolicyDocument") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A session ends at its expiration, on the sandbox clock.
	out, err := assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("short"), ExternalId: aws.String(externalID), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	w.sb.Server.Clock().Advance(901e9)
	_, err = iam.NewFromConfig(w.as(t, out.Credentials)).ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")})
	if apiCode(err) != "ExpiredToken" {
		t.Errorf("a call after the session's expiration: %v, want ExpiredToken", err)
	}
	// Unless the sandbox keeps sessions (a fleet's world, whose clock
	// runs days ahead in milliseconds): then one lasts past it, and still
	// answers its expiration.
	stsSvc, _ := w.sb.Server.Service("sts")
	stsSvc.(*sbsts.Service).KeepSessions()
	out, err = assume(ctx, w.task, &sts.AssumeRoleInput{RoleArn: aws.String(memberRole), RoleSessionName: aws.String("kept"), ExternalId: aws.String(externalID), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	if d := aws.ToTime(out.Credentials.Expiration).Sub(w.sb.Server.Clock().Now()); d < 898*time.Second || d > 900*time.Second {
		t.Errorf("a kept session answers an expiration %v ahead, want its 900 s", d)
	}
	w.sb.Server.Clock().Advance(901e9)
	if _, err = iam.NewFromConfig(w.as(t, out.Credentials)).ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")}); err != nil {
		t.Errorf("a kept session's call after its expiration: %v", err)
	}
	w.decisions.agree(t, 5)
}
