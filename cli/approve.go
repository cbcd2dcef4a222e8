package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
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
	verb, short := "approve", "Approve a run waiting in its Approve state: it goes on to make the key"
	if !approve {
		verb, short = "reject", "Reject a run waiting in its Approve state: it ends with ApprovalRejected, changing nothing"
	}
	cmd := &cobra.Command{
		Use:   verb + " EXECUTION [--comment TEXT]",
		Short: short,
		Long: short + `.

EXECUTION is the execution's ARN or its name. The approver is the caller's
ARN (STS). Exit 4 if the execution has no approval pending (it never asked,
it was already answered, it timed out or it ended).`,
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
			if err := decide(ctx, c.sfn, arn, d); err != nil {
				return err
			}
			doc := decisionDoc{Execution: arn, Name: nameOf(arn), Decision: d.word(), By: by, Comment: comment, At: d.At}
			if a.json {
				writeJSON(a.stdout, doc)
				return nil
			}
			if approve {
				fmt.Fprintf(a.stdout, "approved %s as %s: the run goes on to make the new key\n  follow it: keyrotator watch %s\n", doc.Name, by, doc.Name)
			} else {
				fmt.Fprintf(a.stdout, "rejected %s as %s: the run ends with %s; nothing was changed\n", doc.Name, by, RejectedError)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a word for the record (a change ticket, why)")
	return cmd
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
}

type decideAPI interface {
	watch.HistoryAPI
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, opt ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, opt ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
}

var _ decideAPI = (*sfn.Client)(nil)

// decide finds the pending approval's task token and answers it.
func decide(ctx context.Context, c decideAPI, arn string, d decision) error {
	events, err := watch.History(ctx, c, arn)
	if err != nil {
		var gone *types.ExecutionDoesNotExist
		if errors.As(err, &gone) {
			return usageErr("EXECUTION", "no execution %s", arn)
		}
		return err
	}
	token, ok := PendingApproval(events)
	if !ok {
		return notPending(arn, events)
	}
	if d.Approve {
		out, _ := json.Marshal(map[string]any{"approvedBy": d.By, "comment": d.Comment, "at": d.At.UTC().Format(time.RFC3339)})
		_, err = c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(string(out))})
	} else {
		cause := "rejected by " + d.By
		if d.Comment != "" {
			cause += ": " + d.Comment
		}
		_, err = c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(RejectedError), Cause: aws.String(cause)})
	}
	// Between reading the history and answering, the request can time out
	// or another approver answer: then there is nothing to answer any more.
	var timedOut *types.TaskTimedOut
	var invalid *types.InvalidToken
	var gone *types.TaskDoesNotExist
	if errors.As(err, &timedOut) || errors.As(err, &invalid) || errors.As(err, &gone) {
		return &exitError{code: ExitNotPending, kind: "not pending", err: fmt.Errorf("%s: the approval request is no longer waiting (%w)", nameOf(arn), err)}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", d.word(), nameOf(arn), err)
	}
	return nil
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

// notPending says why there is nothing to answer.
func notPending(arn string, events []types.HistoryEvent) error {
	why := "it has not asked for approval"
	for _, e := range events {
		if d := e.StateEnteredEventDetails; d != nil && aws.ToString(d.Name) == ApproveState {
			why = "its approval was already answered or timed out"
		}
		switch e.Type {
		case types.HistoryEventTypeExecutionSucceeded:
			why = "it has ended (SUCCEEDED)"
		case types.HistoryEventTypeExecutionFailed:
			why = "it has ended (FAILED)"
		case types.HistoryEventTypeExecutionAborted:
			why = "it has ended (ABORTED)"
		case types.HistoryEventTypeExecutionTimedOut:
			why = "it has ended (TIMED_OUT)"
		}
	}
	return &exitError{code: ExitNotPending, kind: "not pending", err: fmt.Errorf("nothing to approve or reject on %s: %s", nameOf(arn), why)}
}
