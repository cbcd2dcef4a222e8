package steps

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// AnswerApproval is the answerapproval endpoint (issue 14): a Lambda
// function URL with AuthType AWS_IAM, so AWS has authenticated the caller
// before the function runs and hands it the caller in
// requestContext.authorizer.iam
// (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads).
// It holds the caller to the run's approvers, keeps each answer in the
// run's record, and once minApprovals distinct approvers have approved,
// answers the Approve state's task token with a document it signs
// (kms:GenerateMac); a rejection answers SendTaskFailure ApprovalRejected
// naming the verified rejector.
type AnswerApproval struct {
	Executions answerExecutions
	Records    answerRecords
	MAC        signer
	Roles      rolePaths // iam:GetRole, for a role pattern with a path
	// StateMachine is the state machine's ARN: an execution named by its
	// name is one of its executions, and no other machine's is answered.
	StateMachine string
	// Account is the stack's account: only its roles can be looked up.
	Account string
	Clock   func() time.Time
}

type answerExecutions interface {
	Describe(ctx context.Context, arn string) (status, input string, err error)
	PendingToken(ctx context.Context, arn string) (token string, ok bool, err error)
	Success(ctx context.Context, token, output string) error
	Failure(ctx context.Context, token, name, cause string) error
}

type answerRecords interface {
	PendingApproval(ctx context.Context, user, execution string) (rotation.ApprovalRequest, bool, error)
	PutAnswer(ctx context.Context, user, execution string, req rotation.ApprovalRequest) (string, error)
}

type signer interface {
	Sign(ctx context.Context, doc []byte) (string, error)
}

type rolePaths interface {
	RolePath(ctx context.Context, name string) (string, error)
}

// AnswerBody is what the caller POSTs.
type AnswerBody struct {
	Execution string `json:"execution"` // the execution's ARN or name
	Decision  string `json:"decision"`  // approve or reject
	Comment   string `json:"comment,omitempty"`
}

// AnswerReply is the endpoint's JSON answer. It never holds the task token
// or anything read from a secret.
type AnswerReply struct {
	Outcome   string `json:"outcome"` // approved, recorded, rejected, or the error's name
	Message   string `json:"message"`
	Execution string `json:"execution,omitempty"`
	Approvals int    `json:"approvals,omitempty"` // distinct approvals so far
	Needed    int    `json:"needed,omitempty"`    // minApprovals
}

// Outcomes that are not the caller's success.
const (
	// ApproverRefused: the caller may not answer this run (403).
	ApproverRefused = "ApproverRefused"
	// NoApprovalPending: no such run, or it does not wait (404, 409).
	NoApprovalPending = "NoApprovalPending"
	// BadRequest: the body is not an answer (400).
	BadRequest = "BadRequest"
)

// maxComment bounds a comment: it lands in the record, the signed document
// and the alerts.
const maxComment = 256

// HandleURL is the function URL's handler: the caller from the request
// context, the answer from the body, the outcome as HTTP. An error is
// returned only for what the caller cannot fix (AWS failing): the URL
// answers it 502, and the log names it.
func (a *AnswerApproval) HandleURL(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	status, reply, err := a.answer(ctx, req)
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	b, _ := json.Marshal(reply)
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}, nil
}

func (a *AnswerApproval) answer(ctx context.Context, req events.LambdaFunctionURLRequest) (int, AnswerReply, error) {
	refused := func(status int, outcome, msg string) (int, AnswerReply, error) {
		return status, AnswerReply{Outcome: outcome, Message: msg}, nil
	}
	if req.RequestContext.HTTP.Method != http.MethodPost {
		return refused(http.StatusMethodNotAllowed, BadRequest, "POST an answer: {\"execution\", \"decision\": \"approve\" or \"reject\", \"comment\"}")
	}
	iam := req.RequestContext.Authorizer
	if iam == nil || iam.IAM == nil || iam.IAM.UserARN == "" {
		// AuthType NONE, or an invocation that did not come through the URL.
		return refused(http.StatusForbidden, ApproverRefused, "no authenticated caller: call the function URL with SigV4 (AuthType AWS_IAM)")
	}
	callerARN := iam.IAM.UserARN
	caller, err := rotation.ParseCaller(callerARN)
	if err != nil {
		return refused(http.StatusForbidden, ApproverRefused, err.Error())
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return refused(http.StatusBadRequest, BadRequest, "the body is not base64")
		}
	}
	var ans AnswerBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil {
		return refused(http.StatusBadRequest, BadRequest, "the body is not an answer: "+rotation.PlainJSONError(err))
	}
	if ans.Decision != "approve" && ans.Decision != "reject" {
		return refused(http.StatusBadRequest, BadRequest, "decision must be approve or reject")
	}
	exec, ok := a.executionARN(ans.Execution)
	if !ok {
		return refused(http.StatusNotFound, NoApprovalPending, "execution must be an execution ARN or name of "+a.StateMachine)
	}
	status, input, err := a.Executions.Describe(ctx, exec)
	if errors.Is(err, executions.ErrGone) {
		return refused(http.StatusNotFound, NoApprovalPending, "no execution "+exec)
	}
	if err != nil {
		return 0, AnswerReply{}, err
	}
	if status != "RUNNING" {
		return refused(http.StatusConflict, NoApprovalPending, fmt.Sprintf("execution %s is %s: it waits for no approval", exec, status))
	}
	var in struct {
		User    string `json:"user"`
		Account string `json:"account"` // issue 15: a member account's user's record carries it
	}
	if json.Unmarshal([]byte(input), &in) != nil || in.User == "" {
		return refused(http.StatusConflict, NoApprovalPending, "execution "+exec+" names no user: it waits for no approval")
	}
	// The run's record, as Validate named it: <account>/<user> for a member
	// account's user, <user> for the stack's own (its id named or not).
	key := rotation.UserKey(rotation.Input{Account: in.Account}.MemberAccount(a.Account), in.User)
	entry := rotation.ApprovalEntry{By: callerARN, At: a.now(), Comment: cleanComment(ans.Comment)}
	// Each answer is a compare-and-swap on the record (record.PutAnswer):
	// a concurrent answer that landed first makes this one read again.
	for range 5 {
		st, reply, done, err := a.decide(ctx, key, exec, caller, entry, ans.Decision)
		if err != nil || done {
			return st, reply, err
		}
	}
	return 0, AnswerReply{}, &rotation.Retryable{Reason: "answers to " + exec + " kept racing"}
}

// decide reads the request, checks the caller and records the answer;
// done is false when another answer was recorded first.
func (a *AnswerApproval) decide(ctx context.Context, user, exec string, caller rotation.Principal, entry rotation.ApprovalEntry, decision string) (int, AnswerReply, bool, error) {
	reply := func(status int, r AnswerReply) (int, AnswerReply, bool, error) {
		r.Execution = exec
		return status, r, true, nil
	}
	req, ok, err := a.Records.PendingApproval(ctx, user, exec)
	if err != nil {
		return 0, AnswerReply{}, true, err
	}
	if !ok {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "execution " + exec + " waits for no approval (it has not asked yet, or is past it)"})
	}
	needed := max(req.MinApprovals, 1)
	if sealed, err := a.sealed(ctx, exec, req); err != nil {
		return 0, AnswerReply{}, true, err
	} else if !sealed {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "the run's record holds answers answerapproval did not record (someone else wrote the rotation record of IAM user " + user +
			"): no answer to this run is taken. Stop it (aws stepfunctions stop-execution), find who wrote the record (CloudTrail: PutSecretValue), and start a new run"})
	}
	if req.Rejected != nil {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "already rejected by " + req.Rejected.By, Approvals: len(req.Approvals), Needed: needed})
	}
	approvers, err := rotation.ParseApprovers(req.Approvers)
	if err != nil {
		return 0, AnswerReply{}, true, fmt.Errorf("the approval request of %s: %w", exec, err)
	}
	v := approvers.Decide(caller, req.RequestedBy)
	if v.NeedsPath {
		if caller.Account != a.Account || a.Roles == nil {
			return reply(http.StatusForbidden, AnswerReply{Outcome: ApproverRefused, Message: "your role's path cannot be looked up (a role of another account): an approvers pattern with a path needs it"})
		}
		if caller.Path, err = a.Roles.RolePath(ctx, caller.Name); err != nil {
			return 0, AnswerReply{}, true, err
		}
		entry.RolePath = caller.Path
		v = approvers.Decide(caller, req.RequestedBy)
	}
	if !v.OK {
		return reply(http.StatusForbidden, AnswerReply{Outcome: ApproverRefused, Message: fmt.Sprintf("%s may not answer %s: %s", entry.By, exec, v.Reason), Approvals: len(req.Approvals), Needed: needed})
	}
	counted := slices.ContainsFunc(req.Approvals, func(e rotation.ApprovalEntry) bool { return samePrincipal(e.By, caller) })
	// The token is in the execution's history; the record holds its digest.
	token, open, err := a.Executions.PendingToken(ctx, exec)
	if err != nil {
		return 0, AnswerReply{}, true, err
	}
	if open && rotation.TokenDigest(token) != req.TokenSHA256 {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "execution " + exec + " waits on another approval request than its record holds"})
	}
	if len(req.Approvals) >= needed {
		if !open {
			return reply(http.StatusOK, AnswerReply{Outcome: "approved", Message: fmt.Sprintf("approved %d of %d already; the run has taken the answer", len(req.Approvals), needed), Approvals: len(req.Approvals), Needed: needed})
		}
		// Approved, and the answer's first sending was lost: send it again.
		return a.approve(ctx, exec, token, req, counted)
	}
	if !open {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "execution " + exec + " no longer waits for an approval (answered, timed out, or past Approve)", Approvals: len(req.Approvals), Needed: needed})
	}
	if a.now().After(req.Expires) && !req.Expires.IsZero() {
		return reply(http.StatusConflict, AnswerReply{Outcome: NoApprovalPending, Message: "the approval request expired at " + stamp(req.Expires)})
	}
	switch {
	case decision == "reject":
		req.Rejected = &entry
	case counted:
		return reply(http.StatusOK, AnswerReply{Outcome: "recorded", Message: fmt.Sprintf("your approval was already recorded: %d of %d; each approver counts once", len(req.Approvals), needed), Approvals: len(req.Approvals), Needed: needed})
	default:
		req.Approvals = append(req.Approvals, entry)
	}
	if req.Seal, err = a.MAC.Sign(ctx, rotation.SealedAnswers(exec, req)); err != nil {
		return 0, AnswerReply{}, true, err
	}
	if _, err := a.Records.PutAnswer(ctx, user, exec, req); errors.Is(err, record.ErrAnswerRaced) {
		return 0, AnswerReply{}, false, nil
	} else if err != nil {
		return 0, AnswerReply{}, true, err
	}
	if req.Rejected != nil {
		cause := fmt.Sprintf("rejected by %s (verified by answerapproval)", entry.By)
		if entry.Comment != "" {
			cause += ": " + entry.Comment
		}
		if err := a.Executions.Failure(ctx, token, "ApprovalRejected", cause); err != nil && !errors.Is(err, executions.ErrTaskClosed) {
			return 0, AnswerReply{}, true, err
		}
		return reply(http.StatusOK, AnswerReply{Outcome: "rejected", Message: "you rejected the run: it ends changing nothing", Approvals: len(req.Approvals), Needed: needed})
	}
	if len(req.Approvals) < needed {
		return reply(http.StatusOK, AnswerReply{Outcome: "recorded", Message: fmt.Sprintf("approved %d of %d: the run waits for %d more distinct approver(s)", len(req.Approvals), needed, needed-len(req.Approvals)), Approvals: len(req.Approvals), Needed: needed})
	}
	return a.approve(ctx, exec, token, req, true)
}

// sealed says whether the request's answers are answerapproval's own: none
// yet, or sealed by it (rotation.SealedAnswers). HMAC is deterministic, so
// signing again and comparing needs no kms:VerifyMac.
func (a *AnswerApproval) sealed(ctx context.Context, exec string, req rotation.ApprovalRequest) (bool, error) {
	if !req.Answered() {
		return true, nil
	}
	if req.Seal == "" {
		return false, nil
	}
	want, err := a.MAC.Sign(ctx, rotation.SealedAnswers(exec, req))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(req.Seal)) == 1, nil
}

// approve signs the approvals and answers the task token.
func (a *AnswerApproval) approve(ctx context.Context, exec, token string, req rotation.ApprovalRequest, mine bool) (int, AnswerReply, bool, error) {
	needed := max(req.MinApprovals, 1)
	doc := rotation.ApprovalDoc{Purpose: rotation.ApprovalPurpose, Execution: exec, RunStartedAt: req.RunStartedAt, RequestedBy: req.RequestedBy, Approvals: req.Approvals, At: req.Approvals[len(req.Approvals)-1].At}
	b, _ := json.Marshal(doc)
	mac, err := a.MAC.Sign(ctx, b)
	if err != nil {
		return 0, AnswerReply{}, true, err
	}
	out, _ := json.Marshal(rotation.SignedApproval{Doc: doc, MAC: mac})
	r := AnswerReply{Outcome: "approved", Execution: exec, Approvals: len(req.Approvals), Needed: needed,
		Message: fmt.Sprintf("approved %d of %d: the run goes on", len(req.Approvals), needed)}
	if !mine {
		r.Message = fmt.Sprintf("the run was approved already (%d of %d); your answer was not needed", len(req.Approvals), needed)
	}
	switch err := a.Executions.Success(ctx, token, string(out)); {
	case errors.Is(err, executions.ErrTaskClosed):
		r.Message = fmt.Sprintf("approved %d of %d; the run had already taken the answer (or ended)", len(req.Approvals), needed)
	case err != nil:
		return 0, AnswerReply{}, true, err
	}
	return http.StatusOK, r, true, nil
}

func (a *AnswerApproval) executionARN(s string) (string, bool) {
	machine := strings.Replace(a.StateMachine, ":stateMachine:", ":execution:", 1)
	if machine == a.StateMachine || s == "" {
		return "", false
	}
	if !strings.HasPrefix(s, "arn:") {
		s = machine + ":" + s
	}
	name, ok := strings.CutPrefix(s, machine+":")
	// An execution name: 1-80 characters, none of them a colon here.
	return s, ok && name != "" && len(name) <= 80 && !strings.ContainsAny(name, ": \t\n")
}

func (a *AnswerApproval) now() time.Time {
	if a.Clock != nil {
		return a.Clock().UTC()
	}
	return time.Now().UTC()
}

// samePrincipal reports whether an approval's by is caller's identity.
func samePrincipal(by string, caller rotation.Principal) bool {
	p, err := rotation.ParseCaller(by)
	return err == nil && p.Same(caller)
}

// cleanComment keeps a comment printable and bounded: no control or
// format characters (a bidi override turns "gnp.exe" into what it is not;
// a zero-width space hides in a word), at most maxComment bytes, cut at a
// character boundary.
func cleanComment(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			r = ' '
		}
		if b.Len()+len(string(r)) > maxComment {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
