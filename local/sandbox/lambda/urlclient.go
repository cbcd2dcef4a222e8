package lambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// URLTransport sends requests for function URLs
// (https://<url-id>.lambda-url.<region>.on.aws/…) to the sandbox at
// endpoint (http://127.0.0.1:PORT), keeping the URL's host in the Host
// header, which is how the sandbox tells URLs apart and what the SigV4
// signature covers; every other request goes out unchanged. base nil is
// http.DefaultTransport.
func URLTransport(endpoint string, base http.RoundTripper) (http.RoundTripper, error) {
	ep, err := url.Parse(endpoint)
	if err != nil || ep.Host == "" {
		return nil, fmt.Errorf("lambda: sandbox endpoint %q is not a URL", endpoint)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return urlTransport{endpoint: ep, base: base}, nil
}

type urlTransport struct {
	endpoint *url.URL
	base     http.RoundTripper
}

func (t urlTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, _, ok := parseURLHost(r.URL.Host); !ok {
		return t.base.RoundTrip(r)
	}
	out := r.Clone(r.Context())
	if out.Host == "" {
		out.Host = r.URL.Host
	}
	u := *r.URL
	u.Scheme, u.Host = t.endpoint.Scheme, t.endpoint.Host
	out.URL = &u
	return t.base.RoundTrip(out)
}

// NewURLRequest is a request to a function URL signed as AWS_IAM needs:
// SigV4 for service "lambda" in cfg's region, with cfg's credentials, over
// the URL's host, body and path (aws-sdk-go-v2's signer, as any client
// does). Send it with a client whose Transport is URLTransport to reach
// the sandbox.
func NewURLRequest(ctx context.Context, cfg aws.Config, method, functionURL string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, functionURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lambda: function URL request: %w", err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("lambda: function URL request: no credentials to sign with")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("lambda: function URL request: credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "lambda", cfg.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("lambda: sign function URL request: %w", err)
	}
	return req, nil
}
