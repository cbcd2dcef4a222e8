package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Issue 15, multi-account: a template's accounts are listed through the
// member role (Members), each account's users with that account's
// directory; the locks stay the keyrotator account's, by
// Names.RecordOf(account, user); the started input names the account.
func TestSweepReachesMemberAccounts(t *testing.T) {
	t.Parallel()
	w := newMultiWorld()
	w.refusing = nil
	rep, err := w.sweep(nil).Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	b, c := func(u string) string { return rotation.UserKey(acctB, u) }, func(u string) string { return rotation.UserKey(acctC, u) }
	want := map[string]int{"configured": 1, "due": 1, "deep": 1, b("m-due"): 1, b("due"): 1, b("m-configured"): 1, c("c-due"): 1}
	if fmt.Sprint(w.started) != fmt.Sprint(want) {
		t.Fatalf("started %v, want %v", w.started, want)
	}
	in := w.inputs[b("m-due")]
	if in["account"] != acctB || in["user"] != "m-due" || in["targets"].([]any)[0].(map[string]any)["secretId"] != "fleet/m-due/aws-key" {
		t.Errorf("B's m-due's input: %v", in)
	}
	if in := w.inputs[b("due")]; in["account"] != acctB || in["userPath"] != "/fleet/x/" {
		t.Errorf("B's due's input: %v (B's user, not the own account's of the same name)", in)
	}
	if _, named := w.inputs["due"]["account"]; named {
		t.Errorf("the own account's due's input names an account: %v", w.inputs["due"])
	}
	if w.sched[b("m-due")] != "sweep.members" || w.sched[b("m-configured")] != "sweep.member-key" {
		t.Errorf("signed as %v", w.sched)
	}
	if rep.Due != 7 || rep.Started != 7 || rep.NotDue != 2 || rep.Locked != 2 || len(rep.Unreachable) != 0 ||
		!slices.Equal(rep.OutOfScope, []string{"liar", "m-app (account " + acctB + ")"}) {
		t.Errorf("report %+v", rep)
	}
	// The member role for the member accounts' IAM only, each assumed
	// once; the own account's listing and the locks never through it; the
	// locks by RecordOf.
	count := func(call string) int {
		return len(slices.DeleteFunc(slices.Clone(w.calls), func(c string) bool { return c != call }))
	}
	for _, call := range []string{"assume " + acctB, "assume " + acctC, "users /fleet/", acctB + " users /fleet/", acctC + " users /fleet/", "own"} {
		if n := count(call); n != 1 {
			t.Errorf("%q made %d times, want once (calls %v)", call, n, w.calls)
		}
	}
	for _, call := range []string{"locked keyrotator/users/" + acctB + "/m-due", "locked keyrotator/users/" + acctB + "/due", "locked keyrotator/users/due", acctB + " keys m-due", acctB + " tags m-due", "keys due"} {
		if count(call) != 1 {
			t.Errorf("no %q: %v", call, w.calls)
		}
	}
	for _, c := range w.calls {
		if strings.HasPrefix(c, "assume "+own) || strings.HasPrefix(c, own+" ") || c == "keys m-due" || c == "locked keyrotator/users/m-due" {
			t.Errorf("%q: the own account through the member role, or a member's user in the own account", c)
		}
	}
}

// A member account whose role cannot be assumed stops no other account:
// every other due rotation is started, the account is named, and the
// sweep ends Retryable naming it (as a start that failed Retryable); a
// retry once the member stack is there starts its rotations, and no
// other a second time.
func TestAnUnreachableMemberAccountStopsNoOther(t *testing.T) {
	t.Parallel()
	w := newMultiWorld()
	ev := fleet.Event{ScheduledTime: fired.Format(time.RFC3339)}
	rep, err := w.sweep(nil).Run(context.Background(), ev)
	if _, ok := errors.AsType[*rotation.Retryable](err); !ok || !strings.Contains(err.Error(), acctC) || !strings.Contains(err.Error(), "deploy the member stack") {
		t.Fatalf("%T %v: want Retryable naming %s and what to deploy", err, err, acctC)
	}
	if !slices.Equal(rep.Unreachable, []string{acctC + ": MemberAccessDenied"}) || rep.Started != 6 {
		t.Errorf("report %+v", rep)
	}
	if _, ok := w.started[rotation.UserKey(acctC, "c-due")]; ok || len(w.started) != 6 {
		t.Errorf("started %v: want every account's but C's", w.started)
	}
	w.refusing = nil // the member stack deployed in C
	rep, err = w.sweep(nil).Run(context.Background(), ev)
	if err != nil || rep.Started != 1 || rep.AlreadyStarted != 6 || len(rep.Unreachable) != 0 {
		t.Fatalf("the retry: %v %+v", err, rep)
	}
	startedOnceEach(t, w.started)
}

// A config naming an account, and a sweep deployed without the member
// settings: Internal, nothing started.
func TestMemberAccountsWithoutMembers(t *testing.T) {
	t.Parallel()
	w := newMultiWorld()
	s := w.sweep(nil)
	s.Members = nil
	_, err := s.Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if _, ok := errors.AsType[*rotation.Internal](err); !ok || len(w.started) != 0 {
		t.Fatalf("%T %v, started %v", err, err, w.started)
	}
}
