package auth0_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
)

// An issue (oldKeyID ""; docs/design.md, Issuance) gives a tenant with no
// email provider an SES one holding the new key, disabled (its mail is
// unchanged until a person enables it); a provider with no key is PATCHed;
// a provider that sends with a key is refused, before any change.
func TestIssue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scopes := []string{sbauth0.ScopeRead, sbauth0.ScopeUpdate, sbauth0.ScopeCreate}

	t.Run("no provider", func(t *testing.T) {
		t.Parallel()
		e := setup(t, "fresh", "", scopes)
		p, err := e.target.Plan(ctx, tg("fresh"), "", "")
		if err != nil || len(p.Planned) != 1 || !strings.Contains(p.Planned[0], "disabled") {
			t.Fatalf("plan %+v, %v", p, err)
		}
		if tenant, _ := e.sb.Auth0.Tenant("fresh"); tenant.View().Provider != nil {
			t.Fatalf("Plan made a provider: %v", tenant.View().Provider)
		}
		r, err := e.target.Update(ctx, tg("fresh"), "exec", "", e.key)
		if err != nil || !r.Changed || r.NewKeyID != e.key.AccessKeyID || r.PreviousKeyID != "" {
			t.Fatalf("Update: %+v, %v", r, err)
		}
		tenant, _ := e.sb.Auth0.Tenant("fresh")
		pv := tenant.View().Provider
		c, _ := pv["credentials"].(map[string]any)
		if pv["name"] != "ses" || pv["enabled"] != false || c["accessKeyId"] != e.key.AccessKeyID || c["region"] != "us-east-1" {
			t.Fatalf("provider after the issue: %v", pv)
		}
		again, err := e.target.Update(ctx, tg("fresh"), "exec", "", e.key)
		if err != nil || again.Changed || again.NewKeyID != e.key.AccessKeyID {
			t.Errorf("a retry must change nothing: %+v, %v", again, err)
		}
	})
	t.Run("no create scope", func(t *testing.T) {
		t.Parallel()
		e := setup(t, "narrow", "", nil)
		_, err := e.target.Update(ctx, tg("narrow"), "exec", "", e.key)
		var tf *rotation.TargetFailed
		if !errors.As(err, &tf) || !strings.Contains(tf.Reason, "create:email_provider") || strings.Contains(err.Error(), e.key.Secret()) {
			t.Errorf("got %v, want TargetFailed naming create:email_provider, without the secret", err)
		}
	})
	t.Run("provider holds a key", func(t *testing.T) {
		t.Parallel()
		e := setup(t, "held", "ses", scopes)
		for op, call := range map[string]func() error{
			"Plan":   func() error { _, err := e.target.Plan(ctx, tg("held"), "", ""); return err },
			"Update": func() error { _, err := e.target.Update(ctx, tg("held"), "exec", "", e.key); return err },
		} {
			var tf *rotation.TargetFailed
			if err := call(); !errors.As(err, &tf) || !strings.Contains(tf.Reason, e.old.AccessKeyID) || !strings.Contains(tf.Reason, "an issue fills only") {
				t.Errorf("%s: got %v, want TargetFailed naming the key it holds", op, err)
			}
		}
		tenant, _ := e.sb.Auth0.Tenant("held")
		if c, _ := tenant.View().Provider["credentials"].(map[string]any); c["accessKeyId"] != e.old.AccessKeyID {
			t.Errorf("a refused issue changed the provider: %v", c)
		}
	})
	t.Run("a rotation still refuses a tenant without a provider", func(t *testing.T) {
		t.Parallel()
		e := setup(t, "none", "", scopes)
		var tf *rotation.TargetFailed
		if _, err := e.target.Plan(ctx, tg("none"), e.old.AccessKeyID, ""); !errors.As(err, &tf) || !strings.Contains(tf.Reason, "no email provider") {
			t.Errorf("got %v", err)
		}
	})
}
