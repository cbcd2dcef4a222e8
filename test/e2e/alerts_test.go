package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// snsMessage is one message the alert topic received.
type snsMessage struct{ Subject, Message string }

func (h *H) messages() []snsMessage {
	h.t.Helper()
	var msgs []snsMessage
	if err := json.Unmarshal(h.admin("/sns/messages"), &msgs); err != nil {
		h.t.Fatalf("SNS messages: %v", err)
	}
	return msgs
}

// alertOf is the execution's last message of that kind, text and JSON. It
// waits for it: an approval request is published after the Approve task
// was scheduled, as in AWS.
func (h *H) alertOf(arn, kind string) (snsMessage, steps.Alert) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := h.messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			_, js, ok := strings.Cut(msgs[i].Message, steps.JSONMarker)
			var a steps.Alert
			if ok && json.Unmarshal([]byte(js), &a) == nil && a.Execution == arn && a.Kind == kind {
				return msgs[i], a
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s message for %s among %d", kind, arn, len(msgs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// I4, per named error, through the real pipeline: the alert's subject fits a
// phone and names the user; its body names the state and the error, says
// what changed and which target holds which key, links its runbook section
// (steps' unit test checks each exists) and the console; the JSON block
// says the same. (No secret anywhere: the harness checks I1 on every byte
// when the test ends.)
func TestEveryNamedErrorAlertIsActionable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		errName, state string
		run            func(h *H) *Result
		says           []string // more the alert must say
	}{
		{"InvalidInput", "Validate", func(h *H) *Result {
			return h.Run(map[string]any{"user": "someone", "targets": []map[string]string{{"type": "secret", "name": "app"}}})
		}, nil},
		{"UserNotFound", "Validate", func(h *H) *Result {
			return h.Run(map[string]any{"user": "nobody", "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/x"}}})
		}, nil},
		{"KeyLimitReached", "Validate", func(h *H) *Result {
			h.sb.User(h.t, "two-keys", 2)
			return h.Run(map[string]any{"user": "two-keys", "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/x"}}})
		}, nil},
		{"RotationInProgress", "Validate", func(h *H) *Result {
			f := h.seed("busy", 95)
			first := h.StartExecution(f.input(map[string]any{"requireApproval": true}))
			h.awaitApproval(first)
			r := h.Run(f.input(nil))
			h.stop(first)
			return r
		}, nil},
		{"TargetFailed", "Preflight", func(h *H) *Result {
			f := h.seed("missing-secret", 95)
			return h.Run(map[string]any{"user": f.user, "targets": []map[string]string{{"type": "secret", "name": "gone", "secretId": "app/none"}}})
		}, nil},
		{"OldKeyStillInUse", "VerifyOldKeyUnused", func(h *H) *Result {
			f := h.seed("missed", 95)
			h.inService(h.app(f, true), h.app(f, false))
			return h.Run(f.input(map[string]any{"verifyAttempts": 1}))
		}, nil},
		{"ApprovalRejected", "Approve", func(h *H) *Result {
			f := h.seed("rejected", 95)
			arn := h.StartExecution(f.input(map[string]any{"requireApproval": true, "reason": "IAM.3"}))
			h.answer(arn, false, "not during the freeze")
			return h.Wait(arn)
		}, nil},
		{"Retryable", "CreateKey", func(h *H) *Result {
			f := h.seed("throttled", 95)
			h.sb.Fault(h.t, sandbox.Fault{Service: "iam", Action: "CreateAccessKey", Kind: "throttle", Times: 1000})
			return h.Run(f.input(nil))
		}, nil},
		// Finding 4: a denied call is named, not retried, and says which
		// action on what (it reached the alert as a wrapError that linked
		// #retryable and called it transient).
		{"AccessDenied", "DeleteOldKey", func(h *H) *Result {
			f := h.seed("denied-delete", 95)
			h.sb.Fault(h.t, sandbox.Fault{Service: "iam", Action: "DeleteAccessKey", Status: 403, Code: "AccessDenied", Times: -1,
				Message: "User: arn:aws:sts::111122223333:assumed-role/keyrotator-deleteoldkey/x is not authorized to perform: iam:DeleteAccessKey on resource: user denied-delete because no identity-based policy allows the iam:DeleteAccessKey action"})
			return h.Run(f.input(nil))
		}, []string{"IAM DeleteAccessKey on user denied-delete was refused", "iam:DeleteAccessKey", "is inactive, not deleted"}},
		// An answer keyrotator does not expect is Internal, not retried.
		{"Internal", "DeactivateOldKey", func(h *H) *Result {
			f := h.seed("odd-answer", 95)
			h.sb.Fault(h.t, sandbox.Fault{Service: "iam", Action: "UpdateAccessKey", Status: 400, Code: "UnexpectedAnswer", Times: -1})
			return h.Run(f.input(nil))
		}, []string{"UnexpectedAnswer", "not transient"}},
	}
	for _, tt := range tests {
		t.Run(tt.errName, func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			r := tt.run(h)
			if r.Status != types.ExecutionStatusFailed || r.Error != tt.errName {
				t.Fatalf("status %s %s: %s; want FAILED %s", r.Status, r.Error, r.Cause, tt.errName)
			}
			msg, a := h.alertOf(r.ARN, "failure")
			if len(msg.Subject) >= 100 || !strings.Contains(msg.Subject, a.User) || !strings.Contains(msg.Subject, tt.errName) {
				t.Errorf("subject %q (%d characters): want under 100, with the user and the error", msg.Subject, len(msg.Subject))
			}
			if a.User == "" || a.User == "(unknown user)" && tt.errName != "InvalidInput" {
				t.Errorf("the alert names no user: %+v", a)
			}
			for _, want := range append([]string{"State:  " + tt.state, "Error:  " + tt.errName, "What has changed:", "What is safe:", "Next:", "Runbook:   ", "runbook.md#", "Console:   https://", r.ARN}, tt.says...) {
				if !strings.Contains(msg.Message, want) {
					t.Errorf("the alert does not say %q:\n%s", want, msg.Message)
				}
			}
			if a.State != tt.state || a.Error != tt.errName || len(a.Changed) == 0 || len(a.Next) == 0 || a.Safe == "" {
				t.Errorf("JSON block: %+v", a)
			}
			if want := "#" + strings.ToLower(tt.errName); tt.errName != "Runtime.ExitError" && !strings.HasSuffix(a.Runbook, want) {
				t.Errorf("the alert links %s, want its error's section %s", a.Runbook, want)
			}
			for _, tg := range a.Targets {
				if tg.Status == "" {
					t.Errorf("target %s: the alert does not say which key it holds", tg.Target)
				}
			}
		})
	}
}

// approvalToken is the task token of the execution's pending Approve task,
// read from its history as an operator's tool reads it.
func (h *H) approvalToken(arn string) (string, bool) {
	h.t.Helper()
	out, err := h.sfn.GetExecutionHistory(context.Background(), &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
	if err != nil {
		h.t.Fatalf("GetExecutionHistory: %v", err)
	}
	token := ""
	for _, e := range out.Events {
		switch {
		case e.TaskScheduledEventDetails != nil && strings.Contains(aws.ToString(e.TaskScheduledEventDetails.Resource), "waitForTaskToken"):
			var p struct {
				Payload struct {
					Kind  string `json:"kind"`
					Token string `json:"token"`
				} `json:"Payload"`
			}
			if json.Unmarshal([]byte(aws.ToString(e.TaskScheduledEventDetails.Parameters)), &p) == nil && p.Payload.Kind == "approval" {
				token = p.Payload.Token
			}
		case e.TaskSucceededEventDetails != nil, e.TaskFailedEventDetails != nil, e.TaskTimedOutEventDetails != nil:
			token = ""
		}
	}
	return token, token != ""
}

// awaitApproval waits until the execution asks for approval; it returns the token.
func (h *H) awaitApproval(arn string) string {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tok, ok := h.approvalToken(arn); ok {
			return tok
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("execution %s never asked for approval", arn)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// answer approves or rejects the execution's pending approval.
func (h *H) answer(arn string, approve bool, comment string) {
	h.t.Helper()
	tok := h.awaitApproval(arn)
	var err error
	if approve {
		out, _ := json.Marshal(map[string]string{"approvedBy": "arn:aws:iam::111122223333:user/approver", "comment": comment})
		_, err = h.sfn.SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(string(out))})
	} else {
		_, err = h.sfn.SendTaskFailure(context.Background(), &sfn.SendTaskFailureInput{TaskToken: aws.String(tok), Error: aws.String("ApprovalRejected"),
			Cause: aws.String("rejected by arn:aws:iam::111122223333:user/approver: " + comment)})
	}
	if err != nil {
		h.t.Fatalf("answer the approval: %v", err)
	}
}

func (h *H) stop(arn string) {
	h.t.Helper()
	if _, err := h.sfn.StopExecution(context.Background(), &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
		h.t.Fatalf("StopExecution: %v", err)
	}
	h.Wait(arn)
}

// The approval gate: with requireApproval, nothing changes until a person
// approves; the request says who asked, why and how to answer; approval
// lets the rotation run, rejection and silence end it changing nothing.
func TestApprovalGate(t *testing.T) {
	t.Parallel()
	t.Run("approved", func(t *testing.T) {
		t.Parallel()
		h := Start(t)
		f := h.seed("gated", 95)
		h.app(f, true)
		arn := h.StartExecution(f.input(map[string]any{"requireApproval": true, "reason": "Security Hub IAM.3: key older than 90 days", "requestedBy": "arn:aws:iam::111122223333:user/alice"}))
		h.awaitApproval(arn)
		if ks := h.keys(f.user); len(ks) != 1 {
			t.Fatalf("keys while awaiting approval: %v (nothing may change before it)", ks)
		}
		msg, a := h.alertOf(arn, "approval")
		// Who asked is the caller the request endpoint signed, not the
		// input's claim (issue 14).
		for _, want := range []string{f.user, h.callerARN(), "Security Hub IAM.3", "keyrotator approve " + arn, "keyrotator reject " + arn, "send-task-success"} {
			if !strings.Contains(msg.Message, want) {
				t.Errorf("the approval request does not say %q:\n%s", want, msg.Message)
			}
		}
		if strings.Contains(msg.Message, "user/alice") {
			t.Errorf("the approval request names the input's claimed requester alice:\n%s", msg.Message)
		}
		if len(msg.Subject) >= 100 || !strings.Contains(msg.Subject, f.user) || a.TaskToken == "" || a.Expires.IsZero() {
			t.Errorf("approval request: subject %q, JSON %+v", msg.Subject, a)
		}
		h.answer(arn, true, "go")
		r := h.Wait(arn)
		if r.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		var out struct {
			Approval struct{ ApprovedBy, Comment string } `json:"approval"`
		}
		r.StateOutput(t, "Approve", &out)
		if out.Approval.ApprovedBy != "arn:aws:iam::111122223333:user/approver" || out.Approval.Comment != "go" {
			t.Errorf("the approval kept in the execution: %+v", out.Approval)
		}
		if ks := h.keys(f.user); len(ks) != 1 || ks[f.old.AccessKeyID] != "" {
			t.Errorf("keys after: %v", ks)
		}
	})
	t.Run("rejected, then a run without approval", func(t *testing.T) {
		t.Parallel()
		h := Start(t)
		f := h.seed("gated", 95)
		arn := h.StartExecution(f.input(map[string]any{"requireApproval": true}))
		h.answer(arn, false, "change freeze")
		r := h.Wait(arn)
		if r.Status != types.ExecutionStatusFailed || r.Error != "ApprovalRejected" || !strings.Contains(r.Cause, "change freeze") {
			t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		if ks := h.keys(f.user); len(ks) != 1 || ks[f.old.AccessKeyID] != "Active" {
			t.Errorf("keys after the rejection: %v (want only the old key)", ks)
		}
		for _, never := range []string{"CreateKey", "Distribute"} {
			if strings.Contains(strings.Join(r.Visited(), ","), never) {
				t.Errorf("%s ran after a rejection", never)
			}
		}
		if r := h.Run(f.input(nil)); r.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("the next run: %s %s: %s", r.Status, r.Error, r.Cause)
		}
	})
	t.Run("nobody answers", func(t *testing.T) {
		t.Parallel()
		h := Start(t)
		f := h.seed("gated", 95)
		r := h.Run(f.input(map[string]any{"requireApproval": true, "approvalTimeoutHours": 1}))
		if r.Status != types.ExecutionStatusFailed || r.Error != "States.Timeout" {
			t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
		}
		if ks := h.keys(f.user); len(ks) != 1 || ks[f.old.AccessKeyID] != "Active" {
			t.Errorf("keys after the timeout: %v", ks)
		}
		if _, a := h.alertOf(r.ARN, "failure"); !strings.HasSuffix(a.Runbook, "#approvaltimedout") || a.State != "Approve" {
			t.Errorf("the timeout alert: %+v", a)
		}
	})
}
