package steps

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/keyrotator/keyrotator/functions/aws/alerts"
	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// The scenarios of every step (scenario_test.go runs them): each starts
// from the world a rotation leaves just before its state, built by running
// the states before it clean, unrecorded.

// scenInput has two targets of one kind, so the Preflight compares places
// and Distribute, Verify and Cleanup each handle more than one.
const scenInput = `{"user":"` + ckUser + `","targets":[{"type":"secret","name":"app","secretId":"app/key"},{"type":"secret","name":"worker","secretId":"worker/key"}]}`

// rotationRun is one rotation of ckUser by execA over the fakes, run state by
// state.
type rotationRun struct {
	t        *testing.T
	e        *stepEnv
	keys     *iamkeys.Keys
	records  *record.Store
	validate *Validate
	create   *CreateKey
	targets  Targets
	trail    *trailStub
	running  map[string]bool
	data     rotation.ExecutionData
}

func newRotationRun(t *testing.T) *rotationRun {
	t.Helper()
	w := newWorld()
	l := &callLog{off: true}
	e := &stepEnv{w: w, l: l, sns: &snsStub{l: l}, target: newTargetStub(l, rotation.TargetSecret)}
	keys := iamkeys.New(iamStub{l: l, f: w.iam, secrets: &e.secrets})
	records := record.New(smStub{l: l, f: w.sm})
	running := map[string]bool{execA: true}
	// The old key was last used a day before the run, by the app.
	used := w.now.Add(-24 * time.Hour)
	w.iam.keys[0].used = &rotation.KeyUse{KeyID: oldID, LastUsed: &used, Service: "ses", Region: "us-east-1"}
	ts := &trailStub{l: l, events: map[string][]cttypes.Event{}, iam: w.iam}
	p := &rotationRun{
		t: t, e: e, keys: keys, records: records, running: running,
		validate: &Validate{Schema: subset.Check, Keys: keys, Records: records, Executions: executions.New(sfnStub{l: l, running: running}), Makers: trail.New(ts)},
		create: &CreateKey{Keys: keys, Records: records, Prover: proverStub{l: l, f: w.iam}, Makers: trail.New(ts), Self: w.iam,
			ProveFor: 2 * time.Second, Clock: w.clock},
		targets: Targets{rotation.TargetSecret: e.target},
		trail:   ts,
		data:    rotation.ExecutionData{Input: json.RawMessage(scenInput), Execution: execA},
	}
	return p
}

// in is the state's event now.
func (p *rotationRun) in(kind string) rotation.TaskInput {
	return rotation.TaskInput{Kind: kind, Now: p.e.w.now, Data: p.data}
}

// must fails the test when a setup state fails.
func (p *rotationRun) must(state string, err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatalf("setup: %s: %v", state, err)
	}
}

var setupCtx = context.Background()

func (p *rotationRun) locked() *rotationRun {
	p.t.Helper()
	plan, err := p.validate.Run(setupCtx, p.in("lock"))
	p.must("TakeLock", err)
	p.data.Plan = &plan
	return p
}

func (p *rotationRun) keyed() *rotationRun {
	p.t.Helper()
	k, err := p.create.Run(setupCtx, p.in(""))
	p.must("CreateKey", err)
	p.data.Key = &k
	return p
}

func (p *rotationRun) distributed() *rotationRun {
	p.t.Helper()
	u := &UpdateTarget{Records: p.records, Target: p.e.target}
	for _, tg := range p.data.Plan.Targets {
		in := p.in("")
		in.Data.Target = &tg
		r, err := u.Run(setupCtx, in)
		p.must("Update "+tg.Name, err)
		p.data.Receipts = append(p.data.Receipts, r)
	}
	return p
}

func (p *rotationRun) promoted() *rotationRun {
	p.t.Helper()
	c, err := (&Promote{Records: p.records}).Run(setupCtx, p.in(""))
	p.must("Promote", err)
	p.data.Promote = &c
	return p
}

// waited is a Wait state: the workflow's clock moves on.
func (p *rotationRun) waited(d time.Duration) *rotationRun {
	p.e.w.now = p.e.w.now.Add(d)
	return p
}

func (p *rotationRun) verifier() *VerifyOldKeyUnused {
	return &VerifyOldKeyUnused{Keys: p.keys, Trail: trail.New(p.trail), Targets: p.targets}
}

func (p *rotationRun) verified() *rotationRun {
	p.t.Helper()
	v, err := p.verifier().Run(setupCtx, p.in(""))
	p.must("VerifyOldKeyUnused", err)
	if !v.Unused {
		p.t.Fatalf("setup: the old key is not found unused: %s", v.Evidence)
	}
	p.data.Verify = &v
	return p
}

func (p *rotationRun) deactivated() *rotationRun {
	p.t.Helper()
	kc, err := (&DeactivateOldKey{Keys: p.keys}).Run(setupCtx, p.in(""))
	p.must("DeactivateOldKey", err)
	p.data.Retire = &kc
	return p
}

func (p *rotationRun) deleted() *rotationRun {
	p.t.Helper()
	kc, err := (&DeleteOldKey{Keys: p.keys}).Run(setupCtx, p.in(""))
	p.must("DeleteOldKey", err)
	p.data.Retire = &kc
	return p
}

func (p *rotationRun) cleanupStep() *CleanupTargets {
	return &CleanupTargets{Records: p.records, Targets: p.targets}
}

// recording starts the log: the step under test runs next.
func (p *rotationRun) recording(run func(ctx context.Context) stepInvocation) *stepEnv {
	p.e.l.off = false
	p.e.run = run
	return p.e
}

// raw are the adapters straight over the world, unrecorded, for checks.
func (p *rotationRun) raw() (*iamkeys.Keys, *record.Store) {
	return iamkeys.New(p.e.w.iam), record.New(p.e.w.sm)
}

// writesOf are the calls that changed something.
func writesOf(calls []stepCall) []stepCall {
	return slices.DeleteFunc(slices.Clone(calls), func(c stepCall) bool { return !c.write })
}

func keyByID(w *world, id string) *iamKey {
	if i := w.iam.find(id); i >= 0 {
		return w.iam.keys[i]
	}
	return nil
}

// accountedKeys is I3 and I5 after CreateKey or TakeLock: at most two
// keys, each the old key, held by a record version, or an orphan the
// lock's intents account for (the next attempt deletes it).
func (p *rotationRun) accountedKeys(t *testing.T) {
	t.Helper()
	keys, records := p.raw()
	r := &rig{w: p.e.w, records: records, create: &CreateKey{Keys: keys, Records: records, Makers: p.e.w.iam, Self: p.e.w.iam}}
	r.accounted(t)
}

func TestStepScenarios(t *testing.T) {
	t.Parallel()
	asl := loadASL(t)
	for _, sc := range stepScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, asl, sc)
		})
	}
}

// userGone is what IAM's NoSuchEntity on the user's calls is named.
var userGone = map[string]string{"IAM.GetUser/notfound": "UserNotFound", "IAM.ListAccessKeys/notfound": "UserNotFound"}

func stepScenarios() []stepScenario {
	return []stepScenario{
		{
			name: "Validate", state: "Validate",
			wantFor: userGone,
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t)
				return p.checkedReadOnly(p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in(""))
				}))
			},
		},
		{
			// A scheduled run whose key is younger than minKeyAgeDays is
			// skipped: Validate and TakeLock plan the skip and write nothing.
			name: "TakeLock/skip", state: "TakeLock", wantFor: userGone,
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t)
				p.data.Input = json.RawMessage(strings.Replace(scenInput, `{"user"`, `{"trigger":"schedule","minKeyAgeDays":120,"user"`, 1))
				e := p.checkedReadOnly(p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in("lock"))
				}))
				check := e.check
				e.check = func(t *testing.T, inv stepInvocation) {
					check(t, inv)
					var plan rotation.Plan
					if inv.err == nil && (json.Unmarshal(inv.out, &plan) != nil || !plan.Skip || !strings.Contains(plan.SkipReason, "100 days old")) {
						t.Errorf("a 100-day-old key under minKeyAgeDays 120 is not skipped: %s", inv.out)
					}
				}
				return e
			},
		},
		{
			name: "TakeLock", state: "TakeLock",
			wantFor: userGone,
			recovers: map[string]string{
				"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Claim re-reads the lock: a claim whose answer was lost happened",
			},
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t)
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in("lock"))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.accountedKeys(t)
					p.lockIsOursOrFree(t, inv)
					noIAMWrites(t, e)
				}
				return e
			},
		},
		{
			// A dead run (execB) took the lock and made a key it never
			// recorded: TakeLock takes the lock over and plans the orphan.
			name: "TakeLock/takeover", state: "TakeLock",
			wantFor: userGone,
			recovers: map[string]string{
				"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Claim re-reads the lock: a claim whose answer was lost happened",
			},
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).deadRunOrphan()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in("lock"))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.accountedKeys(t)
					p.lockIsOursOrFree(t, inv)
					noIAMWrites(t, e)
					var plan rotation.Plan
					if inv.err == nil && (json.Unmarshal(inv.out, &plan) != nil || len(plan.OrphanKeyIDs) != 1) {
						t.Errorf("the dead run's orphan is not planned: %s", inv.out)
					}
				}
				return e
			},
			clean: func(t *testing.T, calls []stepCall) {
				if !slices.ContainsFunc(calls, func(c stepCall) bool { return c.op == "DescribeExecution" }) {
					t.Errorf("the takeover never asked whether the holder runs: %v", calls)
				}
			},
		},
		{
			// A dead run (execB) made and recorded its key: TakeLock takes
			// the lock over and plans to resume that key.
			name: "TakeLock/resume", state: "TakeLock",
			wantFor: userGone,
			recovers: map[string]string{
				"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Claim re-reads the lock: a claim whose answer was lost happened",
			},
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).deadRunRecorded()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in("lock"))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.accountedKeys(t)
					p.lockIsOursOrFree(t, inv)
					noIAMWrites(t, e)
					var plan rotation.Plan
					if inv.err == nil && (json.Unmarshal(inv.out, &plan) != nil || plan.ResumeKeyID != "AKIANEW0000000000001") {
						t.Errorf("the dead run's key is not resumed: %s", inv.out)
					}
				}
				return e
			},
		},
		{
			name: "CreateKey", state: "CreateKey",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked()
				return p.checkedCreate(p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				}))
			},
			recovers: map[string]string{
				"STS.GetCallerIdentity/throttle": "the proof retries until ProveFor",
				"STS.GetCallerIdentity/denied":   "the proof retries until ProveFor (IAM's propagation)",
				"IAM.CreateAccessKey/throttle":   "iamkeys.Create retries a transient error itself",
			},
		},
		{
			name: "CreateKey/orphan", state: "CreateKey",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).deadRunOrphan().locked()
				return p.checkedCreate(p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				}))
			},
			recovers: map[string]string{
				"STS.GetCallerIdentity/throttle": "the proof retries until ProveFor",
				"STS.GetCallerIdentity/denied":   "the proof retries until ProveFor (IAM's propagation)",
				"IAM.CreateAccessKey/throttle":   "iamkeys.Create retries a transient error itself",
			},
		},
		{
			// The re-run resumes the dead run's recorded key: no new key.
			name: "CreateKey/resume", state: "CreateKey",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).deadRunRecorded().locked()
				if p.data.Plan.ResumeKeyID == "" {
					t.Fatalf("setup: TakeLock did not plan to resume: %+v", p.data.Plan)
				}
				e := p.checkedCreate(p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				}))
				check := e.check
				e.check = func(t *testing.T, inv stepInvocation) {
					check(t, inv)
					for _, c := range e.runCalls() {
						if c.op == "CreateAccessKey" {
							t.Errorf("a resumed run made a key: %v", c)
						}
					}
				}
				return e
			},
		},
		{
			name: "UpdateSecret", state: "UpdateSecret",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed()
				u := &UpdateTarget{Records: p.records, Target: p.e.target}
				tg := p.data.Plan.Targets[0]
				e := p.recording(func(ctx context.Context) stepInvocation {
					in := p.in("")
					in.Data.Target = &tg
					return invokeLambda(ctx, "updatesecret", u.Run, in)
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					held := p.e.target.held[tg.Name]
					if held != "" && held != p.data.Key.KeyID {
						t.Errorf("target %s holds %s, not the new key %s", tg.Name, held, p.data.Key.KeyID)
					}
					if k := keyByID(p.e.w, p.data.Key.KeyID); held != "" && (k == nil || p.e.target.got[tg.Name] != k.secret) {
						t.Errorf("target %s was given another secret than the new key's", tg.Name)
					}
					if inv.err == nil && held == "" {
						t.Errorf("UpdateSecret succeeded and the target holds no key: %s", inv.out)
					}
					noIAMWrites(t, e)
				}
				return e
			},
		},
		{
			name: "PlanSecret", state: "PlanSecret",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t)
				plan, err := p.validate.Run(setupCtx, p.in(""))
				p.must("Validate", err)
				p.data.Plan = &plan
				u := &UpdateTarget{Records: p.records, Target: p.e.target}
				tg := plan.Targets[0]
				return p.checkedReadOnly(p.recording(func(ctx context.Context) stepInvocation {
					in := p.in("plan")
					in.Data.Target = &tg
					return invokeLambda(ctx, "updatesecret", u.Run, in)
				}))
			},
			recovers: map[string]string{"target:secret.Plan(worker)": "a peer whose own plan fails is left to its own item, which fails"},
		},
		{
			name: "Promote", state: "Promote",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "promote", (&Promote{Records: p.records}).Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.stagesAfterPromote(t, inv)
					noIAMWrites(t, e)
				}
				return e
			},
		},
		{
			name: "VerifyOldKeyUnused", state: "VerifyOldKeyUnused",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour)
				v := p.verifier()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "verifyoldkeyunused", v.Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					if w := writesOf(e.l.recorded()); len(w) > 0 {
						t.Errorf("VerifyOldKeyUnused changed something: %v", w)
					}
					var v rotation.Verification
					if inv.err == nil && (json.Unmarshal(inv.out, &v) != nil || !v.Unused) {
						t.Errorf("the old key unused for a week is not found unused: %s", inv.out)
					}
				}
				return e
			},
		},
		{
			// CloudTrail and the target's service both saw the old key
			// after the cut-over, on the last attempt: OldKeyStillInUse.
			name: "VerifyOldKeyUnused/inuse", state: "VerifyOldKeyUnused", wantClean: "OldKeyStillInUse",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour)
				late := p.data.Promote.At.Add(time.Hour)
				p.trail.events[oldID] = []cttypes.Event{{EventTime: &late, EventName: aws.String("GetSendQuota"), EventSource: aws.String("ses.amazonaws.com")}}
				p.e.target.old["worker"] = &late
				p.data.Verify = &rotation.Verification{Attempt: p.data.Plan.VerifyAttempts - 1}
				v := p.verifier()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "verifyoldkeyunused", v.Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					if w := writesOf(e.l.recorded()); len(w) > 0 {
						t.Errorf("VerifyOldKeyUnused changed something: %v", w)
					}
				}
				return e
			},
		},
		{
			name: "DeactivateOldKey", state: "DeactivateOldKey",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "deactivateoldkey", (&DeactivateOldKey{Keys: p.keys}).Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.newKeyUntouched(t)
					for _, c := range writesOf(e.l.recorded()) {
						if c.op != "UpdateAccessKey" || c.detail != oldID+" Inactive" {
							t.Errorf("DeactivateOldKey may only switch the old key off: %s", c)
						}
					}
					if old := keyByID(p.e.w, oldID); old == nil {
						t.Error("DeactivateOldKey deleted the old key")
					} else if inv.err == nil && old.status != "Inactive" {
						t.Errorf("DeactivateOldKey succeeded and the old key is %s", old.status)
					}
				}
				return e
			},
		},
		{
			name: "DeleteOldKey", state: "DeleteOldKey",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour)
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "deleteoldkey", (&DeleteOldKey{Keys: p.keys}).Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.newKeyUntouched(t)
					for _, c := range writesOf(e.l.recorded()) {
						if c.op != "DeleteAccessKey" || c.detail != oldID {
							t.Errorf("DeleteOldKey may only delete the old key: %s", c)
						}
					}
					if inv.err == nil && keyByID(p.e.w, oldID) != nil {
						t.Errorf("DeleteOldKey succeeded and the old key is still there: %s", inv.out)
					}
				}
				return e
			},
		},
		{
			// IAM reports, late, a use of the old key after the cut-over:
			// it is switched back on, not deleted (I2).
			name: "DeleteOldKey/lateuse", state: "DeleteOldKey", wantClean: "OldKeyStillInUse",
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour)
				late := p.data.Promote.At.Add(2 * time.Hour)
				keyByID(p.e.w, oldID).used = &rotation.KeyUse{KeyID: oldID, LastUsed: &late, Service: "ses", Region: "us-east-1"}
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "deleteoldkey", (&DeleteOldKey{Keys: p.keys}).Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.newKeyUntouched(t)
					if keyByID(p.e.w, oldID) == nil {
						t.Fatal("I2: the old key, used after the cut-over, was deleted")
					}
					for _, c := range writesOf(e.l.recorded()) {
						if c.op != "UpdateAccessKey" || c.detail != oldID+" Active" {
							t.Errorf("DeleteOldKey may only switch the old key back on here: %s", c)
						}
					}
				}
				return e
			},
		},
		{
			name: "CleanupTargets", state: "CleanupTargets",
			recovers: map[string]string{
				"Secrets Manager.UpdateSecretVersionStage/throttle_after": "record.Release re-reads the lock: a release whose answer was lost happened",
			},
			setup: func(t *testing.T) *stepEnv {
				p := newRotationRun(t).locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour).deleted()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "cleanuptargets", p.cleanupStep().Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					calls := e.runCalls()
					released := slices.IndexFunc(calls, func(c stepCall) bool { return c.op == "UpdateSecretVersionStage" })
					if released >= 0 && slices.ContainsFunc(calls[released:], func(c stepCall) bool { return c.op == "Cleanup" }) {
						t.Errorf("the lock was released before every target was cleaned: %v", calls)
					}
					noIAMWrites(t, e)
					_, records := p.raw()
					_, held, err := records.Staged(setupCtx, ckUser, record.Pending)
					if err != nil {
						t.Fatal(err)
					}
					if inv.err == nil && (held || len(p.e.target.gone) != 2) {
						t.Errorf("CleanupTargets succeeded: lock held %v, cleaned %v", held, p.e.target.gone)
					}
				}
				return e
			},
		},
		notifyScenario("NotifySuccess", "success", func(p *rotationRun) {
			p.locked().keyed().distributed().promoted().waited(7 * 24 * time.Hour).verified().deactivated().waited(24 * time.Hour).deleted()
			res, err := p.cleanupStep().Run(setupCtx, p.in(""))
			p.must("CleanupTargets", err)
			p.data.Cleanup = &res
		}),
		notifyScenario("AlertStillInUse", "warning", func(p *rotationRun) {
			p.locked().keyed().distributed().promoted()
			v, err := p.verifier().Run(setupCtx, p.in(""))
			p.must("VerifyOldKeyUnused", err)
			p.data.Verify = &v
		}),
		notifyScenario("Approve", "approval", func(p *rotationRun) {
			k := newKMS(&callLog{off: true})
			p.validate.Requests = kmsmac.New(k, hmacKeyARN)
			p.data.Input = json.RawMessage(signedFor(p.t, k, strings.Replace(scenInput, `{"user"`, `{"requireApproval":true,"approvers":["arn:aws:iam::111122223333:user/bob"],"user"`, 1), rotation.ExecutionNameOf(execA), "arn:aws:iam::111122223333:user/alice"))
			p.locked()
		}),
		notifyScenario("NotifyFailure", "failure", func(p *rotationRun) {
			p.locked().keyed()
			p.data.Failure = map[string]rotation.StateError{"Distribute": {Error: "TargetFailed", Cause: `{"errorType":"TargetFailed","errorMessage":"target \"app\" failed: 403"}`}}
		}),
	}
}

// notifyScenario is Notify in one of its states, after prepare.
func notifyScenario(state, kind string, prepare func(p *rotationRun)) stepScenario {
	return stepScenario{
		name: state, state: state,
		setup: func(t *testing.T) *stepEnv {
			p := newRotationRun(t)
			prepare(p)
			n := &Notify{Topic: alerts.New(p.e.sns, "arn:aws:sns:us-east-1:111122223333:keyrotator-alerts"), Records: p.records}
			e := p.recording(func(ctx context.Context) stepInvocation {
				in := p.in(kind)
				in.Token = "task-token-" + state
				return invokeLambda(ctx, "notify", n.Run, in)
			})
			e.check = func(t *testing.T, inv stepInvocation) {
				for _, m := range p.e.sns.sent {
					for _, s := range e.canaries() {
						if strings.Contains(m, s) {
							t.Errorf("I1: a secret value is in the alert: %s", m)
						}
					}
				}
				if inv.err == nil && len(p.e.sns.sent) == 0 {
					t.Error("Notify succeeded and published nothing")
				}
				// Approve keeps its request in the lock's version (issue 14);
				// nothing else writes.
				if w := writesOf(e.l.recorded()); slices.ContainsFunc(w, func(c stepCall) bool { return c.op != "Publish" && (kind != "approval" || c.op != "PutSecretValue") }) {
					t.Errorf("Notify changed something: %v", w)
				}
				if kind == "approval" && inv.err == nil {
					_, records := p.raw()
					req, ok, err := records.PendingApproval(context.Background(), ckUser, execA)
					if err != nil || !ok || req.TokenSHA256 != rotation.TokenDigest("task-token-Approve") || len(req.Approvers) != 1 {
						t.Errorf("the approval request in the record: %+v %v %v", req, ok, err)
					}
					if held, _, _ := records.Staged(context.Background(), ckUser, "AWSPENDING"); held.Execution != execA || len(held.Intents) != len(p.data.Plan.OrphanKeyIDs) && false {
						t.Errorf("the lock moved off the run: %+v", held)
					}
					for _, m := range p.e.sns.sent {
						if strings.Contains(m, "task-token-Approve") {
							t.Errorf("the task token is on SNS: %s", m)
						}
					}
				}
			}
			return e
		},
	}
}

// deadRunOrphan is a run (execB) that took the lock, wrote its intent,
// made a key, proved it, and died before recording it: the key is an
// orphan nobody holds the secret of. The run is the rotation or the issue
// p's input asks for.
func (p *rotationRun) deadRunOrphan() *rotationRun {
	p.t.Helper()
	w := p.e.w
	before := len(w.iam.keys)
	b := p.data
	b.Execution = execB
	p.running[execB] = true
	plan, err := p.validate.Run(setupCtx, rotation.TaskInput{Kind: "lock", Now: w.now, Data: b})
	p.must("execB TakeLock", err)
	b.Plan = &plan
	w.fault = &fault{call: "sts.GetCallerIdentity#1", kind: "crash"}
	ctx, cancel := context.WithCancel(setupCtx)
	w.die = cancel // the invocation ends with the crash
	_, _ = p.create.Run(ctx, rotation.TaskInput{Now: w.now, Data: b})
	cancel()
	w.fault, w.crashed, w.die = nil, false, nil
	if len(w.iam.keys) != before+1 {
		p.t.Fatalf("setup: the dead run left %v, want one key more than the %d before", w.iam.ids(), before)
	}
	p.running[execB] = false
	w.now = w.now.Add(time.Hour)
	return p
}

// deadRunRecorded is a run (execB) that made its key, recorded it, and
// died before Distribute.
func (p *rotationRun) deadRunRecorded() *rotationRun {
	p.t.Helper()
	b := p.data
	b.Execution = execB
	p.running[execB] = true
	plan, err := p.validate.Run(setupCtx, rotation.TaskInput{Kind: "lock", Now: p.e.w.now, Data: b})
	p.must("execB TakeLock", err)
	b.Plan = &plan
	_, err = p.create.Run(setupCtx, rotation.TaskInput{Now: p.e.w.now, Data: b})
	p.must("execB CreateKey", err)
	p.running[execB] = false
	p.e.w.now = p.e.w.now.Add(time.Hour)
	return p
}

// checkedReadOnly holds a read-only step to writing nothing.
func (p *rotationRun) checkedReadOnly(e *stepEnv) *stepEnv {
	e.check = func(t *testing.T, _ stepInvocation) {
		if w := writesOf(e.l.recorded()); len(w) > 0 {
			t.Errorf("a read-only step wrote: %v", w)
		}
	}
	return e
}

// checkedCreate holds CreateKey to I3/I5 and, when it succeeds, to a new
// key that works and is recorded with its secret.
func (p *rotationRun) checkedCreate(e *stepEnv) *stepEnv {
	e.check = func(t *testing.T, inv stepInvocation) {
		p.accountedKeys(t)
		p.lockIsOursOrFree(t, inv)
		if inv.err != nil {
			return
		}
		var k rotation.NewKey
		if err := json.Unmarshal(inv.out, &k); err != nil {
			t.Fatal(err)
		}
		_, records := p.raw()
		v, ok, err := records.KeyVersion(setupCtx, ckUser, execA)
		if err != nil || !ok || v.AccessKeyID != k.KeyID {
			t.Fatalf("CreateKey succeeded with %s, but the record holds %+v (%v, %v)", k.KeyID, v, ok, err)
		}
		cred, err := records.Key(setupCtx, ckUser, v.ID)
		ik := keyByID(p.e.w, k.KeyID)
		if err != nil || ik == nil || ik.status != "Active" || cred.Secret() != ik.secret {
			t.Errorf("the recorded key %s is not IAM's active key with its secret (%v)", k.KeyID, err)
		}
		if n := len(p.e.w.iam.keys); n != 2 {
			t.Errorf("after CreateKey: %d keys %v, want the old and the new", n, p.e.w.iam.ids())
		}
	}
	return e
}

// lockIsOursOrFree: after TakeLock or CreateKey the lock is execA's, or,
// when the step failed before claiming it, still free or the dead run's.
func (p *rotationRun) lockIsOursOrFree(t *testing.T, inv stepInvocation) {
	t.Helper()
	_, records := p.raw()
	v, held, err := records.Staged(setupCtx, ckUser, record.Pending)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case inv.err == nil && (!held || v.Execution != execA):
		t.Errorf("the step succeeded and the lock is not execA's: %+v", v)
	case held && v.Execution != execA && v.Execution != execB:
		t.Errorf("the lock is held by %s", v.Execution)
	}
}

// stagesAfterPromote: AWSCURRENT is on the new key's version or where it
// was; AWSPENDING stays on it (the lock until CleanupTargets).
func (p *rotationRun) stagesAfterPromote(t *testing.T, inv stepInvocation) {
	t.Helper()
	for id, v := range p.e.w.sm.versions {
		if slices.Contains(v.stages, record.Current) && id != p.data.Key.VersionID {
			t.Errorf("AWSCURRENT is on %s, not the new key's version %s", id, p.data.Key.VersionID)
		}
	}
	nv := p.e.w.sm.versions[p.data.Key.VersionID]
	if nv == nil || !slices.Contains(nv.stages, record.Pending) {
		t.Errorf("the lock (AWSPENDING) left the new key's version: %+v", nv)
	}
	if inv.err == nil && !slices.Contains(nv.stages, record.Current) {
		t.Errorf("Promote succeeded and the new key is not AWSCURRENT: %v", nv.stages)
	}
}

// newKeyUntouched: the retiring steps never act on the new key.
func (p *rotationRun) newKeyUntouched(t *testing.T) {
	t.Helper()
	k := keyByID(p.e.w, p.data.Key.KeyID)
	if k == nil || k.status != "Active" {
		t.Errorf("the new key %s is gone or off: %+v", p.data.Key.KeyID, k)
	}
}

func noIAMWrites(t *testing.T, e *stepEnv) {
	t.Helper()
	for _, c := range writesOf(e.l.recorded()) {
		if c.svc == "IAM" {
			t.Errorf("the step changed IAM: %s", c)
		}
	}
}
