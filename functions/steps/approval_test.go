package steps

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamroles"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// The approval's step tier (issue 14): Approve's notify keeps the request
// in the record; answerapproval holds callers to it and signs; VerifyApproval
// lets only that signature through. The KMS HMAC key is crypto/hmac here
// (an implementation nobody here wrote), behind the SDK-shaped stub.

const (
	apMachine   = "arn:aws:states:us-east-1:111122223333:stateMachine:rotation"
	apAccount   = "111122223333"
	apRequester = "arn:aws:iam::111122223333:user/requester"
	apAlice     = "arn:aws:iam::111122223333:user/alice"
	apBob       = "arn:aws:sts::111122223333:assumed-role/security-oncall/bob@example.com"
	apOutsider  = "arn:aws:iam::111122223333:user/mallory"
	apToken     = "task-token-approve-0001"
	apKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/hmac"
)

// approvalInput asks min approvals of alice, security-* roles and the SSO
// approvers; the requester is listed too (a pattern may match them) and
// must still never count.
func approvalInput(min int) string {
	return fmt.Sprintf(`{"user":"%s","requireApproval":true,"minApprovals":%d,"requestedBy":"%s","approvers":["%s","arn:aws:iam::111122223333:role/security-*","%s","arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Approver_*"],"targets":[{"type":"secret","name":"app","secretId":"app/key"}]}`,
		ckUser, min, apRequester, apAlice, apRequester)
}

// kmsStub is a KMS HMAC key: HMAC-SHA-256 with a fixed secret.
type kmsStub struct {
	l   *callLog
	key []byte
}

func (k kmsStub) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write(msg)
	return h.Sum(nil)
}

func (k kmsStub) GenerateMac(ctx context.Context, in *kms.GenerateMacInput, _ ...func(*kms.Options)) (*kms.GenerateMacOutput, error) {
	return callVia(ctx, k.l, stepCall{svc: "KMS", op: "GenerateMac", detail: aws.ToString(in.KeyId)}, func() (*kms.GenerateMacOutput, error) {
		return &kms.GenerateMacOutput{Mac: k.mac(in.Message), KeyId: in.KeyId, MacAlgorithm: in.MacAlgorithm}, nil
	})
}

func (k kmsStub) VerifyMac(ctx context.Context, in *kms.VerifyMacInput, _ ...func(*kms.Options)) (*kms.VerifyMacOutput, error) {
	return callVia(ctx, k.l, stepCall{svc: "KMS", op: "VerifyMac", detail: aws.ToString(in.KeyId)}, func() (*kms.VerifyMacOutput, error) {
		if !hmac.Equal(k.mac(in.Message), in.Mac) {
			// KMS answers an invalid MAC with an error, not MacValid false.
			return nil, &kmstypes.KMSInvalidMacException{Message: aws.String("invalid MAC")}
		}
		return &kms.VerifyMacOutput{MacValid: true, KeyId: in.KeyId}, nil
	})
}

// sfnAnswerStub is the execution waiting at Approve: it takes one answer.
type sfnAnswerStub struct {
	l      *callLog
	mu     *sync.Mutex
	input  string
	status *string
	answer *sfnAnswer // what the task token got; nil while it waits
}

type sfnAnswer struct{ output, err, cause string }

func (s sfnAnswerStub) DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	arn := aws.ToString(in.ExecutionArn)
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "DescribeExecution", detail: arn}, func() (*sfn.DescribeExecutionOutput, error) {
		if arn != execA {
			return nil, &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist: '" + arn + "'")}
		}
		return &sfn.DescribeExecutionOutput{ExecutionArn: in.ExecutionArn, Status: sfntypes.ExecutionStatus(*s.status), Input: aws.String(s.input)}, nil
	})
}

// GetExecutionHistory is the run at Approve: the notify task scheduled
// with its token, closed once answered.
func (s sfnAnswerStub) GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	arn := aws.ToString(in.ExecutionArn)
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "GetExecutionHistory", detail: arn}, func() (*sfn.GetExecutionHistoryOutput, error) {
		if arn != execA {
			return nil, &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist: '" + arn + "'")}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		params := `{"FunctionName":"arn:aws:lambda:us-east-1:111122223333:function:notify","Payload":{"kind":"approval","token":"` + apToken + `","now":"2026-11-01T00:00:00Z","data":{}}}`
		events := []sfntypes.HistoryEvent{
			{Type: sfntypes.HistoryEventTypeTaskScheduled, TaskScheduledEventDetails: &sfntypes.TaskScheduledEventDetails{Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda"), Parameters: aws.String(params), Region: aws.String("us-east-1")}},
		}
		if s.answer.output != "" || s.answer.err != "" || *s.status != "RUNNING" {
			events = append(events, sfntypes.HistoryEvent{Type: sfntypes.HistoryEventTypeTaskSucceeded, TaskSucceededEventDetails: &sfntypes.TaskSucceededEventDetails{Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda")}})
		}
		return &sfn.GetExecutionHistoryOutput{Events: events}, nil
	})
}

func (s sfnAnswerStub) take(token string, a sfnAnswer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token != apToken {
		return &sfntypes.InvalidToken{Message: aws.String("Invalid token")}
	}
	if s.answer.output != "" || s.answer.err != "" {
		return &sfntypes.TaskTimedOut{Message: aws.String("Task Timed Out")}
	}
	*s.answer = a
	return nil
}

func (s sfnAnswerStub) SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "SendTaskSuccess", write: true}, func() (*sfn.SendTaskSuccessOutput, error) {
		return &sfn.SendTaskSuccessOutput{}, s.take(aws.ToString(in.TaskToken), sfnAnswer{output: aws.ToString(in.Output)})
	})
}

func (s sfnAnswerStub) SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "SendTaskFailure", write: true}, func() (*sfn.SendTaskFailureOutput, error) {
		return &sfn.SendTaskFailureOutput{}, s.take(aws.ToString(in.TaskToken), sfnAnswer{err: aws.ToString(in.Error), cause: aws.ToString(in.Cause)})
	})
}

// iamRoleStub answers GetRole for the SSO approver role.
type iamRoleStub struct{ l *callLog }

func (s iamRoleStub) GetRole(ctx context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "GetRole", detail: name}, func() (*iam.GetRoleOutput, error) {
		path := "/"
		if strings.HasPrefix(name, "AWSReservedSSO_") && strings.HasSuffix(name, "_sso") {
			path = "/aws-reserved/sso.amazonaws.com/"
		}
		return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, Path: aws.String(path)}}, nil
	})
}

// approvalRun is a run waiting at Approve, and the endpoint over its world.
type approvalRun struct {
	*rotationRun
	sfn    sfnAnswerStub
	answer sfnAnswer
	status string
	kms    kmsStub
	ep     *AnswerApproval
}

// earlier are the tokens of failed attempts of the Approve state before
// the one that waits (apToken): a retry gets a fresh token, and the same
// entered time.
func newApprovalRun(t *testing.T, min int, earlier ...string) *approvalRun {
	t.Helper()
	p := newRotationRun(t)
	// Started through the request endpoint: signed as the requester
	// (request_test.go), which Validate verifies.
	key := kmsStub{l: &callLog{off: true}, key: []byte("the HMAC key, inside KMS")}
	p.validate.Requests = kmsmac.New(key, apKeyARN)
	input := signedFor(t, &key, approvalInput(min), rotation.ExecutionNameOf(execA), apRequester)
	p.data.Input = json.RawMessage(input)
	p.locked()
	n := &Notify{Topic: &fakeTopic{}, Records: p.records}
	in := p.in("approval")
	for _, tok := range append(earlier, apToken) {
		in.Token = tok
		_, err := n.Run(setupCtx, in)
		p.must("Approve", err)
	}
	// The token is a capability: no secret value keeps it (the record
	// holds its digest; I1's leak check counts every secret value).
	for id, v := range p.e.w.sm.versions {
		if strings.Contains(v.value, apToken) {
			t.Fatalf("record version %s holds the task token", id)
		}
	}
	a := &approvalRun{rotationRun: p, status: "RUNNING", kms: kmsStub{l: p.e.l, key: []byte("the HMAC key, inside KMS")}}
	a.sfn = sfnAnswerStub{l: p.e.l, mu: &sync.Mutex{}, input: input, status: &a.status, answer: &a.answer}
	a.ep = &AnswerApproval{Executions: executions.NewAnswerer(a.sfn), Records: p.records, MAC: kmsmac.New(a.kms, apKeyARN),
		Roles: iamroles.New(iamRoleStub{l: p.e.l}), StateMachine: apMachine, Account: apAccount, Clock: p.e.w.clock}
	return a
}

// ask is one POST by caller.
func (a *approvalRun) ask(ctx context.Context, caller, decision, comment string) stepInvocation {
	b, _ := json.Marshal(AnswerBody{Execution: execA, Decision: decision, Comment: comment})
	req := events.LambdaFunctionURLRequest{Body: string(b)}
	req.RequestContext.HTTP.Method = http.MethodPost
	req.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: caller, AccountID: apAccount}}
	return invokeLambda(ctx, "answerapproval", a.ep.HandleURL, req)
}

func reply(t *testing.T, inv stepInvocation) (int, AnswerReply) {
	t.Helper()
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(inv.out, &resp); err != nil {
		t.Fatalf("response %s: %v", inv.out, err)
	}
	var r AnswerReply
	if inv.err == nil {
		if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
			t.Fatalf("body %q: %v", resp.Body, err)
		}
	}
	return resp.StatusCode, r
}

// verify runs VerifyApproval on what the task token got.
func (a *approvalRun) verify(ctx context.Context, answer string) stepInvocation {
	in := a.in("")
	in.Data.Answer = json.RawMessage(answer)
	return invokeLambda(ctx, "verifyapproval", (&VerifyApproval{MAC: kmsmac.New(a.kms, apKeyARN)}).Run, in)
}

func approvalScenarios() []stepScenario {
	return []stepScenario{
		{
			// One approval of one, by a listed approver: recorded, signed,
			// sent; every failing call leaves it answerable again.
			name: "AnswerApproval", state: "",
			setup: func(t *testing.T) *stepEnv {
				a := newApprovalRun(t, 1)
				e := a.recording(func(ctx context.Context) stepInvocation { return a.ask(ctx, apAlice, "approve", "ok") })
				e.check = func(t *testing.T, inv stepInvocation) {
					st, r := reply(t, inv)
					if inv.err != nil {
						if a.answer.output != "" && st != 0 {
							t.Errorf("failed (%v) after answering the token", inv.err)
						}
						return
					}
					if st != http.StatusOK || r.Outcome != "approved" {
						t.Errorf("answer %d %+v, want 200 approved", st, r)
					}
					if a.answer.output == "" {
						t.Fatalf("answered %d %+v without SendTaskSuccess", st, r)
					}
					v := a.verify(context.Background(), a.answer.output)
					var got rotation.Approval
					if v.err != nil || json.Unmarshal(v.out, &got) != nil || len(got.Approvals) != 1 || got.Approvals[0].By != apAlice || got.RequestedBy != apRequester {
						t.Errorf("VerifyApproval of the signed answer: %v %s", v.err, v.out)
					}
					if strings.Contains(string(inv.out)+inv.log, apToken) {
						t.Errorf("the task token is in the answer or the log: %s %s", inv.out, inv.log)
					}
				}
				return e
			},
		},
		{
			name: "VerifyApproval", state: "VerifyApproval",
			setup: func(t *testing.T) *stepEnv {
				a := newApprovalRun(t, 1)
				if st, _ := reply(t, a.ask(setupCtx, apAlice, "approve", "ok")); st != http.StatusOK {
					t.Fatalf("setup: answer %d", st)
				}
				e := a.recording(func(ctx context.Context) stepInvocation { return a.verify(ctx, a.answer.output) })
				e.check = func(t *testing.T, inv stepInvocation) {
					if inv.err == nil && !strings.Contains(string(inv.out), apAlice) {
						t.Errorf("verified approval %s does not name alice", inv.out)
					}
				}
				return e
			},
		},
	}
}

func TestApprovalScenarios(t *testing.T) {
	t.Parallel()
	asl := loadASL(t)
	for _, sc := range approvalScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, asl, sc)
		})
	}
}

func TestAnswerApprovalHoldsCallersToTheRun(t *testing.T) {
	t.Parallel()
	const sso = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Approver_sso/erin@example.com"
	const lookalike = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Approver_fake/eve" // same name pattern, path /
	for _, c := range []struct {
		name    string
		min     int
		answers [][3]string // caller, decision, comment
		status  []int
		says    []string // in each reply's message, in order
		sent    string   // what the token got: "", "success", "ApprovalRejected"
	}{
		{name: "self-approval refused, the run keeps waiting", min: 1, answers: [][3]string{{apRequester, "approve", ""}},
			status: []int{403}, says: []string{"requester never counts"}},
		{name: "outsider refused", min: 1, answers: [][3]string{{apOutsider, "approve", ""}}, status: []int{403}, says: []string{"not among"}},
		{name: "root refused", min: 1, answers: [][3]string{{"arn:aws:iam::111122223333:root", "approve", ""}}, status: []int{403}, says: []string{"root user"}},
		{name: "federated refused", min: 1, answers: [][3]string{{"arn:aws:sts::111122223333:federated-user/x", "approve", ""}}, status: []int{403}, says: []string{"federated"}},
		{name: "another account refused", min: 1, answers: [][3]string{{"arn:aws:iam::444455556666:user/alice", "approve", ""}}, status: []int{403}, says: []string{"not among"}},
		{name: "two distinct approvers for two", min: 2, answers: [][3]string{{apAlice, "approve", "a"}, {apAlice, "approve", "again"}, {apBob, "approve", "b"}},
			status: []int{200, 200, 200}, says: []string{"approved 1 of 2", "already recorded: 1 of 2", "approved 2 of 2"}, sent: "success"},
		{name: "an SSO role, its path looked up", min: 1, answers: [][3]string{{lookalike, "approve", ""}, {sso, "approve", ""}},
			status: []int{403, 200}, says: []string{"not among", "approved 1 of 1"}, sent: "success"},
		{name: "rejection names the verified rejector", min: 2, answers: [][3]string{{apAlice, "approve", ""}, {apBob, "reject", "not\x1b[31m now"}, {apAlice, "approve", ""}},
			status: []int{200, 200, 409}, says: []string{"approved 1 of 2", "rejected", "already rejected by " + apBob}, sent: "ApprovalRejected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newApprovalRun(t, c.min)
			a.e.l.off = false
			for i, ans := range c.answers {
				inv := a.ask(context.Background(), ans[0], ans[1], ans[2])
				st, r := reply(t, inv)
				if inv.err != nil || st != c.status[i] || !strings.Contains(r.Message, c.says[i]) {
					t.Errorf("answer %d by %s: %d %+v %v; want %d saying %q", i, ans[0], st, r, inv.err, c.status[i], c.says[i])
				}
				if st == 403 && r.Outcome != ApproverRefused {
					t.Errorf("a 403's outcome is %q, want ApproverRefused", r.Outcome)
				}
			}
			switch c.sent {
			case "":
				if a.answer != (sfnAnswer{}) {
					t.Errorf("the token was answered: %+v", a.answer)
				}
				req, ok, err := a.records.PendingApproval(context.Background(), ckUser, execA)
				if err != nil || !ok || len(req.Approvals) != 0 || req.Rejected != nil {
					t.Errorf("the run no longer waits untouched: %+v %v %v", req, ok, err)
				}
			case "success":
				if v := a.verify(context.Background(), a.answer.output); v.err != nil {
					t.Errorf("VerifyApproval refused the endpoint's own answer: %v", v.err)
				}
			default:
				if a.answer.err != c.sent || !strings.Contains(a.answer.cause, apBob) || !strings.Contains(a.answer.cause, "verified") || strings.ContainsRune(a.answer.cause, 0x1b) {
					t.Errorf("the token got %+v, want %s naming the verified rejector, printable", a.answer, c.sent)
				}
				// The failure alert says the rejection is verified: the record holds it.
				in := a.in("failure")
				in.Data.Failure = map[string]rotation.StateError{"Approve": {Error: "ApprovalRejected", Cause: a.answer.cause}}
				topic := &fakeTopic{}
				if _, err := (&Notify{Topic: topic, Records: a.records, Seals: kmsmac.New(a.kms, apKeyARN)}).Run(context.Background(), in); err != nil || !strings.Contains(topic.body, "The rejection is verified: answerapproval authenticated "+apBob) {
					t.Errorf("the rejection alert: %v\n%s", err, topic.body)
				}
			}
		})
	}
}

func TestAnswerApprovalRefusesWhatIsNoAnswer(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 1)
	post := func(method, body string, authorizer bool) (int, AnswerReply) {
		req := events.LambdaFunctionURLRequest{Body: body}
		req.RequestContext.HTTP.Method = method
		if authorizer {
			req.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: apAlice}}
		}
		return reply(t, invokeLambda(context.Background(), "answerapproval", a.ep.HandleURL, req))
	}
	for _, c := range []struct {
		method, body string
		auth         bool
		status       int
		outcome      string
	}{
		{method: "GET", auth: true, status: 405, outcome: BadRequest},
		{method: "POST", body: `{"execution":"a","decision":"approve"}`, auth: false, status: 403, outcome: ApproverRefused},
		{method: "POST", body: `{"execution":"a","decision":"maybe"}`, auth: true, status: 400, outcome: BadRequest},
		{method: "POST", body: `{"execution":"a","decision":"approve","approvedBy":"arn:aws:iam::1:user/ceo"}`, auth: true, status: 400, outcome: BadRequest},
		{method: "POST", body: `{"execution":"nope","decision":"approve"}`, auth: true, status: 404, outcome: NoApprovalPending},
		{method: "POST", body: `{"execution":"arn:aws:states:us-east-1:111122223333:execution:other:a","decision":"approve"}`, auth: true, status: 404, outcome: NoApprovalPending},
		{method: "POST", body: `{"execution":"a","decision":"approve"}`, auth: true, status: 200, outcome: "approved"}, // by name
	} {
		st, r := post(c.method, c.body, c.auth)
		if st != c.status || r.Outcome != c.outcome || strings.Contains(r.Message, "ceo") {
			t.Errorf("%s %s (authorizer %v): %d %+v, want %d %s", c.method, c.body, c.auth, st, r, c.status, c.outcome)
		}
	}
	// Over: the execution ended.
	a.status = "FAILED"
	if st, r := post("POST", `{"execution":"a","decision":"approve"}`, true); st != 409 || r.Outcome != NoApprovalPending {
		t.Errorf("an ended run: %d %+v, want 409", st, r)
	}
}

// Two approvers at once: the record's compare-and-swap keeps both.
func TestAnswerApprovalConcurrentApprovers(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 2)
	var wg sync.WaitGroup
	for _, who := range []string{apAlice, apBob} {
		wg.Go(func() {
			if st, r := reply(t, a.ask(context.Background(), who, "approve", "")); st != 200 {
				t.Errorf("%s: %d %+v", who, st, r)
			}
		})
	}
	wg.Wait()
	if a.answer.output == "" {
		t.Fatalf("two approvals of two, and the token got %+v", a.answer)
	}
	if v := a.verify(context.Background(), a.answer.output); v.err != nil {
		t.Errorf("VerifyApproval: %v", v.err)
	}
}

func TestVerifyApprovalRefusesForgeries(t *testing.T) {
	t.Parallel()
	const ceo = "arn:aws:iam::111122223333:user/ceo"
	a := newApprovalRun(t, 1)
	mac := kmsmac.New(a.kms, apKeyARN)
	sign := func(doc rotation.ApprovalDoc) string {
		b, _ := json.Marshal(doc)
		m, err := mac.Sign(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(rotation.SignedApproval{Doc: doc, MAC: m})
		return string(out)
	}
	good := func() rotation.ApprovalDoc {
		return rotation.ApprovalDoc{Purpose: rotation.ApprovalPurpose, Execution: execA, RunStartedAt: a.data.Plan.StartedAt, RequestedBy: apRequester,
			Approvals: []rotation.ApprovalEntry{{By: apAlice, At: a.e.w.now}}, At: a.e.w.now}
	}
	with := func(f func(*rotation.ApprovalDoc)) string {
		d := good()
		f(&d)
		return sign(d)
	}
	tampered := func() string {
		var s rotation.SignedApproval
		_ = json.Unmarshal([]byte(sign(good())), &s)
		s.Doc.Approvals[0].By = ceo
		b, _ := json.Marshal(s)
		return string(b)
	}()
	for _, c := range []struct{ name, answer, says string }{
		{"raw SendTaskSuccess", `{"approvedBy":"` + ceo + `","comment":"trust me"}`, "not a signed approval"},
		{"raw with a MAC of nothing", `{"doc":{"purpose":"keyrotator/approval/v1","execution":"` + execA + `","requestedBy":"","approvals":[{"by":"` + ceo + `","at":"2026-01-01T00:00:00Z"}],"at":"2026-01-01T00:00:00Z"},"mac":"AAAA"}`, "MAC does not verify"},
		{"tampered after signing", tampered, "MAC does not verify"},
		{"another execution", with(func(d *rotation.ApprovalDoc) { d.Execution = execB }), "another execution"},
		{"another purpose", with(func(d *rotation.ApprovalDoc) { d.Purpose = "keyrotator/request/v1" }), "another purpose"},
		{"another requester", with(func(d *rotation.ApprovalDoc) { d.RequestedBy = apAlice }), "another requester"},
		{"an approver off the list", with(func(d *rotation.ApprovalDoc) { d.Approvals[0].By = apOutsider }), "not among"},
		{"the requester", with(func(d *rotation.ApprovalDoc) { d.Approvals[0].By = apRequester }), "requester never counts"},
		{"no approvals", with(func(d *rotation.ApprovalDoc) { d.Approvals = nil }), "0 distinct approver(s), 1 needed"},
		{"not JSON", `"yes"`, "not a JSON object"},
	} {
		inv := a.verify(context.Background(), c.answer)
		var forged *rotation.ApprovalForged
		if !errors.As(inv.err, &forged) || !strings.Contains(forged.What, c.says) {
			t.Errorf("%s: %v, want ApprovalForged saying %q", c.name, inv.err, c.says)
			continue
		}
		// A forged approvedBy appears nowhere keyrotator writes.
		if c.name != "an approver off the list" && (strings.Contains(inv.err.Error()+inv.log+string(inv.out), "ceo") || strings.Contains(inv.err.Error(), "trust me")) {
			t.Errorf("%s: the forged claim is repeated: %v\n%s", c.name, inv.err, inv.log)
		}
	}
	// minApprovals 2: one approver twice is one.
	a2 := newApprovalRun(t, 2)
	d := good()
	d.Approvals = append(d.Approvals, rotation.ApprovalEntry{By: apAlice, At: a.e.w.now})
	b, _ := json.Marshal(d)
	m, _ := kmsmac.New(a2.kms, apKeyARN).Sign(context.Background(), b)
	out, _ := json.Marshal(rotation.SignedApproval{Doc: d, MAC: m})
	var forged *rotation.ApprovalForged
	if inv := a2.verify(context.Background(), string(out)); !errors.As(inv.err, &forged) || !strings.Contains(forged.What, "1 distinct approver(s), 2 needed") {
		t.Errorf("one approver twice for two: %v", inv.err)
	}
	if !slices.Contains(rotation.ErrorNames, "ApprovalForged") {
		t.Error("ApprovalForged is not one of rotation.ErrorNames")
	}
}

// racingRecords is the record with another answer landing between this
// answer's read and its write, once.
type racingRecords struct {
	answerRecords
	once       sync.Once
	interleave func()
}

func (r *racingRecords) PendingApproval(ctx context.Context, user, exec string) (rotation.ApprovalRequest, bool, error) {
	req, ok, err := r.answerRecords.PendingApproval(ctx, user, exec)
	r.once.Do(r.interleave) // the stale read is returned: the write must notice
	return req, ok, err
}

// The compare-and-swap, deterministically: alice reads, bob's approval is
// recorded, alice writes on her stale read — and neither answer is lost.
func TestAnswerApprovalLosesNoAnswerToARace(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 2)
	bob := *a.ep
	a.ep.Records = &racingRecords{answerRecords: a.records, interleave: func() {
		b, _ := json.Marshal(AnswerBody{Execution: execA, Decision: "approve"})
		req := events.LambdaFunctionURLRequest{Body: string(b)}
		req.RequestContext.HTTP.Method = http.MethodPost
		req.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: apBob}}
		if st, r := reply(t, invokeLambda(context.Background(), "answerapproval", bob.HandleURL, req)); st != 200 || r.Approvals != 1 {
			t.Errorf("bob, in between: %d %+v", st, r)
		}
	}}
	st, r := reply(t, a.ask(context.Background(), apAlice, "approve", ""))
	if st != 200 || r.Outcome != "approved" || r.Approvals != 2 {
		t.Fatalf("alice after the race: %d %+v, want approved 2 of 2", st, r)
	}
	var signed rotation.SignedApproval
	if err := json.Unmarshal([]byte(a.answer.output), &signed); err != nil || len(signed.Doc.Approvals) != 2 {
		t.Fatalf("the signed approval: %s", a.answer.output)
	}
	if signed.Doc.Approvals[0].By != apBob || signed.Doc.Approvals[1].By != apAlice {
		t.Errorf("approvals %+v, want bob's then alice's", signed.Doc.Approvals)
	}
}

// A retry of the Approve state waits on a fresh task token: its request
// replaces the failed attempt's, and answers go to the new token.
func TestApproveRetriedWithAFreshToken(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 1, "an-earlier-attempts-token")
	req, ok, err := a.records.PendingApproval(context.Background(), ckUser, execA)
	if err != nil || !ok || req.TokenSHA256 != rotation.TokenDigest(apToken) {
		t.Fatalf("the request kept: %+v %v %v", req, ok, err)
	}
	if st, r := reply(t, a.ask(context.Background(), apAlice, "approve", "")); st != 200 || r.Outcome != "approved" || a.answer.output == "" {
		t.Errorf("an answer to the retry's request: %d %+v", st, r)
	}
}
