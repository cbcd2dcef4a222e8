package soracom_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// An issue (oldKeyID ""; docs/design.md, Issuance) makes the target's
// first credential with the new key and repoints no group; a retry makes
// no second one (I5); a target that has a credential already is refused,
// before any change.
func TestIssue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, strategy := range []string{"newCredential", "inPlace"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			e := setup(t, 1, "secret-right", allPermissions)
			fresh := tg(strategy)
			fresh.CredentialPrefix, fresh.CredentialIDs = "aws-new", nil
			want := "aws-new-20261201"
			if strategy == "inPlace" {
				fresh.CredentialPrefix, fresh.CredentialIDs, want = "", []string{"funnel-main"}, "funnel-main"
			}
			before := len(e.credentials())
			p, err := e.target.Plan(ctx, fresh, "", "")
			if err != nil || len(p.Planned) != 1 || !strings.Contains(p.Planned[0], "create credential "+want) {
				t.Fatalf("plan %+v, %v", p, err)
			}
			if n := len(e.credentials()); n != before {
				t.Fatalf("Plan made a credential: %d, was %d", n, before)
			}
			r, err := e.target.Update(ctx, fresh, "exec", "", e.key)
			if err != nil || !r.Changed || r.Soracom == nil || r.Soracom.NewCredential != want || len(r.Soracom.Groups) != 0 || r.NewKeyID != e.key.AccessKeyID {
				t.Fatalf("Update: %+v, %v", r, err)
			}
			c, ok := e.credentials()[want]
			if !ok || c.AccessKeyID != e.key.AccessKeyID {
				t.Fatalf("credential %s after the issue: %+v", want, c)
			}
			again, err := e.target.Update(ctx, fresh, "exec", "", e.key)
			if err != nil || again.Changed || again.Soracom.NewCredential != want || len(e.credentials()) != before+1 {
				t.Errorf("a retry must make nothing new: %+v, %v (%d credentials)", again, err, len(e.credentials()))
			}
			if g, _ := e.op.Group(e.groups[0]); g.Configuration["SoracomFunnel"]["credentialsId"] != "aws-funnel-1" {
				t.Errorf("an issue repointed group %s: %v", e.groups[0], g.Configuration)
			}
		})
	}
	t.Run("has a credential", func(t *testing.T) {
		t.Parallel()
		e := setup(t, 1, "secret-right", allPermissions)
		before := len(e.credentials())
		for op, call := range map[string]func() error{
			"Plan":   func() error { _, err := e.target.Plan(ctx, tg("newCredential"), "", ""); return err },
			"Update": func() error { _, err := e.target.Update(ctx, tg("newCredential"), "exec", "", e.key); return err },
		} {
			var tf *rotation.TargetFailed
			if err := call(); !errors.As(err, &tf) || !strings.Contains(tf.Reason, "aws-funnel-1") || strings.Contains(err.Error(), e.key.Secret()) {
				t.Errorf("%s: got %v, want TargetFailed naming aws-funnel-1", op, err)
			}
		}
		if n := len(e.credentials()); n != before {
			t.Errorf("a refused issue made a credential: %d, was %d", n, before)
		}
	})
}
