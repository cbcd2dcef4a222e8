package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/cli/watch"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
)

// auth0Tenant makes a tenant whose SES provider sends with the fixture's
// key, and its connection secret; the client secret joins the I1 scan.
func (h *H) auth0Tenant(f fixture, name string) map[string]string {
	h.t.Helper()
	h.consumers(f.user)
	clientSecret := "client-secret-" + name + "-" + strings.Repeat("x", 24)
	h.secrets = append(h.secrets, clientSecret)
	tenant, err := h.sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: name, ClientID: "cid-" + name, ClientSecret: clientSecret,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@" + name + ".example.com", Credentials: map[string]any{
			"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		h.t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid-" + name, "clientSecret": clientSecret})
	h.putConnection("keyrotator/connections/"+name, conn)
	return map[string]string{"type": "auth0", "name": name, "connection": "keyrotator/connections/" + name, "sesRegion": "ap-northeast-1"}
}

// sendsWith waits until the tenant's mail goes out with key id.
func (h *H) sendsWith(tenant, id string) {
	h.t.Helper()
	tn, _ := h.sb.Auth0.Tenant(tenant)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := tn.View().Mail
		if m.LastKeyID == id && m.LastError == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("tenant %s does not send with %s: %+v", tenant, id, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuth0Target(t *testing.T) {
	t.Parallel()
	for _, withSecret := range []bool{false, true} {
		name := "auth0 alone"
		if withSecret {
			name = "auth0 and secret"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			f := h.seed("ses-sender", 95)
			targets := []map[string]string{h.auth0Tenant(f, "prod")}
			if withSecret {
				targets = append(targets, map[string]string{"type": "secret", "name": "app", "secretId": f.secretID})
				h.app(f, true)
			}
			h.sendsWith("prod", f.old.AccessKeyID)
			r := h.Run(f.input(map[string]any{"targets": targets}))
			if r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
			}
			if !slices.Contains(r.Visited(), "UpdateAuth0") {
				t.Fatalf("visited %v", r.Visited())
			}
			// The Map's iterations run side by side: each Lambda call's
			// previousEventId chain leads back to its own state, as in AWS.
			for _, e := range r.History {
				if d := e.LambdaFunctionScheduledEventDetails; d != nil {
					fn := aws.ToString(d.Resource)[strings.LastIndex(aws.ToString(d.Resource), ":")+1:]
					if state := watch.LastEntered(r.History, e); strings.HasPrefix(fn, "update") && !strings.EqualFold(state, fn) && !strings.EqualFold("Update"+strings.TrimPrefix(state, "Plan"), fn) {
						t.Errorf("event %d calls %s but leads back to state %s", e.Id, fn, state)
					}
				}
			}
			var key struct {
				Key struct{ KeyID string } `json:"key"`
			}
			r.StateOutput(t, "CreateKey", &key)
			h.sendsWith("prod", key.Key.KeyID)
			if ks := h.keys(f.user); len(ks) != 1 || ks[key.Key.KeyID] != "Active" {
				t.Errorf("keys after: %v", ks)
			}
			var dist struct {
				Receipts []struct{ Target, Type, Where, PreviousKeyID, NewKeyID string } `json:"receipts"`
			}
			r.StateOutput(t, "Distribute", &dist)
			if len(dist.Receipts) != len(targets) || dist.Receipts[0].Type != "auth0" || dist.Receipts[0].PreviousKeyID != f.old.AccessKeyID {
				t.Errorf("receipts %+v", dist.Receipts)
			}
		})
	}
}

// A tenant that fails mid-rotation leaves both keys active, the alert names
// the tenant and what to do, and a re-run finishes.
func TestAuth0TenantFailsThenReRunFinishes(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("ses-sender", 95)
	target := h.auth0Tenant(f, "prod")
	h.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/prod", map[string]any{"scopes": []string{sbauth0.ScopeRead}}, nil)

	r := h.Run(f.input(map[string]any{"targets": []map[string]string{target}}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); len(ks) != 2 || ks[f.old.AccessKeyID] != "Active" {
		t.Fatalf("keys after the failure: %v (both must stay active)", ks)
	}
	h.sendsWith("prod", f.old.AccessKeyID) // the tenant still works
	msgs := string(h.admin("/sns/messages"))
	for _, want := range []string{"prod", "update:email_provider", f.user, "both keys work"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("the alert does not say %q", want)
		}
	}

	h.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/prod", map[string]any{"scopes": []string{sbauth0.ScopeRead, sbauth0.ScopeUpdate}}, nil)
	r = h.Run(f.input(map[string]any{"targets": []map[string]string{target}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the re-run: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	ks := h.keys(f.user)
	if len(ks) != 1 {
		t.Fatalf("keys after the re-run: %v", ks)
	}
	for id := range ks {
		h.sendsWith("prod", id)
	}
}

// A tenant that keeps answering 429 or 500 exhausts the retries of the
// Preflight: no key is made, the alert names the tenant, and once it
// recovers a re-run finishes.
func TestAuth0TenantStorms(t *testing.T) {
	t.Parallel()
	for _, status := range []int{429, 500} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			f := h.seed("ses-sender", 95)
			target := h.auth0Tenant(f, "stormy")
			h.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/stormy", map[string]any{"fail": map[string]int{"status": status, "times": 1000}}, nil)
			r := h.Run(f.input(map[string]any{"targets": []map[string]string{target}}))
			if r.Status != types.ExecutionStatusFailed || r.Error != "Retryable" {
				t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
			}
			if ks := h.keys(f.user); len(ks) != 1 || ks[f.old.AccessKeyID] != "Active" {
				t.Fatalf("keys after: %v", ks)
			}
			if msgs := string(h.admin("/sns/messages")); !strings.Contains(msgs, "stormy") || !strings.Contains(msgs, "re-run") {
				t.Errorf("the alert does not name the tenant and the next step")
			}
			tn, _ := h.sb.Auth0.Tenant("stormy")
			tn.ClearFailures()
			if r := h.Run(f.input(map[string]any{"targets": []map[string]string{target}})); r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("the re-run: %s %s: %s", r.Status, r.Error, r.Cause)
			}
		})
	}
}
