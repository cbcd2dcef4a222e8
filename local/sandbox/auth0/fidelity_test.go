package auth0_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auth0/go-auth0/management"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// fidelityTenant is a tenant whose SES provider holds a sandbox key, and a
// recorder of every answer body the test saw (for the leak canary).
func fidelityTenant(t *testing.T, withhold bool) (*sandboxtest.Sandbox, *sbauth0.Tenant, sandboxtest.UserKey, *bytes.Buffer) {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "ses-sender", 1)
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "fid", ClientID: "cid", ClientSecret: "csecret-long-enough-to-scan-0123456789",
		WithholdKeyID: withhold,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@example.com", Credentials: map[string]any{
			"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return sb, tenant, keys[0], &bytes.Buffer{}
}

const fidSecret = "csecret-long-enough-to-scan-0123456789"

func post(t *testing.T, seen *bytes.Buffer, u, contentType, body string, basic bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if basic {
		req.SetBasicAuth("cid", fidSecret)
	}
	return do(t, seen, req)
}

// do sends req, waiting out the tenant's rate limit (burst 2, 2 a second).
func do(t *testing.T, seen *bytes.Buffer, req *http.Request) (int, map[string]any) {
	t.Helper()
	var b []byte
	var status int
	for range 20 {
		if req.GetBody != nil {
			req.Body, _ = req.GetBody()
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.Write(b)
		if status = resp.StatusCode; status != http.StatusTooManyRequests {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", req.Method, req.URL.Path, b)
	}
	return status, out
}

// /oauth/token takes the client-credentials request in each body Auth0
// documents — form-encoded and JSON, the client in the body or in Basic
// auth — and refuses the rest in Auth0's OAuth error shape.
func TestTokenBodies(t *testing.T) {
	t.Parallel()
	sb, tenant, _, seen := fidelityTenant(t, false)
	u := "http://" + tenant.Domain() + "/oauth/token"
	aud := "http://" + tenant.Domain() + "/api/v2/"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {fidSecret}, "audience": {aud}}.Encode()
	js := func(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
	full := map[string]any{"grant_type": "client_credentials", "client_id": "cid", "client_secret": fidSecret, "audience": aud}

	accepted := []struct {
		name, ct, body string
		basic          bool
	}{
		{"form, client in the body", "application/x-www-form-urlencoded", form, false},
		{"form with a charset", "application/x-www-form-urlencoded; charset=utf-8", form, false},
		{"form, client in Basic auth", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"}, "audience": {aud}}.Encode(), true},
		{"JSON, client in the body", "application/json", js(full), false},
		{"JSON with a charset", "application/json; charset=utf-8", js(full), false},
		{"JSON, client in Basic auth", "application/json", js(map[string]any{"grant_type": "client_credentials", "audience": aud}), true},
	}
	for _, c := range accepted {
		status, got := post(t, seen, u, c.ct, c.body, c.basic)
		tok, _ := got["access_token"].(string)
		if status != http.StatusOK || tok == "" || got["token_type"] != "Bearer" {
			t.Errorf("%s: %d %v, want 200 with a Bearer token", c.name, status, got)
			continue
		}
		// The token works on the Management API.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tenant.Domain()+"/api/v2/emails/provider", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if st, body := do(t, seen, req); st != http.StatusOK || body["name"] != "ses" {
			t.Errorf("%s: its token on GET provider: %d %v", c.name, st, body)
		}
	}

	wrong := map[string]any{"grant_type": "client_credentials", "client_id": "cid", "client_secret": "not-it", "audience": aud}
	refused := []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"no content type", "", form, 400, "invalid_request"},
		{"text/plain", "text/plain", form, 400, "invalid_request"},
		{"multipart", "multipart/form-data; boundary=x", form, 400, "invalid_request"},
		{"JSON that is not JSON", "application/json", form, 400, "invalid_request"},
		{"a JSON array", "application/json", `["client_credentials"]`, 400, "invalid_request"},
		{"a JSON number for a parameter", "application/json", `{"grant_type":"client_credentials","client_id":"cid","client_secret":1}`, 400, "invalid_request"},
		{"no grant_type (JSON)", "application/json", js(map[string]any{"client_id": "cid", "client_secret": fidSecret, "audience": aud}), 400, "invalid_request"},
		{"another grant (form)", "application/x-www-form-urlencoded", url.Values{"grant_type": {"password"}, "client_id": {"cid"}}.Encode(), 400, "unsupported_grant_type"},
		{"wrong secret (JSON)", "application/json", js(wrong), 401, "access_denied"},
		{"wrong secret (form)", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"not-it"}, "audience": {aud}}.Encode(), 401, "access_denied"},
		{"no client", "application/json", js(map[string]any{"grant_type": "client_credentials", "audience": aud}), 401, "access_denied"},
		{"another audience (JSON)", "application/json", js(map[string]any{"grant_type": "client_credentials", "client_id": "cid", "client_secret": fidSecret, "audience": "https://elsewhere/api/v2/"}), 403, "access_denied"},
	}
	for _, c := range refused {
		status, got := post(t, seen, u, c.ct, c.body, false)
		desc, _ := got["error_description"].(string)
		if status != c.status || got["error"] != c.code || desc == "" || len(got) != 2 {
			t.Errorf("%s: %d %v, want %d {error: %s, error_description: …} only", c.name, status, got, c.status, c.code)
		}
	}
	leak.Check(t, sb.Secrets(), map[string][]byte{"the token endpoint's answers": seen.Bytes()}, sandboxtest.KindAuth0, sandboxtest.KindIAM)
}

// GET /api/v2/emails/provider answers name and enabled unless fields asks
// for more; include_fields=false excludes what fields lists.
func TestProviderFields(t *testing.T) {
	t.Parallel()
	sb, tenant, key, seen := fidelityTenant(t, false)
	_, tok := post(t, seen, "http://"+tenant.Domain()+"/oauth/token", "application/json",
		`{"grant_type":"client_credentials","client_id":"cid","client_secret":"`+fidSecret+`","audience":"http://`+tenant.Domain()+`/api/v2/"}`, false)
	get := func(query string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tenant.Domain()+"/api/v2/emails/provider"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
		return do(t, seen, req)
	}
	keys := func(m map[string]any) string {
		var ks []string
		for _, f := range []string{"name", "enabled", "default_from_address", "credentials", "settings"} {
			if _, ok := m[f]; ok {
				ks = append(ks, f)
			}
		}
		return strings.Join(ks, ",")
	}
	for _, c := range []struct{ query, want string }{
		{"", "name,enabled"},
		{"?fields=", "name,enabled"},
		{"?include_fields=true", "name,enabled"},
		{"?fields=credentials&include_fields=true", "credentials"},
		{"?fields=credentials", "credentials"},
		{"?fields=name,default_from_address,credentials&include_fields=true", "name,default_from_address,credentials"},
		{"?fields=credentials,settings&include_fields=false", "name,enabled,default_from_address"},
	} {
		status, got := get(c.query)
		if status != http.StatusOK || keys(got) != c.want || len(got) != len(strings.Split(c.want, ",")) {
			t.Errorf("GET%s: %d %v, want fields %s", c.query, status, got, c.want)
		}
		if cr, ok := got["credentials"].(map[string]any); ok && (cr["accessKeyId"] != key.AccessKeyID || cr["secretAccessKey"] != nil) {
			t.Errorf("GET%s: credentials %v, want the key id and never the secret", c.query, cr)
		}
	}
	status, got := get("?fields=credentials&include_fields=maybe")
	if status != http.StatusBadRequest || got["errorCode"] != "invalid_query_string" || got["statusCode"] != float64(400) || got["error"] != "Bad Request" {
		t.Errorf("include_fields=maybe: %d %v, want Auth0's 400 invalid_query_string", status, got)
	}
	leak.Check(t, sb.Secrets(), map[string][]byte{"the Management API's answers": seen.Bytes()}, sandboxtest.KindAuth0, sandboxtest.KindIAM)
}

// A tenant that withholds the access key id answers go-auth0's Read (and a
// PATCH) with SES credentials that have none, as Auth0 documents them; the
// switch flips through the admin API and the Go option, and the admin view
// still shows what the tenant holds.
func TestWithholdKeyID(t *testing.T) {
	t.Parallel()
	sb, tenant, key, seen := fidelityTenant(t, true)
	ctx := context.Background()
	m, err := management.New(tenant.Domain(), management.WithInsecure(), management.WithClientCredentials(ctx, "cid", fidSecret), management.WithNoRetries())
	if err != nil {
		t.Fatal(err)
	}
	read := func() *management.EmailProviderCredentialsSES {
		t.Helper()
		var ep *management.EmailProvider
		var err error
		for range 20 { // the tenant's rate limit: burst 2, 2 a second
			var me management.Error
			if ep, err = m.EmailProvider.Read(ctx); !errors.As(err, &me) || me.Status() != http.StatusTooManyRequests {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		b, _ := json.Marshal(ep)
		seen.Write(b)
		c, ok := ep.Credentials.(*management.EmailProviderCredentialsSES)
		if !ok || ep.GetName() != "ses" || c.GetRegion() != "ap-northeast-1" || c.SecretAccessKey != nil {
			t.Fatalf("Read: %+v %+v", ep, c)
		}
		return c
	}
	if c := read(); c.AccessKeyID != nil {
		t.Errorf("withheld: Read shows accessKeyId %s", c.GetAccessKeyID())
	}
	if v := tenant.View(); !v.WithholdKeyID || v.Provider["credentials"].(map[string]any)["accessKeyId"] != key.AccessKeyID {
		t.Errorf("admin view of a withholding tenant: %+v", v)
	}
	sb.AdminCall(t, http.MethodPatch, "/auth0/tenants/fid", map[string]any{"withholdKeyId": false}, nil)
	if c := read(); c.GetAccessKeyID() != key.AccessKeyID {
		t.Errorf("shown again (admin API): Read gives %q", c.GetAccessKeyID())
	}
	tenant.SetWithholdKeyID(true)
	if c := read(); c.AccessKeyID != nil {
		t.Errorf("withheld again (Go option): Read shows accessKeyId %s", c.GetAccessKeyID())
	}
	leak.Check(t, sb.Secrets(), map[string][]byte{"go-auth0's reads": seen.Bytes()}, sandboxtest.KindAuth0, sandboxtest.KindIAM)
}
