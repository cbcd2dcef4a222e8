package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/infra/config"
	"github.com/keyrotator/keyrotator/infra/rotator"
)

func TestMain(m *testing.M) {
	// The jsii runtime on the pinned Node 22 (make deps), as make synth runs it.
	if os.Getenv("JSII_NODE") == "" {
		if node, err := filepath.Abs("../node_modules/.bin/node"); err == nil {
			if _, err := os.Stat(node); err == nil {
				os.Setenv("JSII_NODE", node)
			}
		}
	}
	code := m.Run()
	for _, d := range synths.dirs {
		os.RemoveAll(d)
	}
	jsii.Close()
	os.Exit(code)
}

const testConfig = `{"runbookUrl":"https://github.com/example/keyrotator/blob/main/docs/runbook.md","member":{"externalId":"kr-ext-7f3a"},"rotations":[
 {"name":"app-key","schedule":"cron(0 3 1 */2 ? *)","timeZone":"Asia/Tokyo","alertEmails":["oncall@example.com"],
  "input":{"user":"app-aws-user","targets":[{"type":"secret","name":"app","secretId":"app/aws-access-key"}],"waitDays":7,"graceDays":1,"minKeyAgeDays":50}},
 {"name":"funnel","schedule":"rate(30 days)","timeZone":"UTC","alertEmails":["iot@example.com"],
  "input":{"user":"soracom-funnel","targets":[{"type":"secret","name":"app2","secretId":"iot/aws-key"},
   {"type":"auth0","name":"tenant","connection":"keyrotator/connections/auth0-prod","sesRegion":"ap-northeast-1"},
   {"type":"soracom","name":"funnel","connection":"keyrotator/connections/soracom","credentialPrefix":"aws-soracom-funnel"}],"waitDays":3,"verifyAttempts":2,"minKeyAgeDays":25}},
 {"name":"member-app","schedule":"cron(0 4 1 */2 ? *)","timeZone":"UTC","alertEmails":["oncall@example.com"],
  "input":{"user":"app","account":"222233334444","userPath":"/service/","targets":[{"type":"secret","name":"app","secretId":"app/aws-key"}],"waitDays":7,"graceDays":1,"minKeyAgeDays":50}}],
 "fleet":{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","windowSeconds":600,"templates":[
  {"name":"app-fleet","userPath":"/fleet/","input":{"targets":[{"type":"secret","name":"app","secretId":"fleet/{user}/aws-key"}],"waitDays":7,"graceDays":1,"minKeyAgeDays":60}}]}}`

// synth builds the stack from testConfig over a dist/ of placeholder
// bootstraps (assets only need files to hash).
func synth(t *testing.T) (awscdk.Stack, assertions.Template, *rotator.Rotator) {
	t.Helper()
	return synthWith(t, testConfig, &awscdk.Environment{Account: jsii.String("111122223333"), Region: jsii.String("ap-northeast-1")})
}

// synthWith builds the stack from a config document, in env (nil:
// environment-agnostic, as make synth makes it). A synth costs seconds of
// jsii: each (config, env) is synthesized once per test binary and shared
// by the tests, which only read it.
func synthWith(t *testing.T, configJSON string, env *awscdk.Environment) (awscdk.Stack, assertions.Template, *rotator.Rotator) {
	t.Helper()
	key := configJSON
	if env != nil {
		key += "\x00" + *env.Account + "/" + *env.Region
	}
	synths.Lock()
	defer synths.Unlock()
	if s, ok := synths.done[key]; ok {
		return s.stack, s.tmpl, s.rot
	}
	cfg, err := config.Parse([]byte(configJSON))
	if err != nil {
		t.Fatal(err)
	}
	dist, err := os.MkdirTemp("", "keyrotator-infra-dist-") // outlives the test: the stack is shared
	if err != nil {
		t.Fatal(err)
	}
	synths.dirs = append(synths.dirs, dist)
	for _, task := range tasks.Every() {
		dir := filepath.Join(dist, task.Function())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder for "+task.Function()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	app := awscdk.NewApp(nil)
	stack, r := NewRotationStack(app, "KeyRotator", &RotationStackProps{
		StackProps: awscdk.StackProps{Env: env},
		Config:     cfg, Dist: dist, ASL: "../statemachine/rotation.asl.json",
	})
	s := synthesized{stack, assertions.Template_FromStack(stack, nil), r}
	synths.done[key] = s
	return s.stack, s.tmpl, s.rot
}

type synthesized struct {
	stack awscdk.Stack
	tmpl  assertions.Template
	rot   *rotator.Rotator
}

// synths are the stacks this test binary synthesized, by config and env,
// and their dist/ directories (removed by TestMain).
var synths = struct {
	sync.Mutex
	done map[string]synthesized
	dirs []string
}{done: map[string]synthesized{}}

// run is t.Run for CDK assertions, which fail by panicking through jsii.
func run(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%v", p)
			}
		}()
		f(t)
	})
}

func TestStack(t *testing.T) {
	stack, tmpl, _ := synth(t)

	run(t, "every function: al2023 on arm64, JSON logs, X-Ray", func(t *testing.T) {
		tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(len(tasks.Every())))
		tmpl.AllResourcesProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
			"Runtime":       "provided.al2023",
			"Architectures": []string{"arm64"},
			"Handler":       "bootstrap",
			"LoggingConfig": map[string]any{"LogFormat": "JSON"},
			"TracingConfig": map[string]any{"Mode": "Active"},
		})
	})
	run(t, "standard state machine, logs without execution data, tracing, a timeout over the longest wait", func(t *testing.T) {
		tmpl.HasResourceProperties(jsii.String("AWS::StepFunctions::StateMachine"), &map[string]any{
			"StateMachineType":     "STANDARD",
			"StateMachineName":     "keyrotator",
			"TracingConfiguration": map[string]any{"Enabled": true},
			"LoggingConfiguration": map[string]any{"IncludeExecutionData": false, "Level": "ALL"},
			// testConfig's longest: app-key waits 7 days × 3 checks + 1 grace + 1 spare = 23 days.
			"DefinitionString": assertions.Match_StringLikeRegexp(jsii.String(`"TimeoutSeconds":1987200[,}]`)),
		})
	})
	run(t, "alert topic encrypted, SSL only, e-mail subscriptions", func(t *testing.T) {
		tmpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), &map[string]any{"KmsMasterKeyId": assertions.Match_AnyValue()})
		tmpl.HasResourceProperties(jsii.String("AWS::SNS::TopicPolicy"), &map[string]any{
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			})})},
		})
		for _, e := range []string{"oncall@example.com", "iot@example.com"} {
			tmpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), &map[string]any{"Protocol": "email", "Endpoint": e})
		}
	})
	run(t, "alarms wired to the topic", func(t *testing.T) {
		tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(2))
		tmpl.AllResourcesProperties(jsii.String("AWS::CloudWatch::Alarm"), &map[string]any{
			"AlarmActions": []any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("Alerts"))}},
		})
	})
	run(t, "one schedule per rotation, its input and time zone", func(t *testing.T) {
		tmpl.ResourceCountIs(jsii.String("AWS::Scheduler::Schedule"), jsii.Number(3+1+1)) // + the weekly audit, the fleet sweep (issue 15)
		for _, want := range []struct{ expr, tz, user string }{
			{"cron(0 3 1 */2 ? *)", "Asia/Tokyo", "app-aws-user"},
			{"rate(30 days)", "UTC", "soracom-funnel"},
		} {
			tmpl.HasResourceProperties(jsii.String("AWS::Scheduler::Schedule"), &map[string]any{
				"ScheduleExpression":         want.expr,
				"ScheduleExpressionTimezone": want.tz,
				"Target": map[string]any{
					"Input":            assertions.Match_StringLikeRegexp(jsii.String(`"user":"` + want.user + `".*"trigger":"schedule"|"trigger":"schedule".*"user":"` + want.user + `"`)),
					"DeadLetterConfig": assertions.Match_ObjectLike(&map[string]any{"Arn": assertions.Match_AnyValue()}),
				},
			})
		}
	})
	run(t, "connection secrets made by name, never with a value", func(t *testing.T) {
		tmpl.ResourceCountIs(jsii.String("AWS::SecretsManager::Secret"), jsii.Number(3)) // two connections and the fleet config (issue 15)
		for _, name := range []string{"keyrotator/connections/auth0-prod", "keyrotator/connections/soracom"} {
			tmpl.HasResource(jsii.String("AWS::SecretsManager::Secret"), &map[string]any{
				"Properties": map[string]any{"Name": name, "SecretString": assertions.Match_Absent(),
					// keyrotator's own: a `secret` target naming it is refused by this tag.
					"Tags": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": "keyrotator:kind", "Value": "connection"}})},
				"DeletionPolicy": "Retain",
			})
		}
	})
	run(t, "cdk-nag AwsSolutions: no error", func(t *testing.T) {
		errs := assertions.Annotations_FromStack(stack).FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
		warns := assertions.Annotations_FromStack(stack).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
		t.Logf("cdk-nag AwsSolutions: %d errors, %d warnings", len(*errs), len(*warns))
		for _, e := range *errs {
			//lint:ignore SA1019 cdk-nag-go's annotations come back as these types; the replacement lives in @aws-cdk/cloud-assembly-api, which has no Go binding
			t.Errorf("cdk-nag: %s: %v", *e.Id, e.Entry.Data) //nolint:staticcheck // SA1019, as above
		}
	})
}

// Least privilege, read off the template: IAM key actions and secrets never
// on "*", no *FullAccess policy, and the state machine may invoke exactly
// our functions.
func TestLeastPrivilege(t *testing.T) {
	_, tmpl, _ := synth(t)
	doc := resources(t, tmpl)
	functions := map[string]bool{}
	for id, r := range doc.Resources {
		if r.Type == "AWS::Lambda::Function" {
			functions[id] = true
		}
		if arns, ok := r.Properties["ManagedPolicyArns"]; ok && strings.Contains(fmt.Sprint(arns), "FullAccess") {
			t.Errorf("%s has a *FullAccess managed policy: %v", id, arns)
		}
	}
	invoked := map[string]bool{}
	for id, r := range doc.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		pd, _ := r.Properties["PolicyDocument"].(map[string]any)
		stmts, _ := pd["Statement"].([]any)
		for _, s := range stmts {
			st := s.(map[string]any)
			actions := list(st["Action"])
			resources := list(st["Resource"])
			for _, a := range actions {
				sa := fmt.Sprint(a)
				if strings.HasPrefix(sa, "iam:") || strings.HasPrefix(sa, "secretsmanager:") || sa == "states:StartExecution" || sa == "sns:Publish" {
					for _, res := range resources {
						// The credential report has no resource types: "*" is its
						// only resource (the audit's, read-only).
						// ListUsers neither: the sweep's (issue 15), read-only.
						if res == "*" && sa != "iam:GenerateCredentialReport" && sa != "iam:GetCredentialReport" && sa != "iam:ListUsers" {
							t.Errorf("%s: %s on *", id, sa)
						}
					}
				}
				if sa == "lambda:InvokeFunction" && strings.Contains(id, "StateMachine") {
					for _, res := range resources {
						m, _ := res.(map[string]any)
						getAtt, _ := m["Fn::GetAtt"].([]any)
						if len(getAtt) == 0 {
							if j, ok := m["Fn::Join"].([]any); ok {
								parts := j[1].([]any)
								getAtt, _ = parts[0].(map[string]any)["Fn::GetAtt"].([]any)
							}
						}
						if len(getAtt) == 0 || !functions[fmt.Sprint(getAtt[0])] {
							t.Errorf("the state machine may invoke something that is not our function: %v", res)
							continue
						}
						invoked[fmt.Sprint(getAtt[0])] = true
					}
				}
			}
		}
	}
	// Every state task's function, and neither an endpoint's (issue 14: an
	// endpoint is reached through its function URL only) nor a scheduled
	// one's (the audit: its schedule invokes it).
	if len(invoked) != len(tasks.All) || len(functions) != len(tasks.Every()) {
		t.Errorf("the state machine may invoke %d of our %d functions, want the %d state tasks'", len(invoked), len(functions), len(tasks.All))
	}
	for id := range invoked {
		for _, e := range slices.Concat(tasks.Endpoints, tasks.Scheduled) {
			if strings.HasPrefix(id, "Rotator"+exportedName(e.Function())) {
				t.Errorf("the state machine may invoke %s, which no state runs", id)
			}
		}
	}
}

// Each connection secret is readable by exactly the functions of its target
// kind: Auth0's by UpdateAuth0; SORACOM's by UpdateSoracom, VerifyOldKeyUnused
// (the credentials' last use) and CleanupTargets (the old credential).
func TestConnectionSecretReaders(t *testing.T) {
	_, tmpl, rot := synth(t)
	doc := resources(t, tmpl)
	secretID := map[string]string{} // logical id → name
	for id, r := range doc.Resources {
		if r.Type == "AWS::SecretsManager::Secret" {
			secretID[id] = fmt.Sprint(r.Properties["Name"])
		}
	}
	roleOf := map[string]string{} // role logical id → function name
	for fn, f := range rot.Functions {
		roleOf[*stackID(t, f.Role().Node().DefaultChild())] = fn
	}
	readers := map[string][]string{}
	for _, r := range doc.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		var fn string
		for _, role := range list(r.Properties["Roles"]) {
			if m, ok := role.(map[string]any); ok {
				fn = roleOf[fmt.Sprint(m["Ref"])]
			}
		}
		pd, _ := r.Properties["PolicyDocument"].(map[string]any)
		stmts, _ := pd["Statement"].([]any)
		for _, s := range stmts {
			st := s.(map[string]any)
			if !slices.ContainsFunc(list(st["Action"]), func(a any) bool { return a == "secretsmanager:GetSecretValue" }) {
				continue
			}
			for _, res := range list(st["Resource"]) {
				if m, ok := res.(map[string]any); ok {
					if name, ok := secretID[fmt.Sprint(m["Ref"])]; ok && !slices.Contains(readers[name], fn) {
						readers[name] = append(readers[name], fn)
					}
				}
			}
		}
	}
	want := map[string][]string{
		"keyrotator/connections/auth0-prod": {"updateauth0"},
		"keyrotator/connections/soracom":    {"cleanuptargets", "updatesoracom", "verifyoldkeyunused"},
	}
	for name, w := range want {
		got := readers[name]
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("%s is readable by %v, want %v", name, got, w)
		}
	}
}

// DeleteOldKey reads last-used again after the grace period and re-activates
// the old key on a late-reported use: its role may do exactly the IAM calls
// that takes, and DeactivateOldKey's may not delete.
func TestIAMKeyGrants(t *testing.T) {
	_, tmpl, rot := synth(t)
	doc := resources(t, tmpl)
	roleOf := map[string]string{} // role logical id → function name
	for fn, f := range rot.Functions {
		roleOf[*stackID(t, f.Role().Node().DefaultChild())] = fn
	}
	granted := map[string][]string{}
	for _, r := range doc.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		var fn string
		for _, role := range list(r.Properties["Roles"]) {
			if m, ok := role.(map[string]any); ok {
				fn = roleOf[fmt.Sprint(m["Ref"])]
			}
		}
		pd, _ := r.Properties["PolicyDocument"].(map[string]any)
		stmts, _ := pd["Statement"].([]any)
		for _, s := range stmts {
			for _, a := range list(s.(map[string]any)["Action"]) {
				if sa := fmt.Sprint(a); strings.HasPrefix(sa, "iam:") {
					granted[fn] = append(granted[fn], sa)
				}
			}
		}
	}
	want := map[string][]string{
		// Validate and CreateKey account for every key (an orphan is never
		// used but by CreateKey's STS proof); only CreateKey deletes one.
		"validate":         {"iam:GetAccessKeyLastUsed", "iam:GetUser", "iam:ListAccessKeys"},
		"createkey":        {"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys"},
		"deactivateoldkey": {"iam:ListAccessKeys", "iam:UpdateAccessKey"},
		"deleteoldkey":     {"iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"},
	}
	for fn, w := range want {
		got := granted[fn]
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("%s may %v, want %v", fn, got, w)
		}
	}
}

// The operator policy lets a person watch, start, approve and reject, and
// never read a key or change one by hand.
func TestOperatorPolicy(t *testing.T) {
	_, tmpl, _ := synth(t)
	policies := tmpl.FindResources(jsii.String("AWS::IAM::ManagedPolicy"), nil)
	if len(*policies) != 4 {
		t.Fatalf("%d managed policies, want the operator's, the rollback's, doctor's (the config names connections) and the approvers' (issue 14)", len(*policies))
	}
	var actions []string
	for id, p := range *policies {
		if strings.Contains(id, "DoctorPolicy") {
			b, _ := json.Marshal(p)
			// Doctor reads the connection secrets and nothing else.
			if !strings.Contains(string(b), "secretsmanager:GetSecretValue") || strings.Contains(string(b), "iam:") || strings.Contains(string(b), `"Resource":"*"`) {
				t.Errorf("DoctorPolicy: %s, want only reads of the connection secrets", b)
			}
		}
		if !strings.Contains(id, "OperatorPolicy") {
			continue
		}
		b, _ := json.Marshal(p)
		var doc struct {
			Properties struct {
				PolicyDocument struct{ Statement []map[string]any }
			}
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, st := range doc.Properties.PolicyDocument.Statement {
			for _, a := range list(st["Action"]) {
				actions = append(actions, fmt.Sprint(a))
			}
		}
	}
	for _, want := range []string{"states:StartExecution", "states:GetExecutionHistory", "iam:GetAccessKeyLastUsed", "secretsmanager:ListSecrets"} {
		if !slices.Contains(actions, want) {
			t.Errorf("the operator policy lacks %s", want)
		}
	}
	for _, a := range actions {
		if a == "secretsmanager:GetSecretValue" || strings.HasPrefix(a, "iam:Create") || strings.HasPrefix(a, "iam:Delete") || strings.HasPrefix(a, "iam:Update") || strings.HasSuffix(a, "*") {
			t.Errorf("the operator policy allows %s", a)
		}
	}
	tmpl.HasOutput(jsii.String("OperatorPolicyArn"), &map[string]any{})
}

// The alerts link the runbook the config names.
func TestRunbookURLReachesTheAlerts(t *testing.T) {
	_, tmpl, _ := synth(t)
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
		"Description": "keyrotator: the notify task",
		"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
			"RUNBOOK_URL": "https://github.com/example/keyrotator/blob/main/docs/runbook.md"})},
	})
}

func stackID(t *testing.T, c constructs.IConstruct) *string {
	t.Helper()
	el, ok := c.(awscdk.CfnElement)
	if !ok {
		t.Fatalf("%s is not a CfnElement", *c.Node().Path())
	}
	return awscdk.Stack_Of(c).GetLogicalId(el)
}

// template is a synthesized template's resources, decoded.
// The request endpoint (issue 14): a function URL with AuthType AWS_IAM;
// people (the operator policy) may invoke it only through the URL; the
// one unconditional lambda:InvokeFunction on it is the scheduler role's
// (the trust boundary: a direct invoke could carry any requestContext);
// every schedule targets it; it may start the state machine and make MACs
// with the HMAC key, and Validate may verify them.
func TestRequestEndpoint(t *testing.T) {
	_, tmpl, _ := synth(t)
	doc := resources(t, tmpl)
	fnID := ""
	for id, r := range doc.Resources {
		if r.Type == "AWS::Lambda::Function" && r.Properties["FunctionName"] == "keyrotator-requestrun" {
			fnID = id
		}
	}
	if fnID == "" {
		t.Fatal("no function keyrotator-requestrun")
	}
	urls := 0
	for _, r := range doc.Resources {
		if r.Type == "AWS::Lambda::Url" && strings.Contains(fmt.Sprint(r.Properties["TargetFunctionArn"]), fnID) {
			urls++
			if r.Properties["AuthType"] != "AWS_IAM" {
				t.Errorf("requestrun's URL is AuthType %v, want AWS_IAM", r.Properties["AuthType"])
			}
		}
		if r.Type == "AWS::Scheduler::Schedule" {
			target, _ := r.Properties["Target"].(map[string]any)
			if strings.Contains(fmt.Sprint(target["Arn"]), "RotatorAudit") || strings.Contains(fmt.Sprint(target["Arn"]), "RotatorSweep") {
				continue // the weekly audit's and the fleet sweep's schedules invoke their own functions (issue 15)
			}
			if !strings.Contains(fmt.Sprint(target["Arn"]), fnID) || !strings.Contains(fmt.Sprint(target["Input"]), `"scheduledTime":"<aws.scheduler.scheduled-time>"`) {
				t.Errorf("a schedule targets %v with %v, want requestrun with the firing's time", target["Arn"], target["Input"])
			}
		}
	}
	if urls != 1 {
		t.Errorf("requestrun has %d function URLs, want 1", urls)
	}
	unconditional := map[string]bool{}
	for id, r := range doc.Resources {
		if r.Type != "AWS::IAM::Policy" && r.Type != "AWS::IAM::ManagedPolicy" {
			continue
		}
		pd, _ := r.Properties["PolicyDocument"].(map[string]any)
		stmts, _ := pd["Statement"].([]any)
		for _, s := range stmts {
			st := s.(map[string]any)
			on := strings.Contains(fmt.Sprint(st["Resource"]), fnID)
			for _, a := range list(st["Action"]) {
				switch {
				case a == "lambda:InvokeFunction" && on && st["Condition"] == nil:
					unconditional[id] = true
				case a == "lambda:InvokeFunction" && on:
					if !strings.Contains(fmt.Sprint(st["Condition"]), "lambda:InvokedViaFunctionUrl:true") {
						t.Errorf("%s: lambda:InvokeFunction on requestrun under %v, want only via its URL", id, st["Condition"])
					}
				case a == "lambda:InvokeFunctionUrl" && on:
					if !strings.Contains(fmt.Sprint(st["Condition"]), "lambda:FunctionUrlAuthType:AWS_IAM") {
						t.Errorf("%s: lambda:InvokeFunctionUrl on requestrun under %v, want AuthType AWS_IAM", id, st["Condition"])
					}
				}
			}
		}
	}
	if len(unconditional) != 1 || !strings.Contains(fmt.Sprint(unconditional), "SchedulerRole") {
		t.Errorf("unconditional lambda:InvokeFunction on requestrun: %v, want the scheduler role's only", unconditional)
	}
	op := managedPolicy(t, tmpl, "OperatorPolicy")
	for _, a := range []string{"lambda:InvokeFunctionUrl", "lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"} {
		if !strings.Contains(fmt.Sprint(op[a]), fnID) {
			t.Errorf("OperatorPolicy: %s on %v, want requestrun (keyrotator start)", a, op[a])
		}
	}
}

type template struct {
	Resources map[string]struct {
		Type       string
		Properties map[string]any
		Metadata   map[string]any
	}
}

func resources(t *testing.T, tmpl assertions.Template) template {
	t.Helper()
	var doc template
	b, _ := json.Marshal(tmpl.ToJSON())
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// exportedName is a function's construct id, as rotator names it.
func exportedName(fn string) string { return strings.ToUpper(fn[:1]) + fn[1:] }
