package doctor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
)

// The two scopes the auth0 target's client needs: Plan reads the email
// provider, Update patches it.
// https://auth0.com/docs/api/management/v2/emails/get-provider,
// https://auth0.com/docs/api/management/v2/emails/patch-provider
var auth0Scopes = []string{"read:email_provider", "update:email_provider"}

// auth0Connection and soracomConnection are the connection secrets'
// shapes (functions/targets/auth0.Connection, soracom.Connection); secret
// fields are SecretValues, which never print their value.
type auth0Connection struct {
	Domain       string               `json:"domain"`
	ClientID     string               `json:"clientId"`
	ClientSecret rotation.SecretValue `json:"clientSecret"`
}

type soracomConnection struct {
	AuthKeyID string               `json:"authKeyId"`
	AuthKey   rotation.SecretValue `json:"authKey"`
	Coverage  string               `json:"coverage"`
	Endpoint  string               `json:"endpoint,omitempty"`
}

// checkConnections reads each connection secret a rotation's targets name
// (once per rotation and target), checks its shape, then reaches its API.
func (d *Doctor) checkConnections(ctx context.Context, r *Report) {
	for _, rot := range d.Config.Rotations {
		for _, tg := range rot.Input.Targets {
			if tg.Type != rotation.TargetAuth0 && tg.Type != rotation.TargetSoracom {
				continue
			}
			subject := fmt.Sprintf("target %s: connection secret %s", tg.Name, tg.Connection)
			out, err := d.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tg.Connection)})
			if err != nil {
				r.add(Finding{Check: "connections", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: "cannot read it: " + errText(err),
					Fix: "the stack makes it empty; fill it in: aws secretsmanager put-secret-value --secret-id " + tg.Connection + " --secret-string file://connection.json (and attach the stack's DoctorPolicy to read it)"})
				continue
			}
			raw := aws.ToString(out.SecretString)
			switch tg.Type {
			case rotation.TargetAuth0:
				var c auth0Connection
				if json.Unmarshal([]byte(raw), &c) != nil || c.Domain == "" || c.ClientID == "" || c.ClientSecret.Empty() {
					r.add(Finding{Check: "connections", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: `not filled in: want JSON {"domain","clientId","clientSecret"} (value not shown)`,
						Fix: "put the Auth0 machine-to-machine application's domain, client id and secret in it: aws secretsmanager put-secret-value --secret-id " + tg.Connection + " --secret-string file://auth0.json"})
					continue
				}
				r.add(Finding{Check: "connections", Rotation: rot.Name, Subject: subject, Status: OK, Detail: "filled in: domain " + c.Domain + ", client " + c.ClientID})
				d.checkAuth0(ctx, r, rot, tg, c)
			case rotation.TargetSoracom:
				var c soracomConnection
				if json.Unmarshal([]byte(raw), &c) != nil || c.AuthKeyID == "" || c.AuthKey.Empty() {
					r.add(Finding{Check: "connections", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: `not filled in: want JSON {"authKeyId","authKey","coverage"} (value not shown)`,
						Fix: "put the SAM user's auth key in it: aws secretsmanager put-secret-value --secret-id " + tg.Connection + " --secret-string file://soracom.json"})
					continue
				}
				r.add(Finding{Check: "connections", Rotation: rot.Name, Subject: subject, Status: OK, Detail: "filled in: auth key " + c.AuthKeyID})
				d.checkSoracom(ctx, r, rot, tg, c)
			}
		}
	}
}

// activeKeys are the user's Active access keys.
func (d *Doctor) activeKeys(ctx context.Context, user string) ([]string, error) {
	out, err := d.IAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range out.AccessKeyMetadata {
		if k.Status == "Active" {
			ids = append(ids, aws.ToString(k.AccessKeyId))
		}
	}
	return ids, nil
}

// baseURL is a tenant's or endpoint's URL: https, or plain http to this
// machine only (the sandbox), as the targets allow.
func baseURL(domain string) (string, error) {
	if !strings.Contains(domain, "://") {
		return "https://" + domain, nil
	}
	u, err := url.Parse(domain)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a domain or URL", domain)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("%s: plain http is only for a local sandbox", domain)
		}
	} else if u.Scheme != "https" {
		return "", fmt.Errorf("%s: want https", domain)
	}
	return strings.TrimSuffix(domain, "/"), nil
}

// checkAuth0 gets a Management API token with the client credentials,
// checks its two scopes, and reads the email provider: SES, holding one
// of the user's active keys.
func (d *Doctor) checkAuth0(ctx context.Context, r *Report, rot Rotation, tg rotation.Target, c auth0Connection) {
	subject := "target " + tg.Name + ": Auth0 tenant " + c.Domain
	fail := func(st Status, detail, fix string) {
		r.add(Finding{Check: "auth0", Rotation: rot.Name, Subject: subject, Status: st, Detail: detail, Fix: fix})
	}
	base, err := baseURL(c.Domain)
	if err != nil {
		fail(Failed, err.Error(), "put the tenant's domain (tenant.region.auth0.com) in the connection secret")
		return
	}
	host := strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": c.ClientID, "client_secret": c.ClientSecret.Reveal(), "audience": "https://" + host + "/api/v2/"})
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	status, err := d.httpJSON(ctx, http.MethodPost, base+"/oauth/token", "", body, &tok)
	switch {
	case err != nil:
		fail(NotChecked, "the tenant did not answer: "+err.Error(), "check the domain in the connection secret and that this machine reaches it")
		return
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		fail(Failed, fmt.Sprintf("the tenant refused the client credentials (HTTP %d)", status),
			"authorize the machine-to-machine application for the Auth0 Management API, and put its current client id and secret in the connection secret")
		return
	case status != http.StatusOK || tok.AccessToken == "":
		fail(NotChecked, fmt.Sprintf("the token request answered HTTP %d", status), "check the tenant's status and try again")
		return
	}
	// The token response's scope (RFC 6749 §5.1), else the access token's
	// scope claim (Auth0's Management API tokens are JWTs:
	// https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens).
	granted := strings.Fields(tok.Scope)
	if len(granted) == 0 {
		granted = jwtScopes(tok.AccessToken)
	}
	var missing []string
	for _, s := range auth0Scopes {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		fail(Failed, "the client's token lacks "+strings.Join(missing, " and "),
			"in the Auth0 dashboard, Applications → APIs → Auth0 Management API → Machine to Machine Applications: grant the application "+strings.Join(auth0Scopes, " and "))
		return
	}
	var ep struct {
		Name        string `json:"name"`
		Enabled     bool   `json:"enabled"`
		Credentials *struct {
			AccessKeyID string `json:"accessKeyId"`
		} `json:"credentials"`
	}
	// Auth0 answers only name and enabled unless fields asks for more.
	status, err = d.httpJSON(ctx, http.MethodGet, base+"/api/v2/emails/provider?fields=name,enabled,credentials&include_fields=true", tok.AccessToken, nil, &ep)
	switch {
	case err != nil:
		fail(NotChecked, "reading the email provider: "+err.Error(), "try again")
		return
	case status == http.StatusNotFound:
		fail(Failed, "the tenant has no email provider", "configure the tenant's email provider as Amazon SES with the user's current key")
		return
	case status != http.StatusOK:
		fail(NotChecked, fmt.Sprintf("reading the email provider answered HTTP %d", status), "try again")
		return
	case ep.Name != "ses":
		fail(Failed, fmt.Sprintf("the tenant's email provider is %q, not ses", ep.Name), "keyrotator rotates only an SES provider's key: remove the target or switch the tenant to Amazon SES")
		return
	}
	keys, err := d.activeKeys(ctx, rot.Input.User)
	if err != nil {
		fail(NotChecked, "cannot list the user's keys: "+errText(err), "attach the stack's OperatorPolicy (iam:ListAccessKeys on the configured users)")
		return
	}
	held := ""
	if ep.Credentials != nil {
		held = ep.Credentials.AccessKeyID
	}
	switch {
	case held == "":
		fail(Unconfirmed, "reachable with both scopes; its SES provider does not show its key (Auth0 does not document credentials.accessKeyId)",
			"nothing to do: a rotation confirms the cut-over from IAM's last-used of the new key by ses")
	case slices.Contains(keys, held):
		r.add(Finding{Check: "auth0", Rotation: rot.Name, Subject: subject, Status: OK, Detail: "reachable with both scopes; its SES provider holds the user's active key " + held})
	default:
		shown := rotation.ShownKeyID(rotation.NewSecretValue(held))
		if shown == "" {
			shown = "a value that is not an access key id (not shown)"
		}
		fail(Failed, "its SES provider holds "+shown+", not an active key of "+rot.Input.User,
			"the target may name the wrong tenant or user: fix the config, or put the user's current key in the tenant's SES provider")
	}
}

// jwtScopes is the scope claim of a JWT, nil if the token is not one.
func jwtScopes(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Scope string `json:"scope"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return nil
	}
	return strings.Fields(claims.Scope)
}

// httpJSON makes one request and decodes a JSON answer; it never quotes
// what was sent or answered (a token, a secret). A 429 is waited out until
// the X-RateLimit-Reset Auth0 sends (at most 5 s a time, three times):
// https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy
func (d *Doctor) httpJSON(ctx context.Context, method, u, bearer string, body []byte, out any) (int, error) {
	for try := 0; ; try++ {
		status, reset, err := d.httpOnce(ctx, method, u, bearer, body, out)
		if status != http.StatusTooManyRequests || try == 3 {
			return status, err
		}
		wait := time.Until(reset)
		wait = min(max(wait, 200*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return status, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (d *Doctor) httpOnce(ctx context.Context, method, u, bearer string, body []byte, out any) (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	where := method + " " + strings.SplitN(u, "?", 2)[0]
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%s: not a URL", where)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	client := d.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The url.Error's own text repeats the URL with its query: say the
		// request once, then the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, time.Time{}, fmt.Errorf("%s: %w", where, ue.Err)
		}
		return 0, time.Time{}, fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	var reset time.Time
	if v, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		reset = time.Unix(v, 0)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK && out != nil {
		if json.Unmarshal(b, out) != nil {
			return resp.StatusCode, reset, fmt.Errorf("%s: the answer is not JSON", where)
		}
	}
	return resp.StatusCode, reset, nil
}

// checkSoracom signs in with the SAM user's auth key, finds the target's
// credentials (by id, by prefix, or holding one of the user's active
// keys) and the SIM groups that use them.
func (d *Doctor) checkSoracom(ctx context.Context, r *Report, rot Rotation, tg rotation.Target, c soracomConnection) {
	subject := "target " + tg.Name + ": SORACOM"
	fail := func(st Status, detail, fix string) {
		r.add(Finding{Check: "soracom", Rotation: rot.Name, Subject: subject, Status: st, Detail: detail, Fix: fix})
	}
	base := c.Endpoint
	if base == "" {
		cov := c.Coverage
		if cov == "" {
			cov = "jp"
		}
		var ok bool
		if base, ok = soracom.Endpoints[cov]; !ok {
			fail(Failed, fmt.Sprintf("coverage %q: want jp or g", c.Coverage), "fix the coverage in the connection secret")
			return
		}
	} else if _, err := baseURL(base); err != nil {
		fail(Failed, err.Error(), "fix the endpoint in the connection secret")
		return
	}
	client := soracom.NewClient(base, c.AuthKeyID, c.AuthKey.Reveal(), 5*time.Minute, 10*time.Second)
	creds, err := client.ListCredentials(ctx)
	if err != nil {
		fail(Failed, "cannot list the credentials: "+soracomErr(err),
			"check the SAM user's auth key in the connection secret and that its permissions allow Credential:listCredentials, Credential:updateCredential, Group:listGroups and Group:putConfigurationParameters")
		return
	}
	groups, err := client.ListGroups(ctx, 100)
	if err != nil {
		fail(Failed, "cannot list the groups: "+soracomErr(err), "allow the SAM user Group:listGroups")
		return
	}
	keys, err := d.activeKeys(ctx, rot.Input.User)
	if err != nil {
		fail(NotChecked, "cannot list the user's keys: "+errText(err), "attach the stack's OperatorPolicy (iam:ListAccessKeys on the configured users)")
		return
	}
	var found []string
	for _, cr := range creds {
		id := cr.CredentialsID
		p := tg.CredentialPrefix
		held, _ := cr.Credentials["accessKeyId"].(string)
		if p != "" && (id == p || strings.HasPrefix(id, p+"-")) || slices.Contains(tg.CredentialIDs, id) || held != "" && slices.Contains(keys, held) {
			found = append(found, id)
		}
	}
	if len(found) == 0 {
		fail(Failed, "no SORACOM credential of the target (by id, by prefix, or holding an active key of "+rot.Input.User+")",
			"name the credentials in the target (credentialIds or credentialPrefix), or check the connection is the operator that holds them")
		return
	}
	var users []string
	for _, g := range groups {
		for _, ns := range soracom.Namespaces {
			v, ok := g.Configuration[ns]["credentialsId"]
			if !ok {
				continue
			}
			ref, _ := v.(string)
			if m, ok := v.(map[string]any); ok {
				ref, _ = m["$credentialsId"].(string)
			}
			if slices.Contains(found, ref) {
				users = append(users, g.GroupID+" ("+ns+")")
			}
		}
	}
	detail := fmt.Sprintf("credentials %s, used by %d group(s)", strings.Join(found, ", "), len(users))
	if len(users) > 0 {
		detail += ": " + strings.Join(users, ", ")
	}
	r.add(Finding{Check: "soracom", Rotation: rot.Name, Subject: subject, Status: OK, Detail: detail})
}

// soracomErr words a SORACOM failure; the client never keeps the message
// of an answer to a call that carried a secret (its auth key).
func soracomErr(err error) string { return err.Error() }
