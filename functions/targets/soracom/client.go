// Package soracom is the `soracom` target: SORACOM's credentials store and
// the SIM groups whose Funnel/Funk configuration points at an AWS
// credential. No maintained Go SDK covers these calls, so this file is a
// small typed client written from SORACOM's OpenAPI spec
// (shared/reference/soracom-api.en.yaml): /auth, /credentials, /groups.
package soracom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoints by coverage type, as the spec's servers list them.
var Endpoints = map[string]string{
	"jp": "https://api.soracom.io/v1",
	"g":  "https://g.api.soracom.io/v1",
}

// APIError is SORACOM's error body with its HTTP status and the operation
// that got it, as SAM permissions name it ("Credential:createCredential").
type APIError struct {
	Operation string `json:"-"`
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// carriesSecret are the operations whose request body holds a secret: the
// SAM user's auth key (/auth) and a credential's secret access key. An
// error answer to one of them may quote what was sent (a payload
// validation error), so its message is never kept (I1): the operation,
// status and SORACOM's error code say what failed.
var carriesSecret = map[string]bool{"Auth:auth": true, "Credential:createCredential": true, "Credential:updateCredential": true}

// withheld is the message of an error answer to a call that carried a secret.
const withheld = "(SORACOM's message is not shown: it may quote the secret sent)"

// codeShape is SORACOM's error code: three letters and four digits (SEM0001, CRE0007, UNK0001).
var codeShape = regexp.MustCompile(`^[A-Z]{3}[0-9]{4}$`)

func (e *APIError) Error() string {
	return fmt.Sprintf("soracom %s: %d %s: %s", e.Operation, e.Status, e.Code, e.Message)
}

// Credential is a credentials-store entry (CredentialsModel). Times are
// milliseconds since the epoch, as SORACOM sends them.
type Credential struct {
	CredentialsID    string         `json:"credentialsId"`
	Type             string         `json:"type"`
	Description      string         `json:"description,omitempty"`
	Credentials      map[string]any `json:"credentials,omitempty"`
	CreateDateTime   int64          `json:"createDateTime,omitempty"`
	UpdateDateTime   int64          `json:"updateDateTime,omitempty"`
	LastUsedDateTime int64          `json:"lastUsedDateTime,omitempty"`
}

// LastUsed is when SORACOM last used the credential, if ever.
func (c Credential) LastUsed() (time.Time, bool) {
	if c.LastUsedDateTime == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(c.LastUsedDateTime).UTC(), true
}

// CredentialInput is CreateAndUpdateCredentialsModel.
type CredentialInput struct {
	Type        string         `json:"type"`
	Description string         `json:"description,omitempty"`
	Credentials map[string]any `json:"credentials"`
}

// Group is a SIM group with its configuration by namespace.
type Group struct {
	GroupID          string                    `json:"groupId"`
	OperatorID       string                    `json:"operatorId,omitempty"`
	Configuration    map[string]map[string]any `json:"configuration"`
	Tags             map[string]string         `json:"tags,omitempty"`
	CreatedTime      int64                     `json:"createdTime,omitempty"`
	LastModifiedTime int64                     `json:"lastModifiedTime,omitempty"`
}

// Param is one key of a group configuration namespace.
type Param struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Client calls the SORACOM API as a SAM user (auth key id and secret). It
// is safe for concurrent use and keeps its token between calls.
type Client struct {
	base      string
	hc        *http.Client
	keyID     string
	key       string
	maxWait   time.Duration // how long 429s are waited out, in all, per call
	tokenLife time.Duration

	mu      sync.Mutex
	apiKey  string
	token   string
	expires time.Time
}

// Option changes a Client.
type Option func(*Client)

// NewClient returns a client for base (Endpoints[coverage], or a sandbox's
// URL). tokenLife is what /auth is asked for: a Lambda needs minutes, not
// the default day. maxWait bounds how long a rate limit is waited out.
func NewClient(base, authKeyID, authKey string, tokenLife, maxWait time.Duration, opts ...Option) *Client {
	if tokenLife <= 0 {
		tokenLife = 15 * time.Minute
	}
	c := &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 20 * time.Second},
		keyID: authKeyID, key: authKey, tokenLife: tokenLife, maxWait: maxWait}
	for _, o := range opts {
		o(c)
	}
	return c
}

// String names the client without its secret.
func (c *Client) String() string { return "soracom client " + c.base + " as " + c.keyID }

// auth gets an API key and token (POST /auth). The answer has no expiry,
// so the client keeps the token's age itself and renews it a little early.
func (c *Client) auth(ctx context.Context) error {
	body := map[string]any{"authKeyId": c.keyID, "authKey": c.key, "tokenTimeoutSeconds": int64(c.tokenLife.Seconds())}
	var out struct {
		APIKey     string `json:"apiKey"`
		Token      string `json:"token"`
		OperatorID string `json:"operatorId"`
	}
	issued := time.Now()
	if err := c.send(ctx, "Auth:auth", http.MethodPost, "/auth", nil, body, &out, false); err != nil {
		return err
	}
	c.mu.Lock()
	c.apiKey, c.token, c.expires = out.APIKey, out.Token, issued.Add(c.tokenLife-min(time.Minute, c.tokenLife/10))
	c.mu.Unlock()
	return nil
}

func (c *Client) call(ctx context.Context, op, method, path string, query url.Values, in, out any) error {
	return c.send(ctx, op, method, path, query, in, out, true)
}

// send makes one API call: authenticating first when needed, once more on
// a 401 (a token that expired early), and waiting out 429s for as long as
// SORACOM's X-Soracom-Ratelimit-Seconds-Before-Refresh says, within maxWait.
func (c *Client) send(ctx context.Context, op, method, path string, query url.Values, in, out any, authed bool) error {
	deadline := time.Now().Add(c.maxWait)
	reauthed := false
	for {
		if authed {
			c.mu.Lock()
			fresh := c.token != "" && time.Now().Before(c.expires)
			c.mu.Unlock()
			if !fresh {
				if err := c.auth(ctx); err != nil {
					return err
				}
			}
		}
		resp, err := c.do(ctx, op, method, path, query, in, authed)
		if err != nil {
			return err
		}
		if resp.err == nil {
			if p, ok := out.(*page); ok {
				p.next = resp.next
				out = p.into
			}
			if out != nil && len(resp.body) > 0 {
				if err := json.Unmarshal(resp.body, out); err != nil {
					return fmt.Errorf("soracom %s: decode: %w", op, err)
				}
			}
			return nil
		}
		switch {
		case resp.err.Status == http.StatusUnauthorized && authed && !reauthed:
			reauthed = true
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
			continue
		case resp.err.Status == http.StatusTooManyRequests:
			wait := resp.retryAfter
			if wait <= 0 {
				wait = time.Second
			}
			if time.Now().Add(wait).After(deadline) {
				return resp.err
			}
			select {
			case <-ctx.Done():
				return resp.err
			case <-time.After(wait):
			}
			continue
		}
		return resp.err
	}
}

type result struct {
	body       []byte
	next       string
	retryAfter time.Duration
	err        *APIError
}

// page collects one page of a list and the key of the next.
type page struct {
	into any
	next string
}

func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, in any, authed bool) (result, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return result{}, fmt.Errorf("soracom %s: encode: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return result{}, fmt.Errorf("soracom %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Soracom-Lang", "en")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authed {
		c.mu.Lock()
		req.Header.Set("X-Soracom-API-Key", c.apiKey)
		req.Header.Set("X-Soracom-Token", c.token)
		c.mu.Unlock()
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return result{}, fmt.Errorf("soracom %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return result{}, fmt.Errorf("soracom %s: read: %w", op, err)
	}
	r := result{body: b, next: resp.Header.Get("X-Soracom-Next-Key")}
	if s, err := strconv.Atoi(resp.Header.Get("X-Soracom-Ratelimit-Seconds-Before-Refresh")); err == nil && s >= 0 {
		r.retryAfter = time.Duration(s) * time.Second
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Operation: op, Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			// A load balancer's plain-text error: SORACOM's SDK calls it UNK0001.
			e.Code, e.Message = "UNK0001", strings.TrimSpace(string(b))
			if len(e.Message) > 200 {
				e.Message = e.Message[:200]
			}
		}
		if carriesSecret[op] {
			if !codeShape.MatchString(e.Code) {
				e.Code = "UNK0001"
			}
			e.Message = withheld
		}
		r.err = e
	}
	return r, nil
}

// ListCredentials lists the credentials store (GET /credentials).
func (c *Client) ListCredentials(ctx context.Context) ([]Credential, error) {
	var out []Credential
	return out, c.call(ctx, "Credential:listCredentials", http.MethodGet, "/credentials", nil, nil, &out)
}

// CreateCredential makes credential id (POST /credentials/{id}).
func (c *Client) CreateCredential(ctx context.Context, id string, in CredentialInput) (Credential, error) {
	var out Credential
	return out, c.call(ctx, "Credential:createCredential", http.MethodPost, "/credentials/"+url.PathEscape(id), nil, in, &out)
}

// UpdateCredential replaces credential id's content (PUT /credentials/{id}).
func (c *Client) UpdateCredential(ctx context.Context, id string, in CredentialInput) (Credential, error) {
	var out Credential
	return out, c.call(ctx, "Credential:updateCredential", http.MethodPut, "/credentials/"+url.PathEscape(id), nil, in, &out)
}

// DeleteCredential removes credential id; one already gone is not an error.
func (c *Client) DeleteCredential(ctx context.Context, id string) error {
	err := c.call(ctx, "Credential:deleteCredential", http.MethodDelete, "/credentials/"+url.PathEscape(id), nil, nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// ListGroups lists every group, following x-soracom-next-key page by page.
func (c *Client) ListGroups(ctx context.Context, pageSize int) ([]Group, error) {
	var all []Group
	next := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if next != "" {
			q.Set("last_evaluated_key", next)
		}
		var groups []Group
		p := &page{into: &groups}
		if err := c.call(ctx, "Group:listGroups", http.MethodGet, "/groups", q, nil, p); err != nil {
			return nil, err
		}
		all = append(all, groups...)
		if p.next == "" || len(groups) == 0 {
			return all, nil
		}
		if p.next == next {
			return nil, fmt.Errorf("soracom Group:listGroups: the next page key %q repeats", next)
		}
		next = p.next
	}
}

// PutConfiguration sets keys of a group's namespace; keys not sent stay
// (PUT /groups/{id}/configuration/{namespace}).
func (c *Client) PutConfiguration(ctx context.Context, groupID, namespace string, params []Param) (Group, error) {
	var out Group
	return out, c.call(ctx, "Group:putConfigurationParameters", http.MethodPut, "/groups/"+url.PathEscape(groupID)+"/configuration/"+url.PathEscape(namespace), nil, params, &out)
}
