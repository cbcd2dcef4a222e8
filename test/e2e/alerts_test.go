package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
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
//
// The cases share one deployed world (one deploy, not one each): each
// rotates users of its own, reads the alert of its own execution (by ARN),
// and injects its fault into its own execution's calls only
// (runFaulted), so no case's run meets another's fault. The world waits
// ten times longer than Start's for OldKeyStillInUse: the missed
// consumer's use must land inside the 7-day WaitForUse, 60 ms of real
// time at waitScale; on a loaded machine it came late, seen only at
// DeleteOldKey. Ten times longer (0.6 s), as
// TestSoracomGroupMissedIsSeen; the other cases only wait a little longer.
func TestEveryNamedErrorAlertIsActionable(t *testing.T) {
	t.Parallel()
	world := startIn(t, fullsandbox.Options{WaitScale: 10 * waitScale, EnforceIAM: true}, pipelinetest.Deploy{AnyUser: true})
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
			gate, _ := h.gate("busy")
			first := h.StartExecution(f.input(gate))
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
			gate, approver := h.gate("rejected")
			gate["reason"] = "IAM.3"
			arn := h.StartExecution(f.input(gate))
			h.answer(approver, arn, false, "not during the freeze")
			return h.Wait(arn)
		}, nil},
		{"Retryable", "CreateKey", func(h *H) *Result {
			f := h.seed("throttled", 95)
			return h.runFaulted(f.input(nil), sandbox.Fault{Service: "iam", Action: "CreateAccessKey", Kind: "throttle", Times: 1000})
		}, nil},
		// Finding 4: a denied call is named, not retried, and says which
		// action on what (it reached the alert as a wrapError that linked
		// #retryable and called it transient).
		{"AccessDenied", "DeleteOldKey", func(h *H) *Result {
			f := h.seed("denied-delete", 95)
			return h.runFaulted(f.input(nil), sandbox.Fault{Service: "iam", Action: "DeleteAccessKey", Status: 403, Code: "AccessDenied", Times: -1,
				Message: "User: arn:aws:sts::111122223333:assumed-role/keyrotator-deleteoldkey/x is not authorized to perform: iam:DeleteAccessKey on resource: user denied-delete because no identity-based policy allows the iam:DeleteAccessKey action"})
		}, []string{"IAM DeleteAccessKey on user denied-delete was refused", "iam:DeleteAccessKey", "is inactive, not deleted"}},
		// An answer keyrotator does not expect is Internal, not retried.
		{"Internal", "DeactivateOldKey", func(h *H) *Result {
			f := h.seed("odd-answer", 95)
			return h.runFaulted(f.input(nil), sandbox.Fault{Service: "iam", Action: "UpdateAccessKey", Status: 400, Code: "UnexpectedAnswer", Times: -1})
		}, []string{"UnexpectedAnswer", "not transient"}},
	}
	for _, tt := range tests {
		t.Run(tt.errName, func(t *testing.T) {
			t.Parallel()
			h := world.For(t)
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

// runFaulted runs input (a run needing no approval) with fault injected
// into its own execution's calls only (sandbox.Fault.Execution, the name
// it starts under): a fault for every call of a kind would fail every
// other run in the sandbox too. The fault is removed when the test ends.
func (h *H) runFaulted(input map[string]any, fault sandbox.Fault) *Result {
	h.t.Helper()
	user, _ := input["user"].(string)
	name := rotation.NewExecutionName(user, h.sb.Server.Clock().Now(), rand.Reader)
	fault.Execution = name
	h.sb.Fault(h.t, fault)
	b, err := json.Marshal(input)
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.sfn.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(h.dep.StateMachineARN), Name: aws.String(name), Input: aws.String(string(b))})
	if err != nil {
		h.t.Fatalf("StartExecution: %v", err)
	}
	return h.Wait(aws.ToString(out.ExecutionArn))
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

// gate is what a run needs to wait for approval by one approver of its
// own (issue 14): the input's fields, and the approver, a user made for it
// with ApproverPolicy. name makes the user unique in the sandbox.
func (h *H) gate(name string) (map[string]any, identity) {
	h.t.Helper()
	id := h.userWith("approver-"+name, h.managedPolicy("ApproverPolicy"), nil)
	return map[string]any{"requireApproval": true, "approvers": []string{id.arn}}, id
}

// awaitRequest waits until the execution's approval request is out: Approve
// was scheduled, and notify kept the request in the record and published
// it (an answer before that finds nothing pending, as a person could not
// have seen the request yet).
func (h *H) awaitRequest(arn string) {
	h.t.Helper()
	h.awaitApproval(arn)
	h.alertOf(arn, "approval")
}

// answer approves or rejects the execution's pending approval as id,
// through answerapproval's function URL.
func (h *H) answer(id identity, arn string, approve bool, comment string) {
	h.t.Helper()
	h.awaitRequest(arn)
	decision := "reject"
	if approve {
		decision = "approve"
	}
	if st, r := h.answerAs(id, arn, decision, comment); st != 200 {
		h.t.Fatalf("answer the approval: %d %+v", st, r)
	}
}

func (h *H) stop(arn string) {
	h.t.Helper()
	if _, err := h.sfn.StopExecution(context.Background(), &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
		h.t.Fatalf("StopExecution: %v", err)
	}
	h.Wait(arn)
}

// The approval gate itself (approved, rejected, nobody answers) is
// approval_test.go's TestApprovals, with the identities it needs.
