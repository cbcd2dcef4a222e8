package fullsandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/auth0/go-auth0/management"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// --state keeps users, keys, the admin identity and the clock across restarts.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: file}}

	sb1, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb1.IAM.CreateUser("kept", "/", nil); err != nil {
		t.Fatal(err)
	}
	k, err := sb1.IAM.CreateAccessKey("kept")
	if err != nil {
		t.Fatal(err)
	}
	sb1.Server.Clock().Advance(72 * time.Hour)
	serveBriefly(t, sb1)

	sb2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if sb2.Admin.AccessKeyID != sb1.Admin.AccessKeyID {
		t.Errorf("admin key changed across restart: %s → %s", sb1.Admin.AccessKeyID, sb2.Admin.AccessKeyID)
	}
	keys, ok := sb2.IAM.Keys("kept")
	if !ok || len(keys) != 1 || keys[0].AccessKeyID != k.AccessKeyID {
		t.Fatalf("user's keys after restart: %v %+v", ok, keys)
	}
	if off := sb2.Server.Clock().Offset(); off < 72*time.Hour {
		t.Errorf("clock offset after restart: %s, want ≥ 72h", off)
	}
}

func serveBriefly(t *testing.T, sb *fullsandbox.Sandbox) {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Server.Serve(ctx, l) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// --state keeps Auth0 tenants and SORACOM operators: on the ports their
// connection secrets name, with their clients, SAM users, sessions,
// providers, credentials and groups; and their secrets go to the state file
// only, never a view or a log.
func TestTenantsAndOperatorsSurviveRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	var logged bytes.Buffer
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: file, Logger: slog.New(slog.NewJSONHandler(&logged, nil))}}
	const (
		clientSecret = "auth0-client-secret-kept-across-restarts-0001"
		authKey      = "secret-soracom-authkey-kept-across-restarts-0001"
		authKeyID    = "keyId-restart00000000000000000000001"
	)

	sb1, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb1.IAM.CreateUser("sender", "/", nil); err != nil {
		t.Fatal(err)
	}
	k, err := sb1.IAM.CreateAccessKey("sender")
	if err != nil {
		t.Fatal(err)
	}
	tenant1, err := sb1.Auth0.AddTenant(auth0.TenantConfig{Name: "kept", ClientID: "cid", ClientSecret: clientSecret, WithholdKeyID: true,
		Scopes: []string{auth0.ScopeRead, auth0.ScopeUpdate},
		Provider: &auth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@example.com", Credentials: map[string]any{
			"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	op1, err := sb1.Soracom.AddOperator(soracom.OperatorConfig{ID: "OP0000000042", Coverage: "g",
		SAMUsers: []soracom.SAMUser{{Name: "rotator", AuthKeyID: authKeyID, AuthKey: authKey}},
		Credentials: map[string]soracom.CredentialInput{"aws-funnel": {Type: "aws-credentials", Description: "funnel",
			Credentials: map[string]any{"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey}}},
		Groups: []soracom.GroupConfig{{ID: "g-1", Name: "sensors", Configuration: map[string]map[string]any{
			"SoracomFunnel": {"enabled": false, "credentialsId": "aws-funnel", "destination": map[string]any{"provider": "aws", "service": "kinesis"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ APIKey, Token string }
	if st := postJSON(t, op1.Endpoint()+"/auth", nil, map[string]string{"authKeyId": authKeyID, "authKey": authKey}, &sess); st != http.StatusOK {
		t.Fatalf("SORACOM /auth before the restart: %d", st)
	}
	view1, groups1, creds1 := tenant1.View(), op1.Groups(), op1.Credentials()
	serveBriefly(t, sb1)

	sb2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, sb2)

	// Auth0: the tenant on its domain, its client and provider, still withholding the key id.
	tenant2, ok := sb2.Auth0.Tenant("kept")
	if !ok {
		t.Fatal("the Auth0 tenant is gone after the restart")
	}
	if v := tenant2.View(); v.Domain != view1.Domain || !v.WithholdKeyID || !reflect.DeepEqual(v.Provider, view1.Provider) || !reflect.DeepEqual(v.Scopes, view1.Scopes) {
		t.Errorf("tenant after restart: %+v\nbefore: %+v", v, view1)
	}
	ctx := context.Background()
	m, err := management.New(tenant2.Domain(), management.WithInsecure(), management.WithClientCredentials(ctx, "cid", clientSecret), management.WithNoRetries())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := m.EmailProvider.Read(ctx)
	if err != nil {
		t.Fatalf("go-auth0 Read after the restart: %v", err)
	}
	if c, ok := ep.Credentials.(*management.EmailProviderCredentialsSES); !ok || ep.GetDefaultFromAddress() != "no-reply@example.com" || c.AccessKeyID != nil || c.GetRegion() != "ap-northeast-1" {
		t.Errorf("provider after restart: %+v %+v", ep, ep.Credentials)
	}

	// The tenant uses its key again: it mails through the restarted sandbox's SES.
	sent := tenant2.View().Mail.Sent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := tenant2.View().Mail; m.Sent > sent && m.LastError == "" && m.LastKeyID == k.AccessKeyID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored tenant does not mail with its key: %+v", tenant2.View().Mail)
		}
	}

	// SORACOM: the operator on its endpoint; its session, AuthKey, credential and group.
	op2, ok := sb2.Soracom.Operator("OP0000000042")
	if !ok {
		t.Fatal("the SORACOM operator is gone after the restart")
	}
	if op2.Endpoint() != op1.Endpoint() || op2.Coverage() != "g" {
		t.Errorf("operator after restart: %s %s, want %s g", op2.Endpoint(), op2.Coverage(), op1.Endpoint())
	}
	if g := op2.Groups(); !reflect.DeepEqual(g, groups1) {
		t.Errorf("groups after restart: %+v\nbefore: %+v", g, groups1)
	}
	if c := op2.Credentials(); !reflect.DeepEqual(c, creds1) {
		t.Errorf("credentials after restart: %+v\nbefore: %+v", c, creds1)
	}
	hdr := map[string]string{"X-Soracom-API-Key": sess.APIKey, "X-Soracom-Token": sess.Token}
	var list []map[string]any
	if st := getJSON(t, op2.Endpoint()+"/credentials", hdr, &list); st != http.StatusOK || len(list) != 1 || list[0]["credentialsId"] != "aws-funnel" {
		t.Errorf("SORACOM session after restart: GET /credentials %d %v", st, list)
	}
	if st := postJSON(t, op2.Endpoint()+"/auth", nil, map[string]string{"authKeyId": authKeyID, "authKey": authKey}, nil); st != http.StatusOK {
		t.Errorf("SORACOM /auth after the restart: %d", st)
	}

	// The secrets are in the state file (the sandbox's own store) and nowhere else.
	state, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{clientSecret, authKey, k.SecretAccessKey} {
		if !bytes.Contains(state, []byte(s)) {
			t.Errorf("the state file does not keep a secret the world holds (%d bytes)", len(s))
		}
	}
	views, _ := json.Marshal([]any{tenant2.View(), op2.View(), sb2.Auth0, sb2.Soracom})
	secrets := []leak.Secret{{Kind: "an Auth0 client secret", Value: clientSecret}, {Kind: "a SORACOM AuthKey secret", Value: authKey}, {Kind: "an IAM secret access key", Value: k.SecretAccessKey}}
	leak.Check(t, secrets, map[string][]byte{"the admin views": views, "the sandbox's log": logged.Bytes()})
}

func postJSON(t *testing.T, u string, hdr map[string]string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	return send(t, http.MethodPost, u, hdr, bytes.NewReader(b), out)
}

func getJSON(t *testing.T, u string, hdr map[string]string, out any) int {
	t.Helper()
	return send(t, http.MethodGet, u, hdr, nil, out)
}

func send(t *testing.T, method, u string, hdr map[string]string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// serve runs sb until the test ends.
func serve(t *testing.T, sb *fullsandbox.Sandbox) {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.SetURL("http://" + l.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Server.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}
