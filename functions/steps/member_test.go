package steps

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// Issue 15: a rotation in a member account, state by state over fakes.
// The member account's IAM, CloudTrail, owner tags and secret target are
// one world; the keyrotator account's records (and its own IAM, which must
// never be called) another. The steps reach the member's through their
// Accounts (member.Clients in the Lambdas), and never the records.

const (
	ownAcct    = "111122223333"
	memberAcct = "222233334444"
)

// fakeAccounts is the member provider as a step sees it: it hands out the
// member world's clients, or refuses as a role that cannot be assumed.
type fakeAccounts struct {
	mu      sync.Mutex
	clients Clients
	refuse  error
	asked   []string // account/user
}

func (f *fakeAccounts) Own(context.Context) (string, error) { return ownAcct, nil }

func (f *fakeAccounts) Member(_ context.Context, account, user string) (Clients, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, account+"/"+user)
	if f.refuse != nil {
		return Clients{}, f.refuse
	}
	return f.clients, nil
}

// ownIAM is the keyrotator account's IAM, CloudTrail and identity in a
// member rotation: any call is a step acting in the wrong account.
type ownIAM struct {
	mu    sync.Mutex
	calls []string
}

func (o *ownIAM) hit(op string) error {
	o.mu.Lock()
	o.calls = append(o.calls, op)
	o.mu.Unlock()
	return errors.New("the keyrotator account's IAM was called for a member account's user: " + op)
}
func (o *ownIAM) UserARN(context.Context, string) (string, error) { return "", o.hit("UserARN") }
func (o *ownIAM) List(context.Context, string) ([]iamkeys.Key, error) {
	return nil, o.hit("List")
}
func (o *ownIAM) Create(context.Context, string) (rotation.Credential, time.Time, error) {
	return rotation.Credential{}, time.Time{}, o.hit("Create")
}
func (o *ownIAM) CreateOnce(context.Context, string) (rotation.Credential, time.Time, error) {
	return rotation.Credential{}, time.Time{}, o.hit("CreateOnce")
}
func (o *ownIAM) SetStatus(context.Context, string, string, bool) error { return o.hit("SetStatus") }
func (o *ownIAM) Delete(context.Context, string, string) (bool, error) {
	return false, o.hit("Delete")
}
func (o *ownIAM) LastUsed(context.Context, string) (rotation.KeyUse, error) {
	return rotation.KeyUse{}, o.hit("LastUsed")
}
func (o *ownIAM) KeyMaker(context.Context, string, string, time.Time) (string, bool, error) {
	return "", false, o.hit("KeyMaker")
}
func (o *ownIAM) Identity(context.Context) (string, error) { return "", o.hit("Identity") }
func (o *ownIAM) UsesSince(context.Context, string, time.Time, time.Time) ([]rotation.TrailUse, error) {
	return nil, o.hit("UsesSince")
}
func (o *ownIAM) Owner(context.Context, string) (audit.Owner, bool, error) {
	return audit.Owner{}, false, o.hit("Owner")
}
func (o *ownIAM) Plan(context.Context, rotation.Target, string, string) (rotation.Receipt, error) {
	return rotation.Receipt{}, o.hit("secret.Plan")
}
func (o *ownIAM) Update(context.Context, rotation.Target, string, string, rotation.Credential) (rotation.Receipt, error) {
	return rotation.Receipt{}, o.hit("secret.Update")
}

// memberRun is a rotation of ckUser in memberAcct: records in the own
// world (e), IAM and the secret target in the member world (m).
type memberRun struct {
	*rotationRun
	m        *world
	ml       *callLog // the member world's calls
	own      *ownIAM
	accounts *fakeAccounts
	target   *targetStub // the member's secret target
}

func newMemberRun(t *testing.T, input string) *memberRun {
	t.Helper()
	p := newRotationRun(t)
	m := newWorld()
	ml := &callLog{}
	used := m.now.Add(-24 * time.Hour)
	m.iam.keys[0].used = &rotation.KeyUse{KeyID: oldID, LastUsed: &used, Service: "ses", Region: "us-east-1"}
	mts := &trailStub{l: ml, events: nil, iam: m.iam}
	var secrets []string
	mkeys := iamkeys.New(iamStub{l: ml, f: m.iam, secrets: &secrets})
	target := newTargetStub(ml, rotation.TargetSecret)
	acc := &fakeAccounts{clients: Clients{Keys: mkeys, Makers: trail.New(mts), Self: m.iam, Trail: trail.New(mts), Secret: target,
		Owners: memberOwners{l: ml}}}
	own := &ownIAM{}
	// The keyrotator account's own adapters are ownIAM: never to be called.
	p.validate = &Validate{Schema: subset.Check, Keys: own, Records: p.records, Executions: executions.New(sfnStub{l: p.e.l, running: p.running}), Makers: own, Accounts: acc}
	p.create = &CreateKey{Keys: own, Records: p.records, Prover: proverStub{l: ml, f: m.iam}, Makers: own, Self: own, ProveFor: 2 * time.Second, Clock: m.clock, Accounts: acc}
	p.targets = Targets{rotation.TargetSecret: own}
	p.data.Input = json.RawMessage(input)
	p.e.l.off = false // record the records' calls
	return &memberRun{rotationRun: p, m: m, ml: ml, own: own, accounts: acc, target: target}
}

// memberOwners is the member's users' tags: none, each read logged.
type memberOwners struct{ l *callLog }

func (o memberOwners) Owner(ctx context.Context, user string) (audit.Owner, bool, error) {
	return audit.Owner{}, false, o.l.do(ctx, stepCall{svc: "IAM", op: "ListUserTags", detail: user}, func() error { return nil })
}

const memberInput = `{"user":"` + ckUser + `","account":"` + memberAcct + `","targets":[{"type":"secret","name":"app","secretId":"app/key"}]}`

// The member provider is used for every IAM, CloudTrail and secret-target
// call and never for the records: the record and lock are the keyrotator
// account's, named <prefix>/users/<account>/<user>; the keyrotator
// account's IAM is never called.
func TestMemberRotationReachesTheMemberOnly(t *testing.T) {
	t.Parallel()
	r := newMemberRun(t, memberInput)
	r.locked()
	plan := r.data.Plan
	wantRecord := "keyrotator/users/" + memberAcct + "/" + ckUser
	if plan.Account != memberAcct || plan.Record != wantRecord || plan.User != ckUser || plan.OldKeyID != oldID {
		t.Fatalf("plan: account %q record %q user %q old %q", plan.Account, plan.Record, plan.User, plan.OldKeyID)
	}
	if !strings.Contains(plan.Changes[0], "act in account "+memberAcct+" through its member role") {
		t.Errorf("the plan does not say the account first: %v", plan.Changes)
	}
	r.keyed()
	u := &UpdateTarget{Records: r.records, Target: r.own, Accounts: r.accounts}
	for _, tg := range plan.Targets {
		in := r.in("plan")
		in.Data.Target = &tg
		if _, err := u.Run(setupCtx, in); err != nil {
			t.Fatalf("plan %s: %v", tg.Name, err)
		}
		in = r.in("")
		in.Data.Target = &tg
		rc, err := u.Run(setupCtx, in)
		r.must("Update "+tg.Name, err)
		r.data.Receipts = append(r.data.Receipts, rc)
	}
	r.promoted().waited(8 * 24 * time.Hour)
	r.m.now = r.e.w.now
	v, err := (&VerifyOldKeyUnused{Keys: r.own, Trail: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
	r.must("VerifyOldKeyUnused", err)
	if !v.Unused {
		t.Fatalf("the old key is not found unused: %s", v.Evidence)
	}
	r.data.Verify = &v
	kc, err := (&DeactivateOldKey{Keys: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
	r.must("DeactivateOldKey", err)
	r.data.Retire = &kc
	r.waited(2 * 24 * time.Hour)
	kc, err = (&DeleteOldKey{Keys: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
	r.must("DeleteOldKey", err)
	r.data.Retire = &kc
	c, err := (&CleanupTargets{Records: r.records, Targets: Targets{}}).Run(setupCtx, r.in(""))
	r.must("CleanupTargets", err)
	if !c.LockReleased {
		t.Error("the lock was not released")
	}
	n := &Notify{Topic: &fakeTopic{}, Owners: r.own, Accounts: r.accounts}
	if _, err := n.Run(setupCtx, r.in("success")); err != nil {
		t.Fatalf("notify: %v", err)
	}

	if len(r.own.calls) > 0 {
		t.Errorf("the keyrotator account's IAM, CloudTrail or secret target was called: %v", r.own.calls)
	}
	// The member world: the key rotated there; its calls are IAM,
	// CloudTrail, STS's proof and the target, never Secrets Manager.
	if ids := r.m.iam.ids(); len(ids) != 1 || ids[0] == oldID || ids[0] != r.data.Key.KeyID {
		t.Errorf("the member's keys %v, want only the new key %s", ids, r.data.Key.KeyID)
	}
	if r.target.held["app"] != r.data.Key.KeyID {
		t.Errorf("the member's secret target holds %q", r.target.held["app"])
	}
	var services []string
	for _, c := range r.ml.recorded() {
		if !slices.Contains(services, c.svc) {
			services = append(services, c.svc)
		}
		if c.svc == "Secrets Manager" {
			t.Errorf("a record call went to the member account: %s", c)
		}
	}
	slices.Sort(services)
	if !slices.Equal(services, []string{"CloudTrail", "IAM", "STS", "target:secret"}) {
		t.Errorf("the member world's services %v", services)
	}
	// The own world: the records only, all of them the member-named record.
	var ownServices []string
	for _, c := range r.e.l.recorded() {
		if !slices.Contains(ownServices, c.svc) {
			ownServices = append(ownServices, c.svc)
		}
		if (c.op == "CreateSecret" || c.op == "DescribeSecret") && c.detail != wantRecord {
			t.Errorf("record call %s: want %s", c, wantRecord)
		}
	}
	for _, s := range ownServices {
		if s != "Secrets Manager" && s != "Step Functions" {
			t.Errorf("the keyrotator account's world saw %s calls", s)
		}
	}
	for _, a := range r.accounts.asked {
		if a != memberAcct+"/"+ckUser {
			t.Errorf("the member provider was asked for %s", a)
		}
	}
	if len(r.accounts.asked) < 7 {
		t.Errorf("the member provider was asked %d times: %v", len(r.accounts.asked), r.accounts.asked)
	}
}

// A role that cannot be assumed is refused at Validate and TakeLock,
// before the user is read and before the record or the lock exist;
// nothing is called in either account.
func TestMemberAccessDeniedBeforeAnyChange(t *testing.T) {
	t.Parallel()
	r := newMemberRun(t, memberInput)
	r.accounts.refuse = &rotation.MemberAccessDenied{Account: memberAcct, Role: "arn:aws:iam::" + memberAcct + ":role/keyrotator-member", Task: "validate", Reason: "not authorized to perform: sts:AssumeRole"}
	for _, kind := range []string{"", "lock"} {
		inv := invokeLambda(context.Background(), "validate", r.validate.Run, r.in(kind))
		if got := errorTypeOf(inv.err); got != "MemberAccessDenied" || !strings.Contains(inv.err.Error(), memberAcct) {
			t.Errorf("kind %q: %s %v", kind, got, inv.err)
		}
	}
	if calls := r.e.l.recorded(); len(calls) > 0 {
		t.Errorf("the keyrotator account was called: %v", calls)
	}
	if calls := r.ml.recorded(); len(calls) > 0 || len(r.own.calls) > 0 {
		t.Errorf("IAM was called: %v %v", calls, r.own.calls)
	}
	// Every later step refuses alike rather than touch the keyrotator
	// account's IAM (credentials refused mid-run).
	plan := rotation.Plan{User: ckUser, Account: memberAcct, OldKeyID: oldID}
	r.data.Plan = &plan
	r.data.Key = &rotation.NewKey{KeyID: "AKIANEW"}
	r.data.Promote = &rotation.Cutover{}
	r.data.Verify = &rotation.Verification{Unused: true}
	for name, run := range map[string]func() error{
		"CreateKey": func() error { _, err := r.create.Run(setupCtx, r.in("")); return err },
		"Deactivate": func() error {
			_, err := (&DeactivateOldKey{Keys: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
			return err
		},
		"Delete": func() error {
			plan.GraceSeconds = 86400
			_, err := (&DeleteOldKey{Keys: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
			return err
		},
		"Verify": func() error {
			_, err := (&VerifyOldKeyUnused{Keys: r.own, Trail: r.own, Accounts: r.accounts}).Run(setupCtx, r.in(""))
			return err
		},
	} {
		if err := run(); !errors.As(err, new(*rotation.MemberAccessDenied)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(r.own.calls) > 0 {
		t.Errorf("the keyrotator account's IAM was called: %v", r.own.calls)
	}
	// The failure alert says the account and links the runbook's section.
	topic := &fakeTopic{}
	n := &Notify{Topic: topic, Runbook: "https://x/runbook.md", Owners: r.own, Accounts: r.accounts}
	in := r.in("failure")
	in.Data.Plan, in.Data.Key = nil, nil
	in.Data.Failure = map[string]rotation.StateError{"Validate": {Error: "MemberAccessDenied", Cause: r.accounts.refuse.Error()}}
	if _, err := n.Run(setupCtx, in); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#memberaccessdenied", memberAcct, "keyrotator-member"} {
		if !strings.Contains(topic.body, want) {
			t.Errorf("the alert lacks %q:\n%s", want, topic.body)
		}
	}
	if !strings.Contains(topic.subject, ckUser+" (account "+memberAcct+")") {
		t.Errorf("subject %q", topic.subject)
	}
}

// The stack's own account named explicitly is the own account: own
// adapters, the record without an account, and no member session.
func TestOwnAccountNamed(t *testing.T) {
	t.Parallel()
	p := newRotationRun(t)
	acc := &fakeAccounts{refuse: errors.New("asked for a member session")}
	p.validate.Accounts = acc
	p.data.Input = json.RawMessage(`{"user":"` + ckUser + `","account":"` + ownAcct + `","targets":[{"type":"secret","name":"app","secretId":"app/key"}]}`)
	p.locked()
	if p.data.Plan.Account != "" || p.data.Plan.Record != "keyrotator/users/"+ckUser || len(acc.asked) > 0 {
		t.Errorf("plan account %q record %q; member asked %v", p.data.Plan.Account, p.data.Plan.Record, acc.asked)
	}
}

// A secret target lives in its ARN's account, or, by name, the
// rotation's: the member's through the member role, the keyrotator
// account's with the own role, any other refused at the Preflight.
func TestSecretTargetAccount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		secretID string
		want     string // "member", "own", "refused"
	}{
		{"app/key", "member"},
		{"arn:aws:secretsmanager:us-east-1:" + memberAcct + ":secret:app/key", "member"},
		{"arn:aws:secretsmanager:us-east-1:" + ownAcct + ":secret:app/key", "own"},
		{"arn:aws:secretsmanager:us-east-1:999988887777:secret:app/key", "refused"},
		{"arn:aws:secretsmanager:us-east-1:notanaccount:secret:app/key", "refused"},
	} {
		r := newMemberRun(t, memberInput)
		ownTarget := newTargetStub(r.e.l, rotation.TargetSecret)
		u := &UpdateTarget{Records: r.records, Target: ownTarget, Accounts: r.accounts}
		tg := rotation.Target{Type: rotation.TargetSecret, Name: "app", SecretID: c.secretID}
		plan := &rotation.Plan{User: ckUser, Account: memberAcct, OldKeyID: oldID, Targets: []rotation.Target{tg}}
		_, err := u.Run(setupCtx, rotation.TaskInput{Kind: "plan", Data: rotation.ExecutionData{Plan: plan, Target: &tg}})
		memberCalls, ownCalls := len(r.ml.recorded()), len(r.e.l.recorded())
		switch c.want {
		case "member":
			if err != nil || memberCalls != 1 || ownCalls != 0 {
				t.Errorf("%s: %v; member %d own %d calls", c.secretID, err, memberCalls, ownCalls)
			}
		case "own":
			if err != nil || memberCalls != 0 || ownCalls != 1 {
				t.Errorf("%s: %v; member %d own %d calls", c.secretID, err, memberCalls, ownCalls)
			}
		case "refused":
			var tf *rotation.TargetFailed
			if !errors.As(err, &tf) || memberCalls+ownCalls != 0 || !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("%s: %v; %d calls", c.secretID, err, memberCalls+ownCalls)
			}
		}
	}
}

// Plan.Who and the execution names carry the account; a user of the own
// account named like an account id keeps its own record (no collision
// with a member's record, whatever the names).
func TestMemberPlanNames(t *testing.T) {
	t.Parallel()
	r := newMemberRun(t, `{"user":"`+ckUser+`","account":"`+memberAcct+`","targets":[{"type":"secret","name":"app","secretId":"app/key"}],"dryRun":true}`)
	plan, err := r.validate.Run(setupCtx, r.in(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range plan.Changes {
		if strings.Contains(line, "IAM user "+ckUser) && !strings.Contains(line, "IAM user "+ckUser+" (account "+memberAcct+")") {
			t.Errorf("a change names the user without its account: %s", line)
		}
	}
	if calls := r.e.l.recorded(); slices.ContainsFunc(calls, func(c stepCall) bool { return c.write }) {
		t.Errorf("a dry run wrote: %v", calls)
	}
}

// requestrun names a member account's user's runs, a schedule's and a
// person's, with the account; the stack's own account named explicitly
// is the own account's name.
func TestRequestRunNamesMemberRuns(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ account, prefix string }{
		{memberAcct, memberAcct + "-" + ckUser + "-"},
		{ownAcct, ckUser + "-"},
	} {
		in := strings.Replace(scenInput, `{"user"`, `{"account":"`+c.account+`","user"`, 1)
		for name, ev := range map[string]string{
			"schedule": `{"schedule":"app-key","scheduledTime":"2026-03-01T03:00:00Z","input":` + in + `}`,
		} {
			g := newRequestRig(t)
			inv := invokeLambda(context.Background(), "requestrun", g.rr.Run, json.RawMessage(ev))
			var st Started
			if err := json.Unmarshal(inv.out, &st); err != nil || inv.err != nil || !strings.HasPrefix(st.Name, c.prefix) {
				t.Errorf("%s of account %s: name %q (%v %v), want %s…", name, c.account, st.Name, inv.err, err, c.prefix)
			}
		}
		g := newRequestRig(t)
		raw, _ := json.Marshal(urlEvent(alice, `{"input":`+in+`}`))
		inv := invokeLambda(context.Background(), "requestrun", g.rr.Run, json.RawMessage(raw))
		if !strings.Contains(string(inv.out), `"statusCode":200`) || !strings.Contains(string(inv.out), c.prefix) {
			t.Errorf("a person's run of account %s: %s %v", c.account, inv.out, inv.err)
		}
	}
}
