package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
)

// The golden template's config rotates IAM user app-aws-user into the
// secret app/aws-access-key (infra's testConfig, rotation "app-key"): its
// policies name exactly that user and that secret.
const (
	goldenUser   = "app-aws-user"
	goldenSecret = "app/aws-access-key"
)

func goldenInput() map[string]any {
	return map[string]any{"user": goldenUser, "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": goldenSecret}},
		"waitDays": 7, "graceDays": 1, "minKeyAgeDays": 80}
}

// deniedCalls are the calls the sandbox refused for want of permission.
func (h *H) deniedCalls() []string {
	var out []string
	for _, c := range h.sb.Calls(h.t, 0) {
		if c.Error == "AccessDenied" || c.Error == "AccessDeniedException" || c.Error == "AuthorizationError" {
			out = append(out, c.Service+":"+c.Action+" by "+c.Principal+" on "+strings.Join(c.ResourceARNs, ","))
		}
	}
	return out
}

// What we test is what we deploy: a whole rotation of the golden config's
// user, under IAM enforcement, with the roles and policies the synthesized
// template gives each function, the state machine and the topic. Every
// call the run makes is allowed by them, and none is refused.
func TestRotationUnderIAMEnforcement(t *testing.T) {
	t.Parallel()
	h := startWith(t, fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true})
	keys := h.sb.User(t, goldenUser, 1)
	h.sb.IAM.Backdate(keys[0].AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -95))
	v, _ := json.Marshal(map[string]string{"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(goldenSecret), SecretString: aws.String(string(v))}); err != nil {
		t.Fatalf("seed app secret: %v", err)
	}
	r := h.Run(goldenInput())
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("rotation under enforcement: %s %s: %s (refused: %v)", r.Status, r.Error, r.Cause, h.deniedCalls())
	}
	if d := h.deniedCalls(); len(d) > 0 {
		t.Errorf("calls refused during a successful rotation: %v", d)
	}
	if ks := h.keys(goldenUser); len(ks) != 1 || ks[keys[0].AccessKeyID] != "" {
		t.Errorf("keys after the rotation %v: want one new key, the old one deleted", ks)
	}
}

// A user the config does not name is no user the template's policies let
// the functions touch: the run fails at its first IAM call with
// AccessDenied naming the action and the user, before any change.
func TestUnconfiguredUserIsDenied(t *testing.T) {
	t.Parallel()
	h := startWith(t, fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true})
	f := h.seed("not-in-config", 95)
	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusFailed || r.Error != "AccessDenied" {
		t.Fatalf("status %s %s: %s, want FAILED AccessDenied", r.Status, r.Error, r.Cause)
	}
	if !strings.Contains(r.Cause, "iam:GetUser") || !strings.Contains(r.Cause, "user/not-in-config") {
		t.Errorf("cause %q: want the IAM action and the user named", r.Cause)
	}
	if d := h.deniedCalls(); !slices.ContainsFunc(d, func(s string) bool { return strings.HasPrefix(s, "iam:") }) {
		t.Errorf("refused calls %v: want the IAM call", d)
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys %v: a refused run changed the user's keys", ks)
	}
}
