package auth0_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/connections"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/targets/auth0"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// clientSecret is every setup tenant's client secret: long enough for the
// leak canary to search for.
const clientSecret = "csecret-of-the-test-tenant-0123"

type env struct {
	sb     *sandboxtest.Sandbox
	target *auth0.Target
	old    sandboxtest.UserKey
	key    rotation.Credential
}

// setup makes a tenant "name" whose SES provider holds the user's key, and
// its connection secret.
func setup(t *testing.T, name string, provider string, scopes []string) env {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "mailer-"+name, 2)
	cfg := sbauth0.TenantConfig{Name: name, ClientID: "cid", ClientSecret: clientSecret, Scopes: scopes}
	if provider != "" {
		cfg.Provider = &sbauth0.Provider{Name: provider, DefaultFromAddress: "no-reply@example.com", Settings: map[string]any{"message": map[string]any{"configuration_set_name": "tx"}},
			Credentials: map[string]any{"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey, "region": "ap-northeast-1"}}
	}
	tenant, err := sb.Auth0.AddTenant(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid", "clientSecret": clientSecret})
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("keyrotator/connections/" + name), SecretString: aws.String(string(conn))}); err != nil {
		t.Fatal(err)
	}
	return env{sb: sb, target: &auth0.Target{Secrets: connections.New(sm), MaxRateWait: 3 * time.Second}, old: keys[0],
		key: rotation.NewCredential(keys[1].AccessKeyID, keys[1].SecretAccessKey)}
}

func tg(name string) rotation.Target {
	return rotation.Target{Type: "auth0", Name: name, Connection: "keyrotator/connections/" + name, SESRegion: "us-east-1"}
}

func TestUpdateMovesTheTenantAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	e := setup(t, "prod", "ses", nil)
	ctx := context.Background()
	r, err := e.target.Update(ctx, tg("prod"), "exec", e.old.AccessKeyID, e.key)
	if err != nil || !r.Changed || r.PreviousKeyID != e.old.AccessKeyID || r.NewKeyID != e.key.AccessKeyID {
		t.Fatalf("Update: %v %+v", err, r)
	}
	tenant, _ := e.sb.Auth0.Tenant("prod")
	p := tenant.View().Provider
	c := p["credentials"].(map[string]any)
	if c["accessKeyId"] != e.key.AccessKeyID || c["region"] != "ap-northeast-1" || p["default_from_address"] != "no-reply@example.com" || p["settings"] == nil || p["enabled"] != true {
		t.Fatalf("provider after: %v", p)
	}
	again, err := e.target.Update(ctx, tg("prod"), "exec", e.old.AccessKeyID, e.key)
	if err != nil || again.Changed || again.PreviousKeyID != e.old.AccessKeyID {
		t.Fatalf("a retry must change nothing: %v %+v", err, again)
	}
	// The tenant now sends with the new key.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := tenant.View().Mail
		if m.LastKeyID == e.key.AccessKeyID && m.LastError == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant does not send with the new key: %+v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name      string
		provider  string
		scopes    []string
		prepare   func(e env)
		retryable bool
		says      string
	}{
		{name: "no provider", scopes: nil, says: "no email provider configured"},
		{name: "not ses", provider: "sendgrid", says: `"sendgrid", not ses`},
		{name: "missing scope", provider: "ses", scopes: []string{sbauth0.ScopeRead}, says: "read:email_provider and update:email_provider"},
		{name: "bad credentials", provider: "ses", prepare: func(e env) {
			sm := secretsmanager.NewFromConfig(e.sb.Config(t))
			tenant, _ := e.sb.Auth0.Tenant("bad-credentials")
			b, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid", "clientSecret": "wrong"})
			_, _ = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("keyrotator/connections/bad-credentials"), SecretString: aws.String(string(b))})
		}, says: "(401)"},
		{name: "500s", provider: "ses", prepare: func(e env) {
			e.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/500s", map[string]any{"fail": map[string]int{"status": 500, "times": 1}}, nil)
		}, retryable: true, says: "500"},
		{name: "429 storm", provider: "ses", prepare: func(e env) {
			e.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/429-storm", map[string]any{"fail": map[string]int{"status": 429, "times": 50}}, nil)
		}, retryable: true, says: "429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			e := setup(t, name, tt.provider, tt.scopes)
			if tt.prepare != nil {
				tt.prepare(e)
			}
			_, err := e.target.Update(ctx, tg(name), "exec", e.old.AccessKeyID, e.key)
			var tf *rotation.TargetFailed
			var re *rotation.Retryable
			switch {
			case tt.retryable && !errors.As(err, &re):
				t.Fatalf("got %v, want Retryable", err)
			case !tt.retryable && !errors.As(err, &tf):
				t.Fatalf("got %v, want TargetFailed", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%q does not say %q", err, tt.says)
			}
			if strings.Contains(err.Error(), e.key.Secret()) || strings.Contains(err.Error(), clientSecret) {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}

// A short burst of 429s is waited out within the step's budget.
func TestRateLimitWaitedOut(t *testing.T) {
	t.Parallel()
	e := setup(t, "busy", "ses", nil)
	e.sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/busy", map[string]any{"fail": map[string]int{"status": 429, "times": 1}}, nil)
	if r, err := e.target.Update(context.Background(), tg("busy"), "exec", e.old.AccessKeyID, e.key); err != nil || !r.Changed {
		t.Fatalf("Update after one 429: %v %+v", err, r)
	}
}

// A dry run's Plan needs only read:email_provider, says what Update would
// do, and leaves the provider as it was.
func TestPlanReadsOnly(t *testing.T) {
	t.Parallel()
	e := setup(t, "prod", "ses", []string{sbauth0.ScopeRead})
	r, err := e.target.Plan(context.Background(), tg("prod"), e.old.AccessKeyID, "")
	if err != nil || r.Changed || r.PreviousKeyID != e.old.AccessKeyID || len(r.Planned) != 1 || !strings.Contains(r.Planned[0], "ap-northeast-1") {
		t.Fatalf("Plan: %v %+v", err, r)
	}
	tenant, _ := e.sb.Auth0.Tenant("prod")
	if c := tenant.View().Provider["credentials"].(map[string]any); c["accessKeyId"] != e.old.AccessKeyID {
		t.Errorf("the provider changed: %v", c)
	}
	var tf *rotation.TargetFailed
	if _, err := e.target.Plan(context.Background(), tg("prod"), "AKIASOMEONEELSE00000", ""); !errors.As(err, &tf) {
		t.Errorf("a tenant on another key: %v", err)
	}
}
