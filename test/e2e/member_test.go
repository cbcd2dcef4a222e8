package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// Issue 15: rotations in member accounts, through the member role, in one
// world: keyrotator deployed in the sandbox's own account (IAM enforced),
// the member stack (infra/member) deployed into account B with UserPath
// /service/ and the golden config's external id, into account D with
// another external id, and account C without it. The golden template's
// tasks may assume B's member role (the golden config's member rotation);
// the test widens that grant to C's and D's, so that what refuses them is
// the member account's side, as the issue asks.
const (
	memberB       = "222233334444" // the golden config's member account
	memberC       = "333344445555" // no member stack
	memberD       = "444455556666" // a member stack with another external id
	memberExtID   = "kr-ext-7f3a"  // infra's testConfig member.externalId
	memberRole    = "keyrotator-member"
	memberSecret  = "app/member-key" // B's application secret (TargetNamePattern app/*)
	memberSession = ":assumed-role/" + memberRole + "/keyrotator-"
)

// withMemberRoles lets the template's member tasks assume C's and D's
// member roles too, beside B's.
var withMemberRoles = grantMemberRoles(memberB, memberC, memberD)

// grantMemberRoles is a pipelinetest.Deploy.Edit that lets the template's
// member tasks, its audit and its sweep assume the member roles of
// accounts, instead of the golden config's B's alone.
func grantMemberRoles(accounts ...string) func(testing.TB, []byte) []byte {
	return func(t testing.TB, b []byte) []byte {
		t.Helper()
		var tmpl map[string]any
		if err := json.Unmarshal(b, &tmpl); err != nil {
			t.Fatal(err)
		}
		var roles []any
		for _, acct := range accounts {
			roles = append(roles, map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::" + acct + ":role/" + memberRole}}})
		}
		n := 0
		for _, r := range tmpl["Resources"].(map[string]any) {
			r := r.(map[string]any)
			if r["Type"] != "AWS::IAM::Policy" {
				continue
			}
			doc := r["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)
			for _, st := range doc["Statement"].([]any) {
				st := st.(map[string]any)
				if st["Action"] == "sts:AssumeRole" {
					st["Resource"] = roles
					n++
				}
			}
		}
		if want := len(tasks.MemberTasks()) + 2; n != want { // and the weekly audit's, and the fleet sweep's
			t.Fatalf("%d sts:AssumeRole statements in the golden template, want the %d of the member tasks, the audit and the sweep", n, want)
		}
		out, err := json.Marshal(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// memberWorld is the one deploy the subtests share.
type memberWorld struct {
	h     *H
	own   string
	admin map[string]aws.Config // each member account's administrator
}

func newMemberWorld(t *testing.T) *memberWorld {
	t.Helper()
	opts := fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true, IAMLag: fullsandbox.NoIAMLag}
	opts.Accounts = []string{memberB, memberC, memberD}
	h := startIn(t, opts, pipelinetest.Deploy{AnyUser: true, Edit: withMemberRoles})
	w := &memberWorld{h: h, own: h.sb.Server.Account(), admin: map[string]aws.Config{}}
	for _, acct := range []string{memberB, memberC, memberD} {
		c, err := h.sb.AddAccount(acct)
		if err != nil {
			t.Fatal(err)
		}
		w.admin[acct] = h.sb.ConfigAs(t, c.AccessKeyID, c.Secret, c.SessionToken)
	}
	// The main stack's task roles are named <stack>-Rotator…Role…-<random>.
	for acct, ext := range map[string]string{memberB: memberExtID, memberD: "kr-ext-other"} {
		if _, err := pipeline.DeployStack(t.Context(), h.sb.Sandbox, pipeline.StackOptions{
			Template: filepath.Join(root, pipeline.MemberTemplate), StackName: "keyrotator-member", Account: acct,
			Parameters: map[string]string{"MainAccountId": w.own, "ExternalId": ext, "UserPath": "/service/",
				"TrustedRoleNames": pipeline.StackName + "-*", "TargetNamePattern": "app/*"},
		}); err != nil {
			t.Fatalf("deploy the member stack into %s: %v", acct, err)
		}
	}
	return w
}

// memberUser makes user at path in acct with one key, 95 days old, its
// consumers allowed what they do; it returns the key.
func (w *memberWorld) memberUser(t *testing.T, acct, user, path string) fixture {
	t.Helper()
	in := w.h.sb.IAM.InAccount(acct)
	if _, err := in.CreateUser(user, path, nil); err != nil {
		t.Fatal(err)
	}
	k, err := in.CreateAccessKey(user)
	if err != nil {
		t.Fatal(err)
	}
	in.Backdate(k.AccessKeyID, w.h.sb.Server.Clock().Now().AddDate(0, 0, -95))
	if err := in.PutUserPolicy(user, "consumers", json.RawMessage(consumerPolicy)); err != nil {
		t.Fatal(err)
	}
	return fixture{user: user, old: sandboxtest.UserKey{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}}
}

// memberKeys are acct's user's keys, id → status.
func (w *memberWorld) memberKeys(acct, user string) map[string]string {
	ks, _ := w.h.sb.IAM.InAccount(acct).Keys(user)
	out := map[string]string{}
	for _, k := range ks {
		out[k.AccessKeyID] = k.Status
	}
	return out
}

// secretIn is acct's secret's value, decoded.
func (w *memberWorld) secretIn(t *testing.T, acct, id string) map[string]string {
	t.Helper()
	v, err := secretsmanager.NewFromConfig(w.admin[acct]).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("secret %s in %s: %v", id, acct, err)
	}
	var m map[string]string
	_ = json.Unmarshal([]byte(aws.ToString(v.SecretString)), &m)
	return m
}

// records are the names of the keyrotator account's rotation records.
func (w *memberWorld) records(t *testing.T) []string {
	t.Helper()
	out, err := w.h.sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range out.SecretList {
		if n := aws.ToString(s.Name); strings.HasPrefix(n, rotation.RecordPrefix) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func TestMemberAccounts(t *testing.T) {
	t.Parallel()
	w := newMemberWorld(t)
	t.Run("rotation in B through the member role, every target kind", func(t *testing.T) {
		t.Parallel()
		w.rotateInB(t, w.h.For(t))
	})
	t.Run("the weekly audit reads B through the member role", func(t *testing.T) {
		t.Parallel()
		w.auditB(t, w.h.For(t))
	})
	t.Run("the sweep starts a tagged user of B through the member role", func(t *testing.T) {
		t.Parallel()
		w.sweepB(t, w.h.For(t))
	})
	for _, c := range []struct{ name, acct, why string }{
		{"wrong external id (D)", memberD, "the member stack in D trusts another external id"},
		{"missing member role (C)", memberC, "C has no member stack"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w.refused(t, w.h.For(t), c.acct)
		})
	}
}

// rotateInB rotates B's /service/app through a secret in B, an Auth0
// tenant and a SORACOM operator; the keyrotator account has a user app of
// its own, which must not change.
func (w *memberWorld) rotateInB(t *testing.T, h *H) {
	f := w.memberUser(t, memberB, "app", "/service/")
	ownApp := h.sb.User(t, "app", 1)[0] // one name, two users
	v, _ := json.Marshal(map[string]string{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey, "endpoint": "keep-me"})
	if _, err := secretsmanager.NewFromConfig(w.admin[memberB]).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(memberSecret), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
	// An Auth0 tenant sending mail through B's SES with B's key, and a
	// SORACOM operator whose group pushes with it.
	clientSecret := "client-secret-member-" + strings.Repeat("x", 24)
	authKey := "secret-member-soracom-" + strings.Repeat("k", 24)
	w.h.secrets = append(w.h.secrets, clientSecret, authKey)
	tenant, err := h.sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "member-tenant", ClientID: "cid-member", ClientSecret: clientSecret,
		Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@member.example.com", Credentials: map[string]any{
			"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid-member", "clientSecret": clientSecret})
	h.putConnection("keyrotator/connections/member-tenant", conn)
	op, err := h.sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{
		Name: "keyrotator", AuthKeyID: "keyId-member", AuthKey: authKey,
		Permissions: []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.PutCredential("aws-member-20260901", sbsoracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey}}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.AddGroup(sbsoracom.GroupConfig{Name: "member-sensors", Configuration: map[string]map[string]any{"SoracomFunnel": {"enabled": true, "credentialsId": "aws-member-20260901",
		"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}, "contentType": "application/json"}}}); err != nil {
		t.Fatal(err)
	}
	sc, _ := json.Marshal(map[string]string{"authKeyId": "keyId-member", "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	h.putConnection("keyrotator/connections/member-soracom", sc)
	from := h.sb.Calls(t, 0)
	seq := int64(0)
	if len(from) > 0 {
		seq = from[len(from)-1].Seq
	}

	// Through the request endpoint, as keyrotator start and the schedules
	// start it: requestrun names the run with the account.
	r := h.Wait(h.RequestRun(map[string]any{"user": "app", "account": memberB, "userPath": "/service/", "waitDays": 3, "verifyAttempts": 2, "targets": []map[string]string{
		{"type": "secret", "name": "app", "secretId": memberSecret},
		{"type": "auth0", "name": "tenant", "connection": "keyrotator/connections/member-tenant", "sesRegion": "ap-northeast-1"},
		{"type": "soracom", "name": "funnel", "connection": "keyrotator/connections/member-soracom", "credentialPrefix": "aws-member"},
	}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the member rotation: %s %s: %s (refused: %v)", r.Status, r.Error, r.Cause, h.deniedCalls())
	}
	if name := rotation.ExecutionNameOf(r.ARN); !strings.HasPrefix(name, memberB+"-app-") {
		t.Errorf("execution name %s: want the account first", name)
	}
	var plan struct{ Plan rotation.Plan }
	r.StateOutput(t, "Validate", &plan)
	wantRecord := "keyrotator/users/" + memberB + "/app"
	if plan.Plan.Account != memberB || plan.Plan.Record != wantRecord || plan.Plan.OldKeyID != f.old.AccessKeyID {
		t.Errorf("plan account %q record %q old %q", plan.Plan.Account, plan.Plan.Record, plan.Plan.OldKeyID)
	}
	var key struct{ Key rotation.NewKey }
	r.StateOutput(t, "CreateKey", &key)
	newID := key.Key.KeyID

	// The keys changed in B, and not in the keyrotator account.
	if ks := w.memberKeys(memberB, "app"); len(ks) != 1 || ks[newID] != "Active" {
		t.Errorf("B's app keys %v, want only %s", ks, newID)
	}
	if ks := h.keys("app"); len(ks) != 1 || ks[ownApp.AccessKeyID] != "Active" {
		t.Errorf("the keyrotator account's own user app changed: %v", ks)
	}
	// Every target holds the new key: B's secret, the tenant, SORACOM.
	if s := w.secretIn(t, memberB, memberSecret); s["accessKeyId"] != newID || s["endpoint"] != "keep-me" {
		t.Errorf("B's secret holds %s (endpoint %q)", s["accessKeyId"], s["endpoint"])
	}
	// The tenant holds the new key (its mail through the sandbox's SES,
	// whose identities are the keyrotator account's, is refused to B's
	// user as a cross-account send without a sending authorization policy
	// would be: the tenant's sending is not what this test is about).
	if tn, _ := h.sb.Auth0.Tenant("member-tenant"); tn.View().Provider["credentials"] == nil || !strings.Contains(render(tn.View().Provider), newID) {
		t.Errorf("the tenant's provider does not hold %s: %v", newID, tn.View().Provider)
	}
	var moved bool
	for _, c := range op.Credentials() {
		moved = moved || c.AccessKeyID == newID
	}
	if !moved {
		t.Errorf("no SORACOM credential holds %s", newID)
	}
	// The record is the keyrotator account's, named with the account;
	// B has no record.
	if got := w.records(t); !slices.Contains(got, wantRecord) || slices.Contains(got, "keyrotator/users/app") {
		t.Errorf("records %v, want %s and none for the own app", got, wantRecord)
	}
	if _, err := secretsmanager.NewFromConfig(w.admin[memberB]).DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(wantRecord)}); err == nil {
		t.Error("B holds a rotation record")
	}
	// The calls in B but the consumers' (B's user app, with its key) were
	// made by member-role sessions, each naming its function; every member
	// task made some. (The sandbox tells a call's execution by the Lambda
	// instance's own credentials, so a member session's calls have no
	// Origin: they are told by their principal.)
	sessions := map[string]bool{}
	for _, c := range h.sb.Calls(t, seq) {
		if !strings.HasPrefix(c.Principal, "arn:aws:sts::"+memberB+":") && !strings.HasPrefix(c.Principal, "arn:aws:iam::"+memberB+":") ||
			c.Principal == "arn:aws:iam::"+memberB+":user/service/app" || strings.HasSuffix(c.Principal, ":user/sandbox-admin") { // the consumers', the test's own

			continue
		}
		i := strings.Index(c.Principal, memberSession)
		if i < 0 || !strings.HasPrefix(c.Principal, "arn:aws:sts::"+memberB+":") {
			t.Errorf("%s:%s in B by %s, not a member-role session", c.Service, c.Action, c.Principal)
			continue
		}
		sessions[c.Principal[i+len(memberSession):]] = true
	}
	for _, fn := range []string{"validate", "createkey", "updatesecret", "verifyoldkeyunused", "deactivateoldkey", "deleteoldkey", "notify"} {
		if !sessions[fn] {
			t.Errorf("no call in B by keyrotator-%s's member session (sessions: %v)", fn, sessions)
		}
	}
	// No call of a task reached B's IAM with the task's own role.
	for _, c := range h.sb.Calls(t, seq) {
		if c.Origin != nil && strings.Contains(strings.Join(c.ResourceARNs, ","), ":"+memberB+":") && !strings.Contains(c.Principal, memberSession) && c.Service != "sts" {
			t.Errorf("%s:%s on %v by %s", c.Service, c.Action, c.ResourceARNs, c.Principal)
		}
	}
	// The success alert says the account.
	if msgs := string(h.admin("/sns/messages")); !strings.Contains(msgs, "app (account "+memberB+")") {
		t.Errorf("no alert naming the member account")
	}
}

// refused runs a rotation in acct, whose member role cannot be assumed:
// MemberAccessDenied at Validate, naming the account, the role and what to
// deploy; nothing changed anywhere (keys, records, targets).
func (w *memberWorld) refused(t *testing.T, h *H, acct string) {
	user := "refused-" + acct[:4]
	f := w.memberUser(t, acct, user, "/service/")
	v, _ := json.Marshal(map[string]string{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey})
	if _, err := secretsmanager.NewFromConfig(w.admin[acct]).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("app/" + user), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
	keysBefore, secretBefore := w.memberKeys(acct, user), w.secretIn(t, acct, "app/"+user)
	calls := h.sb.Calls(t, 0)
	seq := calls[len(calls)-1].Seq

	r := h.Run(map[string]any{"user": user, "account": acct, "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/" + user}}})
	if r.Status != types.ExecutionStatusFailed || r.Error != "MemberAccessDenied" {
		t.Fatalf("%s %s: %s, want FAILED MemberAccessDenied", r.Status, r.Error, r.Cause)
	}
	if got := r.Visited(); !slices.Equal(got, []string{"Start", "Validate", "NotifyFailure", "Failed"}) {
		t.Errorf("visited %v: refused at Validate", got)
	}
	for _, want := range []string{"account " + acct, "arn:aws:iam::" + acct + ":role/" + memberRole, "deploy the member stack", "ExternalId", "nothing was changed"} {
		if !strings.Contains(r.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, r.Cause)
		}
	}
	// Nothing changed: the user's keys, its secret, no record, no write
	// in IAM or Secrets Manager of any account.
	if got := w.memberKeys(acct, user); !maps.Equal(got, keysBefore) {
		t.Errorf("keys %v, before %v", got, keysBefore)
	}
	if got := w.secretIn(t, acct, "app/"+user); !maps.Equal(got, secretBefore) {
		t.Error("the secret changed")
	}
	if got := w.records(t); slices.Contains(got, "keyrotator/users/"+acct+"/"+user) {
		t.Errorf("a record was made: %v", got)
	}
	for _, c := range h.sb.Calls(t, seq) {
		if c.Origin == nil || !c.Write || (c.Service != "iam" && c.Service != "secretsmanager") {
			continue
		}
		if c.Origin.Execution == r.ARN {
			t.Errorf("the refused run wrote: %s:%s on %v", c.Service, c.Action, c.ResourceARNs)
		}
	}
	// The alert names the account and links the runbook's section.
	msgs := string(h.admin("/sns/messages"))
	if !strings.Contains(msgs, "#memberaccessdenied") || !strings.Contains(msgs, user+" (account "+acct+")") {
		t.Errorf("no MemberAccessDenied alert for %s naming the account and the runbook section", acct)
	}
}

// auditB invokes the weekly audit as its schedule does: it reads its own
// account and B (the golden config's member rotation names B), B through
// the member role with the audit's read-only session policy, and its
// summary names B's overdue key; C and D, which no rotation names, are not
// read.
func (w *memberWorld) auditB(t *testing.T, h *H) {
	in := h.sb.IAM.InAccount(memberB)
	if _, err := in.CreateUser("audit-old", "/", nil); err != nil {
		t.Fatal(err)
	}
	k, err := in.CreateAccessKey("audit-old")
	if err != nil {
		t.Fatal(err)
	}
	in.Backdate(k.AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -120))
	calls := h.sb.Calls(t, 0)
	seq := calls[len(calls)-1].Seq
	out, err := lambda.NewFromConfig(h.sb.Config(t)).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(h.dep.Functions[tasks.Audit.Function()]), Payload: []byte("{}")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke the audit: %v %s %s", err, aws.ToString(out.FunctionError), out.Payload)
	}
	var res audit.WeeklyResult
	if err := json.Unmarshal(out.Payload, &res); err != nil || res.Overdue == 0 {
		t.Fatalf("the audit answered %s (%v): want B's overdue key counted", out.Payload, err)
	}
	var summary string
	for _, m := range h.messages() {
		if strings.HasPrefix(m.Subject, "keyrotator audit "+w.own+" +1 accounts: ") {
			summary = m.Message
		}
	}
	if summary == "" || !strings.Contains(summary, k.AccessKeyID) || !strings.Contains(summary, memberB) || strings.Contains(summary, "NOT READ") {
		t.Errorf("no summary naming B's overdue key %s (subject keyrotator audit %s +1 accounts):\n%s", k.AccessKeyID, w.own, summary)
	}
	// The audit's calls (the other subtests run beside it): its own role's
	// in the keyrotator account, its member session's in B.
	session := "arn:aws:sts::" + memberB + memberSession + tasks.Audit.Function()
	readB := 0
	for _, c := range h.sb.Calls(t, seq) {
		if !strings.Contains(c.Principal, "RotatorAudit") && !strings.HasPrefix(c.Principal, session) {
			continue
		}
		where := c.Principal + " " + strings.Join(c.ResourceARNs, ",")
		if strings.Contains(where, ":"+memberC+":") || strings.Contains(where, ":"+memberD+":") {
			t.Errorf("the audit reached an account no rotation names: %s:%s %s", c.Service, c.Action, where)
		}
		if c.Service != "iam" || !strings.HasPrefix(c.Principal, session) {
			continue
		}
		if c.Write && c.Action != "GenerateCredentialReport" {
			t.Errorf("%s:%s in B by %s: want only the audit's reads", c.Service, c.Action, c.Principal)
		}
		readB++
	}
	if readB == 0 {
		t.Errorf("the audit made no IAM call in B as %s", session)
	}
}

// render is v as JSON text, for a search in it.
func render(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// sweepB runs the fleet sweep with a template naming B (issue 15): B's
// users under /service/fleet/ (inside B's member stack's UserPath),
// tagged for it, are listed through the member role with the sweep's own
// session, and a due one is started as a member rotation: the input
// names B, the run is named <B>-<user>-…, the lock is read from the
// keyrotator account's record keyrotator/users/<B>/<user>.
func (w *memberWorld) sweepB(t *testing.T, h *H) {
	const user, template = "fleet-m", "member-fleet"
	in := h.sb.IAM.InAccount(memberB)
	if _, err := in.CreateUser(user, "/service/fleet/", [][2]string{{fleet.TagKey, template}}); err != nil {
		t.Fatal(err)
	}
	k, err := in.CreateAccessKey(user)
	if err != nil {
		t.Fatal(err)
	}
	in.Backdate(k.AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -95))
	// The fleet config as a deploy with this template would write it
	// (fleet.Parse holds it to the same rules).
	ctx := context.Background()
	cur, err := h.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("keyrotator/fleet")})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["windowSeconds"] = 0
	cfg["templates"] = append(cfg["templates"].([]any), map[string]any{"name": template, "userPath": "/service/fleet/", "accounts": []string{memberB},
		"input": map[string]any{"targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/fleet-{user}"}}, "minKeyAgeDays": 60}})
	b, _ := json.Marshal(cfg)
	if _, err := h.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("keyrotator/fleet"), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	calls := h.sb.Calls(t, 0)
	seq := calls[len(calls)-1].Seq
	rep, ferr := h.invokeSweep(t)
	if ferr != "" || rep.Started != 1 || len(rep.Unreachable) != 0 {
		t.Fatalf("the sweep: %s %+v (refused: %v)", ferr, rep, h.deniedCalls())
	}
	var run *types.ExecutionListItem
	for _, e := range h.sweptExecutions(t) {
		if strings.HasPrefix(aws.ToString(e.Name), memberB+"-"+user+"-") {
			run = &e
		}
	}
	if run == nil {
		t.Fatalf("no run named %s-%s-…", memberB, user)
	}
	d, err := h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: run.ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	var input struct {
		Account, User string
		Request       struct {
			RequestedBy string `json:"requestedBy"`
		} `json:"request"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(d.Input)), &input)
	if input.Account != memberB || input.User != user || input.Request.RequestedBy != "schedule sweep."+template {
		t.Errorf("the run's input: account %q user %q signed %q", input.Account, input.User, input.Request.RequestedBy)
	}
	// Stopped here: the run itself is a member rotation, which the
	// subtest beside this one carries through every target.
	if _, err := h.sfn.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: run.ExecutionArn}); err != nil {
		t.Fatal(err)
	}
	// B's IAM through the sweep's member session only; the lock from the
	// keyrotator account's record of B's user, by the sweep's own role.
	session := "arn:aws:sts::" + memberB + memberSession + tasks.Sweep.Function()
	var listed, lock bool
	for _, c := range h.sb.Calls(t, seq) {
		switch {
		case strings.HasPrefix(c.Principal, session):
			listed = listed || c.Service == "iam" && c.Action == "ListUsers"
			if c.Write {
				t.Errorf("%s:%s in B by the sweep", c.Service, c.Action)
			}
		case strings.Contains(c.Principal, "RotatorSweep"):
			where := strings.Join(c.ResourceARNs, ",")
			lock = lock || c.Action == "DescribeSecret" && strings.Contains(where, ":"+w.own+":secret:keyrotator/users/"+memberB+"/"+user)
			if c.Service == "iam" && strings.Contains(where, ":"+memberB+":") {
				t.Errorf("iam:%s on %s by the sweep's own role", c.Action, where)
			}
		}
	}
	if !listed || !lock {
		t.Errorf("B listed through %s: %v; the lock read from keyrotator/users/%s/%s: %v", session, listed, memberB, user, lock)
	}
}
