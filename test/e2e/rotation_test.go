package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/consumer"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// fixture is a user whose one key an application reads from a secret.
type fixture struct {
	user, secretID string
	old            sandboxtest.UserKey
}

// seed makes user with one key ageDays old, kept in the app secret app/<user>.
func (h *H) seed(user string, ageDays int) fixture {
	h.t.Helper()
	keys := h.sb.User(h.t, user, 1)
	h.sb.IAM.Backdate(keys[0].AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -ageDays))
	f := fixture{user: user, secretID: "app/" + user, old: keys[0]}
	v, _ := json.Marshal(map[string]string{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey, "endpoint": "keep-me"})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(f.secretID), SecretString: aws.String(string(v))}); err != nil {
		h.t.Fatalf("seed app secret: %v", err)
	}
	return f
}

func (f fixture) input(extra map[string]any) map[string]any {
	in := map[string]any{
		"user":      f.user,
		"targets":   []map[string]string{{"type": "secret", "name": "app", "secretId": f.secretID}},
		"waitDays":  7,
		"graceDays": 1,
	}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

// inService waits until each app has made one more successful call than it
// had: it is in service, with the key it holds, from now on.
func (h *H) inService(apps ...*consumer.App) {
	h.t.Helper()
	before := make([]int64, len(apps))
	for i, a := range apps {
		before[i] = a.Stats().OK
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, a := range apps {
		for a.Stats().OK <= before[i] {
			if time.Now().After(deadline) {
				h.t.Fatalf("an app made no successful call in 10 s: %+v", a.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// app starts a consumer of the fixture's secret for the rest of the test.
func (h *H) app(f fixture, refresh bool) *consumer.App {
	h.t.Helper()
	a := consumer.New(h.sb.Config(h.t), f.secretID, 5*time.Millisecond, refresh)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	return a
}

func (h *H) keys(user string) map[string]string {
	h.t.Helper()
	ks, _ := h.sb.IAM.Keys(user)
	out := map[string]string{}
	for _, k := range ks {
		out[k.AccessKeyID] = k.Status
	}
	return out
}

func (h *H) writesSince(seq int64) []sandbox.CallRecord {
	var w []sandbox.CallRecord
	for _, c := range h.sb.Calls(h.t, seq) {
		if c.Write && (c.Service == "iam" || c.Service == "secretsmanager" || c.Service == "sns" || c.Service == "ses") {
			w = append(w, c)
		}
	}
	return w
}

var happyPath = []string{
	"Start", "Validate", "Route", "Preflight", "RouteDryRun", "PlanSecret", "PreflightPassed", "TakeLock", "NeedsApproval?",
	"CreateKey", "Distribute", "RouteTarget", "UpdateSecret", "Promote", "OldKeyToRetire?", "InitVerify",
	"WaitForUse", "VerifyOldKeyUnused", "OldKeyUnused?", "DeactivateOldKey", "WaitGrace", "DeleteOldKey",
	"CleanupTargets", "NotifySuccess", "Succeeded",
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("app-sender", 95)
	app := h.app(f, true)
	h.inService(app)

	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s: %s", r.Status, r.Error, r.Cause)
	}
	if got := r.Visited(); !slices.Equal(got, happyPath) {
		t.Fatalf("visited %v\nwant    %v", got, happyPath)
	}
	var plan struct{ Plan rotation.Plan }
	r.StateOutput(t, "Validate", &plan)
	if plan.Plan.OldKeyID != f.old.AccessKeyID || plan.Plan.WaitSeconds != 7*86400 || plan.Plan.GraceSeconds != 86400 || plan.Plan.DryRun {
		t.Errorf("plan: %+v", plan.Plan)
	}
	var key struct{ Key rotation.NewKey }
	r.StateOutput(t, "CreateKey", &key)
	newID := key.Key.KeyID
	if newID == "" || newID == f.old.AccessKeyID || key.Key.VersionID == "" {
		t.Fatalf("CreateKey: %+v", key.Key)
	}
	var dist struct{ Receipts []rotation.Receipt }
	r.StateOutput(t, "Distribute", &dist)
	if len(dist.Receipts) != 1 || dist.Receipts[0].NewKeyID != newID || dist.Receipts[0].PreviousKeyID != f.old.AccessKeyID || !dist.Receipts[0].Changed {
		t.Errorf("receipts: %+v", dist.Receipts)
	}
	var verify struct{ Verify rotation.Verification }
	r.StateOutput(t, "VerifyOldKeyUnused", &verify)
	if !verify.Verify.Unused || verify.Verify.Attempt != 1 || verify.Verify.NewKey.LastUsed == nil {
		t.Errorf("verify: %+v", verify.Verify)
	}
	var retire struct{ Retire rotation.KeyChange }
	r.StateOutput(t, "DeleteOldKey", &retire)
	if retire.Retire.KeyID != f.old.AccessKeyID || retire.Retire.Status != "Deleted" {
		t.Errorf("retire: %+v", retire.Retire)
	}

	// The world after: one key, the new one, active; the app's secret holds
	// it with its other fields kept; the record's AWSCURRENT is it, no lock.
	if ks := h.keys(f.user); len(ks) != 1 || ks[newID] != "Active" {
		t.Errorf("keys after: %v", ks)
	}
	v, err := h.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.secretID)})
	if err != nil {
		t.Fatal(err)
	}
	var appSecret map[string]string
	_ = json.Unmarshal([]byte(aws.ToString(v.SecretString)), &appSecret)
	if appSecret["accessKeyId"] != newID || appSecret["endpoint"] != "keep-me" || appSecret["secretAccessKey"] == f.old.SecretAccessKey {
		t.Errorf("app secret after: key %s endpoint %q", appSecret["accessKeyId"], appSecret["endpoint"])
	}
	d, err := h.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(rotation.RecordName(f.user))})
	if err != nil {
		t.Fatal(err)
	}
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSPENDING") {
			t.Errorf("the lock (AWSPENDING on %s) outlived the run", id)
		}
		if slices.Contains(stages, "AWSCURRENT") && id != key.Key.VersionID {
			t.Errorf("AWSCURRENT on %s, want the new key's version %s", id, key.Key.VersionID)
		}
	}

	// Consumers never notice.
	h.inService(app)
	st := app.Stats()
	h.Logf("app: %d calls ok, %d failed, keys %v", st.OK, st.Failed, st.KeyIDs)
	if st.Failed != 0 {
		t.Errorf("the app saw %d failed calls (last: %s)", st.Failed, st.LastError)
	}
	if !slices.Equal(st.KeyIDs, []string{f.old.AccessKeyID, newID}) {
		t.Errorf("the app used keys %v, want old then new", st.KeyIDs)
	}
	if msgs := string(h.admin("/sns/messages")); !strings.Contains(msgs, newID) {
		t.Errorf("no success notice naming the new key: %s", msgs)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("dry-user", 95)
	seq := h.sb.Server.Calls().Last()
	r := h.Run(f.input(map[string]any{"dryRun": true}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s: %s", r.Status, r.Error, r.Cause)
	}
	if got, want := r.Visited(), []string{"Start", "Validate", "Route", "Preflight", "RouteDryRun", "PlanSecret", "PreflightPassed", "DryRunPlan"}; !slices.Equal(got, want) {
		t.Fatalf("visited %v, want %v", got, want)
	}
	if w := h.writesSince(seq); len(w) > 0 {
		t.Fatalf("a dry run wrote: %+v", w)
	}
	var out struct {
		Plan rotation.Plan `json:"plan"`
	}
	if err := json.Unmarshal([]byte(r.Output), &out); err != nil {
		t.Fatal(err)
	}
	changes := strings.Join(out.Plan.Changes, "\n")
	h.Logf("dry-run plan:\n%s", changes)
	for _, want := range []string{f.secretID, f.old.AccessKeyID, rotation.RecordName(f.user)} {
		if !strings.Contains(changes, want) {
			t.Errorf("the plan does not name %s", want)
		}
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys after a dry run: %v", ks)
	}
}

// I2: a consumer that keeps the old key after the cut-over is found, the
// alert names the evidence, and the old key stays active.
func TestOldKeyStillInUse(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("missed-consumer", 95)
	follows := h.app(f, true) // the app that follows the secret
	missed := h.app(f, false) // and one that was missed: it keeps its first key
	h.inService(follows, missed)

	r := h.Run(f.input(map[string]any{"verifyAttempts": 2}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "OldKeyStillInUse" {
		t.Fatalf("status %s %s: %s; want FAILED OldKeyStillInUse", r.Status, r.Error, r.Cause)
	}
	visited := r.Visited()
	if n := strings.Count(strings.Join(visited, ","), "VerifyOldKeyUnused"); n != 2 {
		t.Errorf("verified %d times, want 2: %v", n, visited)
	}
	for _, never := range []string{"DeactivateOldKey", "DeleteOldKey"} {
		if slices.Contains(visited, never) {
			t.Fatalf("%s ran although the old key is in use: %v", never, visited)
		}
	}
	if ks := h.keys(f.user); ks[f.old.AccessKeyID] != "Active" || len(ks) != 2 {
		t.Errorf("keys after: %v (the old key must stay active)", ks)
	}
	if st := missed.Stats(); st.Failed != 0 {
		t.Errorf("the missed consumer broke: %d failed calls (%s)", st.Failed, st.LastError)
	}
	msgs := string(h.admin("/sns/messages"))
	for _, want := range []string{f.user, f.old.AccessKeyID, "sts", "VerifyOldKeyUnused"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("the alert does not name %q", want)
		}
	}
}

// I3: two keys → KeyLimitReached before any change; with
// allowRemoveInactiveKey an inactive key goes, an active one never.
func TestTwoKeys(t *testing.T) {
	t.Parallel()
	t.Run("both active", func(t *testing.T) {
		t.Parallel()
		h := Start(t)
		f := h.seed("two-active", 95)
		if _, err := h.sb.IAM.CreateAccessKey(f.user); err != nil {
			t.Fatal(err)
		}
		seq := h.sb.Server.Calls().Last()
		r := h.Run(f.input(map[string]any{"allowRemoveInactiveKey": true}))
		if r.Status != types.ExecutionStatusFailed || r.Error != "KeyLimitReached" {
			t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		for _, w := range h.writesSince(seq) {
			if w.Service != "sns" {
				t.Errorf("a refused run wrote: %+v", w)
			}
		}
		if ks := h.keys(f.user); len(ks) != 2 {
			t.Errorf("keys after: %v", ks)
		}
	})
	t.Run("one inactive, removal allowed", func(t *testing.T) {
		t.Parallel()
		h := Start(t)
		f := h.seed("one-inactive", 95)
		extra, err := h.sb.IAM.CreateAccessKey(f.user)
		if err != nil {
			t.Fatal(err)
		}
		setInactive(t, h, f.user, extra.AccessKeyID)
		r := h.Run(f.input(nil))
		if r.Status != types.ExecutionStatusFailed || r.Error != "KeyLimitReached" {
			t.Fatalf("without allowRemoveInactiveKey: status %s %s", r.Status, r.Error)
		}
		r = h.Run(f.input(map[string]any{"allowRemoveInactiveKey": true}))
		if r.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("with allowRemoveInactiveKey: status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		ks := h.keys(f.user)
		if _, ok := ks[extra.AccessKeyID]; ok || len(ks) != 1 {
			t.Errorf("keys after: %v (the inactive key must be gone, one new key left)", ks)
		}
	})
}

func setInactive(t *testing.T, h *H, user, id string) {
	t.Helper()
	form := fmt.Sprintf("Action=UpdateAccessKey&UserName=%s&AccessKeyId=%s&Status=Inactive", user, id)
	if _, err := h.sb.Server.Internal(context.Background(), "iam", "UpdateAccessKey", "", h.sb.Admin.Principal, []byte(form)); err != nil {
		t.Fatal(err)
	}
}

// I6: two executions for one user started together: one proceeds, the other
// fails RotationInProgress; a failed run leaves no lock that blocks the next.
func TestOneRotationPerUser(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("contended", 95)
	// The run that takes the lock is held 3 s at its CreateAccessKey, so the
	// other meets the lock however slowly a loaded machine starts it: with
	// tests in parallel, one run had ended before the other took the lock.
	h.sb.Fault(t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", Delay: 3 * time.Second})
	a, b := h.StartExecution(f.input(nil)), h.StartExecution(f.input(nil))
	ra, rb := h.Wait(a), h.Wait(b)
	ok, busy := 0, 0
	for _, r := range []*Result{ra, rb} {
		switch {
		case r.Status == types.ExecutionStatusSucceeded:
			ok++
		case r.Error == "RotationInProgress":
			busy++
		default:
			t.Errorf("unexpected end %s %s: %s", r.Status, r.Error, r.Cause)
		}
	}
	if ok != 1 || busy != 1 {
		t.Fatalf("%d succeeded, %d refused; want 1 and 1", ok, busy)
	}

	// A run that fails mid-way (its target is gone) does not block the next.
	if _, err := h.sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(f.secretID), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" {
		t.Fatalf("missing target: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	// The failed run made a key and holds the lock; the next run takes both
	// over once the target is back, and makes no third key.
	var current string
	for id := range h.keys(f.user) {
		if id != pendingKey(t, h, f.user) {
			current = id
		}
	}
	v, _ := json.Marshal(map[string]string{"accessKeyId": current, "secretAccessKey": "restored-by-hand"})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(f.secretID + "-restored"), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
	in := f.input(nil)
	in["targets"] = []map[string]string{{"type": "secret", "name": "app", "secretId": f.secretID + "-restored"}}
	r = h.Run(in)
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the run after a failed one: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys after: %v", ks)
	}
}

// pendingKey is the key id in the record's AWSPENDING version, if any.
func pendingKey(t *testing.T, h *H, user string) string {
	t.Helper()
	v, err := h.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(rotation.RecordName(user)), VersionStage: aws.String("AWSPENDING")})
	if err != nil {
		return ""
	}
	var rec struct {
		AccessKeyID string `json:"accessKeyId"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(v.SecretString)), &rec)
	return rec.AccessKeyID
}

// I7: malformed input is refused by Validate, naming the field, with no
// write, and the run ends with the failure alert. One case through the
// whole machine; the schema's cases (28 were here) are the step tier's
// (functions/steps TestValidateRefusesMalformedInput, at the Lambda's
// boundary) and rotation's (TestParseInputRefusesNamingTheField).
func TestMalformedInputRefused(t *testing.T) {
	t.Parallel()
	h := Start(t)
	h.seed("strict", 95)
	seq := h.sb.Server.Calls().Last()
	r := h.Run(`{"user":"strict","targets":[{"type":"ftp","name":"x"}]}`)
	if r.Status != types.ExecutionStatusFailed || r.Error != "InvalidInput" {
		t.Fatalf("status %s %s: %s; want FAILED InvalidInput", r.Status, r.Error, r.Cause)
	}
	if v := r.Visited(); !slices.Equal(v[:2], []string{"Start", "Validate"}) || !slices.Contains(v, "NotifyFailure") || slices.Contains(v, "CreateKey") {
		t.Fatalf("visited %v, want Validate then NotifyFailure", v)
	}
	if !strings.Contains(r.Cause, "targets[0].type") {
		t.Errorf("cause %q does not name targets[0].type", r.Cause)
	}
	for _, w := range h.writesSince(seq) {
		if w.Service != "sns" { // the alert is the only write
			t.Errorf("refused input wrote: %+v", w)
		}
	}
}

// I5, for every task: each Lambda crashes once right after doing its work
// (its side effects happened, Step Functions sees Runtime.ExitError and
// retries it). The rotation still ends as a clean one would: one new key
// (made once: CreateKey's retry reuses it), the old one deleted, the app
// never broken, no lock left. Each step's own retry after a lost answer
// is the step tier's (functions/steps TestStepScenarios, the *_after runs);
// this holds the machine's Retry and the data between states to it.
func TestEveryTaskSurvivesACrashAfterItsWork(t *testing.T) {
	t.Parallel()
	for _, tk := range tasks.All {
		if tk.Name == tasks.UpdateAuth0.Name || tk.Name == tasks.UpdateSoracom.Name {
			continue // this rotation has no Auth0 or SORACOM target: TestSoracomTasksSurviveACrashAfterTheirWork and the fault matrix crash theirs
		}
		if tk.Name == tasks.VerifyApproval.Name {
			continue // this rotation needs no approval; VerifyApproval writes nothing (a crash's retry verifies again), its Retry is test/contract's, its failing calls the step tier's
		}
		task := tk.Function()
		t.Run(task, func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			f := h.seed("crash-"+task, 95)
			app := h.app(f, true)
			h.inService(app)
			h.sb.Fault(t, sandbox.Fault{Service: "lambda", Action: "Invoke", Resource: task, Crash: true})
			r := h.Run(f.input(nil))
			if r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
			}
			retried := 0
			for _, e := range r.History {
				if d := e.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == "Runtime.ExitError" {
					retried++
				}
			}
			if retried != 1 {
				t.Errorf("%d crashes seen in the history, want 1", retried)
			}
			ks := h.keys(f.user)
			if len(ks) != 1 {
				t.Fatalf("keys after: %v", ks)
			}
			if _, old := ks[f.old.AccessKeyID]; old {
				t.Errorf("the old key survived: %v", ks)
			}
			if pendingKey(t, h, f.user) != "" {
				t.Error("the lock (AWSPENDING) outlived the run")
			}
			if st := app.Stats(); st.Failed != 0 {
				t.Errorf("the app saw %d failed calls (%s)", st.Failed, st.LastError)
			}
			if tk.Name != tasks.CreateKey.Name {
				return
			}
			created := 0
			for _, c := range h.sb.Calls(t, 0) {
				if c.Service == "iam" && c.Action == "CreateAccessKey" && c.Status == 200 {
					created++
				}
			}
			if created != 1 {
				t.Errorf("CreateAccessKey succeeded %d times, want 1: the retry must reuse the first key", created)
			}
		})
	}
}

// A scheduled run whose key is younger than minKeyAgeDays ends as skipped,
// having changed nothing.
func TestScheduledRunSkipsAYoungKey(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("young-key", 10)
	seq := h.sb.Server.Calls().Last()
	r := h.Run(f.input(map[string]any{"trigger": "schedule", "minKeyAgeDays": 80}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if got, want := r.Visited(), []string{"Start", "Validate", "Route", "Skipped"}; !slices.Equal(got, want) {
		t.Fatalf("visited %v, want %v", got, want)
	}
	var plan struct{ Plan rotation.Plan }
	r.StateOutput(t, "Validate", &plan)
	if !plan.Plan.Skip || !strings.Contains(plan.Plan.SkipReason, "10 days old") {
		t.Errorf("plan: skip=%v reason=%q", plan.Plan.Skip, plan.Plan.SkipReason)
	}
	if w := h.writesSince(seq); len(w) > 0 {
		t.Errorf("a skipped run wrote: %+v", w)
	}
	// By hand, the same key is rotated: minKeyAgeDays is for the schedule.
	if r := h.Run(f.input(map[string]any{"minKeyAgeDays": 80})); r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("a manual run: %s %s: %s", r.Status, r.Error, r.Cause)
	}
}

// Throttling that outlasts the SDK's own retries becomes Retryable, which
// the state machine retries with backoff: the rotation still succeeds.
func TestThrottlingIsRetriedByTheStateMachine(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("throttled", 95)
	h.sb.Fault(t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", Kind: "throttle", Times: 4})
	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	retried := 0
	for _, e := range r.History {
		if d := e.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == "Retryable" {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no Retryable failure in the history: the throttles never reached the state machine")
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys after: %v", ks)
	}
}
