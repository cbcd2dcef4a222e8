package moto

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestIAM walks a user's life through IAM and STS on both sides: users with
// and without a path, the two-key quota, key status, last-used before and
// after a use, tags, and the errors for users and keys that are not there.
func TestIAM(t *testing.T) {
	t.Parallel()
	w := start(t)
	p := w.pair(t)
	c := ctx(t)

	createUser := func(step, name, path string, tags ...types.Tag) {
		p.do(step, func(s *side) (any, error) {
			in := &iam.CreateUserInput{UserName: aws.String(name), Tags: tags}
			if path != "" {
				in.Path = aws.String(path)
			}
			out, err := s.iam.CreateUser(c, in)
			if err == nil {
				s.bind(name+".id", aws.ToString(out.User.UserId))
			}
			return out, err
		})
	}
	getUser := func(step, name string) {
		p.do(step, func(s *side) (any, error) { return s.iam.GetUser(c, &iam.GetUserInput{UserName: aws.String(name)}) })
	}
	createKey := func(step, user, sym string) {
		p.do(step, func(s *side) (any, error) {
			out, err := s.iam.CreateAccessKey(c, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
			if err == nil && sym != "" {
				s.bind(sym, aws.ToString(out.AccessKey.AccessKeyId))
				s.bind(sym+".secret", aws.ToString(out.AccessKey.SecretAccessKey))
			}
			return out, err
		})
	}
	listKeys := func(step, user string) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.ListAccessKeys(c, &iam.ListAccessKeysInput{UserName: aws.String(user)})
		})
	}
	updateKey := func(step, user, key string, status types.StatusType) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.UpdateAccessKey(c, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(s.id(key)), Status: status})
		})
	}
	deleteKey := func(step, user, key string) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.DeleteAccessKey(c, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(s.id(key))})
		})
	}
	lastUsed := func(step, key string) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.GetAccessKeyLastUsed(c, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(s.id(key))})
		})
	}
	// asKey is a call made with a user's own key.
	callerIdentity := func(step, key string) {
		p.do(step, func(s *side) (any, error) {
			return sts.NewFromConfig(s.as(s.id(key), s.id(key+".secret"))).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
		})
	}

	// Users, with and without a path; the same name twice; one that is not there.
	createUser("CreateUser without a path", "alice", "")
	createUser("CreateUser with a path", "bob", "/service/app/")
	createUser("CreateUser with tags", "carol", "", types.Tag{Key: aws.String("team"), Value: aws.String("payments")})
	createUser("CreateUser of an existing name", "alice", "")
	createUser("CreateUser with a path not ending in /", "dave", "/service")
	createUser("CreateUser with an invalid name", "no spaces", "")
	getUser("GetUser without a path", "alice")
	getUser("GetUser with a path", "bob")
	getUser("GetUser with tags", "carol")
	getUser("GetUser of a missing user", "ghost")

	// The two-key quota, inactive keys counting.
	listKeys("ListAccessKeys of a user without keys", "alice")
	createKey("CreateAccessKey first", "alice", "key1")
	createKey("CreateAccessKey second", "alice", "key2")
	createKey("CreateAccessKey third refused", "alice", "")
	listKeys("ListAccessKeys of two keys", "alice")
	updateKey("UpdateAccessKey to Inactive", "alice", "key1", types.StatusTypeInactive)
	listKeys("ListAccessKeys with an inactive key", "alice")
	createKey("CreateAccessKey refused with an inactive key", "alice", "")
	updateKey("UpdateAccessKey to Active", "alice", "key1", types.StatusTypeActive)
	createKey("CreateAccessKey of a missing user", "ghost", "")
	listKeys("ListAccessKeys of a missing user", "ghost")
	updateKey("UpdateAccessKey of a missing key", "alice", "AKIAIOSFODNN7EXAMPLE", types.StatusTypeInactive)
	updateKey("UpdateAccessKey of another user's key", "bob", "key1", types.StatusTypeInactive)
	updateKey("UpdateAccessKey of a missing user", "ghost", "key1", types.StatusTypeInactive)

	// Last used: nothing before a use; the service and region after.
	lastUsed("GetAccessKeyLastUsed before use", "key2")
	callerIdentity("GetCallerIdentity as a user", "key2")
	lastUsed("GetAccessKeyLastUsed after use", "key2")
	createKey("CreateAccessKey for a user with a path", "bob", "bobkey")
	callerIdentity("GetCallerIdentity as a user with a path", "bobkey")
	p.do("GetUser without UserName as the caller", func(s *side) (any, error) {
		return iam.NewFromConfig(s.as(s.id("bobkey"), s.id("bobkey.secret"))).GetUser(c, &iam.GetUserInput{})
	})
	p.do("ListAccessKeys without UserName as the caller", func(s *side) (any, error) {
		return iam.NewFromConfig(s.as(s.id("bobkey"), s.id("bobkey.secret"))).ListAccessKeys(c, &iam.ListAccessKeysInput{})
	})
	lastUsed("GetAccessKeyLastUsed of a missing key", "AKIAIOSFODNN7EXAMPLE")

	// Deleting a key frees its place in the quota.
	deleteKey("DeleteAccessKey", "alice", "key1")
	listKeys("ListAccessKeys after a delete", "alice")
	deleteKey("DeleteAccessKey of a deleted key", "alice", "key1")
	deleteKey("DeleteAccessKey of a missing user", "ghost", "key2")
	createKey("CreateAccessKey after a delete", "alice", "key3")
	listKeys("ListAccessKeys after a new key", "alice")

	// Tags.
	tag := func(step, user string, tags ...types.Tag) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.TagUser(c, &iam.TagUserInput{UserName: aws.String(user), Tags: tags})
		})
	}
	listTags := func(step, user string) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.ListUserTags(c, &iam.ListUserTagsInput{UserName: aws.String(user)})
		})
	}
	listTags("ListUserTags of a user without tags", "alice")
	tag("TagUser", "alice", types.Tag{Key: aws.String("owner"), Value: aws.String("ops")}, types.Tag{Key: aws.String("env"), Value: aws.String("prod")})
	listTags("ListUserTags", "alice")
	tag("TagUser overwriting a value", "alice", types.Tag{Key: aws.String("env"), Value: aws.String("staging")})
	listTags("ListUserTags after an overwrite", "alice")
	getUser("GetUser after TagUser", "alice")
	tag("TagUser of a missing user", "ghost", types.Tag{Key: aws.String("k"), Value: aws.String("v")})
	listTags("ListUserTags of a missing user", "ghost")
}
