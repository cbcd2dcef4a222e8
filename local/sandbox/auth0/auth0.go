// Package auth0 is the sandbox's Auth0: tenants, each on its own loopback
// port (an Auth0 domain), with the client-credentials token endpoint and the
// Management API's email provider, Auth0's error shape and rate limit, and
// secrets hidden on read. A tenant whose provider is SES sends a mail
// through the sandbox's SES with the key it holds every few moments, so the
// key it holds is *used* — a tenant that missed a rotation shows up as use
// of the old key, and one whose key was removed too early fails to send.
package auth0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/aws-sdk-go-v2/service/ses/types"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Scopes the email provider endpoints need.
const (
	ScopeRead   = "read:email_provider"
	ScopeUpdate = "update:email_provider"
	ScopeCreate = "create:email_provider"
	ScopeDelete = "delete:email_provider"
)

// Service holds the tenants.
type Service struct {
	srv      *sandbox.Server
	log      *slog.Logger
	mailEach time.Duration
	mu       sync.Mutex
	tenants  map[string]*Tenant
}

// New returns Auth0 for srv; tenants that send mail do so every mailEach.
func New(srv *sandbox.Server, mailEach time.Duration) *Service {
	if mailEach <= 0 {
		mailEach = 25 * time.Millisecond
	}
	return &Service{srv: srv, log: srv.Logger(), mailEach: mailEach, tenants: map[string]*Tenant{}}
}

// TenantConfig makes a tenant.
type TenantConfig struct {
	Name         string   `json:"name"`
	ClientID     string   `json:"clientId"`
	ClientSecret string   `json:"clientSecret"`
	Scopes       []string `json:"scopes"` // granted to the client; default read+update
	// Provider, when set, is configured at creation (its credentials may
	// hold a sandbox key, so the tenant starts sending mail at once).
	Provider *Provider `json:"provider,omitempty"`
	// WithholdKeyID makes the Management API answer the provider's
	// credentials without accessKeyId. Auth0 documents the GET's SES
	// credentials as holding no accessKeyId (its response schema lists
	// api_user, region, smtp_host, smtp_port and smtp_user:
	// https://auth0.com/docs/api/management/v2/emails/get-provider), so a
	// client must work when it is absent. The admin view still shows it.
	WithholdKeyID bool `json:"withholdKeyId,omitempty"`
}

// Provider is the tenant's custom email provider, as the Management API has it.
type Provider struct {
	Name               string         `json:"name"`
	Enabled            *bool          `json:"enabled,omitempty"`
	DefaultFromAddress string         `json:"default_from_address,omitempty"`
	Credentials        map[string]any `json:"credentials,omitempty"`
	Settings           any            `json:"settings,omitempty"`
}

// Tenant is one Auth0 tenant.
type Tenant struct {
	cfg    TenantConfig
	domain string
	svc    *Service
	hs     *http.Server
	ses    *ses.Client // one per tenant, built once: a client per mail leaked its connection pool's descriptors
	stop   context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	provider *Provider
	tokens   map[string][]string // bearer token → scopes
	bucket   float64             // rate limit: burst 2, 2 a second
	filled   time.Time
	failures []Failure
	mail     MailStats
}

// Failure makes the tenant's Management API answer Status for the next
// Times calls (a 429 storm, 500s).
type Failure struct {
	Status int `json:"status"`
	Times  int `json:"times"`
}

// MailStats is what the tenant's mail loop did.
type MailStats struct {
	Sent      int    `json:"sent"`
	Failed    int    `json:"failed"`
	LastKeyID string `json:"lastKeyId,omitempty"`
	LastError string `json:"lastError,omitempty"`
}

// ClearFailures drops the failures still queued (the tenant recovers).
func (t *Tenant) ClearFailures() {
	t.mu.Lock()
	t.failures = nil
	t.mu.Unlock()
}

// Domain is the tenant's domain (host:port), what go-auth0 is given.
func (t *Tenant) Domain() string { return t.domain }

// AddTenant starts a tenant on its own loopback port.
func (s *Service) AddTenant(cfg TenantConfig) (*Tenant, error) {
	if cfg.Name == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("auth0 tenant: name, clientId and clientSecret are required")
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{ScopeRead, ScopeUpdate}
	}
	s.mu.Lock()
	_, exists := s.tenants[cfg.Name]
	s.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("auth0 tenant %s exists", cfg.Name)
	}
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("auth0 tenant %s: %w", cfg.Name, err)
	}
	t := s.start(cfg, l, tenantState{Tokens: map[string][]string{}, Provider: cfg.Provider})
	s.srv.MarkDirty()
	return t, nil
}

// start serves a tenant on l and starts its mail loop, from st (a new
// tenant's or a restored one's).
func (s *Service) start(cfg TenantConfig, l net.Listener, st tenantState) *Tenant {
	ctx, stop := context.WithCancel(context.Background())
	if st.Tokens == nil {
		st.Tokens = map[string][]string{}
	}
	t := &Tenant{cfg: cfg, domain: l.Addr().String(), svc: s, stop: stop, done: make(chan struct{}),
		tokens: st.Tokens, bucket: 2, filled: time.Now(), provider: st.Provider, mail: st.Mail}
	t.hs = &http.Server{Handler: s.srv.External("auth0", cfg.Name, t.routes()), ReadHeaderTimeout: 5 * time.Second} // the call log and faults
	// The SES endpoint is set per call: a tenant --state restores starts
	// before the server knows its URL.
	t.ses = ses.New(ses.Options{Region: s.srv.Region(), RetryMaxAttempts: 1})
	go func() { _ = t.hs.Serve(l) }()
	go func() { defer close(t.done); t.mailLoop(ctx) }()
	s.mu.Lock()
	s.tenants[cfg.Name] = t
	s.mu.Unlock()
	return t
}

// SetWithholdKeyID switches whether the Management API's answers hold the
// provider's credentials.accessKeyId (TenantConfig.WithholdKeyID).
func (t *Tenant) SetWithholdKeyID(withhold bool) {
	t.mu.Lock()
	t.cfg.WithholdKeyID = withhold
	t.mu.Unlock()
	t.svc.srv.MarkDirty()
}

// Tenant returns a tenant by name.
func (s *Service) Tenant(name string) (*Tenant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[name]
	return t, ok
}

// Close stops every tenant.
func (s *Service) Close() error {
	s.mu.Lock()
	ts := make([]*Tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		t.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = t.hs.Shutdown(ctx)
		cancel()
		<-t.done
	}
	return nil
}

// ---- the tenant's HTTP API -------------------------------------------------

func (t *Tenant) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /oauth/token", t.token)
	m.HandleFunc("GET /api/v2/emails/provider", t.api(ScopeRead, t.getProvider))
	m.HandleFunc("PATCH /api/v2/emails/provider", t.api(ScopeUpdate, t.patchProvider))
	m.HandleFunc("POST /api/v2/emails/provider", t.api(ScopeCreate, t.createProvider))
	m.HandleFunc("DELETE /api/v2/emails/provider", t.api(ScopeDelete, t.deleteProvider))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.ServeHTTP(w, r)
		if r.Method != http.MethodGet {
			t.svc.srv.MarkDirty() // a provider changed or a token was issued: --state keeps it
		}
	})
}

// apiError writes Auth0's error shape.
func apiError(w http.ResponseWriter, status int, message, code string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message}
	if code != "" {
		body["errorCode"] = code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// tokenRequest is what /oauth/token reads from its body: Auth0 documents
// the client-credentials request both form-encoded
// (https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens/get-management-api-access-tokens-for-production)
// and as JSON (https://auth0.com/docs/api-auth/config/asking-for-access-tokens),
// so it takes either, and refuses any other body as Auth0's OAuth errors do.
func tokenRequest(r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "The request body is not a valid form"}
		}
		return r.PostForm, nil
	case "application/json":
		var body map[string]any
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		if err := dec.Decode(&body); err != nil || body == nil {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "The request body is not a JSON object"}
		}
		v := url.Values{}
		for k, x := range body {
			str, ok := x.(string)
			if !ok {
				return nil, &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("Invalid type for parameter %s: expected a string", k)}
			}
			v.Set(k, str)
		}
		return v, nil
	default:
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded or application/json"}
	}
}

// oauthError is an answer of /oauth/token in Auth0's OAuth error shape,
// {"error","error_description"}.
type oauthError struct {
	status    int
	code, msg string
}

func (t *Tenant) token(w http.ResponseWriter, r *http.Request) {
	form, oerr := tokenRequest(r)
	if oerr != nil {
		writeOAuthError(w, oerr.status, oerr.code, oerr.msg)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+gt)
		return
	}
	if id == "" {
		writeOAuthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	t.mu.Lock()
	cfg := t.cfg
	t.mu.Unlock()
	if id != cfg.ClientID || secret != cfg.ClientSecret {
		writeOAuthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	want := "http://" + t.domain + "/api/v2/"
	if aud := form.Get("audience"); aud != want && aud != "https://"+t.domain+"/api/v2/" {
		writeOAuthError(w, http.StatusForbidden, "access_denied", fmt.Sprintf("Service not enabled within domain: %s", aud))
		return
	}
	tok := sandbox.NewSecret() + sandbox.NewSecret()
	t.mu.Lock()
	t.tokens[tok] = append([]string(nil), cfg.Scopes...)
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 86400, "scope": strings.Join(cfg.Scopes, " ")})
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// api checks the rate limit, injected failures, the token and its scope.
func (t *Tenant) api(scope string, h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		now := time.Now()
		t.bucket = min(2, t.bucket+now.Sub(t.filled).Seconds()*2)
		t.filled = now
		reset := now.Add(time.Second).Unix()
		w.Header().Set("X-Ratelimit-Limit", "2")
		w.Header().Set("X-Ratelimit-Reset", fmt.Sprint(reset))
		if t.bucket < 1 {
			t.mu.Unlock()
			w.Header().Set("X-Ratelimit-Remaining", "0")
			apiError(w, http.StatusTooManyRequests, "Global limit has been reached", "too_many_requests")
			return
		}
		t.bucket--
		w.Header().Set("X-Ratelimit-Remaining", fmt.Sprint(int(t.bucket)))
		if len(t.failures) > 0 {
			f := &t.failures[0]
			f.Times--
			status := f.Status
			if f.Times <= 0 {
				t.failures = t.failures[1:]
			}
			t.mu.Unlock()
			if status == http.StatusTooManyRequests {
				w.Header().Set("X-Ratelimit-Remaining", "0")
			}
			apiError(w, status, http.StatusText(status)+" (injected)", "")
			return
		}
		auth := r.Header.Get("Authorization")
		scopes, ok := t.tokens[strings.TrimPrefix(auth, "Bearer ")]
		t.mu.Unlock()
		if !ok || !strings.HasPrefix(auth, "Bearer ") {
			apiError(w, http.StatusUnauthorized, "Invalid token", "")
			return
		}
		if !contains(scopes, scope) {
			apiError(w, http.StatusForbidden, "Insufficient scope, expected any of: "+scope, "insufficient_scope")
			return
		}
		h(w, r)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// providerFields are the email provider's fields, in the order Auth0
// answers them.
var providerFields = []string{"name", "enabled", "default_from_address", "credentials", "settings"}

// allFields is every field: what a PATCH or POST answers, and the admin view.
var allFields = fieldSet(providerFields...)

func fieldSet(fs ...string) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		m[f] = true
	}
	return m
}

// selectFields is the fields a GET answers, from its fields and
// include_fields query parameters as Auth0 documents them: "Leave empty to
// retrieve name and enabled. Additional fields available include
// credentials, default_from_address, and settings"; include_fields says
// whether the fields are included (true, the default) or excluded (false)
// (https://auth0.com/docs/api/management/v2/emails/get-provider).
// A query Auth0 would refuse gives the message of its 400 instead.
func selectFields(q url.Values) (map[string]bool, string) {
	include := true
	switch v := q.Get("include_fields"); v {
	case "", "true":
	case "false":
		include = false
	default:
		return nil, "Query validation error: 'Expected type boolean but found type string' on property include_fields"
	}
	var listed []string
	for _, f := range strings.Split(q.Get("fields"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			listed = append(listed, f)
		}
	}
	if len(listed) == 0 {
		return fieldSet("name", "enabled"), ""
	}
	if include {
		return fieldSet(listed...), ""
	}
	out := fieldSet(providerFields...)
	for _, f := range listed {
		delete(out, f)
	}
	return out, ""
}

// view is the provider as the API shows it: the fields asked for, secrets
// hidden, and the access key id too if the tenant withholds it.
func view(p *Provider, fields map[string]bool, withholdKeyID bool) map[string]any {
	out := map[string]any{}
	if fields["name"] {
		out["name"] = p.Name
	}
	if fields["enabled"] {
		out["enabled"] = p.Enabled == nil || *p.Enabled
	}
	if fields["default_from_address"] && p.DefaultFromAddress != "" {
		out["default_from_address"] = p.DefaultFromAddress
	}
	if fields["credentials"] {
		c := map[string]any{}
		for k, v := range p.Credentials {
			if k == "secretAccessKey" || k == "api_key" || k == "smtp_pass" {
				continue // Auth0 never returns a provider's secret
			}
			if k == "accessKeyId" && withholdKeyID {
				continue
			}
			c[k] = v
		}
		out["credentials"] = c
	}
	if fields["settings"] && p.Settings != nil {
		out["settings"] = p.Settings
	}
	return out
}

func (t *Tenant) getProvider(w http.ResponseWriter, r *http.Request) {
	fields, refused := selectFields(r.URL.Query())
	if refused != "" {
		apiError(w, http.StatusBadRequest, refused, "invalid_query_string")
		return
	}
	t.mu.Lock()
	p, withhold := t.provider, t.cfg.WithholdKeyID
	t.mu.Unlock()
	if p == nil {
		apiError(w, http.StatusNotFound, "There is not a configured email provider", "inexistent_email_provider")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, view(p, fields, withhold))
}

func (t *Tenant) patchProvider(w http.ResponseWriter, r *http.Request) {
	var in Provider
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Payload validation error: invalid JSON", "invalid_body")
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.provider == nil {
		apiError(w, http.StatusNotFound, "There is not a configured email provider", "inexistent_email_provider")
		return
	}
	p := *t.provider
	if in.Name != "" {
		p.Name = in.Name
	}
	if in.Enabled != nil {
		p.Enabled = in.Enabled
	}
	if in.DefaultFromAddress != "" {
		p.DefaultFromAddress = in.DefaultFromAddress
	}
	if in.Credentials != nil {
		if p.Name == "ses" {
			for _, f := range []string{"accessKeyId", "secretAccessKey", "region"} {
				if s, _ := in.Credentials[f].(string); s == "" {
					apiError(w, http.StatusBadRequest, "Payload validation error: 'Missing required property: "+f+"' on property credentials", "invalid_body")
					return
				}
			}
		}
		p.Credentials = in.Credentials // replaced, not merged
	}
	if in.Settings != nil {
		p.Settings = in.Settings
	}
	t.provider = &p
	sandbox.WriteJSON(w, http.StatusOK, view(&p, allFields, t.cfg.WithholdKeyID))
}

func (t *Tenant) createProvider(w http.ResponseWriter, r *http.Request) {
	var in Provider
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
		apiError(w, http.StatusBadRequest, "Payload validation error: 'Missing required property: name'", "invalid_body")
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.provider != nil {
		apiError(w, http.StatusConflict, "An email provider is already configured", "email_provider_exists")
		return
	}
	t.provider = &in
	sandbox.WriteJSON(w, http.StatusCreated, view(&in, allFields, t.cfg.WithholdKeyID))
}

func (t *Tenant) deleteProvider(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.provider = nil
	t.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ---- the tenant uses its key -----------------------------------------------

// mailLoop sends a mail through the sandbox's SES with the key the provider
// holds, as Auth0 does when a user signs up or resets a password.
func (t *Tenant) mailLoop(ctx context.Context) {
	tick := time.NewTicker(t.svc.mailEach)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		p := t.provider
		t.mu.Unlock()
		if p == nil || p.Name != "ses" || (p.Enabled != nil && !*p.Enabled) {
			continue
		}
		id, _ := p.Credentials["accessKeyId"].(string)
		secret, _ := p.Credentials["secretAccessKey"].(string)
		region, _ := p.Credentials["region"].(string)
		if id == "" || secret == "" {
			continue
		}
		if t.svc.srv.URL() == "" {
			continue // the server is not serving yet
		}
		err := t.send(ctx, id, secret, region, p.DefaultFromAddress)
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		t.mail.LastKeyID = id
		if err != nil {
			t.mail.Failed++
			t.mail.LastError = err.Error()
		} else {
			t.mail.Sent++
			t.mail.LastError = "" // the last attempt's, so a tenant that recovered says so
		}
		t.mu.Unlock()
	}
}

func (t *Tenant) send(ctx context.Context, id, secret, region, from string) error {
	if region == "" {
		region = t.svc.srv.Region()
	}
	if from == "" {
		from = "no-reply@" + t.cfg.Name + ".example.com"
	}
	// The provider's key and region change as keyrotator rotates them: they
	// are per-call options on the tenant's one client (same connection pool).
	_, err := t.ses.SendEmail(ctx, &ses.SendEmailInput{
		Source:      aws.String(from),
		Destination: &types.Destination{ToAddresses: []string{"user@" + t.cfg.Name + ".example.com"}},
		Message: &types.Message{
			Subject: &types.Content{Data: aws.String("Verify your email")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String("Welcome to " + t.cfg.Name)}},
		},
	}, func(o *ses.Options) {
		o.BaseEndpoint = aws.String(t.svc.srv.URL())
		o.Region = region
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	})
	if err != nil {
		return fmt.Errorf("ses SendEmail with %s: %w", id, err)
	}
	return nil
}

// ---- admin -----------------------------------------------------------------

// TenantView is a tenant as the admin API shows it: no secrets.
type TenantView struct {
	Name   string   `json:"name"`
	Domain string   `json:"domain"`
	Scopes []string `json:"scopes"`
	// WithholdKeyID: the Management API answers without the provider's
	// accessKeyId; Provider here still shows it.
	WithholdKeyID bool           `json:"withholdKeyId,omitempty"`
	Provider      map[string]any `json:"provider,omitempty"`
	Mail          MailStats      `json:"mail"`
	Failures      []Failure      `json:"failures,omitempty"`
}

// View reports a tenant.
func (t *Tenant) View() TenantView {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := TenantView{Name: t.cfg.Name, Domain: t.domain, Scopes: append([]string(nil), t.cfg.Scopes...), WithholdKeyID: t.cfg.WithholdKeyID,
		Mail: t.mail, Failures: append([]Failure(nil), t.failures...)}
	if t.provider != nil {
		v.Provider = view(t.provider, allFields, false)
	}
	return v
}

// Admin implements sandbox.Administered, under /_sandbox/auth0/:
//
//	POST  /tenants          TenantConfig → TenantView (its domain)
//	GET   /tenants          every tenant
//	GET   /tenants/{name}   one
//	PATCH /tenants/{name}   {"scopes":[…]} revokes or grants; {"fail":{"status":429,"times":5}} queues failures;
//	                        {"withholdKeyId":true} answers the provider without its accessKeyId (false: with it)
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /tenants", func(w http.ResponseWriter, r *http.Request) {
		var cfg TenantConfig
		if err := sandbox.ReadJSON(r, &cfg); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		t, err := s.AddTenant(cfg)
		if err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		sandbox.WriteJSON(w, http.StatusCreated, t.View())
	})
	m.HandleFunc("GET /tenants", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		names := make([]string, 0, len(s.tenants))
		for n := range s.tenants {
			names = append(names, n)
		}
		s.mu.Unlock()
		sort.Strings(names)
		out := []TenantView{}
		for _, n := range names {
			t, _ := s.Tenant(n)
			out = append(out, t.View())
		}
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("GET /tenants/{name}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.Tenant(r.PathValue("name"))
		if !ok {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such tenant"})
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, t.View())
	})
	m.HandleFunc("PATCH /tenants/{name}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.Tenant(r.PathValue("name"))
		if !ok {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such tenant"})
			return
		}
		var req struct {
			Scopes        []string `json:"scopes"`
			Fail          *Failure `json:"fail"`
			WithholdKeyID *bool    `json:"withholdKeyId"`
		}
		if err := sandbox.ReadJSON(r, &req); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		t.mu.Lock()
		if req.Scopes != nil {
			t.cfg.Scopes = req.Scopes
			for tok := range t.tokens { // a revoked scope takes effect at once
				t.tokens[tok] = append([]string(nil), req.Scopes...)
			}
		}
		if req.Fail != nil && req.Fail.Times > 0 {
			t.failures = append(t.failures, *req.Fail)
		}
		if req.WithholdKeyID != nil {
			t.cfg.WithholdKeyID = *req.WithholdKeyID
		}
		t.mu.Unlock()
		s.srv.MarkDirty()
		sandbox.WriteJSON(w, http.StatusOK, t.View())
	})
	return m
}

var _ sandbox.Snapshotter = (*Service)(nil)

// Secrets returns every tenant's client secret: what a leak check (I1)
// scans every output for. Tests only.
func (s *Service) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, t.cfg.ClientSecret)
	}
	return out
}

// ---- --state ---------------------------------------------------------------

// tenantState is what a tenant keeps across restarts. Its client secret,
// its provider's secret access key and its tokens are secrets the tenant
// holds: they go into the state file only (the sandbox's own store, written
// 0600, as IAM's keys and Secrets Manager's values are), never a view, a
// log or an error.
type tenantState struct {
	Config   TenantConfig        `json:"config"`
	Domain   string              `json:"domain"` // host:port: the connection secrets name it
	Provider *Provider           `json:"provider,omitempty"`
	Tokens   map[string][]string `json:"tokens,omitempty"` // Auth0's tokens live until they expire
	Mail     MailStats           `json:"mail"`
}

// Snapshot implements sandbox.Snapshotter: every tenant, its port, client,
// provider and tokens.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	ts := make([]*Tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].cfg.Name < ts[j].cfg.Name })
	out := make([]tenantState, 0, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		st := tenantState{Config: t.cfg, Domain: t.domain, Provider: t.provider, Mail: t.mail, Tokens: map[string][]string{}}
		st.Config.Provider = nil // the provider now is Provider
		for tok, sc := range t.tokens {
			st.Tokens[tok] = append([]string(nil), sc...)
		}
		t.mu.Unlock()
		out = append(out, st)
	}
	return json.Marshal(out)
}

// Restore implements sandbox.Snapshotter: each tenant is served again on
// the port it had, which the connection secrets name; if another process
// took that port, on a new one, and the log says so (the tenant's
// connection secrets then need its new domain).
func (s *Service) Restore(raw json.RawMessage) error {
	var sts []tenantState
	if err := json.Unmarshal(raw, &sts); err != nil {
		return fmt.Errorf("auth0: decode state: %w", err)
	}
	for _, st := range sts {
		if _, exists := s.Tenant(st.Config.Name); exists {
			return fmt.Errorf("auth0: restore tenant %s: it exists", st.Config.Name)
		}
		l, err := sandbox.ListenAgain(context.Background(), st.Domain, 2*time.Second)
		if err != nil {
			if l, err = new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
				return fmt.Errorf("auth0: restore tenant %s: %w", st.Config.Name, err)
			}
			s.log.Warn("auth0 tenant restored on a new port: its connection secrets need the new domain",
				"tenant", st.Config.Name, "was", st.Domain, "now", l.Addr().String())
		}
		s.start(st.Config, l, st)
	}
	return nil
}
