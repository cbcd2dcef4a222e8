package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/iampolicy"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/pipeline"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// doctorConfig is infra's test config, the one the golden template was
// synthesized from (infra/stack_test.go testConfig): its rotations are
// what the deployed stack holds.
var doctorConfig = filepath.Join("testdata", "doctor.config.json")

// doctorDoc is doctor's --json document, as docs/cli.md describes it.
type doctorDoc struct {
	StateMachineARN string `json:"stateMachineArn"`
	Findings        []struct {
		Check    string `json:"check"`
		Rotation string `json:"rotation"`
		Subject  string `json:"subject"`
		Status   string `json:"status"`
		Detail   string `json:"detail"`
		Fix      string `json:"fix"`
	} `json:"findings"`
	Summary struct {
		OK, Unconfirmed, Failed, NotChecked int
	} `json:"summary"`
}

// failed are the findings to fix, as "check: subject: detail | fix".
func (d doctorDoc) failed() []string {
	var out []string
	for _, f := range d.Findings {
		if f.Status == "fail" || f.Status == "error" {
			out = append(out, f.Check+": "+f.Subject+": "+f.Detail+" | fix: "+f.Fix)
		}
	}
	return out
}

// A world for the golden config: its two users with a key each, their
// application secrets, the Auth0 tenant and the SORACOM operator behind
// the two connection secrets, every alert subscription confirmed. The
// stack is deployed whole: schedules and alarms too (not HarnessSkips);
// nothing moves the sandbox clock, so no schedule fires.
type doctorWorld struct {
	*H
	funnelKey string
	tenant    string

	// what a break keeps for its fix
	restore  func()
	saved    string
	disabled scheduler.Schedule
}

func startDoctor(t *testing.T) *doctorWorld {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{WaitScale: waitScale})
	t.Cleanup(func() {
		emitted, err := sb.Emitted()
		if err != nil {
			t.Errorf("leak canary: %v", err)
		}
		leak.Check(t, sb.Secrets(), emitted, sandboxtest.KindIAM)
	})
	dep, err := pipeline.Deploy(context.Background(), sb.Sandbox, pipeline.Options{Dist: lambdas, Template: filepath.Join(root, pipeline.DefaultTemplate)})
	if err != nil {
		if strings.Contains(err.Error(), "node") {
			t.Skipf("Step Functions needs Node ≥ 22 (run `make deps`): %v", err)
		}
		t.Fatalf("deploy: %v", err)
	}
	cfg := sb.Config(t)
	h := &H{t: t, sb: sb, dep: dep, sfn: sfn.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
	t.Cleanup(h.noSecretPrinted)
	w := &doctorWorld{H: h, tenant: "prod"}
	ctx := context.Background()

	app := sb.User(t, "app-aws-user", 1)
	funnel := sb.User(t, "soracom-funnel", 1)
	w.funnelKey = funnel[0].AccessKeyID
	for id, k := range map[string]sandboxtest.UserKey{"app/aws-access-key": app[0], "iot/aws-key": funnel[0]} {
		v, _ := json.Marshal(map[string]string{"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey})
		if _, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(string(v))}); err != nil {
			t.Fatal(err)
		}
	}

	clientSecret := "client-secret-doctor-" + strings.Repeat("x", 24)
	tenant, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: w.tenant, ClientID: "cid-doctor", ClientSecret: clientSecret,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@prod.example.com", Credentials: map[string]any{
			"accessKeyId": funnel[0].AccessKeyID, "secretAccessKey": funnel[0].SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.put("keyrotator/connections/auth0-prod", map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid-doctor", "clientSecret": clientSecret})

	authKey := "secret-doctor-" + strings.Repeat("k", 24)
	op, err := sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{Name: "keyrotator", AuthKeyID: "keyId-doctor", AuthKey: authKey}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.PutCredential("aws-soracom-funnel", sbsoracom.CredentialInput{Type: "aws-credentials",
		Credentials: map[string]any{"accessKeyId": funnel[0].AccessKeyID, "secretAccessKey": funnel[0].SecretAccessKey}}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.AddGroup(sbsoracom.GroupConfig{ID: "6f1c2a90-0000-4000-8000-000000000001", Name: "sensors", Configuration: map[string]map[string]any{
		"SoracomFunnel": {"enabled": true, "credentialsId": "aws-soracom-funnel", "contentType": "application/json",
			"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}},
	}}); err != nil {
		t.Fatal(err)
	}
	w.put("keyrotator/connections/soracom", map[string]string{"authKeyId": "keyId-doctor", "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})

	for _, arn := range w.subscriptions() {
		if code := sb.AdminCall(t, "POST", "/sns/subscriptions/confirm?arn="+arn, nil, nil); code != 204 {
			t.Fatalf("confirm %s: HTTP %d", arn, code)
		}
	}
	return w
}

// put writes a connection secret's value.
func (w *doctorWorld) put(id string, v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := w.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(b))}); err != nil {
		w.t.Fatalf("put %s: %v", id, err)
	}
}

// topicPolicy sets the alert topic's policy.
func (w *doctorWorld) topicPolicy(t *testing.T, doc string) {
	t.Helper()
	if _, err := sns.NewFromConfig(w.sb.Config(t)).SetTopicAttributes(context.Background(), &sns.SetTopicAttributesInput{
		TopicArn: aws.String(w.dep.AlertTopicARN), AttributeName: aws.String("Policy"), AttributeValue: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
}

// value is a secret's current value.
func (w *doctorWorld) value(id string) string {
	w.t.Helper()
	out, err := w.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		w.t.Fatalf("read %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

// putRaw writes a secret's value as it is.
func (w *doctorWorld) putRaw(id, v string) {
	w.t.Helper()
	if _, err := w.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(v)}); err != nil {
		w.t.Fatalf("put %s: %v", id, err)
	}
}

// subscriptions are the alert topic's subscription ARNs, as the sandbox holds them.
func (w *doctorWorld) subscriptions() []string {
	w.t.Helper()
	var topics []struct {
		ARN           string `json:"arn"`
		Subscriptions []struct {
			ARN string `json:"arn"`
		} `json:"subscriptions"`
	}
	w.sb.AdminCall(w.t, "GET", "/sns/topics", nil, &topics)
	var out []string
	for _, tp := range topics {
		if tp.ARN == w.dep.AlertTopicARN {
			for _, s := range tp.Subscriptions {
				out = append(out, s.ARN)
			}
		}
	}
	if len(out) == 0 {
		w.t.Fatalf("the alert topic %s has no subscription", w.dep.AlertTopicARN)
	}
	return out
}

// doctor runs keyrotator doctor --json with the golden config.
func (w *doctorWorld) doctor() (doctorDoc, int) {
	w.t.Helper()
	var d doctorDoc
	r := w.runJSON(&d, "doctor", "--config", doctorConfig)
	return d, r.code
}

// A correct deploy is green; each broken one is named, with its fix, and
// green again once fixed.
func TestDoctor(t *testing.T) {
	t.Parallel()
	w := startDoctor(t)
	mark := lastSeq(t, w.sb)
	d, code := w.doctor()
	if code != 0 || len(d.failed()) > 0 {
		t.Fatalf("doctor on a correct deploy: exit %d, findings:\n%s", code, strings.Join(d.failed(), "\n"))
	}
	w.grantsCover(mark)
	// Every part was looked at: each role of each rotation, the two
	// alarms, the subscriptions, both connections and their APIs, both schedules.
	checks := map[string]int{}
	for _, f := range d.Findings {
		if f.Status == "ok" {
			checks[f.Check]++
		}
	}
	// app-key: every task but the three target updates, + UpdateSecret;
	// funnel (a secret, Auth0 and SORACOM): every task.
	for check, want := range map[string]int{"roles": (len(tasks.All) - 3 + 1) + len(tasks.All), "alarms": 2, "subscriptions": 2, "connections": 2, "auth0": 1, "soracom": 1, "schedules": 2} {
		if checks[check] != want {
			t.Errorf("%s: %d checks ok, want %d", check, checks[check], want)
		}
	}

	iamSvc := w.sb.IAM
	sched := service[*scheduler.Service](t, w.sb, "scheduler")

	for _, tc := range []struct {
		name        string
		break_, fix func(t *testing.T)
		check, want string // the finding: its check and words of its detail
		fixWords    string // words of its fix
	}{
		{
			name:  "a missing grant",
			check: "roles", want: "iam:CreateAccessKey", fixWords: "redeploy",
			break_: func(t *testing.T) {
				role := w.role("createkey")
				restore := dropStatement(t, iamSvc, role, "iam:CreateAccessKey")
				w.restore = restore
			},
			fix: func(*testing.T) { w.restore() },
		},
		{
			name:  "an unconfirmed subscription",
			check: "subscriptions", want: "not confirmed", fixWords: "confirmation",
			break_: func(t *testing.T) {
				// A new mail subscriber who has not yet followed the link.
				if _, err := sns.NewFromConfig(w.sb.Config(t)).Subscribe(context.Background(), &sns.SubscribeInput{
					TopicArn: aws.String(w.dep.AlertTopicARN), Protocol: aws.String("email"), Endpoint: aws.String("late@example.com")}); err != nil {
					t.Fatal(err)
				}
			},
			fix: func(t *testing.T) {
				for _, arn := range w.subscriptions() {
					w.sb.AdminCall(t, "POST", "/sns/subscriptions/confirm?arn="+arn, nil, nil)
				}
			},
		},
		{
			name:  "an empty connection secret",
			check: "connections", want: "not filled in", fixWords: "put-secret-value",
			break_: func(t *testing.T) {
				w.saved = w.value("keyrotator/connections/soracom")
				w.put("keyrotator/connections/soracom", map[string]string{})
			},
			fix: func(t *testing.T) { w.putRaw("keyrotator/connections/soracom", w.saved) },
		},
		{
			name:  "a tenant without a scope",
			check: "auth0", want: "update:email_provider", fixWords: "grant the application",
			break_: func(t *testing.T) {
				w.sb.AdminCall(t, "PATCH", "/auth0/tenants/"+w.tenant, map[string]any{"scopes": []string{sbauth0.ScopeRead}}, nil)
			},
			fix: func(t *testing.T) {
				w.sb.AdminCall(t, "PATCH", "/auth0/tenants/"+w.tenant, map[string]any{"scopes": []string{sbauth0.ScopeRead, sbauth0.ScopeUpdate}}, nil)
			},
		},
		{
			name:  "a topic policy that lets no alarm publish",
			check: "alarms", want: "sns:Publish", fixWords: "aws:SourceArn",
			break_: func(t *testing.T) {
				c := sns.NewFromConfig(w.sb.Config(t))
				attrs, err := c.GetTopicAttributes(context.Background(), &sns.GetTopicAttributesInput{TopicArn: aws.String(w.dep.AlertTopicARN)})
				if err != nil {
					t.Fatal(err)
				}
				w.saved = attrs.Attributes["Policy"]
				// EnforceSSL's Deny alone, as the topic had before issue 13.
				only := `{"Version":"2012-10-17","Statement":[{"Sid":"AllowPublishThroughSSLOnly","Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"` + w.dep.AlertTopicARN + `","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
				w.topicPolicy(t, only)
			},
			fix: func(t *testing.T) { w.topicPolicy(t, w.saved) },
		},
		{
			name:  "a disabled schedule",
			check: "schedules", want: "DISABLED", fixWords: "--state ENABLED",
			break_: func(t *testing.T) {
				// A rotation's schedule (it invokes requestrun, which starts
				// the run), not the weekly audit's.
				all := slices.DeleteFunc(sched.Schedules(), func(s scheduler.Schedule) bool { return !strings.HasSuffix(s.Target.Arn, tasks.RequestRun.Function()) })
				if len(all) == 0 {
					t.Fatal("no rotation schedule deployed")
				}
				w.disabled = all[0]
				if err := sched.SetState(w.disabled.Group, w.disabled.Name, scheduler.Disabled); err != nil {
					t.Fatal(err)
				}
			},
			fix: func(t *testing.T) {
				if err := sched.SetState(w.disabled.Group, w.disabled.Name, scheduler.Enabled); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		// One after another on one deploy: each break is undone before the next.
		t.Run(tc.name, func(t *testing.T) {
			tc.break_(t)
			d, code := w.doctor()
			if code != 1 {
				t.Errorf("exit %d, want 1 (findings)", code)
			}
			var named bool
			for _, f := range d.Findings {
				if f.Status == "fail" && f.Check == tc.check && strings.Contains(f.Detail, tc.want) && strings.Contains(f.Fix, tc.fixWords) {
					named = true
				}
			}
			if !named {
				t.Errorf("no %s finding with %q and a fix saying %q; findings:\n%s", tc.check, tc.want, tc.fixWords, strings.Join(d.failed(), "\n"))
			}
			tc.fix(t)
			if d, code := w.doctor(); code != 0 {
				t.Errorf("after the fix: exit %d, findings:\n%s", code, strings.Join(d.failed(), "\n"))
			}
		})
	}
}

// Auth0 may not show the key its SES provider holds: doctor says
// unconfirmed, and that is not a failure.
func TestDoctorAuth0WithoutKeyID(t *testing.T) {
	t.Parallel()
	w := startDoctor(t)
	w.sb.AdminCall(t, "PATCH", "/auth0/tenants/"+w.tenant, map[string]any{"withholdKeyId": true}, nil)
	d, code := w.doctor()
	if code != 0 {
		t.Fatalf("exit %d, want 0; findings:\n%s", code, strings.Join(d.failed(), "\n"))
	}
	var unconfirmed bool
	for _, f := range d.Findings {
		unconfirmed = unconfirmed || f.Check == "auth0" && f.Status == "unconfirmed"
	}
	if !unconfirmed || d.Summary.Unconfirmed != 1 {
		t.Errorf("want one unconfirmed auth0 check, got %+v", d.Findings)
	}
	// A stack doctor cannot read is "could not check": exit 2, with what to do.
	var nd doctorDoc
	other := strings.Replace(w.dep.StateMachineARN, ":stateMachine:keyrotator", ":stateMachine:keyrotator-other", 1)
	if r := w.runJSON(&nd, "doctor", "--config", doctorConfig, "--state-machine", other); r.code != 2 || nd.Summary.NotChecked != 1 || len(nd.Findings) != 1 || nd.Findings[0].Fix == "" {
		t.Errorf("doctor on a state machine that is not there: exit %d, %+v; want 2 and one finding that could not be checked, with its fix", r.code, nd)
	}
	// The human report says it too, and exits the same.
	if r := w.run("doctor", "--config", doctorConfig); r.code != 0 || !strings.Contains(r.stdout, "unconfirmed") {
		t.Errorf("text report: exit %d\n%s", r.code, r.stdout)
	}
}

// lastSeq is the call log's newest sequence number.
func lastSeq(t *testing.T, sb *sandboxtest.Sandbox) int64 {
	var last int64
	for _, c := range sb.Calls(t, 0) {
		last = max(last, c.Seq)
	}
	return last
}

// grantsCover holds the stack's OperatorPolicy and DoctorPolicy to every
// AWS call doctor made since mark (as the admin): each, on each resource
// the sandbox names for it, is allowed to a role with just those two
// policies, as the policy evaluator decides. Calls of services that do not
// name their resources are counted, not checked.
func (w *doctorWorld) grantsCover(mark int64) {
	w.t.Helper()
	var policies []iampolicy.NamedPolicy
	for _, out := range []string{"OperatorPolicyArn", "DoctorPolicyArn"} {
		arn := w.dep.Stack.Outputs[out]
		doc, ok := w.sb.IAM.ManagedPolicyDocument(arn)
		if !ok {
			w.t.Fatalf("no managed policy %s (%s)", arn, out)
		}
		p, err := iampolicy.Parse(doc, iampolicy.Identity)
		if err != nil {
			w.t.Fatalf("%s: %v", out, err)
		}
		policies = append(policies, iampolicy.NamedPolicy{Name: out, Policy: p})
	}
	acct := w.sb.Server.Account()
	who := iampolicy.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/oncall/doctor", Account: acct, Type: iampolicy.AssumedRole}
	checked, unnamed := 0, map[string]bool{}
	for _, c := range w.sb.Calls(w.t, mark) {
		if c.Seq <= mark || c.Principal != w.sb.Admin.Principal.ARN {
			continue
		}
		svc, ok := w.sb.Server.Service(c.Service)
		if !ok {
			continue
		}
		action := authz.Action(svc.Info(), c.Action) // the IAM namespace: monitoring's is cloudwatch
		if len(c.ResourceARNs) == 0 {
			unnamed[action] = true
			continue
		}
		for _, res := range c.ResourceARNs {
			checked++
			dec := iampolicy.Evaluate(&iampolicy.Input{Request: iampolicy.Request{Principal: who, Action: action, Resource: res, ResourceAccount: acct,
				Context: iampolicy.Context{"aws:SecureTransport": {"true"}, "aws:PrincipalArn": {"arn:aws:iam::" + acct + ":role/oncall"}}}, IdentityPolicies: policies})
			if !dec.Allowed {
				w.t.Errorf("doctor called %s on %s, which OperatorPolicy and DoctorPolicy do not allow: %s", action, res, dec.Message)
			}
		}
	}
	if checked < 20 {
		w.t.Errorf("only %d of doctor's calls checked against the policies", checked)
	}
	w.t.Logf("%d calls checked against OperatorPolicy and DoctorPolicy; not checked (the sandbox names no resource): %v", checked, slices.Sorted(maps.Keys(unnamed)))
}

func service[T any](t *testing.T, sb *sandboxtest.Sandbox, name string) T {
	t.Helper()
	svc, ok := sb.Server.Service(name)
	if !ok {
		t.Fatalf("no %s service", name)
	}
	s, ok := svc.(T)
	if !ok {
		t.Fatalf("%s is a %T", name, svc)
	}
	return s
}

// role is the role name of a task's function.
func (w *doctorWorld) role(task string) string {
	w.t.Helper()
	arn := w.dep.Functions[task]
	fn, ok := w.sb.Lambda.Function(arn[strings.LastIndex(arn, ":")+1:])
	if !ok {
		w.t.Fatalf("no function for %s", task)
	}
	return fn.Role[strings.LastIndex(fn.Role, "/")+1:]
}

// dropStatement removes, from role's inline policies, every statement
// that grants action, and returns the undo.
func dropStatement(t *testing.T, s *iam.Service, role, action string) func() {
	t.Helper()
	r, ok := s.GetRole(role)
	if !ok {
		t.Fatalf("no role %s", role)
	}
	for name, doc := range r.Inline {
		var p struct {
			Version   string           `json:"Version"`
			Statement []map[string]any `json:"Statement"`
		}
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatal(err)
		}
		var kept []map[string]any
		for _, st := range p.Statement {
			if strings.Contains(fmt.Sprint(st["Action"]), action) {
				continue
			}
			kept = append(kept, st)
		}
		if len(kept) == len(p.Statement) {
			continue
		}
		p.Statement = kept
		b, _ := json.Marshal(p)
		if err := s.PutRolePolicy(role, name, b); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := s.PutRolePolicy(role, name, []byte(doc)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("no statement of role %s grants %s", role, action)
	return nil
}
