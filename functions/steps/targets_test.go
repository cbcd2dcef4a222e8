package steps

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// plainTarget is a kind that only plans and updates: no usage, no cleanup.
type plainTarget struct{}

func (plainTarget) Plan(context.Context, rotation.Target, string, string) (rotation.Receipt, error) {
	panic("not used")
}
func (plainTarget) Update(context.Context, rotation.Target, string, string, rotation.Credential) (rotation.Receipt, error) {
	panic("not used")
}

// capableTarget reports usage and cleans up, recording whom it was asked about.
type capableTarget struct {
	plainTarget
	uses    []rotation.CredentialUse
	cleanup map[string]error // by target name; nil: cleaned
	asked   []string
}

func (c *capableTarget) Usage(_ context.Context, tg rotation.Target, r rotation.Receipt) ([]rotation.CredentialUse, error) {
	c.asked = append(c.asked, "usage "+tg.Name+" "+r.Target)
	return c.uses, nil
}

func (c *capableTarget) Cleanup(_ context.Context, tg rotation.Target, r rotation.Receipt) (string, error) {
	c.asked = append(c.asked, "cleanup "+tg.Name+" "+r.Target)
	if err := c.cleanup[tg.Name]; err != nil {
		return "", err
	}
	return tg.Name + " (" + tg.Type + "): deleted old credential c-1", nil
}

// releaseOnly is the record as CleanupTargets uses it: it releases the lock.
type releaseOnly struct {
	recordStore // nil: any other call panics
	released    []string
}

func (r *releaseOnly) Release(_ context.Context, user, execution string) error {
	r.released = append(r.released, user+" "+execution)
	return nil
}

// twoKinds is a plan with a target of a kind that can do more (soracom)
// and one that cannot (secret), each with its receipt.
func twoKinds() rotation.ExecutionData {
	return rotation.ExecutionData{
		Execution: "exec-1",
		Plan: &rotation.Plan{User: "u", OldKeyID: "OLD", VerifyAttempts: 3, Targets: []rotation.Target{
			{Type: rotation.TargetSecret, Name: "app"}, {Type: rotation.TargetSoracom, Name: "funnel"}, {Type: rotation.TargetSoracom, Name: "funk"},
		}},
		Key: &rotation.NewKey{KeyID: "NEW"},
		Receipts: []rotation.Receipt{
			{Target: "app", Type: rotation.TargetSecret}, {Target: "funnel", Type: rotation.TargetSoracom}, {Target: "funk", Type: rotation.TargetSoracom},
		},
		Retire: &rotation.KeyChange{KeyID: "OLD", Status: "Deleted"},
	}
}

// VerifyOldKeyUnused asks every receipt's kind that reports usage, and no
// other, and words the evidence with the kind's service.
func TestVerifyAsksTheKindsThatReportUsage(t *testing.T) {
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := cut.Add(7 * 24 * time.Hour)
	tests := []struct {
		name    string
		oldUsed time.Time
		unused  bool
		says    []string
	}{
		{"old credential unused", cut.Add(-time.Hour), true, []string{"no use of old key OLD", "; SORACOM credential c-1 (old, target funnel) last used 2026-10-31T23:00:00Z"}},
		{"old credential used after the cut-over", cut.Add(24 * time.Hour), false, []string{"SORACOM used the old credential c-1 of target funnel at 2026-11-02T00:00:00Z, 24h0m0s after the cut-over: something there still uses it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sora := &capableTarget{uses: []rotation.CredentialUse{{Target: "funnel", Credential: "c-1", Role: "old", LastUsed: at(tt.oldUsed)}}}
			v := &VerifyOldKeyUnused{Keys: &fakeKeys{}, Trail: fakeTrail{}, Targets: Targets{rotation.TargetSoracom: sora, rotation.TargetSecret: plainTarget{}}}
			d := twoKinds()
			d.Promote = &rotation.Cutover{At: cut}
			res, err := v.Run(context.Background(), rotation.TaskInput{Now: now, Data: d})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"usage funnel funnel", "usage funk funk"}; !slices.Equal(sora.asked, want) {
				t.Errorf("asked %q, want %q", sora.asked, want)
			}
			if res.Unused != tt.unused || len(res.CredentialUses) != 2 {
				t.Errorf("unused %v, %d credential uses; want %v, 2", res.Unused, len(res.CredentialUses), tt.unused)
			}
			for _, s := range tt.says {
				if !strings.Contains(res.Evidence, s) {
					t.Errorf("evidence %q does not say %q", res.Evidence, s)
				}
			}
		})
	}
	// Given no kind that reports usage, IAM's and CloudTrail's evidence only.
	v := &VerifyOldKeyUnused{Keys: &fakeKeys{}, Trail: fakeTrail{}, Targets: Targets{rotation.TargetSecret: plainTarget{}}}
	d := twoKinds()
	d.Promote = &rotation.Cutover{At: cut}
	if res, err := v.Run(context.Background(), rotation.TaskInput{Now: now, Data: d}); err != nil || !res.Unused || res.CredentialUses != nil {
		t.Errorf("without a usage reporter: %+v %v", res, err)
	}
}

// CleanupTargets asks every target whose kind is a Cleaner, says "nothing
// kept" of the others, and releases the lock even when a target's cleanup
// failed, then returns that failure.
func TestCleanupAsksTheKindsThatCleanUp(t *testing.T) {
	refused := &rotation.TargetFailed{Target: "funk", Reason: "kept old credential c-9: still used by g1 (SoracomFunk)"}
	tests := []struct {
		name    string
		fail    map[string]error
		lines   []string
		wantErr error
	}{
		{"every one cleaned", nil, []string{"app (secret): nothing kept for the old key", "funnel (soracom): deleted old credential c-1", "funk (soracom): deleted old credential c-1"}, nil},
		{"one kept its credential", map[string]error{"funk": refused}, []string{"app (secret): nothing kept for the old key", "funnel (soracom): deleted old credential c-1", "funk (soracom): " + refused.Reason}, refused},
		{"an unexpected error", map[string]error{"funnel": errFake}, nil, errFake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sora := &capableTarget{cleanup: tt.fail}
			rec := &releaseOnly{}
			c := &CleanupTargets{Records: rec, Targets: Targets{rotation.TargetSoracom: sora, rotation.TargetSecret: plainTarget{}}}
			res, err := c.Run(context.Background(), rotation.TaskInput{Data: twoKinds()})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(res.Targets, tt.lines) {
				t.Errorf("lines %q, want %q", res.Targets, tt.lines)
			}
			released := !errors.Is(tt.wantErr, errFake) // an unexpected error is retried: the lock stays
			if res.LockReleased != released || (len(rec.released) == 1) != released {
				t.Errorf("lock released %v (%q), want %v", res.LockReleased, rec.released, released)
			}
		})
	}
	// Before the old key is deleted nothing may go.
	c := &CleanupTargets{Records: &releaseOnly{}, Targets: Targets{rotation.TargetSoracom: &capableTarget{}}}
	d := twoKinds()
	d.Retire.Status = "Inactive"
	if _, err := c.Run(context.Background(), rotation.TaskInput{Data: d}); err == nil {
		t.Error("cleaned up before the old key was deleted")
	}
}
