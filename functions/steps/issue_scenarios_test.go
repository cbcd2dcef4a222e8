package steps

// Issuance at the step tier (docs/design.md, Issuance): each state of an
// issue run over the fakes, clean and then with each call failing
// (runScenario), held to what an issue must keep: nothing written before
// the lock; no key but the new one made, no key of the user's deleted but
// an orphan of its own or the inactive key the input allows removing; the
// lock released once the new key is AWSCURRENT; no secret anywhere (I1).

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// issueInput is scenInput asking for an issue.
var issueInput = strings.Replace(scenInput, `{"user"`, `{"issue":true,"user"`, 1)

// issueRun is an issue of ckUser by execA: the user has no key
// (keys "none"), only an inactive one ("inactive"), or two ("two").
func issueRun(t *testing.T, keys string, extra string) *rotationRun {
	t.Helper()
	p := newRotationRun(t)
	w := p.e.w
	switch keys {
	case "none":
		w.iam.keys = nil
	case "inactive":
		w.iam.keys[0].status = "Inactive"
	case "two":
		w.iam.add("AKIAPERSON0000000001")
	}
	p.data.Input = json.RawMessage(strings.Replace(issueInput, `{"issue":true`, `{"issue":true`+extra, 1))
	return p
}

// planOf decodes a Validate result.
func planOf(t *testing.T, inv stepInvocation) rotation.Plan {
	t.Helper()
	var plan rotation.Plan
	if inv.err == nil {
		if err := json.Unmarshal(inv.out, &plan); err != nil {
			t.Fatal(err)
		}
	}
	return plan
}

// keysAfterIssue: the user has the keys it had (the inactive one stays
// unless removed) and at most the new key beside them, all accounted for.
func (p *rotationRun) keysAfterIssue(t *testing.T, had []string, newKey string) {
	t.Helper()
	p.accountedKeys(t)
	for _, k := range p.e.w.iam.keys {
		if !slices.Contains(had, k.id) && k.id != newKey && p.e.l.fault == nil {
			t.Errorf("key %s is neither a key the user had nor the new key %s", k.id, newKey)
		}
	}
	for _, id := range had {
		if keyByID(p.e.w, id) == nil {
			t.Errorf("the issue deleted the user's key %s", id)
		}
	}
}

func issueScenarios() []stepScenario {
	validate := func(name, keys, kind, wantClean string, check func(t *testing.T, p *rotationRun, inv stepInvocation)) stepScenario {
		return stepScenario{
			name: name, state: map[string]string{"": "Validate", "lock": "TakeLock"}[kind], wantFor: userGone, wantClean: wantClean,
			recovers: map[string]string{"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Claim re-reads the lock: a claim whose answer was lost happened"},
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, keys, "")
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in(kind))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					noIAMWrites(t, e)
					if kind == "" || wantClean != "" {
						if w := writesOf(e.l.recorded()); len(w) > 0 {
							t.Errorf("wrote before the lock: %v", w)
						}
					} else {
						p.lockIsOursOrFree(t, inv)
					}
					check(t, p, inv)
				}
				return e
			},
		}
	}
	isIssue := func(t *testing.T, _ *rotationRun, inv stepInvocation) {
		t.Helper()
		if plan := planOf(t, inv); inv.err == nil && (!plan.Issue || plan.OldKeyID != "" || plan.RemoveInactiveKeyID != "" ||
			!slices.ContainsFunc(plan.Changes, func(c string) bool { return strings.HasPrefix(c, "issue a new access key") }) ||
			slices.ContainsFunc(plan.Changes, func(c string) bool { return strings.HasPrefix(c, "deactivate") || strings.HasPrefix(c, "wait") })) {
			t.Errorf("not an issue's plan: %s", inv.out)
		}
	}
	createKey := func(name, keys, extra string, had []string) stepScenario {
		return stepScenario{
			name: name, state: "CreateKey",
			recovers: recoversCreate(len(had)),
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, keys, extra).locked()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.lockIsOursOrFree(t, inv)
					var k rotation.NewKey
					if inv.err == nil {
						if err := json.Unmarshal(inv.out, &k); err != nil {
							t.Fatal(err)
						}
						_, records := p.raw()
						if v, ok, err := records.KeyVersion(setupCtx, ckUser, execA); err != nil || !ok || v.AccessKeyID != k.KeyID || v.OldKeyID != "" {
							t.Errorf("CreateKey succeeded with %s, but the record holds %+v (%v, %v)", k.KeyID, v, ok, err)
						}
						if n := len(p.e.w.iam.keys); n != len(had)+1 {
							t.Errorf("after the issue's CreateKey: keys %v, want %v and the new one", p.e.w.iam.ids(), had)
						}
					}
					p.keysAfterIssue(t, had, k.KeyID)
				}
				return e
			},
		}
	}
	return []stepScenario{
		validate("Validate/issue", "none", "", "", isIssue),
		validate("TakeLock/issue", "none", "lock", "", isIssue),
		validate("TakeLock/issue-inactive", "inactive", "lock", "", isIssue),
		validate("Validate/issue-twokeys", "two", "", "KeyLimitReached", func(t *testing.T, _ *rotationRun, inv stepInvocation) {
			if inv.err != nil && errorTypeOf(inv.err) == "KeyLimitReached" && !strings.Contains(inv.err.Error(), "no room to issue") {
				t.Errorf("the refusal does not say why an issue cannot go on: %v", inv.err)
			}
		}),
		validate("TakeLock/issue-twokeys", "two", "lock", "KeyLimitReached", func(*testing.T, *rotationRun, stepInvocation) {}),
		validate("Validate/issue-activekey", "active", "", "InvalidInput", func(t *testing.T, _ *rotationRun, inv stepInvocation) {
			if errorTypeOf(inv.err) == "InvalidInput" && !strings.Contains(inv.err.Error(), "leave out issue") {
				t.Errorf("the refusal does not say to rotate: %v", inv.err)
			}
		}),
		createKey("CreateKey/issue", "none", "", nil),
		createKey("CreateKey/issue-inactive", "inactive", "", []string{oldID}),
		{
			// allowRemoveInactiveKey: the inactive key goes before the new one is made.
			name: "CreateKey/issue-removeinactive", state: "CreateKey",
			recovers: recoversCreate(0),
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, "inactive", `,"allowRemoveInactiveKey":true`).locked()
				if p.data.Plan.RemoveInactiveKeyID != oldID {
					t.Fatalf("the plan does not remove the inactive key: %+v", p.data.Plan)
				}
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.lockIsOursOrFree(t, inv)
					if inv.err == nil && (keyByID(p.e.w, oldID) != nil || len(p.e.w.iam.keys) != 1) {
						t.Errorf("after CreateKey: keys %v, want the new key only", p.e.w.iam.ids())
					}
				}
				return e
			},
		},
		{
			// A dead issue (execB) made a key it never recorded: a re-run
			// takes its lock over and deletes that orphan before it makes
			// its own, though there is no old key to tell them apart by.
			name: "CreateKey/issue-orphan", state: "CreateKey",
			recovers: recoversCreate(0),
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, "none", "").deadRunOrphan().locked() // an issue that died
				if len(p.data.Plan.OrphanKeyIDs) != 1 {
					t.Fatalf("the dead issue's orphan is not planned: %+v", p.data.Plan)
				}
				orphan := p.data.Plan.OrphanKeyIDs[0]
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "createkey", p.create.Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.accountedKeys(t)
					p.lockIsOursOrFree(t, inv)
					if inv.err == nil && (keyByID(p.e.w, orphan) != nil || len(p.e.w.iam.keys) != 1) {
						t.Errorf("after CreateKey: keys %v, want the new key only (orphan %s deleted)", p.e.w.iam.ids(), orphan)
					}
				}
				return e
			},
		},
		{
			// A dead issue (execB) recorded its key: a re-run resumes it as an issue.
			name: "TakeLock/issue-resume", state: "TakeLock", wantFor: userGone,
			recovers: map[string]string{"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Claim re-reads the lock: a claim whose answer was lost happened"},
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, "none", "").deadRunRecorded()
				dead := p.e.w.iam.keys[0].id
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "validate", p.validate.Run, p.in("lock"))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					p.accountedKeys(t)
					p.lockIsOursOrFree(t, inv)
					noIAMWrites(t, e)
					if plan := planOf(t, inv); inv.err == nil && (!plan.Issue || plan.ResumeKeyID != dead || plan.OldKeyID != "") {
						t.Errorf("the dead issue's key %s is not resumed as an issue: %s", dead, inv.out)
					}
				}
				return e
			},
		},
		{
			name: "Promote/issue", state: "Promote",
			setup: func(t *testing.T) *stepEnv {
				p := issueRun(t, "none", "").locked().keyed().distributed()
				e := p.recording(func(ctx context.Context) stepInvocation {
					return invokeLambda(ctx, "promote", (&Promote{Records: p.records}).Run, p.in(""))
				})
				e.check = func(t *testing.T, inv stepInvocation) {
					nv := p.e.w.sm.versions[p.data.Key.VersionID]
					_, records := p.raw()
					lock, held, err := records.Staged(setupCtx, ckUser, record.Pending)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case inv.err == nil && (nv == nil || !slices.Contains(nv.stages, record.Current)):
						t.Errorf("Promote succeeded and the new key is not AWSCURRENT: %+v", nv)
					case inv.err == nil && held:
						t.Errorf("an issue's Promote succeeded and the lock is still held: %+v", lock)
					case held && lock.Execution != execA:
						t.Errorf("the lock went to %s", lock.Execution)
					case !held && (nv == nil || !slices.Contains(nv.stages, record.Current)):
						t.Errorf("the lock was released before the new key was AWSCURRENT: %+v", nv)
					}
					var c rotation.Cutover
					if inv.err == nil && (json.Unmarshal(inv.out, &c) != nil || !c.LockReleased) {
						t.Errorf("the cut-over does not say the lock went: %s", inv.out)
					}
					noIAMWrites(t, e)
				}
				return e
			},
			recovers: map[string]string{"Secrets Manager.UpdateSecretVersionStage(AWSPENDING)/throttle_after": "record.Release re-reads the lock: a release whose answer was lost happened"},
		},
		issueNotify("NotifySuccess/issue", "success", func(p *rotationRun) {
			p.locked().keyed().distributed().promoted()
		}, func(t *testing.T, sent string) {
			if !strings.Contains(sent, "key issued") || strings.Contains(sent, "rotated") || !strings.Contains(sent, "no old key") {
				t.Errorf("the success alert does not say issue: %s", sent)
			}
		}),
		issueNotify("NotifyFailure/issue-twokeys", "failure", func(p *rotationRun) {
			p.e.w.iam.add("AKIAPERSON0000000001")
			_, err := p.validate.Run(setupCtx, p.in(""))
			p.data.Failure = map[string]rotation.StateError{"Validate": {Error: "KeyLimitReached", Cause: err.Error()}}
		}, func(t *testing.T, sent string) {
			if !strings.Contains(sent, "could not issue") || !strings.Contains(sent, "two keys") || !strings.Contains(sent, "Nothing was changed") {
				t.Errorf("the refusal's alert does not say why an issue cannot go on: %s", sent)
			}
		}),
	}
}

// recoversCreate are the calls an issue's CreateKey absorbs one failure
// of, when the user keeps kept keys beside the new one: with none, a
// throttled CreateAccessKey is not retried in the attempt (its answer may
// be lost, and IAM would not refuse the retry: iamkeys.CreateOnce), so the
// attempt fails Retryable and the next one (the harness runs it) deletes
// the lost try's key as an orphan.
func recoversCreate(kept int) map[string]string {
	r := map[string]string{
		"STS.GetCallerIdentity/throttle": "the proof retries until ProveFor",
		"STS.GetCallerIdentity/denied":   "the proof retries until ProveFor (IAM's propagation)",
	}
	if kept > 0 {
		r["IAM.CreateAccessKey/throttle"] = "iamkeys.Create retries a transient error itself"
	}
	return r
}

// issueNotify is Notify in an issue run, after prepare, its alert checked.
func issueNotify(name, kind string, prepare func(p *rotationRun), check func(t *testing.T, sent string)) stepScenario {
	sc := notifyScenario(map[string]string{"success": "NotifySuccess", "failure": "NotifyFailure"}[kind], kind, func(p *rotationRun) {
		p.e.w.iam.keys = nil
		p.data.Input = json.RawMessage(issueInput)
		prepare(p)
	})
	sc.name = name
	setup := sc.setup
	sc.setup = func(t *testing.T) *stepEnv {
		e := setup(t)
		base := e.check
		e.check = func(t *testing.T, inv stepInvocation) {
			base(t, inv)
			if inv.err == nil && len(e.sns.sent) > 0 {
				check(t, e.sns.sent[len(e.sns.sent)-1])
			}
		}
		return e
	}
	return sc
}

func TestIssueStepScenarios(t *testing.T) {
	t.Parallel()
	asl := loadASL(t)
	for _, sc := range issueScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, asl, sc)
		})
	}
}

// An issue and a rotation are never mixed: a re-run takes over a dead run
// only as what it was (an issue's claim names no old key), and a schedule
// never issues. Each refusal is InvalidInput on "issue", before any write.
func TestIssueAndRotationNeverMix(t *testing.T) {
	t.Parallel()
	refused := func(t *testing.T, p *rotationRun, want string) {
		t.Helper()
		p.e.l.off = false
		from := len(p.e.l.recorded())
		_, err := p.validate.Run(setupCtx, p.in("lock"))
		var ii *rotation.InvalidInput
		if !errors.As(err, &ii) || ii.Field != "issue" || !strings.Contains(ii.Reason, want) {
			t.Errorf("got %v, want InvalidInput on issue saying %q", err, want)
		}
		if w := writesOf(p.e.l.recorded()[from:]); len(w) > 0 {
			t.Errorf("a refused run wrote: %v", w)
		}
	}
	t.Run("an issue does not take over a dead rotation", func(t *testing.T) {
		t.Parallel()
		p := newRotationRun(t).deadRunRecorded()
		p.data.Input = json.RawMessage(issueInput)
		refused(t, p, "without issue")
	})
	t.Run("a rotation does not take over a dead issue", func(t *testing.T) {
		t.Parallel()
		p := issueRun(t, "none", "").deadRunRecorded()
		p.data.Input = json.RawMessage(scenInput)
		refused(t, p, `"issue": true`)
	})
	t.Run("a schedule does not issue", func(t *testing.T) {
		t.Parallel()
		p := issueRun(t, "none", "")
		p.data.Input = json.RawMessage(strings.Replace(issueInput, `{"issue":true`, `{"issue":true,"trigger":"schedule"`, 1))
		refused(t, p, "never a schedule's")
	})
	t.Run("no key and no issue is refused, saying how to ask", func(t *testing.T) {
		t.Parallel()
		p := issueRun(t, "none", "")
		p.data.Input = json.RawMessage(scenInput)
		_, err := p.validate.Run(setupCtx, p.in("lock"))
		if ii := (*rotation.InvalidInput)(nil); !errors.As(err, &ii) || !strings.Contains(ii.Reason, "ask for an issue") {
			t.Errorf("got %v, want InvalidInput saying to ask for an issue", err)
		}
	})
}
