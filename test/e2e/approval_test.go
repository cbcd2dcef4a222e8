package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Approvals nobody can forge (issue 14), through the sandbox with distinct
// identities, each with its own credentials, under IAM enforcement:
//
//	requester  user/ap-requester: asks (startAs), also listed; OperatorPolicy, ApproverPolicy
//	approver   user/ap-approver: listed, ApproverPolicy
//	second     assumed-role/ap-security-oncall/bob: listed by pattern, ApproverPolicy
//	operator   user/ap-operator: OperatorPolicy (no states:SendTask*)
//	outsider   user/ap-outsider: ApproverPolicy, not listed
//	poweruser  user/ap-poweruser: states:* on * (as PowerUserAccess has)
//
// One deploy serves every case (the issue's budget: ≤ 60 s of make test);
// the cases run side by side, each rotating a user of its own. Every
// case's run is held to I1 by the harness when the test ends, and the
// answerapproval and verifyapproval logs with it.

const apAccount = "111122223333"

// identity is one principal of these tests.
type identity struct {
	arn string
	cfg aws.Config
}

// approvalWorld is the identities, made once.
type approvalWorld struct {
	requester, approver, second, operator, outsider, poweruser identity
}

func (h *H) approvalWorld() approvalWorld {
	h.t.Helper()
	approverPolicy, operatorPolicy := h.managedPolicy("ApproverPolicy"), h.managedPolicy("OperatorPolicy")
	powerUser := json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"states:*","Resource":"*"}]}`)
	return approvalWorld{
		requester: h.userWith("ap-requester", approverPolicy, nil, operatorPolicy),
		approver:  h.userWith("ap-approver", approverPolicy, nil),
		second:    h.sessionWith("ap-security-oncall", "bob@example.com", approverPolicy),
		operator:  h.userWith("ap-operator", operatorPolicy, nil),
		outsider:  h.userWith("ap-outsider", approverPolicy, nil),
		poweruser: h.userWith("ap-poweruser", "", powerUser),
	}
}

// approvers lists the requester too: a list that names them must still
// never let them approve their own run.
func (w approvalWorld) approvers() []string {
	return []string{w.approver.arn, w.requester.arn, "arn:aws:iam::" + apAccount + ":role/ap-security-*"}
}

// gated is f's input for a run that needs min approvals of w's approvers.
func (w approvalWorld) gated(f fixture, min int, extra map[string]any) map[string]any {
	in := f.input(map[string]any{"requireApproval": true, "approvers": w.approvers(), "minApprovals": min,
		"reason": "Security Hub IAM.3"})
	for k, v := range extra {
		in[k] = v
	}
	return in
}

// startAs starts a run that id asks for: through the request endpoint
// (requestrun, issue 14's request half) signed as id, when the stack has
// one, so the run's verified requester is id; else with StartExecution,
// the input naming id as requestedBy.
func (h *H) startAs(id identity, input map[string]any) string {
	h.t.Helper()
	if arn, ok := h.dep.Functions["requestrun"]; ok {
		body, _ := json.Marshal(map[string]any{"input": input})
		status, b := h.sb.CallURL(h.t, id.cfg, arn[strings.LastIndex(arn, ":")+1:], http.MethodPost, "/", body)
		var st struct {
			ExecutionARN string `json:"executionArn"`
		}
		if status != http.StatusOK || json.Unmarshal(b, &st) != nil || st.ExecutionARN == "" {
			h.t.Fatalf("the request endpoint answered %s: %d %s", id.arn, status, b)
		}
		return st.ExecutionARN
	}
	input["requestedBy"] = id.arn
	return h.StartExecution(input)
}

// managedPolicy is the ARN of the stack's managed policy whose logical id holds id.
func (h *H) managedPolicy(id string) string {
	h.t.Helper()
	for logical, r := range h.dep.Stack.Resources {
		if r.Type == "AWS::IAM::ManagedPolicy" && strings.Contains(logical, id) {
			return r.Ref
		}
	}
	h.t.Fatalf("the stack has no managed policy %s", id)
	return ""
}

// userWith makes an IAM user with an access key, the managed policies
// (but "") attached and the inline policy (if any) put.
func (h *H) userWith(name, managed string, inline json.RawMessage, more ...string) identity {
	h.t.Helper()
	key := h.sb.User(h.t, name, 1)[0]
	for _, m := range append([]string{managed}, more...) {
		if m == "" {
			continue
		}
		if err := h.sb.IAM.AttachUserPolicy(name, m); err != nil {
			h.t.Fatal(err)
		}
	}
	if inline != nil {
		if err := h.sb.IAM.PutUserPolicy(name, "inline", inline); err != nil {
			h.t.Fatal(err)
		}
	}
	return identity{arn: "arn:aws:iam::" + apAccount + ":user/" + name, cfg: h.sb.ConfigAs(h.t, key.AccessKeyID, key.SecretAccessKey, "")}
}

// sessionWith makes a role with the managed policy and a session of it.
func (h *H) sessionWith(role, session, managed string) identity {
	h.t.Helper()
	if _, err := h.sb.IAM.CreateRole(role, "/", "", json.RawMessage(`{"Version":"2012-10-17","Statement":[]}`), 0); err != nil {
		h.t.Fatal(err)
	}
	if err := h.sb.IAM.AttachRolePolicy(role, managed); err != nil {
		h.t.Fatal(err)
	}
	c := h.sb.IAM.IssueRoleCredentials(role, session)
	return identity{arn: "arn:aws:sts::" + apAccount + ":assumed-role/" + role + "/" + session, cfg: h.sb.ConfigAs(h.t, c.AccessKeyID, c.Secret, c.SessionToken)}
}

// answerAs POSTs an answer to answerapproval's function URL, signed as id.
// A 403 from AWS itself (the caller may not call the URL) has no outcome.
func (h *H) answerAs(id identity, arn, decision, comment string) (int, steps.AnswerReply) {
	h.t.Helper()
	body, _ := json.Marshal(steps.AnswerBody{Execution: arn, Decision: decision, Comment: comment})
	status, b := h.sb.CallURL(h.t, id.cfg, h.functionName(tasks.AnswerApproval), http.MethodPost, "/", body)
	var r steps.AnswerReply
	_ = json.Unmarshal(b, &r)
	h.Logf("%s %s by %s: %d %s", decision, arn[strings.LastIndex(arn, ":")+1:], id.arn, status, b)
	return status, r
}

// waiting says the run still waits at Approve.
func (h *H) waiting(arn string) bool {
	h.t.Helper()
	d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		h.t.Fatal(err)
	}
	_, asking := h.approvalToken(arn)
	return d.Status == types.ExecutionStatusRunning && asking
}

// nowhere fails if s appears in anything keyrotator wrote: the alerts, the
// executions' outputs, every version of the user's record, the functions'
// logs and the call log.
func (h *H) nowhere(s, user string, results ...*Result) {
	h.t.Helper()
	for _, m := range h.messages() {
		if strings.Contains(m.Subject+m.Message, s) {
			h.t.Errorf("%q is in an alert: %s", s, m.Message)
		}
	}
	for _, r := range results {
		if strings.Contains(r.Output+r.Cause, s) {
			h.t.Errorf("%q is in the execution's output or cause: %s %s", s, r.Output, r.Cause)
		}
	}
	ctx := context.Background()
	name := rotation.RecordName(user)
	if d, err := h.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err == nil {
		for v := range d.VersionIdsToStages {
			out, err := h.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(v)})
			if err == nil && strings.Contains(aws.ToString(out.SecretString), s) {
				h.t.Errorf("%q is in the record %s version %s", s, name, v)
			}
		}
	}
	for _, t := range tasks.Every() {
		if strings.Contains(string(h.admin("/lambda/functions/"+h.functionName(t)+"/logs")), s) {
			h.t.Errorf("%q is in the %s function's log", s, t.Function())
		}
	}
	for _, c := range h.sb.Calls(h.t, 0) {
		if strings.Contains(c.Error+c.Resource+strings.Join(c.ResourceARNs, " "), s) {
			h.t.Errorf("%q is in the call log: %+v", s, c)
		}
	}
}

func TestApprovals(t *testing.T) {
	t.Parallel()
	h := Start(t)
	w := h.approvalWorld()
	var mu sync.Mutex
	var forgedRun *Result // checked against everything once every case is over
	const ceo = "arn:aws:iam::" + apAccount + ":user/ceo"

	t.Run("self-approval and an outsider refused, the run keeps waiting; then approved", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		f := h.seed("ap-self", 95)
		arn := h.startAs(w.requester, w.gated(f, 1, nil))
		h.awaitRequest(arn)
		msg, a := h.alertOf(arn, "approval")
		for _, want := range []string{w.requester.arn, w.approver.arn, "role/ap-security-*", "Needs:    1 approval(s)", "keyrotator approve " + arn} {
			if !strings.Contains(msg.Message, want) {
				t.Errorf("the approval request does not say %q:\n%s", want, msg.Message)
			}
		}
		if tok, _ := h.approvalToken(arn); strings.Contains(msg.Message, tok) || a.Expires.IsZero() || a.MinApprovals != 1 || !strings.Contains(a.ApprovalURL, ".lambda-url.") {
			t.Errorf("the approval request holds the task token, or no deadline: %+v", a)
		}
		if st, r := h.answerAs(w.requester, arn, "approve", "mine"); st != http.StatusForbidden || r.Outcome != steps.ApproverRefused || !strings.Contains(r.Message, "requester never counts") {
			t.Errorf("self-approval: %d %+v, want 403 ApproverRefused", st, r)
		}
		if st, r := h.answerAs(w.outsider, arn, "approve", ""); st != http.StatusForbidden || r.Outcome != steps.ApproverRefused || !strings.Contains(r.Message, "not among") {
			t.Errorf("outsider: %d %+v, want 403 ApproverRefused", st, r)
		}
		if st, _ := h.answerAs(w.operator, arn, "approve", ""); st != http.StatusForbidden {
			t.Errorf("the operator (no ApproverPolicy) reached answerapproval: %d", st)
		}
		if !h.waiting(arn) || len(h.keys(f.user)) != 1 {
			t.Fatalf("the run no longer waits, or a key was made, after refused answers")
		}
		if st, r := h.answerAs(w.approver, arn, "approve", "CHG-1"); st != http.StatusOK || r.Outcome != "approved" {
			t.Fatalf("the listed approver: %d %+v", st, r)
		}
		res := h.Wait(arn)
		if res.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
		}
		var out struct {
			Approval rotation.Approval `json:"approval"`
		}
		res.StateOutput(t, "VerifyApproval", &out)
		if out.Approval.RequestedBy != w.requester.arn || len(out.Approval.Approvals) != 1 || out.Approval.Approvals[0].By != w.approver.arn || out.Approval.Approvals[0].Comment != "CHG-1" {
			t.Errorf("the verified approval kept in the execution: %+v", out.Approval)
		}
		if v := strings.Join(res.Visited(), " → "); !strings.Contains(v, "Approve → VerifyApproval → Preflight") {
			t.Errorf("states %s", v)
		}
	})

	t.Run("minApprovals 2 needs two distinct approvers", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		f := h.seed("ap-two", 95)
		arn := h.startAs(w.requester, w.gated(f, 2, nil))
		h.awaitRequest(arn)
		for i, c := range []struct {
			who  identity
			says string
		}{{w.approver, "approved 1 of 2"}, {w.approver, "already recorded: 1 of 2"}} {
			if st, r := h.answerAs(c.who, arn, "approve", ""); st != http.StatusOK || !strings.Contains(r.Message, c.says) {
				t.Errorf("answer %d: %d %+v, want %q", i, st, r, c.says)
			}
			if !h.waiting(arn) {
				t.Fatalf("the run went on after answer %d: one approver counts once", i)
			}
		}
		if st, r := h.answerAs(w.second, arn, "approve", "second"); st != http.StatusOK || r.Outcome != "approved" || r.Approvals != 2 {
			t.Fatalf("the second approver: %d %+v", st, r)
		}
		res := h.Wait(arn)
		var out struct {
			Approval rotation.Approval `json:"approval"`
		}
		res.StateOutput(t, "VerifyApproval", &out)
		if res.Status != types.ExecutionStatusSucceeded || len(out.Approval.Approvals) != 2 || out.Approval.Approvals[1].By != w.second.arn {
			t.Errorf("%s %s; approvals %+v", res.Status, res.Error, out.Approval)
		}
	})

	t.Run("a raw SendTaskSuccess by states:* ends ApprovalForged before any key; the operator gets AccessDenied", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		f := h.seed("ap-forged", 95)
		arn := h.startAs(w.requester, w.gated(f, 1, nil))
		h.awaitRequest(arn)
		// The token, as anyone with states:GetExecutionHistory reads it.
		hist, err := sfn.NewFromConfig(w.poweruser.cfg).GetExecutionHistory(context.Background(), &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
		if err != nil {
			t.Fatalf("the states:* identity reads the history: %v", err)
		}
		token := ""
		for _, e := range hist.Events {
			if d := e.TaskScheduledEventDetails; d != nil {
				var p struct{ Payload struct{ Token string } }
				if json.Unmarshal([]byte(aws.ToString(d.Parameters)), &p) == nil && p.Payload.Token != "" {
					token = p.Payload.Token
				}
			}
		}
		if token == "" {
			t.Fatal("no task token in the history")
		}
		forged := `{"approvedBy":"` + ceo + `","comment":"trust me"}`
		_, err = sfn.NewFromConfig(w.operator.cfg).SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(forged)})
		var api smithy.APIError
		if !errors.As(err, &api) || !strings.Contains(api.ErrorCode(), "AccessDenied") {
			t.Errorf("the operator's SendTaskSuccess: %v, want AccessDenied (OperatorPolicy has no states:SendTask*)", err)
		}
		if _, err := sfn.NewFromConfig(w.poweruser.cfg).SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(forged)}); err != nil {
			t.Fatalf("the states:* identity's SendTaskSuccess: %v", err)
		}
		res := h.Wait(arn)
		if res.Status != types.ExecutionStatusFailed || res.Error != "ApprovalForged" {
			t.Fatalf("%s %s: %s; want FAILED ApprovalForged", res.Status, res.Error, res.Cause)
		}
		if v := strings.Join(res.Visited(), ","); strings.Contains(v, "CreateKey") || len(h.keys(f.user)) != 1 {
			t.Errorf("a key was made, or CreateKey ran, on a forged approval: %s; keys %v", v, h.keys(f.user))
		}
		if _, a := h.alertOf(arn, "failure"); a.Error != "ApprovalForged" || a.State != "VerifyApproval" || !strings.HasSuffix(a.Runbook, "#approvalforged") || !strings.Contains(a.Cause, "approvedBy") {
			t.Errorf("the ApprovalForged alert: %+v", a)
		}
		mu.Lock()
		forgedRun = res
		mu.Unlock()
	})

	t.Run("a rejection ends ApprovalRejected naming the verified rejector", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		f := h.seed("ap-reject", 95)
		arn := h.startAs(w.requester, w.gated(f, 2, nil))
		h.awaitRequest(arn)
		if st, _ := h.answerAs(w.approver, arn, "approve", ""); st != http.StatusOK {
			t.Fatal("the first approval")
		}
		if st, r := h.answerAs(w.second, arn, "reject", "change freeze"); st != http.StatusOK || r.Outcome != "rejected" {
			t.Fatalf("the rejection: %d %+v", st, r)
		}
		res := h.Wait(arn)
		if res.Status != types.ExecutionStatusFailed || res.Error != "ApprovalRejected" || !strings.Contains(res.Cause, w.second.arn) || !strings.Contains(res.Cause, "change freeze") {
			t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
		}
		if msg, a := h.alertOf(arn, "failure"); a.RejectedBy != w.second.arn || !strings.Contains(msg.Message, "The rejection is verified") {
			t.Errorf("the rejection alert does not name the verified rejector: %+v", a)
		}
		if ks := h.keys(f.user); len(ks) != 1 {
			t.Errorf("keys after the rejection: %v", ks)
		}
		if st, r := h.answerAs(w.approver, arn, "approve", ""); st != http.StatusConflict || r.Outcome != steps.NoApprovalPending {
			t.Errorf("an answer after the run ended: %d %+v, want 409", st, r)
		}
	})

	// Issue 14's attack brief: whoever may write the records (an
	// application deployer's secretsmanager:*) writes "bob approved" into
	// the run's record; one approver's POST must not meet minApprovals 2
	// with it. answerapproval's seal over the answers refuses the run.
	t.Run("an approval written into the record by someone else is not taken", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		writer := h.userWith("ap-recordwriter", "", json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:PutSecretValue"],"Resource":"*"}]}`))
		f := h.seed("ap-injected", 95)
		arn := h.startAs(w.requester, w.gated(f, 2, nil))
		h.awaitRequest(arn)
		ctx := context.Background()
		sm := secretsmanager.NewFromConfig(writer.cfg)
		name := rotation.RecordName(f.user)
		lock, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPENDING")})
		if err != nil {
			t.Fatalf("the writer reads the lock's version: %v", err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(lock.SecretString)), &v); err != nil {
			t.Fatal(err)
		}
		req, _ := v["approval"].(map[string]any)
		if req == nil {
			t.Fatalf("the lock's version holds no approval request: %s", aws.ToString(lock.SecretString))
		}
		req["approvals"] = []any{map[string]any{"by": w.second.arn, "at": time.Now().UTC().Format(time.RFC3339Nano), "comment": "never said this"}}
		b, _ := json.Marshal(v)
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(b)), VersionStages: []string{"AWSPENDING"}}); err != nil {
			t.Fatalf("the writer's PutSecretValue: %v", err)
		}
		if st, r := h.answerAs(w.approver, arn, "approve", ""); st != http.StatusConflict || !strings.Contains(r.Message, "answerapproval did not record") {
			t.Errorf("one approval beside an injected one: %d %+v, want 409 refusing the tampered record", st, r)
		}
		if ks := h.keys(f.user); len(ks) != 1 {
			t.Errorf("keys: %v", ks)
		}
		h.stop(arn)
	})

	t.Run("nobody answers", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		f := h.seed("ap-timeout", 95)
		res := h.Wait(h.startAs(w.requester, w.gated(f, 1, map[string]any{"approvalTimeoutHours": 1})))
		if res.Status != types.ExecutionStatusFailed || res.Error != "States.Timeout" {
			t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
		}
		if _, a := h.alertOf(res.ARN, "failure"); !strings.HasSuffix(a.Runbook, "#approvaltimedout") || a.State != "Approve" || len(h.keys(f.user)) != 1 {
			t.Errorf("the timeout alert: %+v", a)
		}
	})

	t.Cleanup(func() {
		// A forged approvedBy appears nowhere keyrotator writes, whatever
		// else ran beside it.
		if forgedRun != nil {
			h.nowhere(ceo, "ap-forged", forgedRun)
			h.nowhere("trust me", "ap-forged", forgedRun)
		}
		if !slices.ContainsFunc(h.sb.Calls(t, 0), func(c sandbox.CallRecord) bool { return c.Action == "VerifyMac" }) {
			t.Error("no run verified an approval with kms:VerifyMac")
		}
	})
}
