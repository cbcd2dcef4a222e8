package record_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func newStore(t *testing.T) *record.Store {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	return record.New(secretsmanager.NewFromConfig(sb.Config(t)))
}

// The whole life of a record: claim (the lock), key, promote, release.
func TestRecordLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const user, execA, execB = "app", "arn:aws:states:us-east-1:111122223333:execution:rotation:a", "arn:aws:states:us-east-1:111122223333:execution:rotation:b"
	arn, err := s.Ensure(ctx, user)
	if err != nil || arn == "" {
		t.Fatalf("Ensure: %v", err)
	}
	if again, err := s.Ensure(ctx, user); err != nil || again != arn {
		t.Fatalf("Ensure twice: %v %s != %s", err, again, arn)
	}
	if _, ok, err := s.Staged(ctx, user, record.Pending); err != nil || ok {
		t.Fatalf("a new record holds no lock: %v %v", ok, err)
	}

	claim, err := s.Claim(ctx, user, execA, "AKIAOLD", "")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if again, err := s.Claim(ctx, user, execA, "AKIAOLD", ""); err != nil || again != claim {
		t.Fatalf("a retried claim is the same claim: %v %s", err, again)
	}
	_, err = s.Claim(ctx, user, execB, "AKIAOLD", "")
	var busy *rotation.RotationInProgress
	if !errors.As(err, &busy) || busy.Execution != execA {
		t.Fatalf("second claim: got %v, want RotationInProgress held by A", err)
	}

	key := rotation.NewCredential("AKIANEW", "secret-value-for-the-record-test-000000")
	v, err := s.PutKey(ctx, user, execA, "AKIAOLD", key)
	if err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if again, err := s.PutKey(ctx, user, execA, "AKIAOLD", key); err != nil || again != v {
		t.Fatalf("PutKey retried: %v %s != %s", err, again, v)
	}
	got, ok, err := s.KeyVersion(ctx, user, execA)
	if err != nil || !ok || got.AccessKeyID != "AKIANEW" {
		t.Fatalf("KeyVersion: %v %v %+v", ok, err, got)
	}
	if _, ok, err := s.KeyVersion(ctx, user, execB); err != nil || ok {
		t.Fatalf("KeyVersion of an execution that wrote none: %v %v", ok, err)
	}
	read, err := s.Key(ctx, user, v)
	if err != nil || read.Secret() != key.Secret() {
		t.Fatalf("Key: %v", err)
	}
	pending, ok, err := s.Staged(ctx, user, record.Pending)
	if err != nil || !ok || pending.ID != v || pending.Execution != execA {
		t.Fatalf("AWSPENDING moved to the key version, still A's lock: %+v %v %v", pending, ok, err)
	}

	if err := s.Promote(ctx, user, v); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if err := s.Promote(ctx, user, v); err != nil {
		t.Fatalf("Promote retried: %v", err)
	}
	cur, ok, err := s.Staged(ctx, user, record.Current)
	if err != nil || !ok || cur.ID != v {
		t.Fatalf("AWSCURRENT after promote: %+v %v %v", cur, ok, err)
	}
	if err := s.Release(ctx, user, execB); err != nil {
		t.Fatalf("Release by a non-holder is a no-op: %v", err)
	}
	if _, ok, _ := s.Staged(ctx, user, record.Pending); !ok {
		t.Fatal("a non-holder released the lock")
	}
	if err := s.Release(ctx, user, execA); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, ok, _ := s.Staged(ctx, user, record.Pending); ok {
		t.Fatal("lock still held after Release")
	}
	// Free again: the next run can claim now.
	if _, err := s.Claim(ctx, user, execB+"-next", "AKIANEW", ""); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// A dead run's lock is taken over by compare-and-swap: only from the
// version it was on.
func TestTakeover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const user = "app"
	if _, err := s.Ensure(ctx, user); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Claim(ctx, user, "exec-dead", "AKIAOLD", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, user, "exec-first", "AKIAOLD", dead); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	// A second run that also saw the dead run's lock comes too late.
	if _, err := s.Claim(ctx, user, "exec-late", "AKIAOLD", dead); !errors.As(err, new(*rotation.RotationInProgress)) {
		t.Fatalf("takeover from a stale version: got %v, want RotationInProgress", err)
	}
	v, ok, err := s.Staged(ctx, user, record.Pending)
	if err != nil || !ok || v.Execution != "exec-first" {
		t.Fatalf("after takeover: %+v %v %v", v, ok, err)
	}
}
