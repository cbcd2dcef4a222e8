package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/cli/watch"
)

// ApproveState is the state that waits for a person (requireApproval).
const ApproveState = "Approve"

// RejectedError is the error a rejection ends the run with.
const RejectedError = "ApprovalRejected"

func (a *app) approveCmd(approve bool) *cobra.Command {
	var comment string
	verb, short := "approve", "Approve a run waiting in its Approve state: once enough approvers have, it goes on to make the key"
	if !approve {
		verb, short = "reject", "Reject a run waiting in its Approve state: it ends with ApprovalRejected, changing nothing"
	}
	cmd := &cobra.Command{
		Use:   verb + " EXECUTION [--comment TEXT]",
		Short: short,
		Long: short + `.

EXECUTION is the execution's ARN or its name. The answer goes to the
approval endpoint (answerapproval's function URL: --approval-url, else
$` + ApprovalURLEnv + `, else the stack's <prefix>-answerapproval), signed
with your own credentials (SigV4): AWS authenticates you, and the endpoint
checks you against the run's approvers. Exit 4 if the execution has no
approval pending (it never asked, it was already answered, it timed out or
it ended); exit 5 if you may not answer it (not an approver of the run,
or its requester), the run waiting on.`,
		Example: "  keyrotator " + verb + " app-20260301T030000Z --comment \"change CHG-1234\"",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.clients(ctx)
			if err != nil {
				return err
			}
			arn, err := a.resolveExecution(ctx, c.sfn, args[0])
			if err != nil {
				return err
			}
			by, err := callerARN(ctx, c.sts)
			if err != nil {
				return err
			}
			d := decision{Approve: approve, By: by, Comment: comment, At: a.clock.Now().Truncate(time.Second)}
			reply, err := a.answer(ctx, arn, d)
			if err != nil {
				return err
			}
			doc := decisionDoc{Execution: arn, Name: nameOf(arn), Decision: d.word(), By: by, Comment: comment, At: d.At,
				Outcome: reply.Outcome, Message: reply.Message, Approvals: reply.Approvals, Needed: reply.Needed}
			if a.json {
				writeJSON(a.stdout, doc)
				return nil
			}
			switch {
			case !approve:
				fmt.Fprintf(a.stdout, "rejected %s as %s: the run ends with %s; nothing was changed\n", doc.Name, by, RejectedError)
			case reply.Outcome == "approved":
				fmt.Fprintf(a.stdout, "approved %s as %s: the run goes on to make the new key\n  follow it: keyrotator watch %s\n", doc.Name, by, doc.Name)
			default:
				fmt.Fprintf(a.stdout, "approval of %s as %s recorded: %s\n", doc.Name, by, reply.Message)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a word for the record (a change ticket, why)")
	return cmd
}

// answerReply is the approval endpoint's answer.
type answerReply struct {
	Outcome   string `json:"outcome"` // approved, recorded, rejected, or the refusal's name
	Message   string `json:"message"`
	Approvals int    `json:"approvals,omitempty"`
	Needed    int    `json:"needed,omitempty"`
}

// answer posts the decision to the approval endpoint.
func (a *app) answer(ctx context.Context, arn string, d decision) (answerReply, error) {
	u, err := a.approvalURL(ctx)
	if err != nil {
		return answerReply{}, err
	}
	ec, err := a.endpointClient(ctx)
	if err != nil {
		return answerReply{}, err
	}
	word := "approve"
	if !d.Approve {
		word = "reject"
	}
	ans, err := ec.Post(ctx, u, map[string]string{"execution": arn, "decision": word, "comment": d.Comment})
	if err != nil {
		return answerReply{}, err
	}
	var r answerReply
	_ = json.Unmarshal(ans.Body, &r)
	switch ans.Status {
	case http.StatusOK:
		return r, nil
	case http.StatusNotFound, http.StatusConflict:
		// NoApprovalPending: never asked, already answered, expired, ended.
		return r, &exitError{code: ExitNotPending, kind: "not pending", err: fmt.Errorf("nothing to approve or reject on %s: %s", nameOf(arn), ans.Problem().Message)}
	case http.StatusForbidden:
		// ApproverRefused (the run keeps waiting), or AWS refusing the
		// call itself ({"Message":"Forbidden"}: no permission to call the URL).
		return r, &exitError{code: ExitRefused, kind: "refused", err: fmt.Errorf("%s %s: refused: %s", word, nameOf(arn), ans.Problem().Message)}
	}
	return r, endpointRefusal(word+" "+nameOf(arn), ans)
}

// decision is an approver's answer.
type decision struct {
	Approve bool
	By      string
	Comment string
	At      time.Time
}

func (d decision) word() string {
	if d.Approve {
		return "approved"
	}
	return "rejected"
}

// decisionDoc is approve's and reject's --json document.
type decisionDoc struct {
	Execution string    `json:"execution"`
	Name      string    `json:"name"`
	Decision  string    `json:"decision"` // approved, rejected
	By        string    `json:"by"`
	Comment   string    `json:"comment,omitempty"`
	At        time.Time `json:"at"`
	// What the approval endpoint said: approved (enough approvers),
	// recorded (more needed), rejected; how many of how many.
	Outcome   string `json:"outcome,omitempty"`
	Message   string `json:"message,omitempty"`
	Approvals int    `json:"approvals,omitempty"`
	Needed    int    `json:"needed,omitempty"`
}

// PendingApproval finds the task token of an approval still waiting: the
// last TaskScheduled of the Approve state whose Parameters carry
// {"Payload": {"kind": "approval", "token": …}}, with no TaskSucceeded,
// TaskFailed or TaskTimedOut after it and the execution not ended.
func PendingApproval(events []types.HistoryEvent) (string, bool) {
	token := ""
	for _, e := range events {
		switch e.Type {
		case types.HistoryEventTypeTaskScheduled:
			if watch.LastEntered(events, e) != ApproveState || e.TaskScheduledEventDetails == nil {
				continue
			}
			var p struct {
				Payload struct {
					Kind  string `json:"kind"`
					Token string `json:"token"`
				} `json:"Payload"`
			}
			if json.Unmarshal([]byte(aws.ToString(e.TaskScheduledEventDetails.Parameters)), &p) == nil && p.Payload.Kind == "approval" {
				token = p.Payload.Token
			}
		case types.HistoryEventTypeTaskSucceeded, types.HistoryEventTypeTaskFailed, types.HistoryEventTypeTaskTimedOut,
			types.HistoryEventTypeTaskStartFailed, types.HistoryEventTypeTaskSubmitFailed:
			if watch.LastEntered(events, e) == ApproveState {
				token = ""
			}
		case types.HistoryEventTypeExecutionSucceeded, types.HistoryEventTypeExecutionFailed,
			types.HistoryEventTypeExecutionAborted, types.HistoryEventTypeExecutionTimedOut:
			token = ""
		}
	}
	return token, token != ""
}
