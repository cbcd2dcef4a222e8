package steps

// The step tier's scenario harness, in the style of aws-doc-sdk-examples
// gov2/testtools/scenarios.go (RunScenarioTests): a step runs once clean
// over in-memory fakes of every adapter, recording each call it makes; then
// once per recorded call and per error class, with that call failing, and
// every run is held to the same assertions. The list of failing runs is
// generated from the clean run's calls, never written by hand, so a step
// that gains a call gains its failure runs.
//
// The AWS adapters are the real ones (iamkeys, record, alerts, executions,
// trail) over SDK-shaped fakes (the world of createkey_test.go for IAM and
// Secrets Manager; small fakes here for SNS, Step Functions and
// CloudTrail), so an injected error is the error the SDK returns
// (smithy.OperationError over the HTTP response error) and the adapter's
// own classification (awserr) is in the path. The target kinds and the STS
// proof are faked at the step's interface (Target, prover), failing with
// what those adapters return.
//
// Each step runs through lambdautil.Handler, the boundary every Lambda
// shares, with its log in a buffer: what the state machine sees is the
// error as that boundary names it, and what the log says is scanned too.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// errClass is one way a call goes wrong, as each kind of adapter reports it.
type errClass struct {
	name string
	// sdk is the error the SDK returns for op of service svc.
	sdk func(svc, op string) error
	// target is the error a target kind's code returns (functions/targets:
	// they classify their APIs' answers themselves).
	target func(name string) error
	// want is the errorType the state machine must see when the call's
	// failure ends the step, by adapter ("aws" or "target"); "" allows
	// success (the adapter reads absence as an answer) or any named error
	// but Retryable.
	want map[string]string
}

// The classes. HTTP statuses and codes are each service's: IAM and STS
// (Query protocol) answer Throttling and AccessDenied; Secrets Manager,
// Step Functions and CloudTrail (JSON) ThrottlingException and
// AccessDeniedException; SNS (Query) Throttled with HTTP 429 and
// AuthorizationError (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors).
var (
	errThrottle = errClass{
		name: "throttle",
		sdk: func(svc, op string) error {
			code, status := "ThrottlingException", 400
			switch svc {
			case "IAM", "STS":
				code = "Throttling"
			case "SNS":
				code, status = "Throttled", 429
			}
			return sdkErr(svc, op, status, &smithy.GenericAPIError{Code: code, Message: "Rate exceeded", Fault: smithy.FaultClient})
		},
		target: func(name string) error {
			return &rotation.Retryable{Reason: "target " + name + ": rate limited (429) past this attempt's budget"}
		},
		want: map[string]string{"aws": "Retryable", "target": "Retryable"},
	}
	errDenied = errClass{
		name: "denied",
		sdk: func(svc, op string) error {
			code, status := "AccessDeniedException", 400
			switch svc {
			case "IAM", "STS":
				code, status = "AccessDenied", 403
			case "SNS":
				code, status = "AuthorizationError", 403
			}
			action := strings.ToLower(strings.ReplaceAll(svc, " ", "")) + ":" + op
			return sdkErr(svc, op, status, &smithy.GenericAPIError{Code: code, Fault: smithy.FaultClient,
				Message: "User: arn:aws:sts::111122223333:assumed-role/keyrotator-task/fn is not authorized to perform: " + action + " on resource: injected because no identity-based policy allows the " + action + " action"})
		},
		target: func(name string) error {
			return &rotation.TargetFailed{Target: name, Reason: "the API refused the connection's credentials (401 Unauthorized)"}
		},
		want: map[string]string{"aws": "AccessDenied", "target": "TargetFailed"},
	}
	errNotFound = errClass{
		name: "notfound",
		sdk: func(svc, op string) error {
			msg := aws.String("injected: not found")
			var e error
			switch svc {
			case "IAM":
				e = &iamtypes.NoSuchEntityException{Message: msg}
			case "Secrets Manager":
				e = &smtypes.ResourceNotFoundException{Message: msg}
			case "SFN":
				e = &sfntypes.ExecutionDoesNotExist{Message: msg}
			case "SNS":
				e = &snstypes.NotFoundException{Message: msg}
			default:
				return nil // no not-found for this call (CloudTrail's LookupEvents, STS)
			}
			if absenceIsAnswer[svc+"."+op] {
				return nil
			}
			return sdkErr(svc, op, 404, e)
		},
		target: func(name string) error {
			return &rotation.TargetFailed{Target: name, Reason: "the place the target names is gone (404 Not Found)"}
		},
		want: map[string]string{"aws": "", "target": "TargetFailed"},
	}
	// deadline is the invocation's time running out during the call: the
	// SDK returns the context's error, and every later call fails too.
	errDeadline = errClass{
		name: "deadline",
		sdk: func(svc, op string) error {
			return &smithy.OperationError{ServiceID: svc, OperationName: op, Err: &smithy.CanceledError{Err: context.DeadlineExceeded}}
		},
		target: func(name string) error {
			return fmt.Errorf("target %s: Post \"https://api.example/\": %w", name, context.DeadlineExceeded)
		},
		want: map[string]string{"aws": "Retryable", "target": "Retryable"},
	}
	errClasses = []errClass{errThrottle, errDenied, errNotFound, errDeadline}
)

// absenceIsAnswer are the calls whose not-found the adapter reads as an
// answer, not an error: injecting one while the thing exists would be a
// world that cannot be (the key is there, IAM says it is not), and the
// clean runs already meet the real absence.
var absenceIsAnswer = map[string]bool{
	"IAM.DeleteAccessKey":            true, // iamkeys.Delete: already deleted (I5)
	"Secrets Manager.DescribeSecret": true, // record: no record yet, so no lock
	"SFN.DescribeExecution":          true, // executions.Running: a run that is gone does not run
	"SFN.GetExecutionHistory":        true, // executions.PendingToken: a run that is gone waits for nothing
}

// sdkErr is err as the SDK returns it: inside the HTTP response error,
// inside the operation error.
func sdkErr(svc, op string, status int, err error) error {
	return &smithy.OperationError{ServiceID: svc, OperationName: op, Err: &awshttp.ResponseError{
		RequestID: "injected-request",
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err,
		},
	}}
}

// stepCall is one recorded call of a run.
type stepCall struct {
	svc, op string // "IAM", "DeleteAccessKey"; a target's svc is "target:<kind>"
	detail  string // what it was on: a key id, a version, a target's name
	write   bool
}

func (c stepCall) String() string { return c.svc + "." + c.op + "(" + c.detail + ")" }

// key is the call's name without its detail, as recovers names calls.
func (c stepCall) key() string { return c.svc + "." + c.op }

func (c stepCall) adapter() string {
	if strings.HasPrefix(c.svc, "target:") {
		return "target"
	}
	return "aws"
}

// injectedFault is the one call of a run that fails: the at-th, with class;
// after, its effect lands and its answer is lost.
type injectedFault struct {
	at    int
	class errClass
	after bool
}

// callLog is every adapter's calls of one run, in order, and the fault.
type callLog struct {
	mu     sync.Mutex
	calls  []stepCall
	fault  *injectedFault
	off    bool   // while a scenario sets up: nothing recorded, nothing fails
	expire func() // ends the run's invocation (the deadline class)
}

// do records c and runs effect, or fails as the fault says. A call after
// the invocation's deadline fails as the SDK fails it.
func (l *callLog) do(ctx context.Context, c stepCall, effect func() error) error {
	l.mu.Lock()
	if l.off {
		l.mu.Unlock()
		return effect()
	}
	i := len(l.calls)
	l.calls = append(l.calls, c)
	f := l.fault
	l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		if c.adapter() == "target" {
			return fmt.Errorf("target %s: %w", c.detail, err)
		}
		return &smithy.OperationError{ServiceID: c.svc, OperationName: c.op, Err: &smithy.CanceledError{Err: err}}
	}
	if f == nil || f.at != i {
		return effect()
	}
	if f.after {
		if err := effect(); err != nil {
			return err
		}
	}
	if f.class.name == errDeadline.name && l.expire != nil {
		l.expire()
	}
	if c.adapter() == "target" {
		return f.class.target(c.detail)
	}
	return f.class.sdk(c.svc, c.op)
}

// recorded is a copy of the calls so far.
func (l *callLog) recorded() []stepCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// callVia is do for a call with an answer.
func callVia[O any](ctx context.Context, l *callLog, c stepCall, fn func() (O, error)) (O, error) {
	var out O
	err := l.do(ctx, c, func() error {
		var err error
		out, err = fn()
		return err
	})
	if err != nil {
		var zero O
		return zero, err
	}
	return out, nil
}

// expiring is an invocation's context whose deadline can be made to pass
// now: ctx.Err() is then context.DeadlineExceeded, as at a real deadline.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiring(parent context.Context) *expiring {
	return &expiring{Context: parent, done: make(chan struct{})}
}

func (e *expiring) Done() <-chan struct{} { return e.done }

func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (e *expiring) expire() { e.once.Do(func() { close(e.done) }) }

// iamStub is IAM behind the call log, over the world's fake.
type iamStub struct {
	l *callLog
	f *fakeIAM
	// secrets are every secret access key IAM handed out: the canaries.
	secrets *[]string
}

func (s iamStub) GetUser(ctx context.Context, in *iam.GetUserInput, o ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "GetUser", detail: aws.ToString(in.UserName)}, func() (*iam.GetUserOutput, error) { return s.f.GetUser(ctx, in, o...) })
}

func (s iamStub) ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, o ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "ListAccessKeys", detail: aws.ToString(in.UserName)}, func() (*iam.ListAccessKeysOutput, error) { return s.f.ListAccessKeys(ctx, in, o...) })
}

func (s iamStub) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, o ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "CreateAccessKey", detail: aws.ToString(in.UserName), write: true}, func() (*iam.CreateAccessKeyOutput, error) {
		out, err := s.f.CreateAccessKey(ctx, in, o...)
		if err == nil {
			*s.secrets = append(*s.secrets, aws.ToString(out.AccessKey.SecretAccessKey))
		}
		return out, err
	})
}

func (s iamStub) UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, o ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "UpdateAccessKey", detail: aws.ToString(in.AccessKeyId) + " " + string(in.Status), write: true}, func() (*iam.UpdateAccessKeyOutput, error) { return s.f.UpdateAccessKey(ctx, in, o...) })
}

func (s iamStub) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, o ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "DeleteAccessKey", detail: aws.ToString(in.AccessKeyId), write: true}, func() (*iam.DeleteAccessKeyOutput, error) { return s.f.DeleteAccessKey(ctx, in, o...) })
}

func (s iamStub) GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, o ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "IAM", op: "GetAccessKeyLastUsed", detail: aws.ToString(in.AccessKeyId)}, func() (*iam.GetAccessKeyLastUsedOutput, error) { return s.f.GetAccessKeyLastUsed(ctx, in, o...) })
}

// proverStub is the STS proof (prove.STS) behind the call log: it wraps
// its error as prove.STS does.
type proverStub struct {
	l *callLog
	f *fakeIAM
}

func (p proverStub) CallerARN(ctx context.Context, key rotation.Credential) (string, error) {
	arn, err := callVia(ctx, p.l, stepCall{svc: "STS", op: "GetCallerIdentity", detail: key.AccessKeyID}, func() (string, error) { return p.f.CallerARN(ctx, key) })
	if err != nil {
		return "", fmt.Errorf("sts GetCallerIdentity with %s: %w", key.AccessKeyID, err)
	}
	return arn, nil
}

// smStub is Secrets Manager behind the call log, over the world's fake.
type smStub struct {
	l *callLog
	f *fakeSM
}

func (s smStub) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "Secrets Manager", op: "DescribeSecret", detail: aws.ToString(in.SecretId)}, func() (*secretsmanager.DescribeSecretOutput, error) { return s.f.DescribeSecret(ctx, in, o...) })
}

func (s smStub) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "Secrets Manager", op: "CreateSecret", detail: aws.ToString(in.Name), write: true}, func() (*secretsmanager.CreateSecretOutput, error) { return s.f.CreateSecret(ctx, in, o...) })
}

func (s smStub) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "Secrets Manager", op: "GetSecretValue", detail: aws.ToString(in.VersionId)}, func() (*secretsmanager.GetSecretValueOutput, error) { return s.f.GetSecretValue(ctx, in, o...) })
}

func (s smStub) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "Secrets Manager", op: "PutSecretValue", detail: aws.ToString(in.ClientRequestToken), write: true}, func() (*secretsmanager.PutSecretValueOutput, error) { return s.f.PutSecretValue(ctx, in, o...) })
}

func (s smStub) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	c := stepCall{svc: "Secrets Manager", op: "UpdateSecretVersionStage", detail: aws.ToString(in.VersionStage) + " " + aws.ToString(in.RemoveFromVersionId) + "->" + aws.ToString(in.MoveToVersionId), write: true}
	return callVia(ctx, s.l, c, func() (*secretsmanager.UpdateSecretVersionStageOutput, error) {
		return s.f.UpdateSecretVersionStage(ctx, in, o...)
	})
}

// snsStub is the alert topic: what was published.
type snsStub struct {
	l    *callLog
	mu   sync.Mutex
	sent []string // subject + "\n" + message
}

func (s *snsStub) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return callVia(ctx, s.l, stepCall{svc: "SNS", op: "Publish", detail: aws.ToString(in.Subject), write: true}, func() (*sns.PublishOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sent = append(s.sent, aws.ToString(in.Subject)+"\n"+aws.ToString(in.Message))
		return &sns.PublishOutput{MessageId: aws.String(fmt.Sprintf("msg-%d", len(s.sent)))}, nil
	})
}

// sfnStub is Step Functions' DescribeExecution: running says which run.
type sfnStub struct {
	l       *callLog
	running map[string]bool
}

func (s sfnStub) DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	arn := aws.ToString(in.ExecutionArn)
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "DescribeExecution", detail: arn}, func() (*sfn.DescribeExecutionOutput, error) {
		running, ok := s.running[arn]
		if !ok {
			return nil, &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist: '" + arn + "'")}
		}
		st := sfntypes.ExecutionStatusFailed
		if running {
			st = sfntypes.ExecutionStatusRunning
		}
		return &sfn.DescribeExecutionOutput{ExecutionArn: in.ExecutionArn, Status: st}, nil
	})
}

// trailStub is CloudTrail's event history: the events a scenario sets,
// by access key id, and IAM's CreateAccessKey events, from the fake IAM.
type trailStub struct {
	l      *callLog
	events map[string][]cttypes.Event // by access key id
	iam    *fakeIAM
}

func (s trailStub) LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	id := ""
	byName := false
	for _, a := range in.LookupAttributes {
		id = aws.ToString(a.AttributeValue)
		byName = a.AttributeKey == cttypes.LookupAttributeKeyEventName
	}
	return callVia(ctx, s.l, stepCall{svc: "CloudTrail", op: "LookupEvents", detail: id}, func() (*cloudtrail.LookupEventsOutput, error) {
		if byName && id == "CreateAccessKey" && s.iam != nil && !s.iam.trailLag {
			var out cloudtrail.LookupEventsOutput
			for _, e := range s.iam.trail {
				raw := `{"userIdentity":{"arn":"` + e.maker + `"},"responseElements":{"accessKey":{"accessKeyId":"` + e.id + `"}}}`
				out.Events = append(out.Events, cttypes.Event{EventName: aws.String("CreateAccessKey"), CloudTrailEvent: aws.String(raw)})
			}
			return &out, nil
		}
		return &cloudtrail.LookupEventsOutput{Events: s.events[id]}, nil
	})
}

// targetStub is one target kind's code (Target, UsageReporter, Cleaner)
// behind the call log: each target it is given holds a key.
type targetStub struct {
	l    *callLog
	kind string
	mu   sync.Mutex
	held map[string]string // target name → the key id it holds
	got  map[string]string // target name → the secret it was given
	old  map[string]*time.Time
	gone []string // targets whose old credential was cleaned up
}

func newTargetStub(l *callLog, kind string) *targetStub {
	return &targetStub{l: l, kind: kind, held: map[string]string{}, got: map[string]string{}, old: map[string]*time.Time{}}
}

func (s *targetStub) c(op, name string, write bool) stepCall {
	return stepCall{svc: "target:" + s.kind, op: op, detail: name, write: write}
}

func (s *targetStub) Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error) {
	return callVia(ctx, s.l, s.c("Plan", tg.Name, false), func() (rotation.Receipt, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return rotation.Receipt{Target: tg.Name, Type: s.kind, Where: "place-of-" + tg.Name, PreviousKeyID: s.held[tg.Name],
			Planned: []string{fmt.Sprintf("replace %s with the new key", oldKeyID)}}, nil
	})
}

func (s *targetStub) Update(ctx context.Context, tg rotation.Target, _, _ string, key rotation.Credential) (rotation.Receipt, error) {
	return callVia(ctx, s.l, s.c("Update", tg.Name, true), func() (rotation.Receipt, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		prev := s.held[tg.Name]
		s.held[tg.Name], s.got[tg.Name] = key.AccessKeyID, key.Secret()
		return rotation.Receipt{Target: tg.Name, Type: s.kind, Where: "place-of-" + tg.Name, PreviousKeyID: prev, NewKeyID: key.AccessKeyID, Changed: prev != key.AccessKeyID}, nil
	})
}

func (s *targetStub) Usage(ctx context.Context, tg rotation.Target, r rotation.Receipt) ([]rotation.CredentialUse, error) {
	return callVia(ctx, s.l, s.c("Usage", tg.Name, false), func() ([]rotation.CredentialUse, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return []rotation.CredentialUse{{Target: tg.Name, Credential: "cred-old-" + tg.Name, Role: "old", LastUsed: s.old[tg.Name]},
			{Target: tg.Name, Credential: "cred-new-" + tg.Name, Role: "new"}}, nil
	})
}

func (s *targetStub) Cleanup(ctx context.Context, tg rotation.Target, _ rotation.Receipt) (string, error) {
	return callVia(ctx, s.l, s.c("Cleanup", tg.Name, true), func() (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !slices.Contains(s.gone, tg.Name) {
			s.gone = append(s.gone, tg.Name)
		}
		return tg.Name + ": deleted the old credential cred-old-" + tg.Name, nil
	})
}

// stepInvocation is one run of a step through the Lambda boundary.
type stepInvocation struct {
	out      json.RawMessage // the output as the state machine gets it
	err      error           // as lambdautil names it
	log      string          // the one log line
	panicked bool
}

// invokeLambda runs fn with in through lambdautil.Handler, as the Lambda does.
func invokeLambda[In, Out any](ctx context.Context, task string, fn func(context.Context, In) (Out, error), in In) stepInvocation {
	var buf bytes.Buffer
	h := lambdautil.Handler(slog.New(slog.NewJSONHandler(&buf, nil)), task, fn, nil)
	raw, err := json.Marshal(in)
	if err != nil {
		panic(err) // the event is the test's own
	}
	out, err := h(ctx, raw)
	var inv stepInvocation
	inv.out, _ = json.Marshal(out)
	inv.err, inv.log = err, buf.String()
	var internal *rotation.Internal
	inv.panicked = errors.As(err, &internal) && strings.Contains(internal.Reason, ": panic: ")
	return inv
}

// aslState is what the state machine does with a Task state's errors.
type aslState struct {
	retried, caught [][]string // ErrorEquals lists, the enclosing Map's Catch included
}

// loadASL reads the state machine's Task states.
func loadASL(t *testing.T) map[string]aslState {
	t.Helper()
	b, err := os.ReadFile("../../statemachine/rotation.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		ErrorEquals []string `json:"ErrorEquals"`
	}
	type state struct {
		Type          string           `json:"Type"`
		Retry         []rule           `json:"Retry"`
		Catch         []rule           `json:"Catch"`
		ItemProcessor *json.RawMessage `json:"ItemProcessor"`
		Iterator      *json.RawMessage `json:"Iterator"`
	}
	type machine struct {
		States map[string]state `json:"States"`
	}
	out := map[string]aslState{}
	var walk func(m machine, outer [][]string)
	walk = func(m machine, outer [][]string) {
		for name, s := range m.States {
			var caught [][]string
			for _, c := range s.Catch {
				caught = append(caught, c.ErrorEquals)
			}
			if s.Type == "Task" {
				var retried [][]string
				for _, r := range s.Retry {
					retried = append(retried, r.ErrorEquals)
				}
				out[name] = aslState{retried: retried, caught: append(caught, outer...)}
			}
			for _, inner := range []*json.RawMessage{s.ItemProcessor, s.Iterator} {
				if inner != nil {
					var im machine
					if err := json.Unmarshal(*inner, &im); err != nil {
						t.Fatal(err)
					}
					walk(im, append(caught, outer...))
				}
			}
		}
	}
	var m machine
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	walk(m, nil)
	return out
}

func aslMatches(rules [][]string, errorTypeOf string) bool {
	return slices.ContainsFunc(rules, func(eq []string) bool {
		return slices.Contains(eq, errorTypeOf) || slices.Contains(eq, "States.ALL") && !strings.HasPrefix(errorTypeOf, "States.")
	})
}

// stepEnv is one run's world: the fakes, the call log, and the step to run.
type stepEnv struct {
	w       *world
	l       *callLog
	sns     *snsStub
	target  *targetStub
	secrets []string // canaries: every secret a fake handed out or was given
	// run invokes the step under test.
	run func(ctx context.Context) stepInvocation
	// check holds the step's own invariants after a run (and after its retry).
	check func(t *testing.T, inv stepInvocation)
	// from is where the last run's calls start in the log.
	from int
}

// invokeStep runs the step once, marking where its calls start.
func (e *stepEnv) invokeStep(ctx context.Context) stepInvocation {
	e.from = len(e.l.recorded())
	return e.run(ctx)
}

// runCalls are the calls of the last run.
func (e *stepEnv) runCalls() []stepCall { return e.l.recorded()[e.from:] }

// canaries are the secret values no error, log line or output may hold.
func (e *stepEnv) canaries() []string {
	out := slices.Clone(e.secrets)
	if e.target != nil {
		for _, s := range e.target.got {
			out = append(out, s)
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// endpointState is an endpoint's scenario's state: none. An endpoint's
// direct invocation is asynchronous (EventBridge Scheduler invokes its
// target so: https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html):
// Lambda retries every error and then sends the event to the function's
// on-failure destination, the schedules' dead-letter queue, whose alarm
// tells on-call (endpointHandling).
const endpointState = "(endpoint)"

var endpointHandling = aslState{retried: [][]string{{"Retryable"}}, caught: [][]string{{"States.ALL"}}}

// stepScenario is one step's scenario.
type stepScenario struct {
	name  string
	state string // the ASL Task state it serves
	// setup builds a fresh world where the step is about to run (its
	// calls unrecorded) and returns it with the log recording.
	setup func(t *testing.T) *stepEnv
	// recovers are the calls (svc.op, or svc.op/class) whose one failure
	// the step or its adapter absorbs, and why: that run must succeed.
	recovers map[string]string
	// clean checks the clean run's calls (what the scenario is about).
	clean func(t *testing.T, calls []stepCall)
	// wantFor overrides a class's want for one call (svc.op/class), where
	// the adapter names the failure: IAM's NoSuchEntity on GetUser is
	// UserNotFound.
	wantFor map[string]string
	// wantClean is the clean run's errorType: "" when it succeeds (a
	// scenario may be about a refusal, e.g. OldKeyStillInUse).
	wantClean string
}

// errorTypeOf is what the state machine sees of err; "" for none.
func errorTypeOf(err error) string {
	if err == nil {
		return ""
	}
	return lambdautil.ErrorType(err)
}

// absorbs says whether the step absorbs call c failing as f, and why.
// A recovers key is the call (svc.op, svc.op(detail), or svc.op(the
// detail's first word), e.g. UpdateSecretVersionStage(AWSPENDING)),
// optionally with "/class" or "/class_after".
func (sc stepScenario) absorbs(c stepCall, f injectedFault) (string, bool) {
	suffix := "/" + f.class.name
	if f.after {
		suffix += "_after"
	}
	stage, _, _ := strings.Cut(c.detail, " ")
	for _, name := range []string{c.String(), c.key() + "(" + stage + ")", c.key()} {
		for _, k := range []string{name, name + "/" + f.class.name, name + suffix} {
			if why, ok := sc.recovers[k]; ok {
				return why, true
			}
		}
	}
	return "", false
}

// runScenario is the clean run, then one run per recorded call per class
// (and, for a write, per class whose answer can be lost after the effect).
func runScenario(t *testing.T, asl map[string]aslState, sc stepScenario) {
	t.Helper()
	st, ok := asl[sc.state]
	if sc.state == endpointState {
		st, ok = endpointHandling, true
	}
	if !ok && sc.state != "" { // "": an endpoint (answerapproval), which no state runs
		t.Fatalf("no Task state %s in the ASL", sc.state)
	}
	e := sc.setup(t)
	inv := e.invokeStep(context.Background())
	calls := e.l.recorded()
	if got := errorTypeOf(inv.err); got != sc.wantClean {
		t.Fatalf("clean run: errorType %q, want %q: %v\ncalls: %v", got, sc.wantClean, inv.err, calls)
	}
	if len(calls) == 0 {
		t.Fatal("the clean run made no call")
	}
	assertRun(t, e, inv)
	if sc.clean != nil {
		sc.clean(t, calls)
	}
	t.Logf("clean run: %d calls: %v", len(calls), calls)
	for i, c := range calls {
		for _, class := range errClasses {
			if c.adapter() == "aws" && class.sdk(c.svc, c.op) == nil {
				continue
			}
			for _, after := range []bool{false, true} {
				if after && (!c.write || class.name == errDenied.name || class.name == errNotFound.name) {
					continue // only a write's answer can be lost after it landed
				}
				name := fmt.Sprintf("%02d_%s_%s", i, c.key(), class.name)
				if after {
					name += "_after"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					failRun(t, st, sc, injectedFault{at: i, class: class, after: after}, c)
				})
			}
		}
	}
}

// failRun is one run with call f.at failing, held to every assertion.
func failRun(t *testing.T, st aslState, sc stepScenario, f injectedFault, c stepCall) {
	e := sc.setup(t)
	e.l.fault = &f
	ctx := newExpiring(context.Background())
	e.l.expire = ctx.expire
	inv := e.invokeStep(ctx)
	calls := e.l.recorded()
	if len(calls) <= f.at || calls[f.at].key() != c.key() {
		t.Fatalf("the run did not reach call %d (%s) as the clean run did: %v", f.at, c, calls)
	}
	assertRun(t, e, inv)
	got := errorTypeOf(inv.err)
	if inv.err != nil {
		if !slices.Contains(rotation.ErrorNames, got) {
			t.Errorf("errorType %s is none of rotation.ErrorNames: %v", got, inv.err)
		}
		if sc.state != "" && !aslMatches(st.retried, got) && !aslMatches(st.caught, got) {
			t.Errorf("%s: the ASL neither retries nor catches %s: the execution fails without an alert", sc.state, got)
		}
	}
	why, absorbed := sc.absorbs(c, f)
	want := f.class.want[c.adapter()]
	if w, ok := sc.wantFor[c.key()+"/"+f.class.name]; ok {
		want = w
	}
	switch {
	case absorbed:
		if got != sc.wantClean {
			t.Errorf("%s fails %s once, which the step absorbs (%s): got %q, want %q: %v", c, f.class.name, why, got, sc.wantClean, inv.err)
		}
	case want == "":
		if got == "Retryable" {
			t.Errorf("%s %s: Retryable, but it fails the same way every retry: %v", c, f.class.name, inv.err)
		}
	case got == sc.wantClean:
		t.Errorf("%s failed with %s, and the step ended as the clean run (%q): the failure was swallowed (out %s)", c, f.class.name, got, inv.out)
	case got != want:
		t.Errorf("%s failed with %s: errorType %s, want %s: %v", c, f.class.name, got, want, inv.err)
	}
	if got == "Retryable" {
		if sc.state != "" && !aslMatches(st.retried, got) {
			t.Errorf("%s: the ASL does not retry Retryable", sc.state)
		}
		// Step Functions retries the state with the same input: the retry,
		// on the world the failed run left, must finish (I5).
		e.l.fault = nil
		retry := e.invokeStep(context.Background())
		if got := errorTypeOf(retry.err); got != sc.wantClean {
			t.Errorf("the retry after %s failed %s: errorType %q, want %q: %v\ncalls: %v", c, f.class.name, got, sc.wantClean, retry.err, e.l.recorded()[len(calls):])
		}
		assertRun(t, e, retry)
	}
}

// assertRun holds every run to what holds whatever failed: no panic, no
// secret in the error, the log or the output, and the step's invariants.
func assertRun(t *testing.T, e *stepEnv, inv stepInvocation) {
	t.Helper()
	if inv.panicked {
		t.Errorf("the step panicked: %v", inv.err)
	}
	for _, s := range e.canaries() {
		where := map[string]string{"log": inv.log, "output": string(inv.out)}
		if inv.err != nil {
			where["error"] = fmt.Sprintf("%s %+v %#v", inv.err.Error(), inv.err, inv.err)
		}
		for w, text := range where {
			if strings.Contains(text, s) {
				t.Errorf("I1: a secret value is in the %s: %s", w, text)
			}
		}
	}
	if e.check != nil {
		e.check(t, inv)
	}
}
