package endpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyrotator/keyrotator/local/sandbox/sigv4"
)

// The request is signed as AWS checks it: an independent SigV4 verifier
// (the sandbox's, which its own tests hold to AWS's published examples)
// accepts it with the right secret, over the body as sent and the URL's
// host, for the service lambda and the URL's region; it refuses the same
// request with another secret or a changed body.
func TestPostIsSignedForTheFunctionURL(t *testing.T) {
	t.Parallel()
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	type seen struct {
		auth      sigv4.Auth
		ok, wrong error
		tampered  error
		host      string
		body      []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a, err := sigv4.Parse(r)
		s := seen{auth: a, host: r.Host, body: body}
		if err == nil {
			s.ok = sigv4.Verify(r, body, a, secret, time.Now())
			s.wrong = sigv4.Verify(r, body, a, "another-secret", time.Now())
			// The signature covers the declared payload hash: it must be the body's.
			if sum := sha256.Sum256(body); r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]) {
				s.tampered = errors.New("the declared payload hash is not the body's")
			}
		} else {
			s.ok = err
		}
		got <- s
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"Refused","message":"nope"}`))
	}))
	defer srv.Close()
	c := &Client{Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", secret, "session-token"), Region: "us-east-1", Endpoint: srv.URL}
	ans, err := c.Post(context.Background(), "https://abcdefghij0123456789.lambda-url.ap-northeast-1.on.aws/", map[string]any{"execution": "app-1", "decision": "approve"})
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.ok != nil {
		t.Fatalf("the verifier refuses the signature: %v (auth %+v)", s.ok, s.auth)
	}
	if s.wrong == nil {
		t.Error("the verifier accepts another secret: it checks nothing")
	}
	if s.tampered != nil {
		t.Error(s.tampered)
	}
	if s.auth.Service != "lambda" || s.auth.Region != "ap-northeast-1" || s.auth.SecurityToken != "session-token" {
		t.Errorf("signed for %s in %s (token %q), want lambda in the URL's region with the session token", s.auth.Service, s.auth.Region, s.auth.SecurityToken)
	}
	if s.host != "abcdefghij0123456789.lambda-url.ap-northeast-1.on.aws" || !strings.Contains(strings.Join(s.auth.SignedHeaders, ";"), "host") {
		t.Errorf("host %q, signed headers %v: want the URL's host, signed", s.host, s.auth.SignedHeaders)
	}
	var b map[string]string
	if json.Unmarshal(s.body, &b) != nil || b["decision"] != "approve" {
		t.Errorf("body %s", s.body)
	}
	if ans.Status != http.StatusForbidden || ans.Problem().Error != "Refused" || ans.Problem().Message != "nope" {
		t.Errorf("answer %+v %+v", ans, ans.Problem())
	}
}

func TestPostRefusesWhatIsNoFunctionURL(t *testing.T) {
	t.Parallel()
	c := &Client{Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	for _, u := range []string{"http://x.lambda-url.us-east-1.on.aws/", "not a url", "https://example.com/"} {
		if _, err := c.Post(context.Background(), u, map[string]any{}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
