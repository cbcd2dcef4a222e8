package iam_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // about the use, not IAM's reporting lag
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))

	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("app"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}}}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("app")})
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("CreateUser twice: got %v, want EntityAlreadyExists", err)
	}
	u, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("app")})
	if err != nil || aws.ToString(u.User.Arn) != "arn:aws:iam::111122223333:user/app" {
		t.Fatalf("GetUser: %v %+v", err, u)
	}
	me, err := c.GetUser(ctx, &iam.GetUserInput{})
	if err != nil || aws.ToString(me.User.UserName) != "sandbox-admin" {
		t.Fatalf("GetUser of the caller: %v", err)
	}

	k1, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("app")})
	if err != nil {
		t.Fatalf("CreateAccessKey: %v", err)
	}
	k2, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("app")})
	if err != nil {
		t.Fatalf("CreateAccessKey 2: %v", err)
	}
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("app")})
	var limit *types.LimitExceededException
	if !errors.As(err, &limit) {
		t.Fatalf("third key: got %v, want LimitExceeded", err)
	}

	// Never used: N/A, as IAM says.
	lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: k1.AccessKey.AccessKeyId})
	if err != nil || lu.AccessKeyLastUsed.LastUsedDate != nil || aws.ToString(lu.AccessKeyLastUsed.ServiceName) != "N/A" {
		t.Fatalf("last used of a fresh key: %v %+v", err, lu)
	}
	// Using the key through STS updates its last-used.
	appCfg := sb.ConfigAs(t, aws.ToString(k1.AccessKey.AccessKeyId), aws.ToString(k1.AccessKey.SecretAccessKey), "")
	id, err := sts.NewFromConfig(appCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::111122223333:user/app" {
		t.Fatalf("GetCallerIdentity with the new key: %v %+v", err, id)
	}
	lu, err = c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: k1.AccessKey.AccessKeyId})
	if err != nil || lu.AccessKeyLastUsed.LastUsedDate == nil || aws.ToString(lu.AccessKeyLastUsed.ServiceName) != "sts" ||
		aws.ToString(lu.AccessKeyLastUsed.Region) != "us-east-1" || aws.ToString(lu.UserName) != "app" {
		t.Fatalf("last used after an STS call: %v %+v", err, lu.AccessKeyLastUsed)
	}
	if d := time.Since(*lu.AccessKeyLastUsed.LastUsedDate); d < 0 || d > time.Minute {
		t.Fatalf("last used %v is not now", lu.AccessKeyLastUsed.LastUsedDate)
	}

	// Deactivated: refused as AWS refuses, and IAM still reports it.
	if _, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: k1.AccessKey.AccessKeyId, Status: types.StatusTypeInactive}); err != nil {
		t.Fatalf("UpdateAccessKey: %v", err)
	}
	if _, err := sts.NewFromConfig(appCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("inactive key: got %v, want InvalidClientTokenId", err)
	}
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("app")})
	if err != nil || len(keys.AccessKeyMetadata) != 2 || keys.AccessKeyMetadata[0].Status != types.StatusTypeInactive {
		t.Fatalf("ListAccessKeys: %v %+v", err, keys)
	}
	if _, err := c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: k1.AccessKey.AccessKeyId}); err != nil {
		t.Fatalf("DeleteAccessKey: %v", err)
	}
	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: k1.AccessKey.AccessKeyId})
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("delete twice: got %v, want NoSuchEntity", err)
	}
	// A key of another user is NoSuchEntity for this one.
	_, err = c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("sandbox-admin"), AccessKeyId: k2.AccessKey.AccessKeyId, Status: types.StatusTypeInactive})
	if !errors.As(err, &nse) {
		t.Fatalf("someone else's key: got %v, want NoSuchEntity", err)
	}
	// Deleted key: refused.
	if _, err := sts.NewFromConfig(appCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("deleted key: got %v, want InvalidClientTokenId", err)
	}
	// Right key, wrong secret.
	bad := sb.ConfigAs(t, aws.ToString(k2.AccessKey.AccessKeyId), "wrong"+aws.ToString(k2.AccessKey.SecretAccessKey)[5:], "")
	if _, err := sts.NewFromConfig(bad).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: got %v, want SignatureDoesNotMatch", err)
	}

	if _, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("app"), Tags: []types.Tag{{Key: aws.String("keyrotator:managed"), Value: aws.String("true")}}}); err != nil {
		t.Fatalf("TagUser: %v", err)
	}
	tags, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("app")})
	if err != nil || len(tags.Tags) != 2 || aws.ToString(tags.Tags[1].Key) != "keyrotator:managed" {
		t.Fatalf("ListUserTags: %v %+v", err, tags)
	}
}

func TestErrorsAsAWSWordsThem(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t), func(o *iam.Options) { o.RetryMaxAttempts = 1 })
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"no such user", func() error {
			_, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ghost")})
			return err
		}, "NoSuchEntity"},
		{"bad status", func() error {
			_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String("AKIAXXXXXXXXXXXXXXXX"), Status: "Paused"})
			return err
		}, "ValidationError"},
		{"unknown key last used", func() error {
			_, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String("AKIAXXXXXXXXXXXXXXXX")})
			return err
		}, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiCode(tt.call()); got != tt.code {
				t.Fatalf("got %q, want %q", got, tt.code)
			}
		})
	}

	t.Run("throttling", func(t *testing.T) {
		sb.Fault(t, sandbox.Fault{Service: "iam", Action: "ListAccessKeys", Kind: "throttle", Times: -1})
		_, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
		if apiCode(err) != "Throttling" {
			t.Fatalf("got %v, want Throttling", err)
		}
	})
	t.Run("the SDK retries a throttle and succeeds", func(t *testing.T) {
		sb.Fault(t, sandbox.Fault{Service: "iam", Action: "ListAccessKeys", Kind: "throttle", Times: 1})
		retrying := iam.NewFromConfig(sb.Config(t))
		if _, err := retrying.ListAccessKeys(ctx, &iam.ListAccessKeysInput{}); err != nil {
			t.Fatalf("got %v after one throttle", err)
		}
	})
}

// TestLastUsedLagOverTheWire: by default GetAccessKeyLastUsed shows a use
// only DefaultLag after it, on the sandbox clock.
func TestLastUsedLagOverTheWire(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))
	if _, err := sts.NewFromConfig(sb.Config(t)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	id := aws.String(sb.Admin.AccessKeyID)
	lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: id})
	if err != nil || lu.AccessKeyLastUsed.LastUsedDate != nil {
		t.Fatalf("right after the use: %v %+v, want nothing reported yet", err, lu)
	}
	sb.Sandbox.Server.Clock().Advance(4 * time.Hour)
	lu, err = c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: id})
	if err != nil || lu.AccessKeyLastUsed.LastUsedDate == nil {
		t.Fatalf("4h later: %v %+v, want the use reported", err, lu)
	}
}

// ListUsers answers the users whose path starts with PathPrefix, by name
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html):
// the sweep lists a fleet template's users by it.
func TestListUsersByPathPrefix(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))
	for name, path := range map[string]string{"b-fleet": "/fleet/", "a-deep": "/fleet/team/", "other": "/other/", "root": "/"} {
		if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String("/fleet/")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range out.Users {
		got = append(got, aws.ToString(u.UserName))
	}
	if len(got) != 2 || got[0] != "a-deep" || got[1] != "b-fleet" {
		t.Fatalf("ListUsers /fleet/: %v, want a-deep and b-fleet", got)
	}
	all, err := c.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil || len(all.Users) < 4 {
		t.Fatalf("ListUsers: %v %d users", err, len(all.Users))
	}
}
