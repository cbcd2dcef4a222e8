package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyrotator/keyrotator/local/sandbox/sigv4"
)

const (
	keyID  = "AKIAIOSFODNN7EXAMPLE"
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// The SDK's own signer is the reference: whatever it signs, Verify accepts,
// and any change to what was signed is refused.
func TestVerifyAgainstTheSDKSigner(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	tests := []struct {
		name, method, url, body, service string
		header                           map[string]string
	}{
		{"query protocol", "POST", "http://127.0.0.1:4566/", "Action=ListAccessKeys&Version=2010-05-08", "iam", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"json protocol", "POST", "http://127.0.0.1:4566/", `{"SecretId":"x"}`, "secretsmanager", map[string]string{"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1"}},
		{"rest path with an escaped ARN", "POST", "http://127.0.0.1:4566/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111122223333%3Afunction%3Avalidate/invocations", `{}`, "lambda", nil},
		{"query string", "GET", "http://127.0.0.1:4566/?b=2&a=1&a=0&sp=a%20b", "", "sts", nil},
		{"repeated spaces in a header", "POST", "http://127.0.0.1:4566/", "x", "sns", map[string]string{"X-Amz-Meta-Note": "a   b  c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := signed(t, tt.method, tt.url, tt.body, tt.service, tt.header, now)
			a, err := sigv4.Parse(req)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if a.AccessKeyID != keyID || a.Service != tt.service || a.Region != "us-east-1" {
				t.Fatalf("Parse: %+v", a)
			}
			if err := sigv4.Verify(req, []byte(tt.body), a, secret, now); err != nil {
				t.Fatalf("Verify of an SDK-signed request: %v", err)
			}
			if err := sigv4.Verify(req, []byte(tt.body+"tampered"), a, secret, now); !errors.Is(err, sigv4.ErrMismatch) {
				t.Fatalf("tampered body: got %v, want ErrMismatch", err)
			}
			if err := sigv4.Verify(req, []byte(tt.body), a, "another"+secret[7:], now); !errors.Is(err, sigv4.ErrMismatch) {
				t.Fatalf("wrong secret: got %v, want ErrMismatch", err)
			}
			if err := sigv4.Verify(req, []byte(tt.body), a, secret, now.Add(20*time.Minute)); !errors.Is(err, sigv4.ErrExpired) {
				t.Fatalf("late request: got %v, want ErrExpired", err)
			}
		})
	}
}

func TestParseRefusesWhatAWSRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, auth string
		want       error
	}{
		{"no header", "", sigv4.ErrMissing},
		{"other algorithm", "AWS3 Credential=x", sigv4.ErrIncomplete},
		{"short scope", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1, SignedHeaders=host, Signature=00", sigv4.ErrIncomplete},
		{"no signature", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/iam/aws4_request, SignedHeaders=host", sigv4.ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://127.0.0.1/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			r.Header.Set("X-Amz-Date", "20260101T000000Z")
			if _, err := sigv4.Parse(r); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// signed returns the request as the server receives it after the SDK signed it.
func signed(t *testing.T, method, url, body, service string, header map[string]string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	sum := sha256Hex(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req, sum, service, "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	// What a server sees: Host moved out of the header map, path as sent.
	srvReq, err := http.ReadRequest(bufioReader(t, req))
	if err != nil {
		t.Fatal(err)
	}
	return srvReq
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func bufioReader(t *testing.T, r *http.Request) *bufio.Reader {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(&b)
}

// A function URL call: sent to the sandbox's address with the URL's host in
// the Host header, signed for that host, and with X-Amz-Content-Sha256
// declaring the payload. A body other than the declared one is refused
// even though the header still matches the signature.
func TestVerifyHostHeaderAndDeclaredPayload(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	body := `{"decision":"approve"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://127.0.0.1:4566/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req, sha256Hex(body), "lambda", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	srv, err := http.ReadRequest(bufioReader(t, req))
	if err != nil {
		t.Fatal(err)
	}
	a, err := sigv4.Parse(srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigv4.Verify(srv, []byte(body), a, secret, now); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := sigv4.Verify(srv, []byte(`{"decision":"reject"}`), a, secret, now); !errors.Is(err, sigv4.ErrMismatch) {
		t.Fatalf("another body under the declared hash: %v, want ErrMismatch", err)
	}
	srv.Host = "127.0.0.1:4566"
	if err := sigv4.Verify(srv, []byte(body), a, secret, now); !errors.Is(err, sigv4.ErrMismatch) {
		t.Fatalf("another host: %v, want ErrMismatch", err)
	}
}
