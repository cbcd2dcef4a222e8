package auth0_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
)

// TestErrorEchoingTheCredentialNotQuoted (I1): Auth0's payload validation
// errors quote the offending value ("... does not match pattern ...: <value>
// on property credentials.secretAccessKey"). A 400 on the PATCH that echoes
// what was sent must not carry the new secret access key into TargetFailed.
func TestErrorEchoingTheCredentialNotQuoted(t *testing.T) {
	t.Parallel()
	e := setup(t, "echo", "ses", nil)
	e.sb.Fault(t, sandbox.Fault{Service: "auth0", Action: "PATCH /api/v2/emails/provider", Status: 400, Code: "invalid_body",
		Message: "Payload validation error: 'String does not match pattern ^[A-Za-z0-9]{40}$: " + e.key.Secret() + "' on property credentials.secretAccessKey"})
	_, err := e.target.Update(context.Background(), tg("echo"), "exec", e.old.AccessKeyID, e.key)
	if err == nil {
		t.Fatal("the fault did not fire")
	}
	if strings.Contains(err.Error(), e.key.Secret()) || strings.Contains(err.Error(), e.key.Secret()[:20]) {
		t.Errorf("the error quotes the secret access key Auth0 echoed: %v", err)
	}
	for _, says := range []string{"400 Bad Request", "errorCode invalid_body"} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("%v does not say %q", err, says)
		}
	}
}

// TestPlanShowsOnlyAKeyID (I1): the key id a tenant's provider holds is
// shown only if it has an access key id's shape; a provider whose
// accessKeyId field holds something else (a secret pasted in the wrong
// field) is refused without quoting it.
func TestPlanShowsOnlyAKeyID(t *testing.T) {
	t.Parallel()
	e := setup(t, "ok", "ses", nil)
	pasted := e.key.Secret() // 40 characters: a secret access key, not an id
	tenant, err := e.sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "pasted", ClientID: "cid", ClientSecret: "csecret",
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@example.com",
			Credentials: map[string]any{"accessKeyId": pasted, "secretAccessKey": pasted, "region": "us-east-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid", "clientSecret": "csecret"})
	sm := secretsmanager.NewFromConfig(e.sb.Config(t))
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("keyrotator/connections/pasted"), SecretString: aws.String(string(conn))}); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"Plan", func() error {
			_, err := e.target.Plan(context.Background(), tg("pasted"), e.old.AccessKeyID, "")
			return err
		}},
		{"Update", func() error {
			_, err := e.target.Update(context.Background(), tg("pasted"), "exec", e.old.AccessKeyID, e.key)
			return err
		}},
	} {
		err := call.do()
		var tf *rotation.TargetFailed
		if !errors.As(err, &tf) {
			t.Fatalf("%s: %v, want TargetFailed", call.name, err)
		}
		if strings.Contains(err.Error(), pasted) || strings.Contains(err.Error(), pasted[:20]) {
			t.Errorf("%s quotes what the tenant's accessKeyId holds: %v", call.name, err)
		}
	}
}
