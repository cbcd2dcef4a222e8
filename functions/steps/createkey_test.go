package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// The CreateKey scenario in the gov2 style (aws-doc-sdk-examples
// testtools): TakeLock and CreateKey run once clean over in-memory fakes of
// IAM, Secrets Manager and STS behind the real adapters (iamkeys, record),
// recording every call; then once per call of CreateKey's list, with that
// call failing before its side effect, with its answer lost after it, with
// its answer lost and the SDK's retry answering, and with the Lambda
// crashing right after it. After each: at most two keys, none unaccounted
// for; a retry of CreateKey, and separately a re-run that takes over the
// dead run's lock, each finish with exactly one new key recorded.

const (
	execA  = "arn:aws:states:us-east-1:111122223333:execution:rotation:a"
	execB  = "arn:aws:states:us-east-1:111122223333:execution:rotation:b"
	ckUser = "mailer"
	oldID  = "AKIAOLD0000000000001"
)

// faultKinds are the ways one call can go wrong.
var faultKinds = []string{"fail", "lost", "retried", "crash"}

var errCrashed = errors.New("the Lambda crashed")

// fault makes the calls named call (action#ordinal) go wrong.
type fault struct {
	call  string
	kind  string
	times int // 0 = once, -1 = every time
	fired int
}

// world is IAM, Secrets Manager and STS in memory, with one call log.
// Calls may come side by side (concurrent approvers, two attempts of one
// task): mu serializes each call's bookkeeping and effect, never a hook
// (a hook may park its caller until another call runs).
type world struct {
	mu      sync.Mutex
	now     time.Time
	calls   []string
	ordinal map[string]int
	fault   *fault
	crashed bool
	die     context.CancelFunc // the running attempt's
	hooks   map[string]func()
	iam     *fakeIAM
	sm      *fakeSM
	running map[string]bool
}

func newWorld() *world {
	w := &world{now: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC), ordinal: map[string]int{}, running: map[string]bool{}}
	w.iam = &fakeIAM{w: w}
	w.sm = &fakeSM{w: w, versions: map[string]*smVersion{}}
	w.iam.keys = []*iamKey{{id: oldID, status: "Active", created: w.now.Add(-100 * 24 * time.Hour)}}
	return w
}

func (w *world) clock() time.Time { return w.now }

// do runs one call's side effect, as the fault says.
func (w *world) do(action string, effect func() error) error {
	return w.doRetried(action, true, effect)
}

// doRetried is do for a call whose SDK retryer may be off (sdkRetries
// false): then a lost answer is not retried behind the caller's back.
func (w *world) doRetried(action string, sdkRetries bool, effect func() error) error {
	w.mu.Lock()
	w.now = w.now.Add(time.Second)
	w.ordinal[action]++
	call := fmt.Sprintf("%s#%d", action, w.ordinal[action])
	w.calls = append(w.calls, call)
	if w.crashed {
		w.mu.Unlock()
		return errCrashed
	}
	h := w.hooks[call]
	w.mu.Unlock()
	if h != nil {
		h() // something else happens in the world just before this call
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.fault
	matches := f != nil && (f.call == call || f.times == -1 && strings.HasPrefix(f.call, action+"#"))
	if !matches || f.times == 0 && f.fired > 0 {
		return effect()
	}
	f.fired++
	unavailable := &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "injected: " + f.kind}
	switch f.kind {
	case "fail":
		return unavailable
	case "lost":
		_ = effect()
		return unavailable
	case "retried":
		_ = effect()
		if !sdkRetries {
			return unavailable // the caller retries itself, and knows it
		}
		return effect()
	case "crash":
		_ = effect()
		w.crashed = true
		if w.die != nil {
			w.die() // the invocation ends: nothing after this call runs
		}
		return errCrashed
	}
	panic("unknown fault kind " + f.kind)
}

func (w *world) resetCalls() { w.calls, w.ordinal = nil, map[string]int{} }

type iamKey struct {
	id, secret, status string
	created            time.Time
	used               *rotation.KeyUse
	maker              string // who called CreateAccessKey: CloudTrail's userIdentity.arn
}

// createKeyRole is the identity CreateKey calls IAM as; person is anyone else.
const (
	createKeyRole = "arn:aws:sts::111122223333:assumed-role/keyrotator-createkey/createkey"
	personARN     = "arn:aws:iam::111122223333:user/alice"
)

type fakeIAM struct {
	w        *world
	keys     []*iamKey
	seq      int
	trail    []keyEvent // CloudTrail's CreateAccessKey events, deleted keys' too
	trailLag bool       // the event history shows none yet
}

func (f *fakeIAM) find(id string) int {
	return slices.IndexFunc(f.keys, func(k *iamKey) bool { return k.id == id })
}

// add is a key made outside keyrotator (a person, another tool).
func (f *fakeIAM) add(id string) {
	f.keys = append(f.keys, &iamKey{id: id, status: "Active", created: f.w.now, maker: personARN})
	f.trail = append(f.trail, keyEvent{id: id, maker: personARN})
}

// keyEvent is a CreateAccessKey event in the fake's CloudTrail.
type keyEvent struct{ id, maker string }

// Identity is CreateKey's own identity (STS GetCallerIdentity, asked once
// per cold start: not a call the fault log counts).
func (f *fakeIAM) Identity(context.Context) (string, error) { return createKeyRole, nil }

// KeyMaker is CloudTrail's CreateAccessKey event for the key, if delivered.
func (f *fakeIAM) KeyMaker(_ context.Context, _, id string, _ time.Time) (string, bool, error) {
	var maker string
	var found bool
	return maker, found, f.w.do("cloudtrail.LookupEvents", func() error {
		if f.trailLag {
			return nil
		}
		for _, e := range f.trail {
			if e.id == id {
				maker, found = e.maker, true
			}
		}
		return nil
	})
}

func (f *fakeIAM) ids() []string {
	var ids []string
	for _, k := range f.keys {
		ids = append(ids, k.id)
	}
	return ids
}

func (f *fakeIAM) GetUser(_ context.Context, in *iam.GetUserInput, _ ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	var out *iam.GetUserOutput
	return out, f.w.do("iam.GetUser", func() error {
		out = &iam.GetUserOutput{User: &iamtypes.User{Arn: aws.String("arn:aws:iam::111122223333:user/" + aws.ToString(in.UserName)), UserName: in.UserName}}
		return nil
	})
}

func (f *fakeIAM) ListAccessKeys(_ context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	var out *iam.ListAccessKeysOutput
	return out, f.w.do("iam.ListAccessKeys", func() error {
		out = &iam.ListAccessKeysOutput{}
		for _, k := range f.keys {
			out.AccessKeyMetadata = append(out.AccessKeyMetadata, iamtypes.AccessKeyMetadata{
				AccessKeyId: aws.String(k.id), Status: iamtypes.StatusType(k.status), CreateDate: aws.Time(k.created.Truncate(time.Second)), UserName: in.UserName})
		}
		return nil
	})
}

func (f *fakeIAM) CreateAccessKey(_ context.Context, in *iam.CreateAccessKeyInput, opts ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	o := iam.Options{RetryMaxAttempts: 3} // the SDK's default
	for _, opt := range opts {
		opt(&o)
	}
	var out *iam.CreateAccessKeyOutput
	return out, f.w.doRetried("iam.CreateAccessKey", o.RetryMaxAttempts != 1, func() error {
		if len(f.keys) >= 2 {
			return &iamtypes.LimitExceededException{Message: aws.String("Cannot exceed quota for AccessKeysPerUser: 2")}
		}
		f.seq++
		k := &iamKey{id: fmt.Sprintf("AKIANEW%013d", f.seq), secret: fmt.Sprintf("secret-%d-%s", f.seq, strings.Repeat("x", 30)), status: "Active", created: f.w.now, maker: createKeyRole}
		f.keys = append(f.keys, k)
		f.trail = append(f.trail, keyEvent{id: k.id, maker: createKeyRole})
		out = &iam.CreateAccessKeyOutput{AccessKey: &iamtypes.AccessKey{AccessKeyId: aws.String(k.id), SecretAccessKey: aws.String(k.secret), Status: "Active", CreateDate: aws.Time(k.created), UserName: in.UserName}}
		return nil
	})
}

func (f *fakeIAM) UpdateAccessKey(_ context.Context, in *iam.UpdateAccessKeyInput, _ ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	return &iam.UpdateAccessKeyOutput{}, f.w.do("iam.UpdateAccessKey", func() error {
		i := f.find(aws.ToString(in.AccessKeyId))
		if i < 0 {
			return &iamtypes.NoSuchEntityException{Message: aws.String("no such key")}
		}
		f.keys[i].status = string(in.Status)
		return nil
	})
}

func (f *fakeIAM) DeleteAccessKey(_ context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	return &iam.DeleteAccessKeyOutput{}, f.w.do("iam.DeleteAccessKey", func() error {
		i := f.find(aws.ToString(in.AccessKeyId))
		if i < 0 {
			return &iamtypes.NoSuchEntityException{Message: aws.String("no such key")}
		}
		f.keys = slices.Delete(f.keys, i, i+1)
		return nil
	})
}

func (f *fakeIAM) GetAccessKeyLastUsed(_ context.Context, in *iam.GetAccessKeyLastUsedInput, _ ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	var out *iam.GetAccessKeyLastUsedOutput
	return out, f.w.do("iam.GetAccessKeyLastUsed", func() error {
		out = &iam.GetAccessKeyLastUsedOutput{AccessKeyLastUsed: &iamtypes.AccessKeyLastUsed{}}
		if i := f.find(aws.ToString(in.AccessKeyId)); i >= 0 && f.keys[i].used != nil {
			u := f.keys[i].used
			out.AccessKeyLastUsed = &iamtypes.AccessKeyLastUsed{LastUsedDate: u.LastUsed, ServiceName: aws.String(u.Service), Region: aws.String(u.Region)}
		}
		return nil
	})
}

// CallerARN is STS GetCallerIdentity signed with key: IAM records the use.
func (f *fakeIAM) CallerARN(_ context.Context, key rotation.Credential) (string, error) {
	return "arn:aws:iam::111122223333:user/" + ckUser, f.w.do("sts.GetCallerIdentity", func() error {
		i := f.find(key.AccessKeyID)
		if i < 0 || f.keys[i].secret != key.Secret() || f.keys[i].status != "Active" {
			return &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "the security token included in the request is invalid"}
		}
		t := f.w.now
		f.keys[i].used = &rotation.KeyUse{KeyID: key.AccessKeyID, LastUsed: &t, Service: "sts", Region: "us-east-1"}
		return nil
	})
}

type smVersion struct {
	value   string
	stages  []string
	created time.Time
}

// fakeSM is one record in Secrets Manager. A version without a staging
// label is removed as soon as it is 24 hours old: Secrets Manager's rule
// ("removes outdated versions when there are more than 100, but it does
// not remove versions created less than 24 hours ago", PutSecretValue) at
// its worst, as if the record had 100 versions already.
type fakeSM struct {
	w        *world
	exists   bool
	versions map[string]*smVersion
}

func (f *fakeSM) notFound() error {
	return &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func (f *fakeSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	var out *secretsmanager.DescribeSecretOutput
	return out, f.w.do("secretsmanager.DescribeSecret", func() error {
		if !f.exists {
			return f.notFound()
		}
		out = &secretsmanager.DescribeSecretOutput{ARN: aws.String("arn:aws:secretsmanager:us-east-1:111122223333:secret:" + aws.ToString(in.SecretId)), VersionIdsToStages: map[string][]string{}}
		for id, v := range f.versions {
			out.VersionIdsToStages[id] = slices.Clone(v.stages)
		}
		return nil
	})
}

func (f *fakeSM) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	var out *secretsmanager.CreateSecretOutput
	return out, f.w.do("secretsmanager.CreateSecret", func() error {
		if f.exists {
			return &smtypes.ResourceExistsException{Message: aws.String("exists")}
		}
		f.exists = true
		out = &secretsmanager.CreateSecretOutput{ARN: aws.String("arn:aws:secretsmanager:us-east-1:111122223333:secret:" + aws.ToString(in.Name))}
		return nil
	})
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	var out *secretsmanager.GetSecretValueOutput
	return out, f.w.do("secretsmanager.GetSecretValue", func() error {
		v, ok := f.versions[aws.ToString(in.VersionId)]
		if !f.exists || !ok {
			return f.notFound()
		}
		out = &secretsmanager.GetSecretValueOutput{VersionId: in.VersionId, SecretString: aws.String(v.value), VersionStages: slices.Clone(v.stages)}
		return nil
	})
}

// label puts stage on id, taking it from wherever it was.
func (f *fakeSM) label(id, stage string) {
	for vid, v := range f.versions {
		if vid != id {
			v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == stage })
		}
	}
	if v := f.versions[id]; !slices.Contains(v.stages, stage) {
		v.stages = append(v.stages, stage)
	}
}

func (f *fakeSM) prune() {
	for id, v := range f.versions {
		if len(v.stages) == 0 && f.w.now.Sub(v.created) >= 24*time.Hour {
			delete(f.versions, id)
		}
	}
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	var out *secretsmanager.PutSecretValueOutput
	return out, f.w.do("secretsmanager.PutSecretValue", func() error {
		if !f.exists {
			return f.notFound()
		}
		id := aws.ToString(in.ClientRequestToken)
		if v, ok := f.versions[id]; ok {
			if v.value != aws.ToString(in.SecretString) {
				return &smtypes.ResourceExistsException{Message: aws.String("a version with this token and another value exists")}
			}
		} else {
			f.versions[id] = &smVersion{value: aws.ToString(in.SecretString), created: f.w.now}
		}
		for _, s := range in.VersionStages {
			f.label(id, s)
		}
		f.prune()
		out = &secretsmanager.PutSecretValueOutput{VersionId: aws.String(id), VersionStages: in.VersionStages}
		return nil
	})
}

func (f *fakeSM) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	return &secretsmanager.UpdateSecretVersionStageOutput{}, f.w.do("secretsmanager.UpdateSecretVersionStage", func() error {
		stage, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
		on := ""
		for id, v := range f.versions {
			if slices.Contains(v.stages, stage) {
				on = id
			}
		}
		if on != "" && on != to && on != from {
			return &smtypes.InvalidParameterException{Message: aws.String("the stage is attached to another version: name it in RemoveFromVersionId")}
		}
		if from != "" && on == from {
			v := f.versions[from]
			v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == stage })
		}
		if to != "" {
			if _, ok := f.versions[to]; !ok {
				return f.notFound()
			}
			f.label(to, stage)
		}
		f.prune()
		return nil
	})
}

type runningExecutions map[string]bool

func (r runningExecutions) Running(_ context.Context, arn string) (bool, error) { return r[arn], nil }

// rig is one world with keyrotator's steps wired to it.
type rig struct {
	w        *world
	validate *Validate
	create   *CreateKey
	records  *record.Store
}

func newRig() *rig {
	w := newWorld()
	records := record.New(w.sm)
	keys := iamkeys.New(w.iam)
	return &rig{
		w:        w,
		records:  records,
		validate: &Validate{Schema: subset.Check, Keys: keys, Records: records, Executions: runningExecutions(w.running), Makers: w.iam},
		create:   &CreateKey{Keys: keys, Records: records, Prover: w.iam, Makers: w.iam, Self: w.iam, ProveFor: 2 * time.Second, Clock: w.clock},
	}
}

// lock is TakeLock for exec: the plan CreateKey gets.
func (r *rig) lock(t *testing.T, exec string) rotation.Plan {
	t.Helper()
	var ev ValidateInput
	ev.Kind, ev.Now, ev.Data.Execution = "lock", r.w.now, exec
	ev.Data.Input = json.RawMessage(`{"user":"` + ckUser + `","targets":[{"type":"secret","name":"app","secretId":"app/key"}]}`)
	p, err := r.validate.Run(context.Background(), ev)
	if err != nil {
		t.Fatalf("TakeLock %s: %v", exec, err)
	}
	r.w.running[exec] = true
	return p
}

// attempt is one invocation of CreateKey, with the Lambda's deadline.
func (r *rig) attempt(exec string, p rotation.Plan) (rotation.NewKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.w.die = cancel
	k, err := r.create.Run(ctx, rotation.TaskInput{Now: r.w.now, Data: rotation.ExecutionData{Execution: exec, Plan: &p}})
	if r.w.crashed {
		r.w.crashed = false
		return rotation.NewKey{}, errCrashed
	}
	return k, err
}

// accounted checks I3/I5 between attempts: at most two keys, and each the
// old key, a key a record version holds, or an orphan the lock's intents
// account for (the next attempt deletes it).
func (r *rig) accounted(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	w := r.w
	saved := w.fault
	w.fault = nil
	defer func() { w.fault = saved }()
	if n := len(w.iam.keys); n > 2 {
		t.Fatalf("%d keys: %v", n, w.iam.ids())
	}
	lock, _, err := r.records.Staged(ctx, ckUser, record.Pending)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.create.Keys.List(ctx, ckUser)
	if err != nil {
		t.Fatal(err)
	}
	orphans, unconfirmed, err := findOrphans(ctx, r.create.Keys, r.records, r.create.Makers, ckUser, ckUser, keys, lock.Intents, oldID)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(orphans, unconfirmed) // the next attempt deletes it once CloudTrail shows it
	for _, k := range keys {
		held, err := r.records.Holds(ctx, ckUser, k.ID, []string{execA, execB})
		if err != nil {
			t.Fatal(err)
		}
		if _, orphan := orphans[k.ID]; k.ID != oldID && !held && !orphan {
			t.Errorf("key %s is unaccounted for: not the old key, held by no record version, no intent's orphan (lock %+v)", k.ID, lock)
		}
	}
}

// done checks the end: exactly the old key and one new key, recorded as
// exec's AWSPENDING key version.
func (r *rig) done(t *testing.T, exec string, k rotation.NewKey) {
	t.Helper()
	r.w.fault = nil
	if got := r.w.iam.ids(); len(got) != 2 || got[0] != oldID || got[1] != k.KeyID {
		t.Fatalf("keys %v, want [%s %s]", got, oldID, k.KeyID)
	}
	v, ok, err := r.records.KeyVersion(context.Background(), ckUser, exec)
	if err != nil || !ok || v.AccessKeyID != k.KeyID || v.ID != k.VersionID || !slices.Contains(v.Stages, record.Pending) {
		t.Fatalf("record: %+v %v %v, want %s's key version holding %s (AWSPENDING)", v, ok, err, exec, k.KeyID)
	}
}

// removedSeen checks that every key made and deleted again was named: in
// an attempt's error (the alert's cause) or in the result's Removed.
func removedSeen(t *testing.T, made []string, final string, errs []error, ks ...rotation.NewKey) {
	t.Helper()
	for _, id := range made {
		if id == final {
			continue
		}
		named := false
		for _, k := range ks {
			named = named || slices.ContainsFunc(k.Removed, func(r rotation.RemovedKey) bool { return r.KeyID == id })
		}
		for _, err := range errs {
			named = named || err != nil && strings.Contains(err.Error(), id)
		}
		if !named {
			t.Errorf("key %s was made and deleted without being named (results %+v, errors %v)", id, ks, errs)
		}
	}
}

func (r *rig) made() []string {
	var ids []string
	for i := 1; i <= r.w.iam.seq; i++ {
		ids = append(ids, fmt.Sprintf("AKIANEW%013d", i))
	}
	return ids
}

func TestCreateKeyScenario(t *testing.T) {
	t.Parallel()
	// The clean run, and its call list.
	clean := newRig()
	p := clean.lock(t, execA)
	clean.w.resetCalls()
	k, err := clean.attempt(execA, p)
	if err != nil {
		t.Fatalf("clean CreateKey: %v", err)
	}
	calls := slices.Clone(clean.w.calls)
	clean.done(t, execA, k)
	if len(k.Removed) != 0 || k.Reused {
		t.Fatalf("clean run: %+v", k)
	}
	t.Logf("clean CreateKey: %d calls: %v", len(calls), calls)
	if !slices.Contains(calls, "iam.CreateAccessKey#1") || !slices.Contains(calls, "secretsmanager.PutSecretValue#2") {
		t.Fatalf("the clean run writes an intent and a key version around CreateAccessKey: %v", calls)
	}

	cases := 0
	for _, call := range calls {
		for _, kind := range faultKinds {
			for _, then := range []string{"retry", "rerun"} {
				cases++
				t.Run(call+"/"+kind+"/"+then, func(t *testing.T) {
					r := newRig()
					p := r.lock(t, execA)
					r.w.resetCalls()
					r.w.fault = &fault{call: call, kind: kind}
					k1, err1 := r.attempt(execA, p)
					r.accounted(t)
					r.w.fault = nil
					if err1 == nil {
						r.done(t, execA, k1)
					}
					var k rotation.NewKey
					var err error
					exec := execA
					if then == "retry" {
						k, err = r.attempt(execA, p) // Step Functions' Retry
					} else {
						r.w.running[execA] = false // the run failed: a re-run takes over its lock, days later
						r.w.now = r.w.now.Add(48 * time.Hour)
						exec = execB
						k, err = r.attempt(execB, r.lock(t, execB))
					}
					if err != nil {
						t.Fatalf("after %s: %v (first attempt: %v)", then, err, err1)
					}
					r.done(t, exec, k)
					removedSeen(t, r.made(), k.KeyID, []error{err1}, k1, k)
				})
			}
		}
	}
	t.Logf("%d calls x %d fault kinds x 2 (retry, re-run) = %d cases", len(calls), len(faultKinds), cases)
}

// PutSecretValue of the new key failing on every attempt of the step: each
// attempt deletes the key it could not store (its secret dies with the
// Lambda), so the failed run leaves the old key alone and a re-run works.
func TestCreateKeyUnstorableKeyIsDeleted(t *testing.T) {
	t.Parallel()
	r := newRig()
	p := r.lock(t, execA)
	var errs []error
	for range 4 { // the ASL's MaxAttempts after the first
		r.w.resetCalls()
		r.w.fault = &fault{call: "secretsmanager.PutSecretValue#2", kind: "fail"}
		_, err := r.attempt(execA, p)
		if !errors.As(err, new(*rotation.Retryable)) {
			t.Fatalf("attempt: %v, want Retryable", err)
		}
		errs = append(errs, err)
		r.accounted(t)
		if got := r.w.iam.ids(); len(got) != 1 || got[0] != oldID {
			t.Fatalf("after an unstorable key: keys %v, want only the old key", got)
		}
	}
	r.w.running[execA] = false
	k, err := r.attempt(execB, r.lock(t, execB))
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	r.done(t, execB, k)
	removedSeen(t, r.made(), k.KeyID, errs, k)
}

// I3: a key no intent accounts for was made by someone else: CreateKey
// refuses with KeyLimitReached naming it and never deletes it — made
// before the intent, or after an attempt's window closed.
func TestCreateKeyNeverDeletesSomeoneElsesKey(t *testing.T) {
	t.Parallel()
	const foreign = "AKIAFOREIGN000000001"
	tests := []struct {
		name  string
		setup func(r *rig, p rotation.Plan)
	}{
		{"made between TakeLock and CreateKey", func(r *rig, _ rotation.Plan) { r.w.iam.add(foreign) }},
		{"made between the intent and CreateAccessKey", func(r *rig, _ rotation.Plan) {
			r.w.hooks = map[string]func(){"iam.CreateAccessKey#1": func() { r.w.iam.add(foreign) }}
		}},
		{"made after a failed attempt's window closed", func(r *rig, p rotation.Plan) {
			r.w.fault = &fault{call: "iam.CreateAccessKey#1", kind: "fail", times: -1}
			if _, err := r.attempt(execA, p); err == nil {
				panic("the fault did not fire")
			}
			r.w.fault = nil
			r.w.now = r.w.now.Add(time.Minute + 2*IntentMargin)
			r.w.iam.add(foreign)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			p := r.lock(t, execA)
			r.w.resetCalls()
			tt.setup(r, p)
			_, err := r.attempt(execA, p)
			var limit *rotation.KeyLimitReached
			if !errors.As(err, &limit) {
				t.Fatalf("got %v, want KeyLimitReached", err)
			}
			if !strings.Contains(err.Error(), foreign+" (Active, created ") || !strings.Contains(err.Error(), "never deletes it") {
				t.Errorf("KeyLimitReached does not name the foreign key and whose it is: %v", err)
			}
			if got := r.w.iam.ids(); !slices.Contains(got, foreign) || len(got) != 2 {
				t.Fatalf("keys %v: the foreign key must stay", got)
			}
			// The re-run refuses the same way at Validate, with the same words.
			r.w.running[execA] = false
			var ev ValidateInput
			ev.Now, ev.Data.Execution = r.w.now, execB
			ev.Data.Input = json.RawMessage(`{"user":"` + ckUser + `","targets":[{"type":"secret","name":"app","secretId":"app/key"}]}`)
			_, verr := r.validate.Run(context.Background(), ev)
			if !errors.As(verr, &limit) || !strings.Contains(verr.Error(), foreign+" (Active, created ") || !strings.Contains(verr.Error(), "never deletes it") {
				t.Errorf("Validate: %v", verr)
			}
		})
	}
}

// A re-run that takes over a dead run's lock with an intent outstanding:
// Validate does not count the orphan against the quota, plans its deletion,
// and CreateKey deletes it and names it in its result.
func TestCreateKeyRerunRemovesDeadRunsOrphan(t *testing.T) {
	t.Parallel()
	r := newRig()
	p := r.lock(t, execA)
	r.w.fault = &fault{call: "iam.CreateAccessKey#1", kind: "crash"}
	if _, err := r.attempt(execA, p); !errors.Is(err, errCrashed) {
		t.Fatalf("the crash did not happen: %v", err)
	}
	r.w.fault = nil
	orphan := r.made()[0]
	r.w.running[execA] = false
	pb := r.lock(t, execB)
	if !slices.Equal(pb.OrphanKeyIDs, []string{orphan}) || pb.OldKeyID != oldID {
		t.Fatalf("plan: orphans %v old %s, want [%s] and %s", pb.OrphanKeyIDs, pb.OldKeyID, orphan, oldID)
	}
	if !slices.ContainsFunc(pb.Changes, func(c string) bool { return strings.Contains(c, "delete access key "+orphan) }) {
		t.Errorf("the plan's changes do not name the orphan: %q", pb.Changes)
	}
	k, err := r.attempt(execB, pb)
	if err != nil {
		t.Fatal(err)
	}
	r.done(t, execB, k)
	if len(k.Removed) != 1 || k.Removed[0].KeyID != orphan || !strings.Contains(k.Removed[0].Reason, execA) {
		t.Fatalf("removed %+v, want %s as %s's orphan", k.Removed, orphan, execA)
	}
}
