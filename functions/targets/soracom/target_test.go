package soracom_test

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
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

type env struct {
	sb      *sandboxtest.Sandbox
	op      *sbsoracom.Operator
	target  *soracom.Target
	old     rotation.Credential
	key     rotation.Credential
	groups  []string
	connKey string // the auth key in the connection secret
}

var allPermissions = []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"}

// setup makes an operator whose credential "aws-funnel-1" holds the user's
// first key, used by n Funnel groups, and the connection secret with
// authKey (which may be wrong).
func setup(t testing.TB, n int, authKey string, perms []string) env {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "funnel", 2)
	op, err := sb.Soracom.AddOperator(sbsoracom.OperatorConfig{SAMUsers: []sbsoracom.SAMUser{{Name: "keyrotator", AuthKeyID: "keyId-kr", AuthKey: "secret-right", Permissions: perms}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.PutCredential("aws-funnel-1", sbsoracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey}}); err != nil {
		t.Fatal(err)
	}
	e := env{sb: sb, op: op, old: rotation.NewCredential(keys[0].AccessKeyID, keys[0].SecretAccessKey), key: rotation.NewCredential(keys[1].AccessKeyID, keys[1].SecretAccessKey), connKey: authKey}
	for range n {
		id, err := op.AddGroup(sbsoracom.GroupConfig{Name: "g", Configuration: map[string]map[string]any{"SoracomFunnel": {"enabled": true, "credentialsId": "aws-funnel-1"}}})
		if err != nil {
			t.Fatal(err)
		}
		e.groups = append(e.groups, id)
	}
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	conn, _ := json.Marshal(map[string]string{"authKeyId": "keyId-kr", "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("keyrotator/connections/soracom"), SecretString: aws.String(string(conn))}); err != nil {
		t.Fatal(err)
	}
	e.target = &soracom.Target{Secrets: connections.New(sm), MaxRateWait: 3 * time.Second, Now: func() time.Time { return time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC) }}
	return e
}

func tg(strategy string) rotation.Target {
	return rotation.Target{Type: "soracom", Name: "funnel", Connection: "keyrotator/connections/soracom", CredentialPrefix: "aws-funnel", Strategy: strategy}
}

func (e env) update(t *testing.T, strategy string) (rotation.Receipt, error) {
	t.Helper()
	return e.target.Update(context.Background(), tg(strategy), "exec", e.old.AccessKeyID, e.key)
}

func (e env) credentials() map[string]sbsoracom.CredentialView {
	out := map[string]sbsoracom.CredentialView{}
	for _, c := range e.op.Credentials() {
		out[c.ID] = c
	}
	return out
}

func TestNewCredentialIsMadeOnceAndEveryGroupMoves(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, "secret-right", nil)
	r, err := e.update(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || r.Soracom.NewCredential != "aws-funnel-20261201" || len(r.Soracom.Groups) != 3 || r.Soracom.OldCredentials[0] != "aws-funnel-1" || r.Soracom.Operator != e.op.ID() {
		t.Fatalf("receipt %+v %+v", r, r.Soracom)
	}
	if c := e.credentials()["aws-funnel-20261201"]; c.AccessKeyID != e.key.AccessKeyID || !strings.Contains(c.Description, e.key.AccessKeyID) {
		t.Errorf("new credential %+v", c)
	}
	// A retry (a Lambda timeout after the work, a re-run): no second
	// credential, nothing moved again, the same groups reported.
	again, err := e.update(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || again.Soracom.NewCredential != "aws-funnel-20261201" || len(again.Soracom.Groups) != 3 {
		t.Errorf("the retry's receipt %+v %+v", again, again.Soracom)
	}
	for _, g := range again.Soracom.Groups {
		if g.Changed || g.From != "aws-funnel-1" {
			t.Errorf("the retry reports group %+v", g)
		}
	}
	if n := len(e.credentials()); n != 2 {
		t.Errorf("%d credentials after a retry, want 2", n)
	}
}

func TestInPlaceUpdatesTheOneCredential(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, "secret-right", nil)
	r, err := e.update(t, "inPlace")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || r.Soracom.NewCredential != "aws-funnel-1" || len(r.Soracom.Groups) != 2 || len(r.Soracom.OldCredentials) != 0 {
		t.Fatalf("receipt %+v", r.Soracom)
	}
	if c := e.credentials()["aws-funnel-1"]; c.AccessKeyID != e.key.AccessKeyID {
		t.Errorf("credential after: %+v", c)
	}
	if again, err := e.update(t, "inPlace"); err != nil || again.Changed {
		t.Errorf("retry: %v changed=%v", err, again.Changed)
	}
	// A second credential of the target that holds the old key: which one
	// to update is not for keyrotator to guess.
	if err := e.op.PutCredential("aws-funnel-2", sbsoracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": e.old.AccessKeyID, "secretAccessKey": e.old.Secret()}}); err != nil {
		t.Fatal(err)
	}
	if err := e.op.PutCredential("aws-funnel-1", sbsoracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": e.old.AccessKeyID, "secretAccessKey": e.old.Secret()}}); err != nil {
		t.Fatal(err)
	}
	var tf *rotation.TargetFailed
	if _, err := e.update(t, "inPlace"); !errors.As(err, &tf) || !strings.Contains(tf.Reason, "aws-funnel-1, aws-funnel-2") {
		t.Errorf("err = %v", err)
	}
}

func TestUpdateFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		authKey   string
		perms     []string
		fail      *sbsoracom.Failure
		groups    int // 0: 4; -1: none
		retryable bool
		says      []string
		noCreate  bool
	}{
		{name: "a wrong auth key", authKey: "secret-wrong", says: []string{"refused the auth key keyId-kr", "keyrotator/connections/soracom"}, noCreate: true},
		{name: "a missing permission", perms: []string{"Credential:listCredentials", "Group:listGroups", "Group:putConfigurationParameters"},
			says: []string{"may not call Credential:createCredential", strings.Join(allPermissions, ", ")}, noCreate: true},
		{name: "no group uses the target's credentials", groups: -1, says: []string{"no SIM group", `prefix "aws-funnel"`, "aws-funnel-1"}, noCreate: true},
		{name: "SORACOM 500", fail: &sbsoracom.Failure{Operation: "listGroups", Status: 500, Times: 1}, retryable: true, says: []string{"500"}, noCreate: true},
		{name: "a rate limit past the budget", fail: &sbsoracom.Failure{Operation: "createCredential", Status: 429, Times: 100}, retryable: true, says: []string{"rate limited"}, noCreate: true},
		{name: "a partial repoint", fail: &sbsoracom.Failure{Operation: "putConfigurationParameters", Status: 500, After: 2, Times: 1}, retryable: true,
			says: []string{"2 group(s) already use the new credential aws-funnel-20261201: SoracomFunnel ", "2 still use the old credential aws-funnel-1: SoracomFunnel ", "both keys work"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.authKey
			if key == "" {
				key = "secret-right"
			}
			n := 4
			if tt.groups < 0 {
				n = 0
			}
			e := setup(t, n, key, tt.perms)
			if tt.fail != nil {
				e.op.Fail(*tt.fail)
			}
			_, err := e.update(t, "")
			var tf *rotation.TargetFailed
			var rt *rotation.Retryable
			switch {
			case tt.retryable && !errors.As(err, &rt):
				t.Fatalf("err = %v, want Retryable", err)
			case !tt.retryable && !errors.As(err, &tf):
				t.Fatalf("err = %v, want TargetFailed", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "secret-") || strings.Contains(err.Error(), e.key.Secret()) {
				t.Errorf("a secret in the error: %v", err)
			}
			if _, made := e.credentials()["aws-funnel-20261201"]; tt.noCreate && made {
				t.Error("a credential was made before the failure")
			}
			if tt.fail != nil && tt.fail.Status == 500 {
				e.op.ClearFailures()
				if r, err := e.update(t, ""); err != nil || len(r.Soracom.Groups) != 4 {
					t.Errorf("the retry: %v %+v", err, r.Soracom)
				}
			}
		})
	}
}

func TestARateLimitIsWaitedOut(t *testing.T) {
	t.Parallel()
	e := setup(t, 1, "secret-right", nil)
	e.op.Fail(sbsoracom.Failure{Operation: "listCredentials", Status: http.StatusTooManyRequests, Times: 1})
	start := time.Now()
	if _, err := e.update(t, ""); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("took %s: the 429 was not waited out", took)
	}
}

func TestCleanupDeletesOnlyAnUnusedOldCredential(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, "secret-right", nil)
	r, err := e.update(t, "")
	if err != nil {
		t.Fatal(err)
	}
	// Someone puts a group back on the old credential.
	back, err := e.op.AddGroup(sbsoracom.GroupConfig{Name: "late", Configuration: map[string]map[string]any{"SoracomFunk": {"credentialsId": map[string]any{"$credentialsId": "aws-funnel-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var tf *rotation.TargetFailed
	if _, err := e.target.Cleanup(context.Background(), tg(""), r); !errors.As(err, &tf) || !strings.Contains(tf.Reason, back+" (SoracomFunk)") || !strings.Contains(tf.Reason, "repoint them to aws-funnel-20261201") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := e.credentials()["aws-funnel-1"]; !ok {
		t.Fatal("the old credential was deleted while a group uses it")
	}
	if _, err := e.target.Update(context.Background(), tg(""), "exec", e.old.AccessKeyID, e.key); err != nil {
		t.Fatal(err)
	}
	line, err := e.target.Cleanup(context.Background(), tg(""), r)
	if err != nil || !strings.Contains(line, "deleted old credential aws-funnel-1") {
		t.Fatalf("cleanup: %q %v", line, err)
	}
	if _, ok := e.credentials()["aws-funnel-1"]; ok {
		t.Error("the old credential is still there")
	}
	if _, err := e.target.Cleanup(context.Background(), tg(""), r); err != nil {
		t.Errorf("a second cleanup (a retry): %v", err)
	}
}

func TestUsageReportsSoracomsLastUse(t *testing.T) {
	t.Parallel()
	e := setup(t, 1, "secret-right", nil)
	for wait := time.Now().Add(5 * time.Second); e.credentials()["aws-funnel-1"].LastUsed.IsZero(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the group never pushed with the old credential")
		}
	}
	r, err := e.update(t, "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, err := e.target.Usage(context.Background(), tg(""), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(u) != 2 || u[0].Role != "old" || u[0].Credential != "aws-funnel-1" || u[1].Role != "new" || u[0].LastUsed == nil {
			t.Fatalf("usage %+v", u)
		}
		if u[1].LastUsed != nil {
			return // the group pushed with the new credential
		}
		if time.Now().After(deadline) {
			t.Fatal("the new credential was never used")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A dry run's Plan names the credential it would make, every group it
// would repoint and the credential it would delete, and calls nothing but GETs.
func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, "secret-right", []string{"Credential:listCredentials", "Group:listGroups"})
	r, err := e.target.Plan(context.Background(), tg(""), e.old.AccessKeyID, "")
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(r.Planned, "\n")
	for _, want := range append([]string{"create credential aws-funnel-20261201", "repoint 3 group(s)", "delete the old credential aws-funnel-1"}, e.groups...) {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan does not say %q:\n%s", want, plan)
		}
	}
	in, err := e.target.Plan(context.Background(), tg("inPlace"), e.old.AccessKeyID, "")
	if err != nil || !strings.Contains(strings.Join(in.Planned, ""), "update credential aws-funnel-1 in place") {
		t.Errorf("inPlace plan: %v %+v", err, in)
	}
	for _, c := range e.op.Calls() {
		if c.Method != http.MethodGet && c.Operation != "auth" {
			t.Errorf("Plan called %s %s", c.Method, c.Path)
		}
	}
	if n := len(e.credentials()); n != 1 {
		t.Errorf("%d credentials after a plan, want 1", n)
	}
}
