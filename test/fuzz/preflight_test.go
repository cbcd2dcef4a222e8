// Package fuzz fuzzes what keyrotator does with an execution input before
// its first write: Validate's checks and every target's plan (the
// preflight), in-process, with the real SDK clients against one sandbox
// world per fuzz process. It never runs a whole rotation.
package fuzz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/connections"
	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/auth0"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// fixture is the world a fuzz process preflights inputs against.
type fixture struct {
	sb      *sandboxtest.Sandbox
	v       *steps.Validate
	targets steps.Targets
	admin   string            // the access key id keyrotator's clients call with
	vars    map[string]string // the placeholders an input may use
	secrets []leak.Secret     // every secret the world holds
}

// The placeholders a fuzzed input may hold, replaced before it runs: the
// sandbox makes ARNs with a random suffix, so a corpus file cannot spell
// them. The fuzzer mutates around them, and into them.
var placeholders = []string{
	"$USER",         // the user with one old key
	"$KEY",          // its access key id
	"$APP",          // the app secret holding that key
	"$APP_ARN",      // its ARN
	"$VICTIM",       // another user, with a key and a rotation record
	"$VICTIM_KEY",   // the victim's access key id
	"$REC_ARN",      // the victim's record (keyrotator's own), by ARN
	"$REC_PARTIAL",  // …and by partial ARN (no random suffix)
	"$AUTH0_CONN",   // the Auth0 tenant's connection secret, by name
	"$CONN_ARN",     // …and by ARN
	"$SORACOM_CONN", // the SORACOM operator's connection secret, by name
	"$TEXT",         // a secret that is not JSON
}

// expand replaces the placeholders, longest first ($REC_ARN before $REC…).
func (fx *fixture) expand(raw []byte) []byte {
	names := slices.Clone(placeholders)
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	s := string(raw)
	for _, n := range names {
		s = strings.ReplaceAll(s, n, fx.vars[n])
	}
	return []byte(s)
}

// newFixture builds the world: a user with a 95-day-old key kept in an app
// secret, a victim user with a key and a rotation record, an Auth0 tenant
// sending with the user's key and its connection, a SORACOM operator with a
// credential holding the key, groups on it and its connection, a secret
// that is not JSON; and Validate and the planners wired as the Lambdas wire
// them (functions/cmd/validate, update*), with real SDK clients.
func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	sb := sandboxtest.Start(tb, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag})
	ctx := context.Background()
	cfg := sb.Config(tb)
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	fx := &fixture{sb: sb, admin: creds.AccessKeyID, vars: map[string]string{}}
	put := func(name, value string, tags ...smtypes.Tag) string {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value), Tags: tags})
		if err != nil {
			tb.Fatalf("create secret %s: %v", name, err)
		}
		return aws.ToString(out.ARN)
	}
	key := sb.User(tb, "fuzz-user", 1)[0]
	sb.IAM.Backdate(key.AccessKeyID, sb.Server.Clock().Now().AddDate(0, 0, -95))
	app, _ := json.Marshal(map[string]string{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.SecretAccessKey, "endpoint": "keep-me"})
	fx.vars["$USER"], fx.vars["$KEY"], fx.vars["$APP"] = "fuzz-user", key.AccessKeyID, "app/fuzz-user"
	fx.vars["$APP_ARN"] = put("app/fuzz-user", string(app))

	victim := sb.User(tb, "victim", 1)[0]
	rec, _ := json.Marshal(map[string]string{"accessKeyId": victim.AccessKeyID, "secretAccessKey": victim.SecretAccessKey})
	recARN := put(rotation.RecordName("victim"), string(rec),
		smtypes.Tag{Key: aws.String("keyrotator:user"), Value: aws.String("victim")}, smtypes.Tag{Key: aws.String("keyrotator:kind"), Value: aws.String("record")})
	fx.vars["$VICTIM"], fx.vars["$VICTIM_KEY"], fx.vars["$REC_ARN"], fx.vars["$REC_PARTIAL"] = "victim", victim.AccessKeyID, recARN, recARN[:len(recARN)-7]

	clientSecret := "fuzz-client-secret-" + strings.Repeat("c", 24)
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "tenant", ClientID: "cid-tenant", ClientSecret: clientSecret,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@tenant.example.com", Credentials: map[string]any{
			"accessKeyId": key.AccessKeyID, "secretAccessKey": key.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		tb.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid-tenant", "clientSecret": clientSecret})
	connTag := smtypes.Tag{Key: aws.String("keyrotator:kind"), Value: aws.String("connection")} // as infra tags it
	fx.vars["$AUTH0_CONN"] = "keyrotator/connections/tenant"
	fx.vars["$CONN_ARN"] = put("keyrotator/connections/tenant", string(conn), connTag)

	authKey := "fuzz-soracom-auth-key-" + strings.Repeat("k", 24)
	op, err := sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{
		Name: "keyrotator", AuthKeyID: "keyId-op", AuthKey: authKey,
		Permissions: []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"},
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := op.PutCredential("aws-soracom-funnel-20260901", sbsoracom.CredentialInput{Type: "aws-credentials", Description: "made by hand",
		Credentials: map[string]any{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.SecretAccessKey}}); err != nil {
		tb.Fatal(err)
	}
	for i, ref := range []any{"aws-soracom-funnel-20260901", map[string]any{"$credentialsId": "aws-soracom-funnel-20260901"}} {
		if _, err := op.AddGroup(sbsoracom.GroupConfig{Name: fmt.Sprintf("sensors-%d", i), Configuration: map[string]map[string]any{
			"SoracomFunnel": {"enabled": true, "credentialsId": ref, "contentType": "application/json",
				"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}},
		}}); err != nil {
			tb.Fatal(err)
		}
	}
	sconn, _ := json.Marshal(map[string]string{"authKeyId": "keyId-op", "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	fx.vars["$SORACOM_CONN"] = "keyrotator/connections/operator"
	put("keyrotator/connections/operator", string(sconn), connTag)
	fx.vars["$TEXT"] = "app/text"
	put("app/text", "AKIA:not-json")

	fx.v = &steps.Validate{Schema: subset.Check, Keys: iamkeys.New(iam.NewFromConfig(cfg)), Records: record.New(sm), Executions: executions.New(sfn.NewFromConfig(cfg)), Makers: trail.ForIAMEvents(cfg)}
	fx.targets = steps.Targets{
		rotation.TargetSecret:  secret.New(sm),
		rotation.TargetAuth0:   &auth0.Target{Secrets: connections.New(sm), MaxRateWait: time.Second},
		rotation.TargetSoracom: &soracom.Target{Secrets: connections.New(sm), MaxRateWait: time.Second},
	}
	fx.secrets = sb.Secrets()
	for _, s := range []string{clientSecret, authKey, key.SecretAccessKey, victim.SecretAccessKey} {
		fx.secrets = append(fx.secrets, leak.Secret{Kind: "a secret the fixture made", Value: s})
	}
	return fx
}

// tokenExchanges are the calls a target makes to log in: Auth0's client
// credentials grant and SORACOM's auth are POSTs that change nothing.
var tokenExchanges = map[string]bool{"auth0 POST /oauth/token": true, "soracom POST /v1/auth": true}

// writes are the writes since seq that keyrotator's clients made: every
// AWS call with the admin key and every Auth0 or SORACOM call but a log-in.
// The simulated consumers (the tenant's mail through SES, the groups'
// pushes) call with the user's keys and are not keyrotator's.
func (fx *fixture) writes(t testing.TB, seq int64) []sandbox.CallRecord {
	t.Helper()
	calls, err := fx.sb.Server.Calls().Since(seq)
	if err != nil {
		t.Fatal(err)
	}
	var out []sandbox.CallRecord
	for _, c := range calls {
		switch {
		case !c.Write:
		case c.Service == "auth0" || c.Service == "soracom":
			if !tokenExchanges[c.Service+" "+c.Action] {
				out = append(out, c)
			}
		case c.AccessKeyID == fx.admin:
			out = append(out, c)
		}
	}
	return out
}

// check preflights one input and fails t unless it is refused with a named
// error that names a field, a target or the user, or accepted; either way
// with no write and no byte of a secret in what it returned.
func (fx *fixture) check(t *testing.T, raw []byte) {
	t.Helper()
	raw = fx.expand(raw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ev steps.ValidateInput
	ev.Now = fx.sb.Server.Clock().Now()
	ev.Data.Execution = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:fuzz"
	ev.Data.Input = json.RawMessage(raw)
	seq := fx.sb.Server.Calls().Last()
	plan, receipts, err := steps.Preflight(ctx, fx.v, fx.targets, ev)
	for _, w := range fx.writes(t, seq) {
		t.Errorf("the preflight wrote: %s %s %s", w.Service, w.Action, w.Resource)
	}
	out, _ := json.Marshal(map[string]any{"plan": plan, "receipts": receipts})
	sources := map[string][]byte{"the plan and receipts": out}
	if err != nil {
		sources["the error"] = []byte(err.Error())
		if why := unnamed(err, raw); why != "" {
			t.Errorf("refused with %T %q: %s", err, brief(err.Error()), why)
		}
	}
	for _, f := range leak.Scan(fx.secrets, sources) {
		t.Errorf("I1: %s (%s) appears in %s", f.Kind, f.Encoding, f.Source)
	}
}

// unnamed says what is wrong with a refusal, or "" if it is a named error
// (its type is one of rotation.ErrorNames, returned unwrapped, as Step
// Functions matches it) whose message names the field, target or user.
func unnamed(err error, raw []byte) string {
	typ := reflect.TypeOf(err)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if !slices.Contains(rotation.ErrorNames, typ.Name()) || typ.PkgPath() != reflect.TypeFor[rotation.InvalidInput]().PkgPath() {
		return "not a named error (rotation.ErrorNames), unwrapped"
	}
	var in struct {
		User    string `json:"user"`
		Targets []struct {
			Name string `json:"name"`
		} `json:"targets"`
	}
	isObject := json.Unmarshal(raw, &in) == nil && strings.HasPrefix(strings.TrimLeft(string(raw), " \t\r\n"), "{")
	var ii *rotation.InvalidInput
	var tf *rotation.TargetFailed
	var rt *rotation.Retryable
	switch {
	case errors.As(err, &ii):
		if ii.Reason == "" {
			return "no reason"
		}
		if ii.Field == "" && isObject && len(raw) <= rotation.MaxInputBytes {
			return "an object refused without naming a field"
		}
	case errors.As(err, &tf):
		if tf.Target == "" || !strings.Contains(err.Error(), tf.Target) {
			return "names no target"
		}
		if !slices.ContainsFunc(in.Targets, func(t struct {
			Name string `json:"name"`
		}) bool {
			return t.Name == tf.Target
		}) {
			return fmt.Sprintf("names target %q, which the input does not have", tf.Target)
		}
	case errors.As(err, &rt):
		return "a transient error from a sandbox without faults"
	default:
		if in.User == "" || !strings.Contains(err.Error(), in.User) {
			return "names neither a field, a target nor the input's user"
		}
	}
	return ""
}

func brief(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// FuzzPreflight: every input is either refused with a named error naming
// what to fix, or passes Validate and every target's plan; in both cases
// nothing is written (the call log) and nothing it says holds a byte of a
// secret the world holds. Seeds: testdata/fuzz/FuzzPreflight (issue 11's
// hostile inputs), with the placeholders above.
func FuzzPreflight(f *testing.F) {
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, raw []byte) { fx.check(t, raw) })
}

func reflectName(err error) string { return reflect.TypeOf(err).String() }
