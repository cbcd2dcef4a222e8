package soracom

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echo answers 400 with a message quoting the request body, as payload
// validation errors may.
func echo(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(r.Body)
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"code":"CRE0001","message":"invalid request: ` + strings.ReplaceAll(string(b), `"`, `'`) + `"}`))
	return true
}

// TestErrorEchoingTheSecretNotQuoted (I1): an error answer to a call that
// carried a secret (the credential's secret access key, the SAM user's
// auth key) says the operation, status and code, never SORACOM's message:
// an echoing server must not carry the secret into TargetFailed.
func TestErrorEchoingTheSecretNotQuoted(t *testing.T) {
	t.Parallel()
	const awsSecret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"
	in := CredentialInput{Type: awsCredentials, Credentials: map[string]any{"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": awsSecret}}
	tests := []struct {
		name   string
		key    string // the SAM user's auth key
		call   func(c *Client) error
		op     string
		echoes bool // the fake's first authenticated answer echoes
	}{
		{"createCredential", "secret-good", func(c *Client) error { _, err := c.CreateCredential(context.Background(), "aws-1", in); return err }, "Credential:createCredential", true},
		{"updateCredential", "secret-good", func(c *Client) error { _, err := c.UpdateCredential(context.Background(), "aws-1", in); return err }, "Credential:updateCredential", true},
		{"auth", "secret-good-but-echoed", func(c *Client) error { _, err := c.ListCredentials(context.Background()); return err }, "Auth:auth", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{}
			if tt.echoes {
				f.answers = []func(http.ResponseWriter, *http.Request) bool{echo}
			}
			var h http.Handler = f
			if !tt.echoes {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { echo(w, r) }) // /auth echoes
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c := NewClient(srv.URL+"/v1", "keyId-test", tt.key, 15*time.Minute, time.Second)
			err := tt.call(c)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Operation != tt.op || ae.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 from %s", err, tt.op)
			}
			for _, s := range []string{awsSecret, awsSecret[:20], tt.key} {
				if strings.Contains(err.Error(), s) || strings.Contains(ae.Message, s) {
					t.Errorf("the error quotes a secret SORACOM echoed: %v", err)
				}
			}
			if !strings.Contains(err.Error(), "400 CRE0001") {
				t.Errorf("%v does not say the status and code", err)
			}
		})
	}
	// A call that carried no secret keeps SORACOM's message.
	f := &fakeAPI{answers: []func(http.ResponseWriter, *http.Request) bool{status(400, `{"code":"CRE0002","message":"no such type"}`)}}
	if _, err := client(t, f, "secret-good", time.Second).ListCredentials(context.Background()); err == nil || !strings.Contains(err.Error(), "no such type") {
		t.Errorf("a read's error lost its message: %v", err)
	}
}
