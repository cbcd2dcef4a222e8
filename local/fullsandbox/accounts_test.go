package fullsandbox_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// A member account is its own world: its admin's calls land in its IAM and
// Secrets Manager, under ARNs of its id, and the server's own account sees
// none of it; a name may exist in both.
func TestMemberAccountIsApart(t *testing.T) {
	t.Parallel()
	const member = "444455556666"
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	admin, err := sb.AddAccount(member)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := sb.AddAccount(member); again.AccessKeyID != admin.AccessKeyID {
		t.Error("adding an account twice made a second admin")
	}
	ctx := context.Background()
	b := sb.ConfigAs(t, admin.AccessKeyID, admin.Secret, "")
	id, err := sts.NewFromConfig(b).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Account != member || *id.Arn != "arn:aws:iam::"+member+":user/sandbox-admin" {
		t.Fatalf("the member admin's identity: %v %+v", err, id)
	}
	for _, cfg := range []aws.Config{sb.Config(t), b} {
		if _, err := iam.NewFromConfig(cfg).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("app")}); err != nil {
			t.Fatalf("CreateUser app in each account: %v", err)
		}
	}
	u, err := iam.NewFromConfig(b).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("app")})
	if err != nil || *u.User.Arn != "arn:aws:iam::"+member+":user/app" {
		t.Fatalf("B's app: %v %+v", err, u)
	}
	sec, err := secretsmanager.NewFromConfig(b).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/k"), SecretString: aws.String("member-value")})
	if err != nil || *sec.ARN == "" || (*sec.ARN)[:len("arn:aws:secretsmanager:us-east-1:"+member)] != "arn:aws:secretsmanager:us-east-1:"+member {
		t.Fatalf("B's secret: %v %v", err, sec)
	}
	if _, err := secretsmanager.NewFromConfig(sb.Config(t)).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/k")}); err == nil {
		t.Error("the server's own account reads B's secret")
	}
}

// --state keeps the member accounts, their users and their admins.
func TestMemberAccountsSurviveRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: file}}
	sb1, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sb1.AddAccount("777788889999")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb1.IAM.InAccount("777788889999").CreateUser("kept", "/", nil); err != nil {
		t.Fatal(err)
	}
	serveBriefly(t, sb1)
	sb2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !sb2.Server.HasAccount("777788889999") {
		t.Fatal("the member account is gone after a restart")
	}
	if got, ok := sb2.AdminOf("777788889999"); !ok || got.AccessKeyID != admin.AccessKeyID {
		t.Errorf("the member's admin after restart: %v %s, want %s", ok, got.AccessKeyID, admin.AccessKeyID)
	}
	if _, ok := sb2.IAM.InAccount("777788889999").Keys("kept"); !ok {
		t.Error("the member's user is gone after a restart")
	}
	if _, ok := sb2.IAM.Keys("kept"); ok {
		t.Error("the member's user moved into the server's own account")
	}
}
