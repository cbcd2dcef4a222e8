// Package endpoint calls keyrotator's endpoints: Lambda function URLs with
// AuthType AWS_IAM (requestrun, answerapproval). Each request is signed
// with Signature Version 4 for the service "lambda" with the person's own
// credentials (aws-sdk-go-v2's aws/signer/v4), so AWS authenticates them
// and the function reads who from requestContext.authorizer.iam.
// https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
package endpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Service is the SigV4 service name of a function URL.
const Service = "lambda"

// MaxAnswer bounds what the CLI reads of an answer.
const MaxAnswer = 1 << 20

// Client posts JSON to function URLs, signed.
type Client struct {
	HTTP        *http.Client
	Credentials aws.CredentialsProvider
	// Region signs when the URL's host does not say one
	// (<url-id>.lambda-url.<region>.on.aws).
	Region string
	// Endpoint, when set, is where requests go instead of the URL's host,
	// which is kept as the Host header (and signed as it): the sandbox
	// serves every function URL on its one endpoint, routed by Host.
	Endpoint string
	Now      func() time.Time
}

// Answer is an endpoint's HTTP answer.
type Answer struct {
	Status int
	Body   []byte
}

// Problem is an endpoint's error body: requestrun's {"error", "field",
// "message"}, answerapproval's {"outcome", "message"}.
type Problem struct {
	Error   string `json:"error"`
	Outcome string `json:"outcome,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Problem is the answer's error body, if it has one.
func (a Answer) Problem() Problem {
	var p Problem
	_ = json.Unmarshal(a.Body, &p)
	if p.Error == "" {
		p.Error = p.Outcome
	}
	if p.Message == "" {
		p.Message = strings.TrimSpace(string(a.Body))
		if len(p.Message) > 300 {
			p.Message = p.Message[:300] + "…"
		}
	}
	return p
}

// urlHost is a function URL's host name.
var urlHost = regexp.MustCompile(`^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$`)

// Post sends body (JSON) to the function URL u and answers what it said.
// An error is the request not being made or answered at all.
func (c *Client) Post(ctx context.Context, u string, body any) (Answer, error) {
	target, err := url.Parse(u)
	if err != nil || target.Scheme != "https" || target.Host == "" {
		return Answer{}, fmt.Errorf("function URL %q: want https://<url-id>.lambda-url.<region>.on.aws/", u)
	}
	if target.Path == "" {
		target.Path = "/"
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return Answer{}, fmt.Errorf("encode the request: %w", err)
	}
	region := c.Region
	if m := urlHost.FindStringSubmatch(strings.ToLower(target.Hostname())); m != nil {
		region = m[1]
	}
	if region == "" {
		return Answer{}, errors.New("no region to sign the function URL request for (give --region)")
	}
	send := *target
	if c.Endpoint != "" {
		ep, err := url.Parse(c.Endpoint)
		if err != nil {
			return Answer{}, fmt.Errorf("endpoint %q: %w", c.Endpoint, err)
		}
		send.Scheme, send.Host = ep.Scheme, ep.Host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, send.String(), bytes.NewReader(payload))
	if err != nil {
		return Answer{}, err
	}
	req.Host = target.Host // signed as the URL's host, wherever it is sent
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(payload)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if c.Credentials == nil {
		return Answer{}, errors.New("no AWS credentials to sign the function URL request with")
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("credentials: %w", err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, Service, region, now()); err != nil {
		return Answer{}, fmt.Errorf("sign the function URL request: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("POST %s: %w", u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, MaxAnswer))
	if err != nil {
		return Answer{}, fmt.Errorf("POST %s: read the answer: %w", u, err)
	}
	return Answer{Status: res.StatusCode, Body: b}, nil
}
