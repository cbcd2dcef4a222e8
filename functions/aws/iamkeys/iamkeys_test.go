package iamkeys_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func TestKeysAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	k := iamkeys.New(iam.NewFromConfig(sb.Config(t), func(o *iam.Options) { o.RetryMaxAttempts = 1 }))
	sb.User(t, "app", 1)

	if _, err := k.UserARN(ctx, "ghost"); !errors.As(err, new(*rotation.UserNotFound)) {
		t.Fatalf("UserARN of a missing user: %v", err)
	}
	if _, err := k.List(ctx, "ghost"); !errors.As(err, new(*rotation.UserNotFound)) {
		t.Fatalf("List of a missing user: %v", err)
	}
	keys, err := k.List(ctx, "app")
	if err != nil || len(keys) != 1 || !keys[0].Active() {
		t.Fatalf("List: %v %+v", err, keys)
	}
	cred, _, err := k.Create(ctx, "app")
	if err != nil || !cred.Valid() {
		t.Fatalf("Create: %v", err)
	}
	var limit *rotation.KeyLimitReached
	if _, _, err := k.Create(ctx, "app"); !errors.As(err, &limit) {
		t.Fatalf("third key: got %v, want KeyLimitReached", err)
	}
	if len(limit.Keys) != 2 || !strings.HasPrefix(limit.Keys[1], cred.AccessKeyID+" (Active, created ") {
		t.Fatalf("KeyLimitReached names each key and status: %q", limit.Keys)
	}
	use, err := k.LastUsed(ctx, cred.AccessKeyID)
	if err != nil || use.LastUsed != nil {
		t.Fatalf("LastUsed of an unused key: %v %+v", err, use)
	}
	if err := k.SetStatus(ctx, "app", cred.AccessKeyID, false); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	if deleted, err := k.Delete(ctx, "app", cred.AccessKeyID); err != nil || !deleted {
		t.Fatalf("Delete: %v %v", deleted, err)
	}
	if deleted, err := k.Delete(ctx, "app", cred.AccessKeyID); err != nil || deleted {
		t.Fatalf("Delete again must be a quiet no-op: %v %v", deleted, err)
	}

	sb.Fault(t, sandbox.Fault{Service: "iam", Action: "ListAccessKeys", Kind: "throttle", Times: -1})
	if _, err := k.List(ctx, "app"); !errors.As(err, new(*rotation.Retryable)) {
		t.Fatalf("throttled: got %v, want Retryable", err)
	}
}

// CreateAccessKey's answer lost after IAM made the key: Create's own retry
// gets LimitExceeded because of that key, and says so (AnswerLost, still a
// KeyLimitReached naming both keys); refused at the first try, it is a
// plain KeyLimitReached.
func TestCreateAnswerLost(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	k := iamkeys.New(iam.NewFromConfig(sb.Config(t)))
	sb.User(t, "app", 1)
	sb.Fault(t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", Kind: "unavailable", After: true})
	_, _, err := k.Create(ctx, "app")
	var lost *iamkeys.AnswerLost
	if !errors.As(err, &lost) || !errors.As(err, new(*rotation.KeyLimitReached)) || len(lost.Limit.Keys) != 2 {
		t.Fatalf("after a lost answer: %v, want AnswerLost naming both keys", err)
	}
	_, _, err = k.Create(ctx, "app")
	if errors.As(err, &lost) || !errors.As(err, new(*rotation.KeyLimitReached)) {
		t.Fatalf("refused at the first try: %v, want a plain KeyLimitReached", err)
	}
}
