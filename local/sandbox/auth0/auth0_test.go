package auth0_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/auth0/go-auth0"
	"github.com/auth0/go-auth0/management"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The tenant speaks what go-auth0 (the client keyrotator uses) expects.
func TestTenantThroughGoAuth0(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	keys := sb.User(t, "ses-sender", 1)
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "prod", ClientID: "cid", ClientSecret: "csecret",
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@example.com", Credentials: map[string]any{
			"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := management.New(tenant.Domain(), management.WithInsecure(), management.WithClientCredentials(ctx, "cid", "csecret"), management.WithNoRetries())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := m.EmailProvider.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	creds, ok := ep.Credentials.(*management.EmailProviderCredentialsSES)
	if ep.GetName() != "ses" || !ok || creds.GetAccessKeyID() != keys[0].AccessKeyID || creds.SecretAccessKey != nil || creds.GetRegion() != "ap-northeast-1" {
		t.Fatalf("Read: %+v %+v (the secret must never come back)", ep, creds)
	}

	// The tenant uses the key it holds: IAM sees SES use of it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys, _ := sb.IAM.Keys("ses-sender")
		if keys[0].LastService == "ses" && keys[0].LastRegion == "ap-northeast-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant never sent mail with its key: %+v", tenant.View().Mail)
		}
		time.Sleep(20 * time.Millisecond)
	}

	err = m.EmailProvider.Update(ctx, &management.EmailProvider{Name: auth0.String("ses"), Credentials: &management.EmailProviderCredentialsSES{
		AccessKeyID: auth0.String("AKIANEWKEYEXAMPLE000"), SecretAccessKey: auth0.String("new-secret"), Region: auth0.String("ap-northeast-1")}})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	v := tenant.View()
	if v.Provider["default_from_address"] != "no-reply@example.com" {
		t.Errorf("PATCH lost the from-address: %v", v.Provider)
	}
	if c := v.Provider["credentials"].(map[string]any); c["accessKeyId"] != "AKIANEWKEYEXAMPLE000" || c["secretAccessKey"] != nil {
		t.Errorf("admin view after PATCH: %v", c)
	}
}

func TestTenantErrors(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "empty", ClientID: "cid", ClientSecret: "csecret", Scopes: []string{sbauth0.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	client := func(secret string) *management.Management {
		m, err := management.New(tenant.Domain(), management.WithInsecure(), management.WithClientCredentials(ctx, "cid", secret), management.WithNoRetries())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	status := func(err error) int {
		var me management.Error
		if errors.As(err, &me) {
			return me.Status()
		}
		return 0
	}
	m := client("csecret")
	if _, err := m.EmailProvider.Read(ctx); status(err) != http.StatusNotFound {
		t.Errorf("no provider: got %v, want 404", err)
	}
	if err := m.EmailProvider.Update(ctx, &management.EmailProvider{Name: auth0.String("ses")}); status(err) != http.StatusForbidden {
		t.Errorf("missing update scope: got %v, want 403", err)
	}
	if _, err := client("wrong").EmailProvider.Read(ctx); err == nil || status(err) != 0 {
		t.Errorf("bad client secret: got %v, want a token error (not a management.Error)", err)
	}
	// Burst 2, 2 a second: a quick third call is refused.
	var limited bool
	for range 4 {
		if _, err := m.EmailProvider.Read(ctx); status(err) == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited {
		t.Error("no 429 after a burst of calls")
	}
	time.Sleep(1100 * time.Millisecond)
	sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/empty", map[string]any{"fail": map[string]int{"status": 503, "times": 1}}, nil)
	if _, err := m.EmailProvider.Read(ctx); status(err) != http.StatusServiceUnavailable {
		t.Errorf("injected 503: got %v", err)
	}
}

// A tenant sending mail keeps a bounded number of file descriptors open: it
// uses one SES client, built once, not a new one (and a new connection
// pool) for every mail — the sandbox once died with "pipe2: too many open
// files" after a few minutes (issue 11, finding 7).
//
// Serial: it counts the whole test process's open descriptors, which
// parallel tests would move.
func TestTenantMailDoesNotLeakDescriptors(t *testing.T) {
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "ses-sender", 1)
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "leak", ClientID: "cid", ClientSecret: "csecret",
		Provider: &sbauth0.Provider{Name: "ses", Credentials: map[string]any{
			"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitSent := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for tenant.View().Mail.Sent < n {
			if time.Now().After(deadline) {
				t.Fatalf("the tenant sent %d mails, want %d: %+v", tenant.View().Mail.Sent, n, tenant.View().Mail)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSent(5)
	before := openDescriptors(t)
	sent := tenant.View().Mail.Sent
	waitSent(sent + 60)
	if after := openDescriptors(t); after-before > 15 {
		t.Fatalf("%d mails opened %d file descriptors (%d → %d): the tenant leaks one per mail", tenant.View().Mail.Sent-sent, after-before, before, after)
	}
}

func openDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	return len(ents)
}
