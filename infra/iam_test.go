package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/infra/rotator"
)

// edgeConfig is what the schema accepts and a naive synth denies (and an
// owner topic, issue 15): a stack
// prefix, an IAM user with a path, secret targets by full and by partial
// ARN, and secrets encrypted with a customer managed key (by key ARN and
// by alias ARN).
const edgeConfig = `{"prefix":"kr2","ownerTopics":["arn:aws:sns:ap-northeast-1:111122223333:team-a"],"rotations":[
 {"name":"svc","schedule":"rate(30 days)","timeZone":"UTC","alertEmails":["oncall@example.com"],
  "input":{"user":"svc-app","userPath":"/service/app/","targets":[
   {"type":"secret","name":"full","secretId":"arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:app/full-AbCdEf"},
   {"type":"secret","name":"partial","secretId":"arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:app/partial"},
   {"type":"secret","name":"cmk","secretId":"app/cmk","kmsKeyId":"arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
   {"type":"secret","name":"alias","secretId":"app/alias","kmsKeyId":"arn:aws:kms:ap-northeast-1:111122223333:alias/app-secrets"},
   {"type":"auth0","name":"tenant","connection":"kr2/connections/auth0","sesRegion":"us-east-1"}],"minKeyAgeDays":25}}]}`

// stmt is one policy statement of the template, with where it is.
type stmt struct {
	Resource string // logical id of the policy (or key, topic policy…)
	Type     string
	Roles    []string // the role logical ids an AWS::IAM::Policy is attached to
	S        map[string]any
}

// Actions are the statement's actions.
func (s stmt) Actions() []string {
	var out []string
	for _, a := range list(s.S["Action"]) {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

// Resources are the statement's resources, rendered (render).
func (s stmt) Resources() []string {
	var out []string
	for _, r := range list(s.S["Resource"]) {
		out = append(out, render(r))
	}
	return out
}

// statements are every policy statement in the template: identity
// policies, managed policies, the topic's, the queue's and the key's.
func statements(t *testing.T, tmpl assertions.Template) []stmt {
	t.Helper()
	doc := resources(t, tmpl)
	var out []stmt
	for id, r := range doc.Resources {
		var pd any
		switch r.Type {
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy":
			pd = r.Properties["PolicyDocument"]
		case "AWS::KMS::Key":
			pd = r.Properties["KeyPolicy"]
		case "AWS::IAM::Role":
			pd = r.Properties["AssumeRolePolicyDocument"]
		default:
			continue
		}
		var roles []string
		for _, role := range list(r.Properties["Roles"]) {
			if m, ok := role.(map[string]any); ok {
				roles = append(roles, fmt.Sprint(m["Ref"]))
			}
		}
		m, _ := pd.(map[string]any)
		for _, s := range list(m["Statement"]) {
			if sm, ok := s.(map[string]any); ok {
				out = append(out, stmt{Resource: id, Type: r.Type, Roles: roles, S: sm})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out
}

// render is a template value as one string: Ref X as ${X}, GetAtt as
// ${A.B}, Fn::Join joined, anything else as its JSON.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if r, ok := x["Ref"]; ok {
			return "${" + fmt.Sprint(r) + "}"
		}
		if g, ok := x["Fn::GetAtt"].([]any); ok && len(g) == 2 {
			return "${" + fmt.Sprint(g[0]) + "." + fmt.Sprint(g[1]) + "}"
		}
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			var parts []string
			for _, p := range list(j[1]) {
				parts = append(parts, render(p))
			}
			return strings.Join(parts, fmt.Sprint(j[0]))
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// functionStatements are the statements of each function's role, by
// function name.
func functionStatements(t *testing.T, tmpl assertions.Template, rot *rotator.Rotator) map[string][]stmt {
	t.Helper()
	roleOf := map[string]string{}
	for fn, f := range rot.Functions {
		roleOf[*stackID(t, f.Role().Node().DefaultChild())] = fn
	}
	out := map[string][]stmt{}
	for _, s := range statements(t, tmpl) {
		if s.Type != "AWS::IAM::Policy" {
			continue
		}
		for _, r := range s.Roles {
			if fn, ok := roleOf[r]; ok {
				out[fn] = append(out[fn], s)
			}
		}
	}
	return out
}

// The alarms' path to on-call (I4): the topic policy EnforceSSL makes
// replaces SNS's default one, so it must allow CloudWatch to publish — for
// this stack's alarms only (aws:SourceAccount, aws:SourceArn).
func TestAlarmsMayPublishToTheTopic(t *testing.T) {
	_, tmpl, rot := synth(t)
	alarms := []string{
		"${" + *stackID(t, rot.Alarm.Node().DefaultChild()) + ".Arn}",
		"${" + *stackID(t, rot.DLQAlarm.Node().DefaultChild()) + ".Arn}",
	}
	found := false
	for _, s := range statements(t, tmpl) {
		if s.Type != "AWS::SNS::TopicPolicy" || s.S["Effect"] != "Allow" {
			continue
		}
		p, _ := s.S["Principal"].(map[string]any)
		if fmt.Sprint(p["Service"]) != "cloudwatch.amazonaws.com" || !slices.Contains(s.Actions(), "sns:Publish") {
			continue
		}
		found = true
		cond, _ := s.S["Condition"].(map[string]any)
		eq, _ := cond["StringEquals"].(map[string]any)
		if got := render(eq["aws:SourceAccount"]); got != "${AWS::AccountId}" {
			t.Errorf("aws:SourceAccount is %s, want the stack's account", got)
		}
		arnEq, _ := cond["ArnEquals"].(map[string]any)
		var got []string
		for _, a := range list(arnEq["aws:SourceArn"]) {
			got = append(got, render(a))
		}
		slices.Sort(got)
		slices.Sort(alarms)
		if !slices.Equal(got, alarms) {
			t.Errorf("aws:SourceArn is %v, want exactly the stack's alarms %v", got, alarms)
		}
	}
	if !found {
		t.Error("the alert topic's policy does not allow cloudwatch.amazonaws.com to sns:Publish: the alarms cannot reach on-call")
	}
}

// managedPolicy is the actions → resources of the managed policy whose
// logical id starts with the construct path's id.
func managedPolicy(t *testing.T, tmpl assertions.Template, id string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, s := range statements(t, tmpl) {
		if s.Type != "AWS::IAM::ManagedPolicy" || !strings.Contains(s.Resource, id) {
			continue
		}
		if s.S["Effect"] != "Allow" {
			t.Errorf("%s: a %v statement", id, s.S["Effect"])
		}
		for _, a := range s.Actions() {
			out[a] = append(out[a], s.Resources()...)
		}
	}
	return out
}

// OperatorPolicy covers every read the CLI (cli/) and the runbook's
// commands (docs/runbook.md) make, and changes no key; RollbackPolicy
// carries the runbook's rollback. Each (action, why) below is a call the
// code or the runbook makes.
func TestOperatorPolicyCoversTheCLIAndTheRunbook(t *testing.T) {
	_, tmpl, _ := synth(t)
	op := managedPolicy(t, tmpl, "OperatorPolicy")
	users := "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/app-aws-user"
	for _, c := range []struct{ action, onResource, why string }{
		{"states:ListStateMachines", "*", "cli/machine.go: the state machine by name"},
		{"states:StartExecution", "", "cli/start.go"},
		{"states:ListExecutions", "", "cli/status.go: the run in flight"},
		{"states:DescribeExecution", "", "cli/status.go, cli/watch; runbook: aws stepfunctions describe-execution"},
		{"states:GetExecutionHistory", "", "cli/watch"},
		{"iam:GetUser", users, "cli/status.go; runbook usernotfound: aws iam get-user"},
		{"iam:ListAccessKeys", users, "cli/status.go, cli/watch/report.go; runbook keylimitreached"},
		{"iam:GetAccessKeyLastUsed", users, "cli/status.go"},
		{"secretsmanager:ListSecrets", "*", "cli/status.go: the records by name prefix"},
		{"secretsmanager:DescribeSecret", "", "cli/status.go: a record's stages"},
		{"cloudtrail:LookupEvents", "*", "runbook keylimitreached: CloudTrail's CreateAccessKey events"},
		{"iam:SimulatePrincipalPolicy", "", "runbook accessdenied: aws iam simulate-principal-policy on a function's role; cli/doctor: each rotation's calls"},
		{"states:DescribeStateMachine", "", "cli/doctor: the definition names each task's function"},
		{"lambda:GetFunctionConfiguration", "", "cli/doctor: a function's role and the alert topic"},
		{"sns:ListSubscriptionsByTopic", "", "cli/doctor: the subscriptions confirmed"},
		{"sns:GetTopicAttributes", "", "cli/doctor: the topic policy and key"},
		{"kms:DescribeKey", "", "cli/doctor: the topic key's ARN"},
		{"kms:GetKeyPolicy", "", "cli/doctor: CloudWatch may use the topic key"},
		{"cloudwatch:DescribeAlarms", "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*", "cli/doctor: the alarms that publish to the topic"},
		{"scheduler:ListSchedules", "*", "cli/doctor: the schedules (no resource-level permissions)"},
		{"scheduler:GetSchedule", "", "cli/doctor: each schedule's state, expression and input"},
	} {
		res, ok := op[c.action]
		if !ok {
			t.Errorf("OperatorPolicy lacks %s (%s)", c.action, c.why)
			continue
		}
		if c.onResource != "" && !slices.Contains(res, c.onResource) {
			t.Errorf("OperatorPolicy: %s on %v, want on %s", c.action, res, c.onResource)
		}
		if c.onResource != "*" && slices.Contains(res, "*") {
			t.Errorf("OperatorPolicy: %s on *", c.action)
		}
	}
	for a := range op {
		if strings.HasPrefix(a, "states:SendTask") {
			t.Errorf("OperatorPolicy allows %s: approvals go through answerapproval (ApproverPolicy); a raw answer is ApprovalForged (issue 14)", a)
		}
		if a == "secretsmanager:GetSecretValue" || a == "states:StopExecution" || a == "secretsmanager:ListSecretVersionIds" ||
			strings.HasPrefix(a, "iam:Create") || strings.HasPrefix(a, "iam:Delete") || strings.HasPrefix(a, "iam:Update") || strings.HasSuffix(a, "*") {
			t.Errorf("OperatorPolicy allows %s: it reads no key and changes none, and grants nothing the CLI or the runbook's reads do not call", a)
		}
	}

	rb := managedPolicy(t, tmpl, "RollbackPolicy")
	if res := rb["iam:UpdateAccessKey"]; !slices.Equal(res, []string{users, "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/soracom-funnel", "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/fleet/*"}) {
		t.Errorf("RollbackPolicy: iam:UpdateAccessKey on %v, want exactly the managed users (and the fleet template's path)", res)
	}
	for _, a := range []string{"iam:ListAccessKeys", "states:DescribeExecution"} {
		if _, ok := rb[a]; !ok {
			t.Errorf("RollbackPolicy lacks %s, a read of the runbook's rollback", a)
		}
	}
	for a := range rb {
		if a == "secretsmanager:GetSecretValue" || strings.HasPrefix(a, "iam:Create") || strings.HasPrefix(a, "iam:Delete") || strings.HasSuffix(a, "*") {
			t.Errorf("RollbackPolicy allows %s", a)
		}
	}
	run(t, "output", func(t *testing.T) { tmpl.HasOutput(jsii.String("RollbackPolicyArn"), &map[string]any{}) })
}

// Configs the schema accepts get the grants their calls need.
func TestGrantsForEverySchemaShape(t *testing.T) {
	_, tmpl, rot := synthWith(t, edgeConfig, nil)
	fs := functionStatements(t, tmpl, rot)
	on := func(fn, action string) []string {
		var out []string
		for _, s := range fs[fn] {
			if slices.Contains(s.Actions(), action) {
				out = append(out, s.Resources()...)
			}
		}
		slices.Sort(out)
		return out
	}
	// A full ARN is granted as given (it has its suffix); a partial ARN and
	// a name get Secrets Manager's six random characters.
	wantSecrets := []string{
		"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:app/alias-??????",
		"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:app/cmk-??????",
		"arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:app/full-AbCdEf",
		"arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:app/partial-??????",
	}
	if got := on("updatesecret", "secretsmanager:PutSecretValue"); !slices.Equal(got, wantSecrets) {
		t.Errorf("updatesecret may PutSecretValue on\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(wantSecrets, "\n"))
	}
	// A user with a path: the ARN holds it, the calls take the name.
	wantUser := []string{"arn:${AWS::Partition}:iam::${AWS::AccountId}:user/service/app/svc-app"}
	for _, c := range []struct{ fn, action string }{{"validate", "iam:GetUser"}, {"createkey", "iam:CreateAccessKey"}, {"deleteoldkey", "iam:DeleteAccessKey"}, {"deactivateoldkey", "iam:UpdateAccessKey"}} {
		if got := on(c.fn, c.action); !slices.Equal(got, wantUser) {
			t.Errorf("%s may %s on %v, want %v", c.fn, c.action, got, wantUser)
		}
	}
	// A customer managed key: Decrypt and GenerateDataKey through Secrets
	// Manager only; an alias names no key in Resource, so the key is
	// matched by its alias (kms:ResourceAliases).
	var kms []stmt
	for _, s := range fs["updatesecret"] {
		if slices.Contains(s.Actions(), "kms:Decrypt") {
			kms = append(kms, s)
		}
	}
	if len(kms) != 2 {
		t.Fatalf("updatesecret has %d statements with kms:Decrypt, want one per kmsKeyId (2)", len(kms))
	}
	for _, s := range kms {
		if a := s.Actions(); !slices.Equal(a, []string{"kms:Decrypt", "kms:GenerateDataKey"}) {
			t.Errorf("kms actions %v", a)
		}
		cond, _ := s.S["Condition"].(map[string]any)
		eq, _ := cond["StringEquals"].(map[string]any)
		if got := render(eq["kms:ViaService"]); got != "secretsmanager.${AWS::Region}.amazonaws.com" {
			t.Errorf("kms:ViaService %s", got)
		}
		switch r := s.Resources(); {
		case slices.Equal(r, []string{"arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}):
		case slices.Equal(r, []string{"arn:aws:kms:ap-northeast-1:111122223333:key/*"}):
			any, _ := cond["ForAnyValue:StringEquals"].(map[string]any)
			if got := render(any["kms:ResourceAliases"]); got != "alias/app-secrets" {
				t.Errorf("the alias's key is matched by kms:ResourceAliases %s, want alias/app-secrets", got)
			}
		default:
			t.Errorf("kms on %v", r)
		}
	}
	for fn, ss := range fs {
		for _, s := range ss {
			if fn != "updatesecret" && strings.Contains(render(s.S["Condition"]), "secretsmanager.") {
				t.Errorf("%s may use an application secret's key: only updatesecret writes the application secrets", fn)
			}
		}
	}
}

var (
	memberRoleARN  = regexp.MustCompile(`^arn:\$\{AWS::Partition\}:iam::[0-9]{12}:role/keyrotator-member$`)
	literalRegion  = regexp.MustCompile(`\b[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]\b`)
	literalAccount = regexp.MustCompile(`\b[0-9]{12}\b`)
)

// A template synthesized once deploys in any region and account: every ARN
// keyrotator builds takes region, partition and account from the deploy
// (AWS::Region, AWS::Partition, AWS::AccountId), never from the shell that
// ran synth.
func TestPoliciesUseTheDeploysRegionAndAccount(t *testing.T) {
	t.Run("environment-agnostic synth", func(t *testing.T) {
		_, tmpl, _ := synthWith(t, testConfig, nil)
		for _, s := range statements(t, tmpl) {
			b := render(s.S)
			if slices.Equal(s.Actions(), []string{"sts:AssumeRole"}) && s.Type == "AWS::IAM::Policy" &&
				!slices.ContainsFunc(s.Resources(), func(r string) bool { return !memberRoleARN.MatchString(r) }) {
				// Issue 15: the member roles are in the accounts the config
				// names; only the partition is the deploy's.
				continue
			}
			for _, re := range []*regexp.Regexp{literalRegion, literalAccount} {
				if m := re.FindString(b); m != "" {
					t.Errorf("%s: a literal %q in %s", s.Resource, m, b)
				}
			}
		}
	})
	t.Run("synth in an environment", func(t *testing.T) {
		_, tmpl, _ := synth(t)
		for _, s := range statements(t, tmpl) {
			if s.Type != "AWS::IAM::Policy" && s.Type != "AWS::IAM::ManagedPolicy" {
				continue
			}
			for _, r := range s.Resources() {
				if strings.Contains(r, "ap-northeast-1") || strings.Contains(r, "111122223333") {
					t.Errorf("%s: %v on %s: the synth's region or account, not the deploy's", s.Resource, s.Actions(), r)
				}
			}
		}
	})
}

// Each role may make exactly its code's calls on the records
// (functions/aws/record: which Store methods each step calls).
func TestRecordGrantsAreTheCodesCalls(t *testing.T) {
	_, tmpl, rot := synth(t)
	fs := functionStatements(t, tmpl, rot)
	const (
		create = "secretsmanager:CreateSecret"
		desc   = "secretsmanager:DescribeSecret"
		get    = "secretsmanager:GetSecretValue"
		put    = "secretsmanager:PutSecretValue"
		tag    = "secretsmanager:TagResource"
		stage  = "secretsmanager:UpdateSecretVersionStage"
	)
	want := map[string][]string{
		"validate":           {create, desc, get, put, tag, stage}, // Ensure, Staged, Claim, KeepForResume
		"createkey":          {create, desc, get, put, tag},        // Ensure, Staged, PutIntent, PutKey, Holds, KeyVersion
		"updatesecret":       {get},                                // Key
		"updateauth0":        {get},
		"updatesoracom":      {get},
		"promote":            {desc, get, stage}, // Staged, Promote
		"cleanuptargets":     {desc, get, stage}, // Staged, Release
		"verifyoldkeyunused": nil, "deactivateoldkey": nil, "deleteoldkey": nil,
		// Issue 14: the approval request and its answers, in the lock's
		// version (PutApprovalRequest, PendingApproval, PutAnswer).
		"notify": {desc, get, put}, "answerapproval": {desc, get, put}, "verifyapproval": nil,
	}
	for fn, w := range want {
		var got []string
		for _, s := range fs[fn] {
			if slices.ContainsFunc(s.Resources(), func(r string) bool { return strings.HasSuffix(r, ":secret:keyrotator/users/*") }) {
				got = append(got, s.Actions()...)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("%s may %v on the records, want %v", fn, got, w)
		}
	}
}

// Two stacks in one account and region: every fixed name starts with the
// stack prefix, and the functions learn it from their environment.
func TestStackPrefixNamespacesEveryFixedName(t *testing.T) {
	for _, c := range []struct {
		name, config, prefix string
	}{{"default", testConfig, "keyrotator"}, {"kr2", edgeConfig, "kr2"}} {
		t.Run(c.name, func(t *testing.T) {
			_, tmpl, rot := synthWith(t, c.config, nil)
			run(t, "state machine", func(t *testing.T) {
				tmpl.HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), &map[string]any{"StateMachineName": c.prefix})
			})
			run(t, "functions", func(t *testing.T) {
				tmpl.AllResourcesProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
					"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{"KEYROTATOR_PREFIX": c.prefix})},
				})
			})
			doc := resources(t, tmpl)
			for id, r := range doc.Resources {
				if r.Type == "AWS::SecretsManager::Secret" && !strings.HasPrefix(fmt.Sprint(r.Properties["Name"]), c.prefix+"/connections/") && r.Properties["Name"] != c.prefix+"/fleet" {
					t.Errorf("secret %s is named %v, outside %s/connections/", id, r.Properties["Name"], c.prefix)
				}
			}
			for fn, ss := range functionStatements(t, tmpl, rot) {
				for _, s := range ss {
					for _, r := range s.Resources() {
						if strings.Contains(r, ":secret:") && strings.Contains(r, "/users/") && !strings.HasSuffix(r, ":secret:"+c.prefix+"/users/*") {
							t.Errorf("%s: records %s, want %s/users/*", fn, r, c.prefix)
						}
						if strings.Contains(r, ":execution:") && !strings.HasSuffix(r, ":execution:"+c.prefix+":*") {
							t.Errorf("%s: executions %s, want of %s", fn, r, c.prefix)
						}
					}
				}
			}
		})
	}
}

// cfn-lint (1.51.0 in the machine image) finds nothing in any template the
// tests synthesize. One run over all of them: cfn-lint's start-up is most of
// its time.
func TestCfnLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not on PATH (pip install cfn-lint==1.51.0): not linting the templates")
	}
	dir := t.TempDir()
	var paths []string
	for _, c := range []struct {
		name, config string
		env          *awscdk.Environment
	}{
		{"test-config-in-an-environment", testConfig, &awscdk.Environment{Account: jsii.String("111122223333"), Region: jsii.String("ap-northeast-1")}},
		{"test-config-environment-agnostic", testConfig, nil},
		{"edge-config", edgeConfig, nil},
	} {
		_, tmpl, _ := synthWith(t, c.config, c.env)
		b, err := json.MarshalIndent(tmpl.ToJSON(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, c.name+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	member := filepath.Join(dir, "member.json")
	if err := os.WriteFile(member, memberTemplate(t), 0o644); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, member)
	// W3005 (a DependsOn a GetAtt already implies): CDK's Function and
	// StateMachine depend on their role and on its default policy, so that
	// neither runs before its grants exist; the role half is redundant with
	// the Role GetAtt, the policy half is needed, and CDK emits both in one
	// DependsOn. Harmless.
	args := append([]string{"--format", "parseable", "--ignore-checks", "W3005", "--"}, paths...)
	out, err := exec.CommandContext(t.Context(), lint, args...).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}

// The templates' policies agree with @cloud-copilot/iam-simulate, an IAM
// evaluator nobody here wrote, on what each grant must allow and deny
// (testdata/iam-simulate-check.mjs: the alarms' publish, the operator and
// rollback policies, the record grants, ARNs, paths, KMS keys, the prefix,
// all in a region other than the synth's).
func TestPoliciesAgreeWithIAMSimulate(t *testing.T) {
	node := os.Getenv("JSII_NODE")
	if node == "" {
		node = "node"
	}
	if _, err := os.Stat(filepath.Join("..", "node_modules", "@cloud-copilot", "iam-simulate", "package.json")); err != nil {
		t.Skip("@cloud-copilot/iam-simulate is not in node_modules (npm ci once package.json pins it): not cross-checking the policies")
	}
	dir := t.TempDir()
	env := &awscdk.Environment{Account: jsii.String("111122223333"), Region: jsii.String("ap-northeast-1")}
	for name, c := range map[string]string{"default": testConfig, "edge": edgeConfig} {
		_, tmpl, _ := synthWith(t, c, env)
		b, err := json.Marshal(tmpl.ToJSON())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(t.Context(), node, filepath.Join("testdata", "iam-simulate-check.mjs"), dir).CombinedOutput()
	if err != nil {
		t.Errorf("iam-simulate disagrees: %v\n%s", err, out)
	}
}

// ApproverPolicy lets a person reach answerapproval through its function
// URL only, and nothing else that answers or changes a run (issue 14).
func TestApproverPolicy(t *testing.T) {
	_, tmpl, _ := synth(t)
	ap := managedPolicy(t, tmpl, "ApproverPolicy")
	for _, a := range []string{"lambda:InvokeFunctionUrl", "lambda:InvokeFunction", "lambda:GetFunctionUrlConfig", "states:DescribeExecution", "states:ListExecutions", "states:ListStateMachines"} {
		if _, ok := ap[a]; !ok {
			t.Errorf("ApproverPolicy lacks %s", a)
		}
	}
	for a, res := range ap {
		if strings.HasPrefix(a, "states:SendTask") || strings.HasPrefix(a, "kms:") || strings.HasPrefix(a, "secretsmanager:") || strings.HasSuffix(a, "*") {
			t.Errorf("ApproverPolicy allows %s", a)
		}
		if strings.HasPrefix(a, "lambda:Invoke") && (len(res) != 1 || !strings.Contains(res[0], "Answerapproval")) {
			t.Errorf("ApproverPolicy: %s on %v, want the answerapproval function only", a, res)
		}
	}
	// Both invoke permissions carry their condition: InvokeFunction only
	// through the URL, the URL only with AWS_IAM.
	pols := tmpl.FindResources(jsii.String("AWS::IAM::ManagedPolicy"), nil)
	b, _ := json.Marshal(pols)
	for _, want := range []string{`"lambda:InvokedViaFunctionUrl":"true"`, `"lambda:FunctionUrlAuthType":"AWS_IAM"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no managed policy holds the condition %s", want)
		}
	}
	// The HMAC key: HMAC_256 for GENERATE_VERIFY_MAC, and a key policy
	// that denies GenerateMac to all but the signing roles.
	keys := tmpl.FindResources(jsii.String("AWS::KMS::Key"), &map[string]any{"Properties": map[string]any{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}})
	if len(*keys) != 1 {
		t.Fatalf("%d HMAC keys, want 1", len(*keys))
	}
	kb, _ := json.Marshal(keys)
	if !strings.Contains(string(kb), `"Sid":"OnlyKeyrotatorSigns"`) || !strings.Contains(string(kb), "AnswerapprovalRole") {
		t.Errorf("the HMAC key's policy does not deny GenerateMac to all but answerapproval's role: %s", kb)
	}
	urls := tmpl.FindResources(jsii.String("AWS::Lambda::Url"), &map[string]any{"Properties": map[string]any{"AuthType": "AWS_IAM"}})
	if len(*urls) != 2 {
		t.Errorf("%d function URLs with AWS_IAM, want one per endpoint (answerapproval, requestrun)", len(*urls))
	}
	if all := tmpl.FindResources(jsii.String("AWS::Lambda::Url"), nil); len(*all) != len(*urls) {
		t.Errorf("a function URL without AuthType AWS_IAM: %v", all)
	}
}

// Issue 15: exactly the tasks that reach member accounts
// (tasks.MemberTasks) may assume a member role, exactly the member role
// of each account the config names (no wildcard account, no other role),
// and they are told its name and the external id; no other function may
// assume anything.
func TestMemberAssumeRoleGrants(t *testing.T) {
	_, tmpl, rot := synth(t)
	fs := functionStatements(t, tmpl, rot)
	members := map[string]bool{}
	for _, task := range tasks.MemberTasks() {
		members[task.Function()] = true
	}
	if len(members) != 7 {
		t.Fatalf("member tasks %v", members)
	}
	members[tasks.Audit.Function()] = true // the weekly audit reads the member accounts too
	members[tasks.Sweep.Function()] = true // the fleet sweep lists the member accounts its templates name
	for fn := range rot.Functions {
		var assumes []string
		for _, s := range fs[fn] {
			for _, a := range s.Actions() {
				if strings.HasPrefix(a, "sts:") {
					if a != "sts:AssumeRole" || len(s.Actions()) != 1 || s.S["Condition"] != nil {
						t.Errorf("%s: %v %v", fn, s.Actions(), s.S["Condition"])
					}
					assumes = append(assumes, s.Resources()...)
				}
			}
		}
		want := []string(nil)
		if members[fn] {
			want = []string{"arn:${AWS::Partition}:iam::222233334444:role/keyrotator-member"}
		}
		if !slices.Equal(assumes, want) {
			t.Errorf("%s may assume %v, want %v", fn, assumes, want)
		}
	}
	doc := resources(t, tmpl)
	for id, r := range doc.Resources {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		task, _ := r.Metadata["keyrotator:task"].(string)
		env, _ := r.Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		_, hasRole := vars["MEMBER_ROLE_NAME"]
		ext, hasExt := vars["MEMBER_EXTERNAL_ID"]
		if hasRole != members[task] || hasExt != members[task] || (hasExt && ext != "kr-ext-7f3a") || (hasRole && vars["MEMBER_ROLE_NAME"] != "keyrotator-member") {
			t.Errorf("%s (%s): MEMBER_ROLE_NAME %v, MEMBER_EXTERNAL_ID %v", id, task, vars["MEMBER_ROLE_NAME"], ext)
		}
	}
	// A member rotation's user and its secret named by name are not
	// granted in the keyrotator account: they are the member's.
	for fn, ss := range fs {
		for _, s := range ss {
			for _, r := range s.Resources() {
				// Nor a member fleet template's (member-fleet: /service/fleet/ in B).
				if strings.Contains(r, ":user/service/app") || strings.Contains(r, ":secret:app/aws-key") || strings.Contains(r, ":user/service/") {
					t.Errorf("%s may act on %s in the keyrotator account: a member account's", fn, r)
				}
			}
		}
	}
}
