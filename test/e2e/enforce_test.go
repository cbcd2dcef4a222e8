package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/iampolicy/referee"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The golden template's config rotates IAM user app-aws-user into the
// secret app/aws-access-key (infra's testConfig, rotation "app-key"): its
// policies name exactly that user and that secret.
const (
	goldenUser   = "app-aws-user"
	goldenSecret = "app/aws-access-key"
)

func goldenInput() map[string]any {
	return map[string]any{"user": goldenUser, "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": goldenSecret}},
		"waitDays": 7, "graceDays": 1, "minKeyAgeDays": 80}
}

// consumers lets user's consumers do what they do with its key (under IAM
// enforcement a user without a policy may do nothing).
func (h *H) consumers(user string) {
	h.t.Helper()
	if err := h.sb.IAM.PutUserPolicy(user, "consumers", json.RawMessage(consumerPolicy)); err != nil {
		h.t.Fatal(err)
	}
}

// putConnection fills a connection secret: a new one, or one the deployed
// template made (with a random placeholder, as CDK's Secret does).
func (h *H) putConnection(name string, value []byte) {
	h.t.Helper()
	ctx := context.Background()
	_, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(value))})
	if errors.As(err, new(*smtypes.ResourceExistsException)) {
		_, err = h.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(value))})
	}
	if err != nil {
		h.t.Fatalf("connection %s: %v", name, err)
	}
}

// refusal says whether an error code is IAM's refusal, as each protocol
// spells it (local/sandbox/authz: AccessDenied, AccessDeniedException,
// SNS's AuthorizationError).
func refusal(code string) bool {
	return code == "AccessDenied" || code == "AccessDeniedException" || code == "AuthorizationError"
}

// deniedCalls are the calls the sandbox refused for want of permission.
func (h *H) deniedCalls() []string {
	var out []string
	for _, c := range h.sb.Calls(h.t, 0) {
		if refusal(c.Error) {
			out = append(out, c.Service+":"+c.Action+" by "+c.Principal+" on "+strings.Join(c.ResourceARNs, ","))
		}
	}
	return out
}

// A user the config does not name is no user the template's policies let
// the functions touch: the run fails at its first IAM call with
// AccessDenied naming the action and the user, before any change.
func TestUnconfiguredUserIsDenied(t *testing.T) {
	t.Parallel()
	h := startExact(t, fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true})
	f := h.seed("not-in-config", 95)
	r := h.Run(f.input(nil))
	if r.Status != types.ExecutionStatusFailed || r.Error != "AccessDenied" {
		t.Fatalf("status %s %s: %s, want FAILED AccessDenied", r.Status, r.Error, r.Cause)
	}
	if !strings.Contains(r.Cause, "iam:GetUser") || !strings.Contains(r.Cause, "user/not-in-config") {
		t.Errorf("cause %q: want the IAM action and the user named", r.Cause)
	}
	if d := h.deniedCalls(); !slices.ContainsFunc(d, func(s string) bool { return strings.HasPrefix(s, "iam:") }) {
		t.Errorf("refused calls %v: want the IAM call", d)
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys %v: a refused run changed the user's keys", ks)
	}
}

// funnelInput is the golden config's "funnel" rotation: user soracom-funnel
// into a secret, an Auth0 tenant and SORACOM, exactly as infra's
// testConfig has it (its connections are the ones the template makes).
func funnelInput() map[string]any {
	return map[string]any{"user": "soracom-funnel", "targets": []map[string]string{
		{"type": "secret", "name": "app2", "secretId": "iot/aws-key"},
		{"type": "auth0", "name": "tenant", "connection": "keyrotator/connections/auth0-prod", "sesRegion": "ap-northeast-1"},
		{"type": "soracom", "name": "funnel", "connection": "keyrotator/connections/soracom", "credentialPrefix": "aws-soracom-funnel"},
	}, "waitDays": 3, "verifyAttempts": 2}
}

// consumerPolicy is what the rotated user's consumers do with its key:
// Auth0 sends mail through SES, SORACOM Funnel publishes to IoT, Funk
// invokes a function.
const consumerPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ses:SendEmail","ses:SendRawEmail","iot:Publish","lambda:InvokeFunction"],"Resource":"*"}]}`

// Both golden rotations under IAM enforcement, the second through every
// target kind: every call allowed by the template's policies, none
// refused. Then the unused-grant check: each role's granted actions minus
// the actions its sessions were seen making is empty but for the grants
// listed in exempt, each with its reason.
func TestGoldenRotationsUnderIAMEnforcementUseEveryGrant(t *testing.T) {
	t.Parallel()
	var decisions recorded
	h := startGolden(t, decisions.add)
	h.seedGolden()
	if r := h.Run(goldenInput()); r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("app-key rotation under enforcement: %s %s: %s (refused: %v)", r.Status, r.Error, r.Cause, h.deniedCalls())
	}
	h.seedFunnel()
	r := h.Run(funnelInput())
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("funnel rotation under enforcement: %s %s: %s (refused: %v)", r.Status, r.Error, r.Cause, h.deniedCalls())
	}
	if d := h.deniedCalls(); len(d) > 0 {
		t.Errorf("calls refused during a successful rotation: %v", d)
	}
	h.auditTwice(t) // the weekly audit's grants, as its schedule invokes it (audit_test.go)
	if d := h.deniedCalls(); len(d) > 0 {
		t.Errorf("calls refused during the audit: %v", d)
	}
	h.sweepGolden(t) // issue 15: the fleet sweep's grants, and a swept rotation's (sweep_test.go)
	if d := h.deniedCalls(); len(d) > 0 {
		t.Errorf("calls refused during the sweep: %v", d)
	}
	h.unusedGrants(t)
	decisions.agreeWithReferee(t)
}

// recorded are the enforcement's decisions during a test.
type recorded struct {
	mu   sync.Mutex
	seen map[string]bool
	all  []authz.Decision
}

func (r *recorded) add(d authz.Decision) {
	d.Context = maps.Clone(d.Context)
	// What differs between two askings of one question: the time, and a
	// role session's name (each invocation's own; no policy here names one).
	delete(d.Context, "aws:CurrentTime")
	if i := strings.LastIndex(d.Principal.ARN, "/"); strings.Contains(d.Principal.ARN, ":assumed-role/") && i > 0 {
		d.Principal.ARN = d.Principal.ARN[:i] + "/session"
		if id := d.Context["aws:userid"]; len(id) == 1 {
			if j := strings.Index(id[0], ":"); j > 0 {
				d.Context["aws:userid"] = []string{id[0][:j] + ":session"}
			}
		}
	}
	key, _ := json.Marshal(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[string(key)] {
		r.seen[string(key)] = true
		r.all = append(r.all, d)
	}
}

// agreeWithReferee: every distinct decision the sandbox's enforcement made
// is put to @cloud-copilot/iam-simulate, an evaluator nobody here wrote,
// which must decide the same.
func (r *recorded) agreeWithReferee(t *testing.T) {
	t.Helper()
	n, denied, disagree, err := r.compare(t.Context())
	if errors.Is(err, referee.ErrMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range disagree {
		t.Error(d)
	}
	t.Logf("%d distinct decisions of the enforcement (%d denials) put to iam-simulate: %d disagreements", n, denied, len(disagree))
}

// compare puts the decisions to the referee and returns how many, how many
// were denials, and each disagreement.
func (r *recorded) compare(ctx context.Context) (n, denied int, disagree []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cases []referee.Case
	for _, d := range r.all {
		cases = append(cases, sandboxtest.RefereeCase(d))
		if !d.Allowed {
			denied++
		}
	}
	if len(cases) == 0 {
		return 0, 0, nil, nil
	}
	out, err := referee.Run(ctx, root, cases)
	if err != nil {
		return 0, 0, nil, err
	}
	for i, res := range out {
		if (res.Result == "Allowed") != r.all[i].Allowed {
			b, _ := json.Marshal(cases[i])
			disagree = append(disagree, fmt.Sprintf("the sandbox decided allowed=%v, iam-simulate %s %s: %s", r.all[i].Allowed, res.Result, res.Error, b))
		}
	}
	return len(cases), denied, disagree, nil
}

// seedFunnel makes what the golden "funnel" rotation rotates through: its
// user (whose consumers may send mail and publish), its secret, its Auth0
// tenant and its SORACOM operator, on the connections the template made.
func (h *H) seedFunnel() {
	t := h.t
	keys := h.sb.User(t, "soracom-funnel", 1)
	h.sb.IAM.Backdate(keys[0].AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -95))
	f := fixture{user: "soracom-funnel", secretID: "iot/aws-key", old: keys[0]}
	v, _ := json.Marshal(map[string]string{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(f.secretID), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
	h.auth0Tenant(f, "auth0-prod")
	h.soracomOperator(f, "soracom", 2, "")
}

// mutationsAll runs every statement's removal (make faults); without it,
// a deterministic sample (make test).
var mutationsAll = flag.Bool("mutations.all", false, "remove every statement of every role in turn, not the CI sample")

// mutation is one statement of one role's policy, as the template has it.
type mutation struct {
	role, policy, policyName string // logical ids, and the policy's name
	index                    int
	actions                  []string
}

func (m mutation) String() string {
	return fmt.Sprintf("%s/%s#%d%v", rolePrefix(m.role), m.policyName, m.index, m.actions)
}

// mutations are the statements of the template's role policies that grant
// at least one action not exempt for their role.
func mutations(t *testing.T) []mutation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, pipeline.DefaultTemplate))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				PolicyName     string
				PolicyDocument struct {
					Statement []struct{ Action, Resource any }
				}
				Roles []struct{ Ref string }
			}
		}
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	var out []mutation
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		for _, role := range r.Properties.Roles {
			prefix := rolePrefix(role.Ref)
			for i, st := range r.Properties.PolicyDocument.Statement {
				actions := actionList(st.Action)
				live := slices.ContainsFunc(actions, func(a string) bool { return !isExempt(prefix, a) }) && !exemptResource(st.Resource)
				if live {
					out = append(out, mutation{role: role.Ref, policy: id, policyName: r.Properties.PolicyName, index: i, actions: actions})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b mutation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// What we test is what we deploy, the other way: removing any one
// statement of any role's policy makes the golden rotations fail with
// AccessDenied (so no statement is there for nothing, and the enforcement
// would catch a grant the code needs and the stack lacks). CI runs every
// twentieth statement; make faults all of them.
func TestRemovingAnyGrantIsDenied(t *testing.T) {
	t.Parallel()
	all := mutations(t)
	if len(all) < 10 {
		t.Fatalf("%d statements: the template's role policies were not read", len(all))
	}
	for i, m := range all {
		if !*mutationsAll && i%20 != 0 {
			continue
		}
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			var decisions recorded
			h := startGolden(t, decisions.add)
			h.seedGolden()
			h.seedFunnel()
			arn, ok := h.sb.IAM.RoleARN(h.dep.Stack.Resources[m.role].Ref)
			if !ok {
				t.Fatalf("no role %s", m.role)
			}
			pols, err := h.sb.IAM.IdentityPolicies(arn)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(pols, func(p iam.IdentityPolicy) bool { return p.Name == m.policyName })
			if i < 0 {
				t.Fatalf("role %s has no policy %s", m.role, m.policyName)
			}
			var doc map[string]any
			if err := json.Unmarshal(pols[i].Document, &doc); err != nil {
				t.Fatal(err)
			}
			stmts := doc["Statement"].([]any)
			doc["Statement"] = slices.Delete(slices.Clone(stmts), m.index, m.index+1)
			b, _ := json.Marshal(doc)
			if err := h.sb.IAM.PutRolePolicy(h.dep.Stack.Resources[m.role].Ref, m.policyName, b); err != nil {
				t.Fatal(err)
			}
			h.Run(goldenInput())
			h.Run(funnelInput())
			if strings.HasPrefix(m.role, "RotatorAudit") { // no rotation runs the weekly audit
				h.invokeAudit(t)
			}
			if strings.HasPrefix(m.role, "RotatorSweep") { // nor the fleet sweep (issue 15)
				h.seedFleetUser(t, "fleet-golden", "/fleet/", goldenTemplate, 95)
				h.setFleetWindow(t, 0)
				h.invokeSweep(t)
			}
			if len(h.deniedCalls()) == 0 {
				t.Errorf("without statement %d of %s (%v) both golden rotations made no call that was refused: the grant is unused, or exempt it with a reason", m.index, m.policyName, m.actions)
			}
			decisions.agreeWithReferee(t) // the denials too

		})
	}
}

// startGolden is the golden template exactly as synthesized under IAM
// enforcement, with account B (the golden config's member rotation names
// it) holding the member stack, so that the weekly audit reads it through
// keyrotator-member as it would in AWS: its sts:AssumeRole grant is used,
// and removing it is refused by the keyrotator account's side.
func startGolden(t *testing.T, record func(authz.Decision)) *H {
	t.Helper()
	h := startExact(t, fullsandbox.Options{Options: sandbox.Options{Accounts: []string{memberB}}, WaitScale: waitScale, EnforceIAM: true, RecordIAM: record})
	if _, err := pipeline.DeployStack(t.Context(), h.sb.Sandbox, pipeline.StackOptions{
		Template: filepath.Join(root, pipeline.MemberTemplate), StackName: "keyrotator-member", Account: memberB,
		Parameters: map[string]string{"MainAccountId": h.sb.Server.Account(), "ExternalId": memberExtID, "TrustedRoleNames": pipeline.StackName + "-*"},
	}); err != nil {
		t.Fatalf("deploy the member stack into %s: %v", memberB, err)
	}
	return h
}

// seedGolden makes what the golden "app-key" rotation rotates: its user
// and its secret.
func (h *H) seedGolden() {
	t := h.t
	keys := h.sb.User(t, goldenUser, 1)
	h.sb.IAM.Backdate(keys[0].AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -95))
	v, _ := json.Marshal(map[string]string{"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(goldenSecret), SecretString: aws.String(string(v))}); err != nil {
		t.Fatalf("seed app secret: %v", err)
	}
}

// exempt are the grants a clean rotation in the sandbox does not exercise,
// by role (its logical id's prefix in the template) and action, each with
// why it stays.
var exempt = map[string]string{
	"logs:CreateLogStream":     "CloudWatch Logs delivery of the function's log: the sandbox's Lambda keeps logs itself and answers no Logs API",
	"logs:PutLogEvents":        "CloudWatch Logs delivery of the function's log (as above)",
	"xray:PutTraceSegments":    "X-Ray tracing (Tracing: Active): the sandbox has no X-Ray",
	"xray:PutTelemetryRecords": "X-Ray tracing (as above)",
	"xray:GetSamplingRules":    "X-Ray tracing of the state machine (as above)",
	"xray:GetSamplingTargets":  "X-Ray tracing of the state machine (as above)",
	// The state machine's log delivery (CDK's LogOptions).
	"logs:CreateLogDelivery":        "the state machine's execution logs to CloudWatch Logs: the sandbox answers no Logs API",
	"logs:GetLogDelivery":           "as above",
	"logs:UpdateLogDelivery":        "as above",
	"logs:DeleteLogDelivery":        "as above",
	"logs:ListLogDeliveries":        "as above",
	"logs:PutResourcePolicy":        "as above",
	"logs:DescribeResourcePolicies": "as above",
	"logs:DescribeLogGroups":        "as above",
	// Grants of paths a clean rotation does not take, each run elsewhere.
	"RotatorCreatekeyRole cloudtrail:LookupEvents":      "attributes a dead attempt's unrecorded key to its maker, only for an orphan candidate (e2e TestRerunRemovesDeadRunsOrphan)",
	"RotatorCreatekeyRole iam:GetAccessKeyLastUsed":     "tells an orphan candidate from a key in use (as above)",
	"RotatorCreatekeyRole iam:DeleteAccessKey":          "deletes an orphan, a key that does not work, a key it could not store (e2e orphan tests, the fault matrix)",
	"RotatorCreatekeyRole secretsmanager:CreateSecret":  "record.Ensure makes the record if it is gone since TakeLock made it (deleted by hand mid-run)",
	"RotatorCreatekeyRole secretsmanager:TagResource":   "CreateSecret with Tags needs TagResource too (as above)",
	"RotatorValidateRole cloudtrail:LookupEvents":       "attributes a dead run's unrecorded key at a takeover (e2e TestRerunRemovesDeadRunsOrphan)",
	"RotatorValidateRole iam:GetAccessKeyLastUsed":      "tells a dead run's orphan from a key in use, at a takeover (as above)",
	"RotatorValidateRole secretsmanager:GetSecretValue": "reads the lock's version when the record holds one: a re-run, a takeover (e2e TestOneRotationPerUser, orphan tests)",
	"RotatorValidateRole states:DescribeExecution":      "asks whether the lock's holder still runs, when another execution holds it (as above)",
	"RotatorDeleteoldkeyRole iam:UpdateAccessKey":       "reactivates the old key when IAM reports a use after its deactivation (e2e TestLateReportedUse)",
	"RotatorStateMachineRole sns:Publish":               "NotifyFailureRaw, when the Notify function itself fails (e2e alert tests)",
	"RotatorStateMachineRole kms:Decrypt":               "NotifyFailureRaw's publish to the encrypted topic (as above)",
	"RotatorStateMachineRole kms:GenerateDataKey*":      "as above",
	"RotatorSchedulerRole states:StartExecution":        "the schedules start executions with it: the harness leaves the schedules out (pipeline.HarnessSkips); their own tests run one",
	"RotatorSchedulerRole sqs:SendMessage":              "a schedule that could not start its execution sends the event to the dead-letter queue (local/sandbox/scheduler's tests)",
	// Issue 14: the approval path; the golden rotations need no approval.
	"RotatorNotifyRole secretsmanager:DescribeSecret":         "Approve keeps the approval request in the lock's version (e2e TestApprovals)",
	"RotatorNotifyRole secretsmanager:GetSecretValue":         "as above; and a rejection alert reads whether the record holds it",
	"RotatorNotifyRole secretsmanager:PutSecretValue":         "as above",
	"RotatorNotifyRole kms:VerifyMac":                         "a rejection alert checks answerapproval's seal over the record's answers (e2e TestApprovals' rejection)",
	"RotatorAnswerapprovalRole states:DescribeExecution":      "answerapproval, reached only through its function URL (e2e TestApprovals)",
	"RotatorAnswerapprovalRole states:GetExecutionHistory":    "as above: the task token Approve waits on",
	"RotatorAnswerapprovalRole secretsmanager:DescribeSecret": "as above",
	"RotatorAnswerapprovalRole secretsmanager:GetSecretValue": "as above",
	"RotatorAnswerapprovalRole secretsmanager:PutSecretValue": "as above",
	"RotatorAnswerapprovalRole kms:GenerateMac":               "as above",
	"RotatorAnswerapprovalRole states:SendTaskSuccess":        "as above",
	"RotatorAnswerapprovalRole states:SendTaskFailure":        "as above (a rejection)",
	"RotatorAnswerapprovalRole iam:GetRole":                   "a role's path, only for an approvers pattern with a path (IAM Identity Center roles): the step tier's TestAnswerApprovalHoldsCallersToTheRun; the sandbox's IAM answers no GetRole",
	"RotatorVerifyapprovalRole kms:VerifyMac":                 "VerifyApproval runs only after an approval (e2e TestApprovals)",

	// Issuance.
	"RotatorUpdatesecretRole secretsmanager:CreateSecret": "an issue creates a target secret that does not exist yet (e2e TestIssue)",
	"RotatorAuditSchedulerRole lambda:InvokeFunction":     "the weekly audit's schedule invokes it: the harness leaves the schedules out; the test invokes the function as the schedule would",
	"RotatorAuditSchedulerRole sqs:SendMessage":           "a schedule whose invocation failed sends the event to the dead-letter queue (as the rotations' schedules)",

	// The request path (issue 14): the golden rotations need no approval
	// and are started directly; TestRequestPath (under enforcement) and
	// TestScheduleStartsTheConfigsRotation go through requestrun.
	"RotatorSchedulerRole lambda:InvokeFunction":  "the schedules invoke requestrun with it: the harness leaves the schedules out (pipeline.HarnessSkips); e2e TestScheduleStartsTheConfigsRotation runs one",
	"RotatorValidateRole kms:VerifyMac":           "verifies the request requestrun signed into the input: a run started directly carries none (e2e TestRequestPath, the schedule test)",
	"RotatorRequestrunRole kms:GenerateMac":       "requestrun signs the runs that need approval and the schedules' runs (e2e TestRequestPath, the schedule test)",
	"RotatorRequestrunRole states:StartExecution": "requestrun starts the runs it signs (as above)",
	"RotatorRequestrunRole sqs:SendMessage":       "a schedule's invocation of requestrun that failed all of Lambda's retries goes to the schedules' dead-letter queue (the function's DeadLetterConfig)",

	// Issue 15: the member role of a member account's rotation; the
	// golden rotations are the stack's own account's (e2e TestMemberAccounts).
	"RotatorValidateRole sts:AssumeRole":           "a member account's rotation assumes its member role (e2e TestMemberAccounts)",
	"RotatorCreatekeyRole sts:AssumeRole":          "as above",
	"RotatorUpdatesecretRole sts:AssumeRole":       "as above: a secret target in the member account",
	"RotatorVerifyoldkeyunusedRole sts:AssumeRole": "as above",
	"RotatorDeactivateoldkeyRole sts:AssumeRole":   "as above",
	"RotatorDeleteoldkeyRole sts:AssumeRole":       "as above",
	"RotatorNotifyRole sts:AssumeRole":             "as above: the member user's keyrotator:owner tag",
	// The fleet sweep (issue 15): the test invokes it as its schedule would.
	"RotatorSweepSchedulerRole lambda:InvokeFunction": "the sweep's schedule invokes it: the harness leaves the schedules out; the test invokes the function as the schedule would",
	"RotatorSweepSchedulerRole sqs:SendMessage":       "a schedule whose invocation failed sends the event to the dead-letter queue (as the rotations' schedules)",
	"RotatorSweepRole sqs:SendMessage":                "a sweep that failed all of Lambda's retries goes to the schedules' dead-letter queue (the function's DeadLetterConfig)",
	"RotatorSweepRole sts:AssumeRole":                 "the sweep lists a fleet template's member accounts through their member role; the golden templates are the stack's own account's (e2e TestMemberAccounts, the sweep subtest)",
}

// unusedGrants fails for each action a role of the stack may do and was
// never seen doing (nor exempt).
func (h *H) unusedGrants(t *testing.T) {
	t.Helper()
	used := map[string]map[string]bool{} // role name → IAM actions
	for _, c := range h.sb.Calls(t, 0) {
		const marker = ":assumed-role/"
		i := strings.Index(c.Principal, marker)
		if i < 0 || refusal(c.Error) {
			continue // an answer other than a refusal (ResourceNotFound…) used the grant
		}
		role, _, _ := strings.Cut(c.Principal[i+len(marker):], "/")
		svc, ok := h.sb.Server.Service(c.Service)
		if !ok {
			continue
		}
		if used[role] == nil {
			used[role] = map[string]bool{}
		}
		action := authz.Action(svc.Info(), c.Action)
		used[role][strings.ToLower(action)] = true
		switch action {
		case "sns:Publish": // SNS asked KMS for the encrypted topic (the authorizer checked it)
			used[role]["kms:generatedatakey"], used[role]["kms:decrypt"] = true, true
		case "secretsmanager:CreateSecret": // with Tags, which needs TagResource too (the authorizer checks it)
			used[role]["secretsmanager:tagresource"] = true
		}
	}
	for id, res := range h.dep.Stack.Resources {
		if res.Type != "AWS::IAM::Role" {
			continue
		}
		arn, ok := h.sb.IAM.RoleARN(res.Ref)
		if !ok {
			t.Errorf("role %s (%s) not in IAM", id, res.Ref)
			continue
		}
		pols, err := h.sb.IAM.IdentityPolicies(arn)
		if err != nil {
			t.Fatal(err)
		}
		prefix := rolePrefix(id)
		for _, p := range pols {
			for _, a := range allowedActions(t, p.Document) {
				if slices.ContainsFunc(mapsKeys(used[res.Ref]), func(u string) bool { return globMatch(strings.ToLower(a), u) }) {
					continue
				}
				if isExempt(prefix, a) {
					continue
				}
				t.Errorf("role %s may %s (policy %s) and never did: remove the grant, or say why it stays (exempt)", prefix, a, p.Name)
			}
		}
	}
}

func mapsKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// allowedActions are the actions of a policy document's Allow statements.
func allowedActions(t *testing.T, doc json.RawMessage) []string {
	t.Helper()
	var p struct {
		Statement []struct {
			Effect string
			Action any
		}
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		t.Fatalf("policy: %v", err)
	}
	var out []string
	for _, s := range p.Statement {
		if s.Effect == "Allow" {
			out = append(out, actionList(s.Action)...)
		}
	}
	return out
}

// actionList is a statement's Action, a string or a list of them.
func actionList(action any) []string {
	switch a := action.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// rolePrefix is a role's logical id without CDK's hash suffix: the name
// exempt keys a role's grants by.
func rolePrefix(logicalID string) string { return strings.TrimRight(logicalID, "0123456789ABCDEF") }

// isExempt says whether a grant stays unused by every role, or by this one.
// exemptStatementResources are the resources (logical id prefixes) whose
// statements no golden rotation needs, though their actions are used on
// other resources: the state machine role invokes every task's function,
// each in a statement of its own.
var exemptStatementResources = map[string]string{
	"RotatorVerifyapproval": "the state machine invokes VerifyApproval only after an approval (e2e TestApprovals)",
}

// exemptResource says whether a statement's Resource names only what
// exemptStatementResources lists.
func exemptResource(resource any) bool {
	b, _ := json.Marshal(resource)
	for prefix := range exemptStatementResources {
		if strings.Contains(string(b), `"`+prefix) {
			return true
		}
	}
	return false
}

func isExempt(rolePrefix, action string) bool {
	_, every := exempt[action]
	_, mine := exempt[rolePrefix+" "+action]
	return every || mine
}

// globMatch is IAM's action match: * and ? wildcards, case-insensitive
// (both lower-cased by the caller).
func globMatch(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// The first wall against a secret target aimed at keyrotator's own record:
// IAM. The updatesecret role may touch the configured app secrets only, so
// under enforcement the run is refused with AccessDenied before any change
// (keyrotator's own check behind it: TestHostileSecretTargetRefused).
func TestIAMRefusesASecretTargetOnKeyrotatorsRecord(t *testing.T) {
	t.Parallel()
	h := Start(t)
	victim := h.seed("victim", 95)
	h.Run(victim.input(nil)) // makes victim's record
	record, err := h.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("keyrotator/users/victim")})
	if err != nil {
		t.Fatal(err)
	}
	attacker := h.seed("attacker", 95)
	seq := h.sb.Server.Calls().Last()
	r := h.Run(attacker.input(map[string]any{"targets": []map[string]string{
		{"type": "secret", "name": "loot", "secretId": aws.ToString(record.ARN), "keyIdField": "secretAccessKey", "secretField": "x"}}}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" && r.Error != "AccessDenied" || !strings.Contains(r.Cause, "access denied") {
		t.Fatalf("%s %s: %s; want FAILED, refused by IAM", r.Status, r.Error, r.Cause)
	}
	for _, c := range h.sb.Calls(t, seq) {
		if c.Write && (c.Service == "iam" || c.Service == "secretsmanager" && strings.Contains(strings.Join(c.ResourceARNs, ","), "users/victim")) {
			t.Errorf("a refused run wrote: %s:%s on %v", c.Service, c.Action, c.ResourceARNs)
		}
	}
}
