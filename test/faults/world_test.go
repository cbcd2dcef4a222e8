// Package faults is the fault matrix: a three-target rotation (an
// application secret, an Auth0 tenant, a SORACOM operator) runs once clean
// while the sandbox records every call keyrotator's functions make, each
// keyed by (state, target, action, ordinal); then once per call with that
// call failing before its side effect, once with its answer lost after the
// side effect, and once per Lambda invocation with the function crashing
// after its work. After each run the invariants are checked (see check).
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/consumer"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// lambdas holds <function>/bootstrap for every task, built once per run.
var lambdas string

var root = filepath.Join("..", "..")

func TestMain(m *testing.M) {
	os.Exit(pipelinetest.Main(m, root, func(dist string) { lambdas = dist }))
}

// waitScale makes the 7-day wait last 60 ms, as in test/e2e.
const waitScale = 1e-7

// The rotation's user and its three targets.
const (
	user        = "fault-matrix"
	appTarget   = "app"
	auth0Target = "prod"
	soraTarget  = "iot"
	appSecret   = "app/" + user
	oldCredID   = "aws-soracom-funnel-20260901"
)

// W is one case's world: a fresh sandbox with keyrotator deployed, the user
// with one old key, and the three targets' consumers running with it.
type W struct {
	t      testing.TB
	sb     *sandboxtest.Sandbox
	dep    pipeline.Deployment
	sfn    *sfn.Client
	sm     *secretsmanager.Client
	old    sandboxtest.UserKey
	app    *consumer.App
	tenant *sbauth0.Tenant
	op     *sbsoracom.Operator
	groups []string // the SORACOM groups that push with the user's key
}

func newWorld(t testing.TB) *W {
	t.Helper()
	sb, dep := pipelinetest.Start(t, fullsandbox.Options{WaitScale: waitScale}, root, lambdas)
	cfg := sb.Config(t)
	w := &W{t: t, sb: sb, dep: dep, sfn: sfn.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
	ctx := context.Background()
	w.old = sb.User(t, user, 1)[0]
	sb.IAM.Backdate(w.old.AccessKeyID, sb.Server.Clock().Now().AddDate(0, 0, -95))

	// The application secret and its holder, which re-reads it before each call.
	v, _ := json.Marshal(map[string]string{"accessKeyId": w.old.AccessKeyID, "secretAccessKey": w.old.SecretAccessKey})
	if _, err := w.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(appSecret), SecretString: aws.String(string(v))}); err != nil {
		t.Fatalf("seed app secret: %v", err)
	}
	w.app = consumer.New(cfg, appSecret, 5*time.Millisecond, true)
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.app.Run(actx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	// The Auth0 tenant, mailing through SES with the old key.
	clientSecret := "client-secret-" + auth0Target + "-" + strings.Repeat("x", 24)
	tn, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: auth0Target, ClientID: "cid-" + auth0Target, ClientSecret: clientSecret,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@prod.example.com", Credentials: map[string]any{
			"accessKeyId": w.old.AccessKeyID, "secretAccessKey": w.old.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.tenant = tn
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tn.Domain(), "clientId": "cid-" + auth0Target, "clientSecret": clientSecret})
	w.connection(auth0Target, conn)

	// The SORACOM operator: two groups' Funnel pushing with the old key.
	authKey := "secret-" + soraTarget + "-" + strings.Repeat("k", 24)
	op, err := sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{
		Name: "keyrotator", AuthKeyID: "keyId-" + soraTarget, AuthKey: authKey,
		Permissions: []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	w.op = op
	if err := op.PutCredential(oldCredID, sbsoracom.CredentialInput{Type: "aws-credentials", Description: "made by hand",
		Credentials: map[string]any{"accessKeyId": w.old.AccessKeyID, "secretAccessKey": w.old.SecretAccessKey}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		// Fixed ids: a group's id is in the path of the calls on it, so in
		// the case keys; random ids would name calls no faulted run makes
		// (the fault never fires) and reshuffle the CI sample every run.
		id, err := op.AddGroup(sbsoracom.GroupConfig{ID: fmt.Sprintf("6f1c2a90-0000-4000-8000-%012d", i), Name: fmt.Sprintf("sensors-%d", i), Configuration: map[string]map[string]any{
			"SoracomFunnel": {"enabled": true, "credentialsId": oldCredID, "contentType": "application/json",
				"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		w.groups = append(w.groups, id)
	}
	conn, _ = json.Marshal(map[string]string{"authKeyId": "keyId-" + soraTarget, "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	w.connection(soraTarget, conn)
	return w
}

func (w *W) connection(name string, value []byte) {
	w.t.Helper()
	if _, err := w.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("keyrotator/connections/" + name), SecretString: aws.String(string(value))}); err != nil {
		w.t.Fatal(err)
	}
}

// input is the three-target rotation.
func input() map[string]any {
	return map[string]any{
		"user": user,
		"targets": []map[string]string{
			{"type": "secret", "name": appTarget, "secretId": appSecret},
			{"type": "auth0", "name": auth0Target, "connection": "keyrotator/connections/" + auth0Target, "sesRegion": "ap-northeast-1"},
			{"type": "soracom", "name": soraTarget, "connection": "keyrotator/connections/" + soraTarget, "credentialPrefix": "aws-soracom-funnel"},
		},
		"waitDays":  7,
		"graceDays": 1,
	}
}

// run is an ended execution.
type run struct {
	arn, status, err, cause string
	states                  []string
}

// rotate runs the rotation and waits for it to end.
func (w *W) rotate() run {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, _ := json.Marshal(input())
	out, err := w.sfn.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(w.dep.StateMachineARN), Input: aws.String(string(b))})
	if err != nil {
		w.t.Fatalf("StartExecution: %v", err)
	}
	arn := aws.ToString(out.ExecutionArn)
	for {
		d, err := w.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			w.t.Fatalf("DescribeExecution: %v", err)
		}
		if d.Status != types.ExecutionStatusRunning {
			r := run{arn: arn, status: string(d.Status), err: aws.ToString(d.Error), cause: aws.ToString(d.Cause)}
			h, err := w.sfn.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
			if err == nil {
				for _, e := range h.Events {
					if e.StateEnteredEventDetails != nil {
						r.states = append(r.states, aws.ToString(e.StateEnteredEventDetails.Name))
					}
				}
			}
			return r
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("execution %s still running after 2 minutes", arn)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// keys are the user's access keys: id → status.
func (w *W) keys() map[string]string {
	ks, _ := w.sb.IAM.Keys(user)
	out := map[string]string{}
	for _, k := range ks {
		out[k.AccessKeyID] = k.Status
	}
	return out
}

// recordKeys are the key ids the user's record holds a secret of, in any
// version (its accessKeyId), and the one its AWSCURRENT version holds (""
// if none).
func (w *W) recordKeys() (held map[string]bool, current string) {
	ctx := context.Background()
	held = map[string]bool{}
	vs, err := w.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(rotation.RecordName(user)), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		return held, "" // no record yet
	}
	for _, v := range vs.Versions {
		out, err := w.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(rotation.RecordName(user)), VersionId: v.VersionId})
		if err != nil {
			continue
		}
		var rec struct {
			AccessKeyID string `json:"accessKeyId"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(out.SecretString)), &rec)
		if rec.AccessKeyID == "" {
			continue
		}
		held[rec.AccessKeyID] = true
		if slices.Contains(v.VersionStages, "AWSCURRENT") {
			current = rec.AccessKeyID
		}
	}
	return held, current
}

// holds is the key id each target holds now.
func (w *W) holds() map[string]string {
	out := map[string]string{}
	if v, err := w.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(appSecret)}); err == nil {
		var s struct {
			AccessKeyID string `json:"accessKeyId"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(v.SecretString)), &s)
		out[appTarget] = s.AccessKeyID
	}
	if creds, ok := w.tenant.View().Provider["credentials"].(map[string]any); ok {
		out[auth0Target], _ = creds["accessKeyId"].(string)
	}
	// The SORACOM target holds what its groups' credentials hold: one key,
	// or "a+b" while a repoint is partial (each group then uses its own).
	var held []string
	for _, k := range w.groupKeys() {
		if !slices.Contains(held, k) {
			held = append(held, k)
		}
	}
	slices.Sort(held)
	out[soraTarget] = strings.Join(held, "+")
	return out
}

// groupKeys is the key each pushing group's credential holds, by group id.
func (w *W) groupKeys() map[string]string {
	creds := map[string]string{}
	for _, c := range w.op.Credentials() {
		creds[c.ID] = c.AccessKeyID
	}
	out := map[string]string{}
	for _, g := range w.op.Groups() {
		if slices.Contains(w.groups, g.ID) {
			id, _ := g.Configuration["SoracomFunnel"]["credentialsId"].(string)
			out[g.ID] = creds[id]
		}
	}
	return out
}

// works says, per target, whether its consumer works with the key it holds
// ("" if so): the app's last call, the tenant's last mail, every group's
// last push, each after the target's key was last changed.
func (w *W) works(holds map[string]string) map[string]string {
	out := map[string]string{appTarget: "", auth0Target: "", soraTarget: ""}
	deadline := time.Now().Add(3 * time.Second)
	for {
		pending := false
		st := w.app.Stats()
		if n := len(st.KeyIDs); n == 0 || st.KeyIDs[n-1] != holds[appTarget] || st.OK == 0 {
			out[appTarget] = fmt.Sprintf("the app's calls use %v, want %s (last error %q)", st.KeyIDs, holds[appTarget], st.LastError)
			pending = true
		} else if st.Failed > 0 {
			out[appTarget] = fmt.Sprintf("the app saw %d failed calls (last: %s)", st.Failed, st.LastError)
		} else {
			out[appTarget] = ""
		}
		if m := w.tenant.View().Mail; m.LastKeyID != holds[auth0Target] || m.LastError != "" {
			out[auth0Target] = fmt.Sprintf("the tenant mails with %s (error %q), it holds %s", m.LastKeyID, m.LastError, holds[auth0Target])
			pending = true
		} else {
			out[auth0Target] = ""
		}
		out[soraTarget] = ""
		keys := w.groupKeys()
		for _, g := range w.op.Groups() {
			if k, ok := keys[g.ID]; ok && (g.Push.LastKeyID != k || g.Push.LastError != "") {
				out[soraTarget] = fmt.Sprintf("group %s pushes with %s (error %q), its credential holds %s", g.Name, g.Push.LastKeyID, g.Push.LastError, k)
				pending = true
			}
		}
		if !pending || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// calls are the calls with an origin in this execution, in order.
func (w *W) calls(arn string) []sandbox.CallRecord {
	all, err := w.sb.Server.Calls().Since(0)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []sandbox.CallRecord
	for _, c := range all {
		if c.Origin != nil && c.Origin.Execution == arn {
			out = append(out, c)
		}
	}
	return out
}
