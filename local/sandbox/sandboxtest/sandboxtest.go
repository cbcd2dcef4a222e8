// Package sandboxtest starts the whole sandbox inside a Go test, on a
// loopback port, and hands out SDK configurations built explicitly for it.
// It never touches the test process's environment, so tests that start a
// sandbox each may run in parallel; a child process (the AWS CLI, boto3)
// gets the sandbox's environment on its own exec.Cmd through Env.
package sandboxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
)

// Sandbox is a running sandbox for one test.
type Sandbox struct {
	*fullsandbox.Sandbox
	URL string
}

// Start runs a sandbox until the test ends. Config, ConfigAs and Env reach
// it as the admin identity (or another key); the process environment is
// left alone, so the test may be parallel.
func Start(t testing.TB, opts fullsandbox.Options) *Sandbox {
	t.Helper()
	w, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	w.Server.SetURL("http://" + l.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Server.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sandbox stopped with: %v", err)
		}
	})
	return &Sandbox{Sandbox: w, URL: w.Server.URL()}
}

// LoadOptions are the SDK loading options that reach the sandbox as the
// admin: its region, endpoint and key, and no shared config or credentials
// file, so nothing of the developer's own AWS set-up leaks in. The
// keyrotator CLI, run in-process, takes them as they are.
func (s *Sandbox) LoadOptions() []func(*config.LoadOptions) error {
	return s.loadOptions(s.Admin.AccessKeyID, s.Admin.Secret, "")
}

func (s *Sandbox) loadOptions(id, secret, token string) []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithRegion(s.Server.Region()),
		config.WithBaseEndpoint(s.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
}

// Config is an SDK configuration that reaches the sandbox as the admin.
func (s *Sandbox) Config(t testing.TB) aws.Config {
	t.Helper()
	return s.ConfigAs(t, s.Admin.AccessKeyID, s.Admin.Secret, "")
}

// ConfigAs is Config with another access key (a user's, a function's).
func (s *Sandbox) ConfigAs(t testing.TB, id, secret, token string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), s.loadOptions(id, secret, token)...)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// Env is the environment of a child process (the AWS CLI, boto3) that
// reaches the sandbox as the admin: the test process's own without any
// AWS_ variable, then the sandbox's, with no shared config or credentials
// file. Set it on the exec.Cmd; the test's own environment stays as it is.
func (s *Sandbox) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(append(env, s.Sandbox.Env()...), "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

// Admin calls the sandbox's admin API: method, path under /_sandbox, a JSON
// body (or nil), and decodes the JSON answer into out (or ignores it if nil).
func (s *Sandbox) AdminCall(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode admin body: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+"/_sandbox"+path, rd) // also from Cleanup, after t.Context ends
	if err != nil {
		t.Fatalf("admin request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && out == nil {
		t.Fatalf("admin %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("admin %s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// Calls returns the calls after since, failing the test if the log has
// evicted any of them (410 Gone: it keeps the newest
// sandbox.CallLogCapacity).
func (s *Sandbox) Calls(t testing.TB, since int64) []sandbox.CallRecord {
	t.Helper()
	var raw json.RawMessage
	if code := s.AdminCall(t, http.MethodGet, fmt.Sprintf("/calls?since=%d", since), nil, &raw); code != http.StatusOK {
		t.Fatalf("the call log since %d: %d %s", since, code, raw)
	}
	var calls []sandbox.CallRecord
	if err := json.Unmarshal(raw, &calls); err != nil {
		t.Fatalf("the call log since %d: %v", since, err)
	}
	return calls
}

// Fault installs a fault rule until the test ends.
func (s *Sandbox) Fault(t testing.TB, f sandbox.Fault) sandbox.Fault {
	t.Helper()
	var added sandbox.Fault
	if code := s.AdminCall(t, http.MethodPost, "/faults", f, &added); code != http.StatusCreated {
		t.Fatalf("add fault: status %d", code)
	}
	t.Cleanup(func() { s.Sandbox.Server.Faults().Remove(added.ID) })
	return added
}

// User makes an IAM user with n access keys, returning the keys with their secrets.
func (s *Sandbox) User(t testing.TB, name string, n int) []UserKey {
	t.Helper()
	var out struct {
		Keys []UserKey `json:"keys"`
	}
	if code := s.AdminCall(t, http.MethodPost, "/iam/users", map[string]any{"userName": name, "keys": n}, &out); code != http.StatusCreated {
		t.Fatalf("create user %s: status %d", name, code)
	}
	return out.Keys
}

// UserKey is an access key the admin API made.
type UserKey struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// CallURL calls a function's URL (AuthType AWS_IAM) as a client of the real
// one does: the request signed with SigV4 for service "lambda" with cfg's
// credentials (aws-sdk-go-v2's signer), sent to the sandbox with the URL's
// host, <url-id>.lambda-url.<region>.on.aws, in the Host header
// (lambda.URLTransport). path is under the URL ("/" or "approve"). It
// returns the HTTP status and body: the function's answer, or 403
// {"Message":"Forbidden"} when the caller may not call it.
func (s *Sandbox) CallURL(t testing.TB, cfg aws.Config, function, method, path string, body []byte) (int, []byte) {
	t.Helper()
	u, ok := s.Lambda.FunctionURL(function)
	if !ok {
		t.Fatalf("function %s has no URL", function)
	}
	req, err := lambda.NewURLRequest(context.Background(), cfg, method, u+strings.TrimPrefix(path, "/"), body)
	if err != nil {
		t.Fatalf("function URL request: %v", err)
	}
	tr, err := lambda.URLTransport(s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, u, err)
	}
	return resp.StatusCode, b
}
