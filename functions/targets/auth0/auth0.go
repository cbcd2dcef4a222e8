// Package auth0 is the `auth0` target: an Auth0 tenant whose custom email
// provider sends mail through Amazon SES with the rotated key. It moves the
// provider to the new key through the Management API (go-auth0), keeping
// everything else as it was, and reads back the key id (Auth0 never
// returns the secret).
//
// Auth0 does not document the key id in its answer either: the GET's SES
// credentials list no accessKeyId
// (https://auth0.com/docs/api/management/v2/emails/get-provider, response
// schema: api_user, region, smtp_host, smtp_port, smtp_user). A tenant
// that answers without it is still updated, and its receipt says the
// cut-over is unconfirmed (rotation.Receipt.Unconfirmed): VerifyOldKeyUnused
// confirms it once IAM shows the new key used by ses, and until then the
// old key is not retired.
package auth0

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auth0/go-auth0"
	"github.com/auth0/go-auth0/management"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Connection is a target's connection secret: how to reach the tenant.
type Connection struct {
	Domain       string               `json:"domain"` // tenant.auth0.com; http://127.0.0.1:port only for the sandbox
	ClientID     string               `json:"clientId"`
	ClientSecret rotation.SecretValue `json:"clientSecret"`
}

// secrets reads connection secrets.
type secrets interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Target updates Auth0 tenants: the auth0 kind's code (steps.Target).
type Target struct {
	Secrets secrets
	// MaxRateWait bounds how long a 429 is waited out before the step
	// returns Retryable for Step Functions to retry later.
	MaxRateWait time.Duration
}

// UsedBy is the service IAM's last-used names when a tenant sends with a
// key: Auth0's SES provider calls SES's API.
const UsedBy = "ses"

// Update moves the tenant's SES provider from oldKeyID to key.
func (t *Target) Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	fail := func(format string, args ...any) (rotation.Receipt, error) {
		return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(format, args...)}
	}
	c, limits, tenant, ep, err := t.provider(ctx, tg)
	if np := (*noProvider)(nil); errors.As(err, &np) && oldKeyID == "" {
		// Issuance: a tenant with no email provider gets an SES one, disabled.
		if r, done, err := t.create(ctx, c, limits, tg, tenant, key); err != nil || done {
			return r, named(err)
		}
		c, limits, tenant, ep, err = t.provider(ctx, tg) // made meanwhile (409): go on as for one that exists
	}
	if err != nil {
		return rotation.Receipt{}, named(err)
	}
	held, region := heldBy(ep, tg)
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetAuth0, Where: tenant, PreviousKeyID: held, NewKeyID: key.AccessKeyID}
	switch held {
	case key.AccessKeyID:
		r.PreviousKeyID = oldKeyID // already moved, from the old key: a retry, or a resumed run
		return r, nil
	case oldKeyID:
	case "":
		// Auth0 does not show the key (as it documents): whether the tenant
		// holds the old key, the new one or another cannot be told, so it is
		// updated (a PATCH of the same key is harmless) and left unconfirmed.
	default:
		if oldKeyID == "" { // Issuance
			return fail("tenant %s sends with %s: an issue fills only an email provider that holds no key (it may belong to another user); fix the target", tenant, shownKey(held))
		}
		return fail("tenant %s sends with %s, which is neither the key being rotated (%s) nor the new one: it may belong to another user; fix the target", tenant, shownKey(held), oldKeyID)
	}
	// PATCH name and credentials only: from-address, enabled and settings stay as they are.
	patch := &management.EmailProvider{Name: auth0.String(management.EmailProviderSES), Credentials: &management.EmailProviderCredentialsSES{
		AccessKeyID: auth0.String(key.AccessKeyID), SecretAccessKey: auth0.String(key.Secret()), Region: auth0.String(region),
	}}
	sent := []rotation.SecretValue{key.SecretValue()}
	if err := t.call(ctx, tg, tenant, limits, sent, func() error { return c.EmailProvider.Update(ctx, patch) }); err != nil {
		return rotation.Receipt{}, err
	}
	var back *management.EmailProvider
	if err := t.call(ctx, tg, tenant, limits, nil, func() (e error) { back, e = c.EmailProvider.Read(ctx); return e }); err != nil {
		return rotation.Receipt{}, err
	}
	r.Changed = true
	switch now, _ := heldBy(back, tg); now {
	case key.AccessKeyID:
	case "":
		r.Unconfirmed = &rotation.Unconfirmed{UsedBy: UsedBy, Reason: fmt.Sprintf(
			"Auth0 accepted the new key for tenant %s's email provider but does not show which key the provider holds (its answer has no credentials.accessKeyId)", tenant)}
	default:
		return fail("tenant %s still reports another key after the update", tenant)
	}
	return r, nil
}

// Plan reads the tenant's email provider and says what Update would do,
// changing nothing (it needs read:email_provider only).
// resumeKeyID is the new key of a dead run this run resumes ("" if none):
// a tenant that run already moved sends with it, and Update accepts it.
func (t *Target) Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error) {
	_, _, tenant, ep, err := t.provider(ctx, tg)
	if np := (*noProvider)(nil); errors.As(err, &np) && oldKeyID == "" {
		return rotation.Receipt{Target: tg.Name, Type: rotation.TargetAuth0, Where: tenant, Planned: []string{fmt.Sprintf(
			"tenant %s has no email provider: create an SES one (POST /api/v2/emails/provider) holding the new key (region %s), disabled, so the tenant's mail is unchanged until a person sets its from-address and enables it (the application needs create:email_provider too; a dry run only reads)",
			tenant, tg.SESRegion)}}, nil
	}
	if err != nil {
		return rotation.Receipt{}, named(err)
	}
	held, region := heldBy(ep, tg)
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetAuth0, Where: tenant, PreviousKeyID: held}
	switch {
	case held == "":
		r.Planned = []string{fmt.Sprintf("tenant %s sends through SES (%s), and Auth0 does not show with which key (its answer has no credentials.accessKeyId): PATCH its email provider's credentials to the new key, keeping the from-address, the enabled flag and the settings; the cut-over is confirmed only once IAM shows the new key used by %s, and the old key is not retired before (the application needs update:email_provider too; a dry run only reads)", tenant, region, UsedBy)}
		return r, nil
	case resumeKeyID != "" && held == resumeKeyID:
		r.PreviousKeyID = oldKeyID
		r.Planned = []string{fmt.Sprintf("tenant %s already sends through SES (%s) with the resumed key %s (an earlier run moved it): nothing to change", tenant, region, held)}
		return r, nil
	case oldKeyID == "": // Issuance: held is a key
		return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s sends with %s: an issue fills only an email provider that holds no key (it may belong to another user); fix the target", tenant, shownKey(held))}
	case held != oldKeyID:
		return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s sends with %s, which is not the key being rotated (%s): it may belong to another user; fix the target", tenant, shownKey(held), oldKeyID)}
	}
	r.Planned = []string{fmt.Sprintf("tenant %s sends through SES (%s) with key %s: PATCH its email provider's credentials to the new key, keeping the from-address, the enabled flag and the settings (the application needs update:email_provider too; a dry run only reads)", tenant, region, held)}
	return r, nil
}

// provider connects to the target's tenant and reads its email provider,
// which must be SES.
func (t *Target) provider(ctx context.Context, tg rotation.Target) (*management.Management, *rateLimits, string, *management.EmailProvider, error) {
	conn, err := t.connection(ctx, tg)
	if err != nil {
		return nil, nil, "", nil, err
	}
	c, limits, err := client(ctx, conn)
	if err != nil {
		return nil, nil, "", nil, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("connection %s: %v", tg.Connection, err)}
	}
	tenant := strings.TrimPrefix(strings.TrimPrefix(conn.Domain, "https://"), "http://")
	// go-auth0's Read asks for every field it knows (fields=name,enabled,
	// default_from_address,credentials,settings&include_fields=true): Auth0
	// answers only name and enabled to a GET that asks for none.
	var ep *management.EmailProvider
	if err := t.call(ctx, tg, tenant, limits, nil, func() (e error) { ep, e = c.EmailProvider.Read(ctx); return e }); err != nil {
		return c, limits, tenant, nil, err // the client too: an issue creates a provider that is not there (*noProvider)
	}
	if ep.GetName() != management.EmailProviderSES {
		return nil, nil, "", nil, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("the email provider of tenant %s is %q, not ses: keyrotator only rotates SES credentials", tenant, ep.GetName())}
	}
	return c, limits, tenant, ep, nil
}

// heldBy is the key id an SES provider holds ("" if Auth0 does not show
// it) and the region it sends from (the target's sesRegion if the provider
// names none).
func heldBy(ep *management.EmailProvider, tg rotation.Target) (held, region string) {
	region = tg.SESRegion
	if creds, _ := ep.Credentials.(*management.EmailProviderCredentialsSES); creds != nil {
		held = creds.GetAccessKeyID()
		if creds.GetRegion() != "" {
			region = creds.GetRegion() // keep the region the tenant sends from
		}
	}
	return held, region
}

// shownKey words the key id a tenant's provider holds for an error: the id
// if it has an access key id's shape (rotation.ShownKeyID), never anything
// else the field holds (a secret pasted into it would otherwise be quoted).
func shownKey(held string) string {
	switch id := rotation.ShownKeyID(rotation.NewSecretValue(held)); {
	case held == "":
		return "no access key id"
	case id == "":
		return "an accessKeyId that is not an access key id (not shown)"
	default:
		return "key " + id
	}
}

func (t *Target) connection(ctx context.Context, tg rotation.Target) (Connection, error) {
	raw, err := t.Secrets.SecretString(ctx, tg.Connection)
	if err != nil {
		return Connection{}, rotation.ConnectionUnreadable(tg, err)
	}
	var c Connection
	if json.Unmarshal([]byte(raw), &c) != nil || c.Domain == "" || c.ClientID == "" || c.ClientSecret.Empty() {
		return Connection{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(`connection secret %s must be JSON {"domain","clientId","clientSecret"} (filled in after deploy)`, tg.Connection)}
	}
	return c, nil
}

// client builds go-auth0 with no retries of its own (a 401 must fail fast,
// not six times) and a transport that remembers Auth0's rate-limit reset.
func client(ctx context.Context, c Connection) (*management.Management, *rateLimits, error) {
	limits := &rateLimits{next: http.DefaultTransport}
	opts := []management.Option{management.WithClient(&http.Client{Transport: limits, Timeout: 20 * time.Second}), management.WithNoRetries()}
	domain := c.Domain
	if strings.HasPrefix(domain, "http://") {
		// Plain HTTP only for a tenant on this machine: the sandbox.
		u, err := url.Parse(domain)
		if err != nil || !loopback(u.Hostname()) {
			return nil, nil, fmt.Errorf("domain %s: plain http is only for a local sandbox", domain)
		}
		domain = u.Host
		opts = append(opts, management.WithInsecure())
	}
	opts = append(opts, management.WithClientCredentials(ctx, c.ClientID, c.ClientSecret.Reveal()))
	m, err := management.New(domain, opts...)
	return m, limits, err
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// call runs one Management API call and words its failure for a person:
// which tenant, what is wrong, what to do. A 429 is waited out until
// Auth0's reset while the budget allows, then left to Step Functions.
// sent are the secret values the call carries (the PATCH's secret access
// key): Auth0's payload validation errors quote what was sent, so the
// failure of such a call says the status, Auth0's error name and errorCode
// only, never its message, and no text of it keeps a sent value (I1).
func (t *Target) call(ctx context.Context, tg rotation.Target, tenant string, limits *rateLimits, sent []rotation.SecretValue, f func() error) error {
	deadline := time.Now().Add(t.MaxRateWait)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var me management.Error
		if !errors.As(err, &me) {
			if strings.Contains(err.Error(), "oauth2") {
				return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s refused the client credentials in %s (401): check clientId and clientSecret, and that the application is authorized for the Management API", tenant, tg.Connection)}
			}
			return &rotation.Retryable{Reason: fmt.Sprintf("auth0 tenant %s: %s", tenant, scrub(err.Error(), sent))}
		}
		switch s := me.Status(); {
		case s == http.StatusNotFound:
			return &noProvider{rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s has no email provider configured: set up SES as its custom email provider first", tenant)}}
		case s == http.StatusForbidden:
			return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("the application in %s lacks a scope on tenant %s: grant it read:email_provider and update:email_provider (and create:email_provider for an issue to a tenant with no email provider)", tg.Connection, tenant)}
		case s == http.StatusUnauthorized:
			return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s refused the token (401): check the client in %s", tenant, tg.Connection)}
		case s == http.StatusTooManyRequests:
			wait := time.Until(limits.reset())
			if wait <= 0 {
				wait = time.Second
			}
			if time.Now().Add(wait).After(deadline) {
				return &rotation.Retryable{Reason: fmt.Sprintf("auth0 tenant %s: rate limited (429) past this attempt's budget", tenant)}
			}
			select {
			case <-ctx.Done():
				return &rotation.Retryable{Reason: fmt.Sprintf("auth0 tenant %s: rate limited (429)", tenant)}
			case <-time.After(wait):
			}
		case s >= 500:
			return &rotation.Retryable{Reason: fmt.Sprintf("auth0 tenant %s: %d %s", tenant, s, http.StatusText(s))}
		case len(sent) > 0:
			return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s answered %d %s%s to the update of its email provider (Auth0's message is not shown: it may quote the key sent)",
				tenant, s, http.StatusText(s), limits.errorCode(sent))}
		default:
			return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s answered %d: %s", tenant, s, me.Error())}
		}
	}
}

// scrub is text with every sent value replaced by rotation.Redacted.
func scrub(text string, sent []rotation.SecretValue) string {
	for _, v := range sent {
		if !v.Empty() {
			text = strings.ReplaceAll(text, v.Reveal(), rotation.Redacted)
		}
	}
	return text
}

// errorCodeShape is what Auth0's documented errorCodes look like
// (invalid_body, insufficient_scope, too_many_requests).
var errorCodeShape = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// rateLimits is a transport that keeps the last x-ratelimit-reset it saw
// and the errorCode of the last error answer (go-auth0's error keeps only
// the status, the error name and the message).
type rateLimits struct {
	next    http.RoundTripper
	mu      sync.Mutex
	until   time.Time
	lastErr string // errorCode of the last answer >= 400
}

func (l *rateLimits) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil {
		if v, perr := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); perr == nil {
			l.mu.Lock()
			l.until = time.Unix(v, 0)
			l.mu.Unlock()
		}
		if resp.StatusCode >= 400 {
			// Read the body for its errorCode and hand go-auth0 the same bytes.
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(b))
			var body struct {
				ErrorCode string `json:"errorCode"`
				Code      string `json:"code"` // what some gateways and the sandbox's faults send
			}
			_ = json.Unmarshal(b, &body)
			l.mu.Lock()
			l.lastErr = cmp.Or(body.ErrorCode, body.Code)
			l.mu.Unlock()
		}
	}
	return resp, err
}

// errorCode is " (errorCode <code>)" for the last error answer, if it had a
// code of Auth0's shape holding none of sent; "" otherwise.
func (l *rateLimits) errorCode(sent []rotation.SecretValue) string {
	l.mu.Lock()
	code := l.lastErr
	l.mu.Unlock()
	if !errorCodeShape.MatchString(code) || scrub(code, sent) != code {
		return ""
	}
	return " (errorCode " + code + ")"
}

func (l *rateLimits) reset() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// noProvider is a tenant with no email provider (404): a rotation's
// TargetFailed, where an issue creates one (Issuance).
type noProvider struct{ rotation.TargetFailed }

func (n *noProvider) Unwrap() error { return &n.TargetFailed }

// named is err as the state machine must see it: a missing provider's plain
// TargetFailed (a *noProvider would reach Step Functions by its own type name).
func named(err error) error {
	if n := (*noProvider)(nil); errors.As(err, &n) {
		return &n.TargetFailed
	}
	return err
}

// create configures an SES email provider holding key on a tenant that has
// none (Issuance), disabled: Auth0 sends the tenant's mail as before until
// a person sets the from-address and enables it, so an issue cannot break
// a tenant's mail. Auth0 requires name and credentials only
// (https://auth0.com/docs/api/management/v2/emails/post-provider). A 409 is
// a provider made meanwhile (a lost answer's first try): done is false, and
// Update goes on as for one that exists.
func (t *Target) create(ctx context.Context, c *management.Management, limits *rateLimits, tg rotation.Target, tenant string, key rotation.Credential) (r rotation.Receipt, done bool, err error) {
	ep := &management.EmailProvider{Name: auth0.String(management.EmailProviderSES), Enabled: auth0.Bool(false), Credentials: &management.EmailProviderCredentialsSES{
		AccessKeyID: auth0.String(key.AccessKeyID), SecretAccessKey: auth0.String(key.Secret()), Region: auth0.String(tg.SESRegion),
	}}
	sent := []rotation.SecretValue{key.SecretValue()}
	var conflict bool
	err = t.call(ctx, tg, tenant, limits, sent, func() error {
		e := c.EmailProvider.Create(ctx, ep)
		var me management.Error
		if errors.As(e, &me) && me.Status() == http.StatusConflict {
			conflict = true
			return nil
		}
		return e
	})
	if err != nil || conflict {
		return r, !conflict, err
	}
	r = rotation.Receipt{Target: tg.Name, Type: rotation.TargetAuth0, Where: tenant, NewKeyID: key.AccessKeyID, Changed: true}
	var back *management.EmailProvider
	if err := t.call(ctx, tg, tenant, limits, nil, func() (e error) { back, e = c.EmailProvider.Read(ctx); return e }); err != nil {
		return rotation.Receipt{}, true, err
	}
	switch now, _ := heldBy(back, tg); now {
	case key.AccessKeyID:
	case "":
		r.Unconfirmed = &rotation.Unconfirmed{UsedBy: UsedBy, Reason: fmt.Sprintf(
			"Auth0 made tenant %s's email provider with the new key, disabled, but does not show which key it holds (its answer has no credentials.accessKeyId)", tenant)}
	default:
		return rotation.Receipt{}, true, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("tenant %s reports another key after its email provider was made", tenant)}
	}
	return r, true, nil
}
