package record_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Intents against the sandbox's Secrets Manager: an intent takes the lock's
// AWSPENDING stage and stays with the execution; a claim that takes over a
// dead run carries its intents; an intent holds no secret; Holds tells a
// recorded key from one no version holds; KeepForResume keeps a dead run's
// key version labelled after the claim takes AWSPENDING off it.
func TestIntents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const user, execA, execB = "app", "arn:aws:states:us-east-1:111122223333:execution:rotation:a", "arn:aws:states:us-east-1:111122223333:execution:rotation:b"
	if _, err := s.Ensure(ctx, user); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, user, execA, "AKIAOLD", ""); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	one := record.Intent{Execution: execA, Attempt: 1, At: at, Until: at.Add(time.Minute), Before: []string{"AKIAOLD"}}
	v1, err := s.PutIntent(ctx, user, execA, "AKIAOLD", []record.Intent{one})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.PutIntent(ctx, user, execA, "AKIAOLD", []record.Intent{one}); err != nil || again != v1 {
		t.Fatalf("a retried intent is the same version: %v %s != %s", err, again, v1)
	}
	lock, ok, err := s.Staged(ctx, user, record.Pending)
	if err != nil || !ok || lock.ID != v1 || lock.Execution != execA || len(lock.Intents) != 1 || !lock.Intents[0].At.Equal(at) || lock.AccessKeyID != "" {
		t.Fatalf("the intent holds the lock: %+v %v %v", lock, ok, err)
	}

	// A re-run takes over the dead run's lock: its claim carries the intent.
	claim, err := s.Claim(ctx, user, execB, "AKIAOLD", lock.ID, lock.Intents...)
	if err != nil {
		t.Fatal(err)
	}
	lock, _, err = s.Staged(ctx, user, record.Pending)
	if err != nil || lock.ID != claim || lock.Execution != execB || len(lock.Intents) != 1 || lock.Intents[0].Execution != execA {
		t.Fatalf("the claim carries the dead run's intent: %+v %v", lock, err)
	}

	key := rotation.NewCredential("AKIANEWKEY0000000001", strings.Repeat("s", 40))
	if held, err := s.Holds(ctx, user, key.AccessKeyID, []string{execA, execB}); err != nil || held {
		t.Fatalf("before PutKey no version holds the key: %v %v", held, err)
	}
	kv, err := s.PutKey(ctx, user, execB, "AKIAOLD", key)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := s.Holds(ctx, user, key.AccessKeyID, []string{execB}); err != nil || !held {
		t.Fatalf("after PutKey its version holds the key: %v %v", held, err)
	}
	if err := s.KeepForResume(ctx, user, kv); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepForResume(ctx, user, kv); err != nil {
		t.Fatalf("KeepForResume twice: %v", err)
	}
	v, ok, err := s.Staged(ctx, user, "KEYROTATOR_RESUME")
	if err != nil || !ok || v.ID != kv || !slices.Contains(v.Stages, record.Pending) {
		t.Fatalf("the key version is labelled for the resume: %+v %v %v", v, ok, err)
	}

	// Accounts: outside Before, inside [At-margin, Until+margin].
	for _, tc := range []struct {
		id      string
		created time.Time
		want    bool
	}{
		{"AKIANEW", at.Add(10 * time.Second), true},
		{"AKIANEW", at.Add(-30 * time.Second), true},
		{"AKIANEW", at.Add(-2 * time.Minute), false},
		{"AKIANEW", at.Add(2*time.Minute + time.Second), false},
		{"AKIAOLD", at.Add(10 * time.Second), false},
	} {
		if got := one.Accounts(tc.id, tc.created, time.Minute); got != tc.want {
			t.Errorf("Accounts(%s, at%+v) = %v, want %v", tc.id, tc.created.Sub(at), got, tc.want)
		}
	}
}
