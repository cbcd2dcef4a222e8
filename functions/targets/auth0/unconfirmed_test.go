package auth0_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/targets/auth0"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The target works both ways Auth0 may answer its email provider: with
// credentials.accessKeyId (the cut-over is confirmed by reading it back)
// and without it, as Auth0 documents the answer (the receipt says the
// cut-over is unconfirmed and by which service's use of the new key it
// will be). The sandbox answers a GET that asks for no fields with name and
// enabled only, so the "shown" cases also prove the target asks for the
// credentials. Either way the tenant ends up sending with the new key.
func TestUpdateWithAndWithoutTheKeyID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// withheld at Plan, and at Update (a tenant's answer may change between)
		before, after bool
		unconfirmed   bool
	}{
		{name: "shown", unconfirmed: false},
		{name: "withheld", before: true, after: true, unconfirmed: true},
		{name: "withheld after the plan", after: true, unconfirmed: true},
		{name: "shown after the plan", before: true, unconfirmed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := strings.ReplaceAll(tt.name, " ", "-")
			e := setup(t, name, "ses", nil)
			tenant, _ := e.sb.Auth0.Tenant(name)
			ctx := context.Background()
			var printed []byte
			keep := func(v any) { b, _ := json.Marshal(v); printed = append(printed, b...) }

			tenant.SetWithholdKeyID(tt.before)
			plan, err := e.target.Plan(ctx, tg(name), e.old.AccessKeyID, "")
			keep(plan)
			if err != nil || len(plan.Planned) != 1 {
				t.Fatalf("Plan: %v %+v", err, plan)
			}
			if says := strings.Contains(plan.Planned[0], "does not show"); says != tt.before {
				t.Errorf("Plan says %q; want it to say Auth0 does not show the key: %v", plan.Planned[0], tt.before)
			}

			tenant.SetWithholdKeyID(tt.after)
			r, err := e.target.Update(ctx, tg(name), "exec", e.old.AccessKeyID, e.key)
			keep(r)
			if err != nil || !r.Changed || r.NewKeyID != e.key.AccessKeyID {
				t.Fatalf("Update: %v %+v", err, r)
			}
			switch {
			case tt.unconfirmed && (r.Unconfirmed == nil || r.Unconfirmed.UsedBy != "ses" || !strings.Contains(r.Unconfirmed.Reason, "does not show")):
				t.Errorf("receipt %+v: want it unconfirmed, to be confirmed by ses", r)
			case !tt.unconfirmed && r.Unconfirmed != nil:
				t.Errorf("receipt %+v: Auth0 showed the new key, so the cut-over is confirmed", r)
			}
			if want := e.old.AccessKeyID; tt.after && r.PreviousKeyID != "" || !tt.after && r.PreviousKeyID != want {
				t.Errorf("PreviousKeyID %q: the key Auth0 showed before, or none", r.PreviousKeyID)
			}
			// The receipt's summary (alerts) and details (watch) say it.
			if got := r.Summary(); (got != "") != tt.unconfirmed || tt.unconfirmed && !strings.Contains(got, "unconfirmed") {
				t.Errorf("Summary %q", got)
			}
			keep(r.Details())
			waitSendsWith(t, e, name, e.key.AccessKeyID)

			// A retry (Lambda's, or Step Functions') ends the same.
			again, err := e.target.Update(ctx, tg(name), "exec", e.old.AccessKeyID, e.key)
			keep(again)
			if err != nil || (again.Unconfirmed != nil) != tt.after {
				t.Errorf("retry: %v %+v", err, again)
			}
			leak.Check(t, e.sb.Secrets(), map[string][]byte{"the receipts": printed}, sandboxtest.KindAuth0, sandboxtest.KindIAM)
		})
	}
}

// When Auth0 withholds the key id, a tenant that holds another user's key
// cannot be told from one that holds the old key: it is updated, and the
// receipt says so (unconfirmed). The old key's verification still stands:
// a tenant that sent with the old key and still does shows as its use.
func TestWithheldTenantOnAnotherKeyIsUpdatedUnconfirmed(t *testing.T) {
	t.Parallel()
	e := setup(t, "other", "ses", nil)
	tenant, _ := e.sb.Auth0.Tenant("other")
	tenant.SetWithholdKeyID(true)
	r, err := e.target.Update(context.Background(), tg("other"), "exec", "AKIASOMEONEELSE00000", e.key)
	if err != nil || r.Unconfirmed == nil || r.PreviousKeyID != "" {
		t.Fatalf("Update: %v %+v", err, r)
	}
	if c := tenant.View().Provider["credentials"].(map[string]any); c["accessKeyId"] != e.key.AccessKeyID {
		t.Errorf("provider after: %v", c)
	}
}

// A resumed run's Plan of a withholding tenant cannot see that the earlier
// run moved it: it plans the PATCH again (harmless) and says why.
func TestPlanWithheldResumed(t *testing.T) {
	t.Parallel()
	e := setup(t, "resumed", "ses", nil)
	tenant, _ := e.sb.Auth0.Tenant("resumed")
	tenant.SetWithholdKeyID(true)
	r, err := e.target.Plan(context.Background(), tg("resumed"), e.old.AccessKeyID, e.key.AccessKeyID)
	if err != nil || len(r.Planned) != 1 || !strings.Contains(r.Planned[0], "does not show") || !strings.Contains(r.Planned[0], auth0.UsedBy) {
		t.Fatalf("Plan: %v %+v", err, r)
	}
}

func waitSendsWith(t *testing.T, e env, name, keyID string) {
	t.Helper()
	tenant, _ := e.sb.Auth0.Tenant(name)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := tenant.View().Mail
		if m.LastKeyID == keyID && m.LastError == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant does not send with %s: %+v", keyID, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
