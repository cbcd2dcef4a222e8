package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// I5 (issue 11 finding 2): every key of the user is accounted for. A key
// whose CreateAccessKey answer was lost is the run's orphan — nobody holds
// its secret — and is deleted before another is made, and named; a key
// someone else made is never deleted.

// keyOutput is CreateKey's part of the execution data.
type keyOutput struct {
	Key rotation.NewKey `json:"key"`
}

// faultFired reports whether a fault shaped one of state's IAM action calls.
func (h *H) faultFired(state, action string) bool {
	h.t.Helper()
	for _, c := range h.sb.Calls(h.t, 0) {
		if c.Service == "iam" && c.Action == action && c.Fault != 0 && c.Origin != nil && c.Origin.State == state {
			return true
		}
	}
	return false
}

// CreateAccessKey's answer lost after IAM made the key (a 5xx after the
// side effect): the SDK's retry gets LimitExceeded, CreateKey finds the key
// inside its intent's window, deletes it, makes the one it keeps, and the
// rotation completes; the alert names the key it removed and why.
func TestOrphanOfALostAnswerIsDeleted(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("orphaned", 95)
	h.app(f, true)
	h.sb.Fault(t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", State: "CreateKey", Kind: "unavailable", After: true})
	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if !h.faultFired("CreateKey", "CreateAccessKey") {
		t.Fatal("the fault never fired: this test proves nothing")
	}
	var out keyOutput
	r.StateOutput(t, "CreateKey", &out)
	if len(out.Key.Removed) != 1 || out.Key.Removed[0].KeyID == out.Key.KeyID || out.Key.Removed[0].KeyID == f.old.AccessKeyID {
		t.Fatalf("CreateKey removed %+v, want the one orphan (new key %s)", out.Key.Removed, out.Key.KeyID)
	}
	orphan := out.Key.Removed[0]
	if !strings.Contains(orphan.Reason, "orphan") || !strings.Contains(orphan.Reason, r.ARN) {
		t.Errorf("the reason does not say whose orphan: %q", orphan.Reason)
	}
	if ks := h.keys(f.user); len(ks) != 1 || ks[out.Key.KeyID] != "Active" {
		t.Errorf("keys after: %v, want only the new key %s", ks, out.Key.KeyID)
	}
	_, a := h.alertOf(r.ARN, "success")
	if !slices.ContainsFunc(a.Changed, func(c string) bool { return strings.Contains(c, "deleted key "+orphan.KeyID) }) {
		t.Errorf("the alert's what-has-changed does not name the removed orphan %s: %q", orphan.KeyID, a.Changed)
	}
}

// A key made by someone else — through IAM directly, while the run waits
// for approval with the user's one key — is no intent's: CreateKey refuses
// with KeyLimitReached naming it and never deletes it; a re-run refuses the
// same way at Validate.
func TestKeyMadeBySomeoneElseIsNeverDeleted(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("shared", 95)
	gate, approver := h.gate("shared")
	arn := h.StartExecution(f.input(gate))
	h.awaitApproval(arn)
	before := h.keys(f.user)
	form := "Action=CreateAccessKey&UserName=" + f.user
	if _, err := h.sb.Server.Internal(context.Background(), "iam", "CreateAccessKey", "", h.sb.Admin.Principal, []byte(form)); err != nil {
		t.Fatal(err)
	}
	var foreign string
	for id := range h.keys(f.user) {
		if _, ok := before[id]; !ok {
			foreign = id
		}
	}
	if foreign == "" {
		t.Fatal("the key made through IAM is not listed")
	}
	h.answer(approver, arn, true, "go")
	r := h.Wait(arn)
	check := func(r *Result, state string) {
		t.Helper()
		if r.Status != types.ExecutionStatusFailed || r.Error != "KeyLimitReached" {
			t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		if !strings.Contains(r.Cause, foreign+" (Active, created ") || !strings.Contains(r.Cause, "never deletes it") {
			t.Errorf("the cause does not name the foreign key %s and whose it is: %s", foreign, r.Cause)
		}
		if got := h.keys(f.user); got[foreign] != "Active" || len(got) != 2 {
			t.Fatalf("keys after: %v: the foreign key %s must stay", got, foreign)
		}
		if _, a := h.alertOf(r.ARN, "failure"); a.State != state {
			t.Errorf("failed in %s, want %s", a.State, state)
		}
	}
	check(r, "CreateKey")
	check(h.Run(f.input(nil)), "Validate")
}

// A run dies with an intent outstanding: CreateAccessKey made the key and
// answered with an error the state machine does not retry (here a 403 after
// the side effect), so the run fails at CreateKey leaving a key nobody
// holds. A re-run takes over the dead run's lock, finds its intent in the
// claim, does not count the orphan against the quota, deletes it, names it,
// and completes.
func TestRerunRemovesDeadRunsOrphan(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("abandoned", 95)
	h.app(f, true)
	fault := h.sb.Fault(t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", State: "CreateKey", Status: 403, Code: "AccessDenied", Message: "injected after the side effect", After: true})
	first := h.Run(f.input(nil))
	if first.Status != types.ExecutionStatusFailed || !slices.Contains(first.Visited(), "CreateKey") {
		t.Fatalf("first run: %s %s: %s", first.Status, first.Error, first.Cause)
	}
	keys := h.keys(f.user)
	if len(keys) != 2 {
		t.Fatalf("the first run left keys %v, want the old key and its orphan", keys)
	}
	orphan := ""
	for id := range keys {
		if id != f.old.AccessKeyID {
			orphan = id
		}
	}
	h.sb.Sandbox.Server.Faults().Remove(fault.ID)

	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("re-run: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	var plan struct {
		Plan rotation.Plan `json:"plan"`
	}
	r.StateOutput(t, "TakeLock", &plan)
	if !slices.Equal(plan.Plan.OrphanKeyIDs, []string{orphan}) {
		t.Errorf("the re-run's plan names orphans %v, want [%s]", plan.Plan.OrphanKeyIDs, orphan)
	}
	var out keyOutput
	r.StateOutput(t, "CreateKey", &out)
	if len(out.Key.Removed) != 1 || out.Key.Removed[0].KeyID != orphan || !strings.Contains(out.Key.Removed[0].Reason, first.ARN) {
		t.Fatalf("CreateKey removed %+v, want %s as the dead run's orphan", out.Key.Removed, orphan)
	}
	if ks := h.keys(f.user); len(ks) != 1 || ks[out.Key.KeyID] != "Active" {
		t.Errorf("keys after: %v, want only the new key %s", slices.Collect(maps.Keys(ks)), out.Key.KeyID)
	}
	_, a := h.alertOf(r.ARN, "success")
	if !slices.ContainsFunc(a.Changed, func(c string) bool { return strings.Contains(c, fmt.Sprintf("deleted key %s", orphan)) }) {
		t.Errorf("the alert does not name the removed orphan %s: %q", orphan, a.Changed)
	}
}
