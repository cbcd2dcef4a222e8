package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Every step refuses execution data that lacks what its state needs, or
// that says an earlier state did not do its part, before any call, with an
// error the state machine catches (Internal for data only a bug can make).
func TestStepsRefuseWhatTheirStateMayNotDo(t *testing.T) {
	t.Parallel()
	// full is a pipeline at CleanupTargets, with every state's data.
	full := func(t *testing.T) *rotationRun {
		return newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour).deleted()
	}
	tests := []struct {
		name  string
		edit  func(d *rotation.ExecutionData)
		run   func(p *rotationRun) func(context.Context, rotation.TaskInput) stepInvocation
		want  string
		cause string // a word the error must hold
	}{
		{"CreateKey without a plan", func(d *rotation.ExecutionData) { d.Plan = nil }, runsStep("createkey", func(p *rotationRun) stepRun[rotation.NewKey] { return p.create.Run }), "Internal", "no plan"},
		{"UpdateSecret without a key", func(d *rotation.ExecutionData) { d.Key = nil }, runsStep("updatesecret", func(p *rotationRun) stepRun[rotation.Receipt] {
			return (&UpdateTarget{Records: p.records, Target: p.e.target}).Run
		}), "Internal", "lacks"},
		{"PlanSecret without a target", func(d *rotation.ExecutionData) { d.Target = nil }, func(p *rotationRun) func(context.Context, rotation.TaskInput) stepInvocation {
			return func(ctx context.Context, in rotation.TaskInput) stepInvocation {
				in.Kind = "plan"
				return invokeLambda(ctx, "updatesecret", (&UpdateTarget{Records: p.records, Target: p.e.target}).Run, in)
			}
		}, "Internal", "lacks"},
		{"Promote with a target that has no receipt", func(d *rotation.ExecutionData) { d.Receipts = d.Receipts[:1] }, runsStep("promote", func(p *rotationRun) stepRun[rotation.Cutover] {
			return (&Promote{Records: p.records}).Run
		}), "TargetFailed", "worker"},
		{"Promote with a receipt of another key", func(d *rotation.ExecutionData) { d.Receipts[0].NewKeyID = oldID }, runsStep("promote", func(p *rotationRun) stepRun[rotation.Cutover] {
			return (&Promote{Records: p.records}).Run
		}), "TargetFailed", "app"},
		{"Promote without a key", func(d *rotation.ExecutionData) { d.Key = nil }, runsStep("promote", func(p *rotationRun) stepRun[rotation.Cutover] {
			return (&Promote{Records: p.records}).Run
		}), "Internal", "no plan or key"},
		{"VerifyOldKeyUnused without a cut-over", func(d *rotation.ExecutionData) { d.Promote = nil }, runsStep("verifyoldkeyunused", func(p *rotationRun) stepRun[rotation.Verification] {
			return p.verifier().Run
		}), "Internal", "cut-over"},
		{"DeactivateOldKey unverified", func(d *rotation.ExecutionData) { d.Verify.Unused = false }, runsStep("deactivateoldkey", func(p *rotationRun) stepRun[rotation.KeyChange] {
			return (&DeactivateOldKey{Keys: p.keys}).Run
		}), "OldKeyStillInUse", "not deactivating"},
		{"DeactivateOldKey with the new key as the old", func(d *rotation.ExecutionData) { d.Plan.OldKeyID = d.Key.KeyID }, runsStep("deactivateoldkey", func(p *rotationRun) stepRun[rotation.KeyChange] {
			return (&DeactivateOldKey{Keys: p.keys}).Run
		}), "Internal", "the old key is the new key"},
		{"DeactivateOldKey without a key", func(d *rotation.ExecutionData) { d.Key = nil }, runsStep("deactivateoldkey", func(p *rotationRun) stepRun[rotation.KeyChange] {
			return (&DeactivateOldKey{Keys: p.keys}).Run
		}), "Internal", "no plan or key"},
		{"DeleteOldKey without a cut-over", func(d *rotation.ExecutionData) { d.Promote = nil }, runsStep("deleteoldkey", func(p *rotationRun) stepRun[rotation.KeyChange] {
			return (&DeleteOldKey{Keys: p.keys}).Run
		}), "Internal", "cut-over"},
		{"CleanupTargets before the old key is deleted", func(d *rotation.ExecutionData) { d.Retire.Status = "Inactive" }, runsStep("cleanuptargets", func(p *rotationRun) stepRun[CleanupResult] {
			return p.cleanupStep().Run
		}), "Internal", "not deleted"},
		{"CleanupTargets without a plan", func(d *rotation.ExecutionData) { d.Plan = nil }, runsStep("cleanuptargets", func(p *rotationRun) stepRun[CleanupResult] {
			return p.cleanupStep().Run
		}), "Internal", "no plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := full(t)
			p.data.Target = &p.data.Plan.Targets[0]
			tt.edit(&p.data)
			p.e.l.off = false
			inv := tt.run(p)(context.Background(), p.in(""))
			if got := errorTypeOf(inv.err); got != tt.want || !strings.Contains(inv.err.Error(), tt.cause) {
				t.Fatalf("errorType %q (%v), want %s saying %q", got, inv.err, tt.want, tt.cause)
			}
			if calls := p.e.l.recorded(); len(calls) > 0 {
				t.Errorf("refused after calls: %v", calls)
			}
		})
	}
}

type stepRun[Out any] func(context.Context, rotation.TaskInput) (Out, error)

// runsStep is a step, built over a pipeline, invoked as its Lambda.
func runsStep[Out any](task string, step func(p *rotationRun) stepRun[Out]) func(p *rotationRun) func(context.Context, rotation.TaskInput) stepInvocation {
	return func(p *rotationRun) func(context.Context, rotation.TaskInput) stepInvocation {
		return func(ctx context.Context, in rotation.TaskInput) stepInvocation {
			return invokeLambda(ctx, task, step(p), in)
		}
	}
}

// A retired key already off or gone is done, with no change (I5).
func TestDeactivateOldKeyAlreadyDone(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, status string
		gone         bool
	}{{"off", "Inactive", false}, {"gone", "Deleted", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified()
			if tt.gone {
				p.e.w.iam.keys = p.e.w.iam.keys[1:]
			} else {
				keyByID(p.e.w, oldID).status = "Inactive"
			}
			p.e.l.off = false
			got, err := (&DeactivateOldKey{Keys: p.keys}).Run(setupCtx, p.in(""))
			if err != nil || got != (rotation.KeyChange{KeyID: oldID, Status: tt.status}) {
				t.Fatalf("%+v %v", got, err)
			}
			if w := writesOf(p.e.l.recorded()); len(w) > 0 {
				t.Errorf("changed something: %v", w)
			}
		})
	}
}

// CleanupTargets cleans every target it can and releases the lock even
// when targets fail, then names every one that failed.
func TestCleanupTargetsNamesEveryFailedTarget(t *testing.T) {
	t.Parallel()
	p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour).deleted()
	p.e.l.off = false
	// Both targets' clean-ups fail (the call log fails one call a run).
	p.targets[rotation.TargetSecret] = failingCleaner{p.e.target}
	res, err := p.cleanupStep().Run(setupCtx, p.in(""))
	var tf *rotation.TargetFailed
	if !asTargetFailed(err, &tf) || tf.Target != "app, worker" || !strings.Contains(tf.Reason, "app: ") || !strings.Contains(tf.Reason, "worker: ") {
		t.Fatalf("err = %v, want one TargetFailed naming app and worker", err)
	}
	if !res.LockReleased {
		t.Error("the lock was kept: a failed clean-up must not hold the user's lock")
	}
	_, records := p.raw()
	if _, held, err := records.Staged(setupCtx, ckUser, record.Pending); err != nil || held {
		t.Errorf("lock held %v (%v)", held, err)
	}
}

// failingCleaner is a kind whose every clean-up fails as a target does.
type failingCleaner struct{ *targetStub }

func (f failingCleaner) Cleanup(_ context.Context, tg rotation.Target, _ rotation.Receipt) (string, error) {
	return "", &rotation.TargetFailed{Target: tg.Name, Reason: "the old credential is still attached to a group"}
}

func asTargetFailed(err error, tf **rotation.TargetFailed) bool {
	t, ok := err.(*rotation.TargetFailed) //nolint:errorlint // the step returns it unwrapped: that is what is tested
	*tf = t
	return ok
}
