package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// macSigner makes a MAC with the stack's HMAC key (package mac:
// kms:GenerateMac), base64.
type macSigner interface {
	Sign(ctx context.Context, msg []byte) (string, error)
}

// executionStarter starts an execution of the rotation state machine
// (package executions: states:StartExecution) and answers its ARN.
type executionStarter interface {
	Start(ctx context.Context, name string, input []byte) (string, error)
}

// RequestRun is the request endpoint (function requestrun): it validates a
// rotation input, signs who asked into it (rotation.Request, with the
// stack's KMS HMAC key) and starts the execution. Two callers, told apart
// by the event's shape:
//
//   - a person, through the function URL (AuthType AWS_IAM; payload
//     format 2.0): AWS authenticated the caller and puts them in
//     requestContext.authorizer.iam; the body is {"input": {...}, "name":
//     optional}. The answer is HTTP: 200 {executionArn, name,
//     requestedBy}, 400 naming what is wrong, 403 when the caller may not
//     ask, 500/503 when AWS failed.
//   - EventBridge Scheduler, invoking the function directly with
//     {"schedule": "<name>", "input": {...}}: signed "schedule <name>".
//     The event must be exactly that: an event with a requestContext is
//     only ever a URL request, and a direct event is decoded strictly. Who
//     may invoke the function directly is the trust boundary: only the
//     scheduler role is granted lambda:InvokeFunction without the
//     lambda:InvokedViaFunctionUrl condition (docs/design.md).
type RequestRun struct {
	// Schema holds the input to its JSON Schema (subset.Check), as Validate does.
	Schema rotation.SchemaCheck
	Key    macSigner
	Runs   executionStarter
	// Account is the function's own account (from its ARN): a URL caller
	// of another account is refused.
	Account func(ctx context.Context) string
	Clock   func() time.Time
	Rand    io.Reader // the name's random suffix; crypto/rand when nil
}

// Started is the answer: the execution started and who it is signed as.
type Started struct {
	ExecutionARN string `json:"executionArn"`
	Name         string `json:"name"`
	RequestedBy  string `json:"requestedBy"`
}

// RequestBody is the function URL's request body.
type RequestBody struct {
	Input json.RawMessage `json:"input"`
	Name  string          `json:"name,omitempty"`
}

// ScheduleEvent is EventBridge Scheduler's direct invocation.
type ScheduleEvent struct {
	Schedule string          `json:"schedule"`
	Input    json.RawMessage `json:"input"`
	// ScheduledTime is the firing's time: the schedule's input says
	// "<aws.scheduler.scheduled-time>", which Scheduler replaces
	// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
	// It makes the execution's name and the signed input the same on
	// every retry of one firing, so a retry after a lost answer starts no
	// second run (StartExecution with a running execution's name and
	// input answers that execution).
	ScheduledTime string `json:"scheduledTime,omitempty"`
}

// Refused is a caller the endpoint will not act for (HTTP 403): not a
// state machine error, the endpoint's answer.
type Refused struct{ Reason string }

func (e *Refused) Error() string { return "refused: " + e.Reason }

// maxBody bounds the URL request body: an input (256 KiB) and its wrapper.
const maxBody = rotation.MaxInputBytes + 4096

// Run is the Lambda's handler: a function URL request (an event with a
// requestContext) answered as HTTP, or a schedule's direct invocation
// answered with Started or a named error.
func (r *RequestRun) Run(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, &rotation.InvalidInput{Reason: "the event is not a JSON object"}
	}
	if _, viaURL := probe["requestContext"]; viaURL {
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return answer(http.StatusBadRequest, errorBody("InvalidInput", "", "the request is not a function URL event")), nil
		}
		return r.URL(ctx, ev), nil
	}
	var ev ScheduleEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, &rotation.InvalidInput{Reason: "a direct invocation is {\"schedule\": name, \"input\": {...}} and nothing else: " + rotation.PlainJSONError(err)}
	}
	return r.Scheduled(ctx, ev)
}

// scheduleName is a schedule's name as the config gives it (and
// EventBridge Scheduler takes: 1-64 of [0-9a-zA-Z-_.]).
var scheduleName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Za-z._-]{1,64}$`) })

// Scheduled is a schedule's run: trigger "schedule", signed "schedule <name>".
func (r *RequestRun) Scheduled(ctx context.Context, ev ScheduleEvent) (Started, error) {
	if !scheduleName().MatchString(ev.Schedule) {
		return Started{}, &rotation.InvalidInput{Field: "schedule", Reason: "a schedule's name is 1-64 of A-Za-z0-9 . _ -"}
	}
	var fired time.Time
	if ev.ScheduledTime != "" {
		t, err := time.Parse(time.RFC3339, ev.ScheduledTime)
		if err != nil {
			return Started{}, &rotation.InvalidInput{Field: "scheduledTime", Reason: "not an RFC 3339 time (the schedule's input says <aws.scheduler.scheduled-time>)"}
		}
		fired = t
	}
	started, err := r.start(ctx, rotation.ScheduleRequester(ev.Schedule), ev.Input, "", "schedule", fired)
	if taken, ok := errors.AsType[*executions.NameTaken](err); ok && !fired.IsZero() {
		// This firing's run exists already: an earlier attempt of this
		// very invocation started it and lost the answer (its name is the
		// schedule's and the firing's). Not a second run.
		return Started{Name: taken.Name, RequestedBy: rotation.ScheduleRequester(ev.Schedule)}, nil
	}
	return started, err
}

// URL is a person's request through the function URL, answered as HTTP.
func (r *RequestRun) URL(ctx context.Context, ev events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	if m := ev.RequestContext.HTTP.Method; m != http.MethodPost {
		return answer(http.StatusMethodNotAllowed, errorBody("MethodNotAllowed", "", "POST {\"input\": {...}, \"name\": optional}"))
	}
	who, err := r.caller(ctx, ev.RequestContext.Authorizer)
	if err != nil {
		return failure(err)
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return answer(http.StatusBadRequest, errorBody("InvalidInput", "", "the body is not base64"))
		}
	}
	if len(body) > maxBody {
		return answer(http.StatusRequestEntityTooLarge, errorBody("InvalidInput", "", fmt.Sprintf("the body is longer than %d bytes", maxBody)))
	}
	var req RequestBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return answer(http.StatusBadRequest, errorBody("InvalidInput", "", "the body is {\"input\": {...}, \"name\": optional}: "+rotation.PlainJSONError(err)))
	}
	started, err := r.start(ctx, who, req.Input, req.Name, "manual", time.Time{})
	if err != nil {
		return failure(err)
	}
	b, _ := json.Marshal(started)
	return answer(http.StatusOK, b)
}

// caller is the URL request's authenticated caller: its IAM ARN, of this
// account, not the root user. Without an IAM authorizer the function URL
// is not AWS_IAM: refused, never run unauthenticated.
func (r *RequestRun) caller(ctx context.Context, a *events.LambdaFunctionURLRequestContextAuthorizerDescription) (string, error) {
	if a == nil || a.IAM == nil || a.IAM.UserARN == "" {
		return "", &Refused{Reason: "no IAM caller in the request context: the function URL must use AuthType AWS_IAM"}
	}
	arn := a.IAM.UserARN
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || (parts[2] != "iam" && parts[2] != "sts") {
		return "", &Refused{Reason: fmt.Sprintf("caller %q is not an IAM principal", clip(arn))}
	}
	if parts[5] == "root" {
		return "", &Refused{Reason: "the account's root user may not request a rotation: use an IAM role or user"}
	}
	if r.Account != nil {
		if own := r.Account(ctx); own != "" && parts[4] != own {
			return "", &Refused{Reason: fmt.Sprintf("caller %s is of account %s, not this stack's (%s)", clip(arn), parts[4], own)}
		}
	}
	return arn, nil
}

// start validates the input, fixes its trigger and requestedBy, signs it
// for the execution name and starts it.
// A schedule's firing (fired set) is signed at its scheduled time and
// named after the schedule and that time, so each retry is the same.
func (r *RequestRun) start(ctx context.Context, requester string, raw json.RawMessage, name, trigger string, fired time.Time) (Started, error) {
	if r.Schema == nil || r.Key == nil || r.Runs == nil {
		return Started{}, &rotation.Internal{Reason: "requestrun: not wired (Schema, Key, Runs)"}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return Started{}, &rotation.InvalidInput{Field: "input", Reason: "is required"}
	}
	// Whatever request the input carried (a re-run's run.json) is
	// dropped: this request replaces it.
	raw, err := rotation.WithoutRequest(raw)
	if err != nil {
		return Started{}, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Started{}, &rotation.InvalidInput{Field: "input", Reason: "not a JSON object"}
	}
	if t, ok := fields["trigger"]; ok && trigger == "manual" && !bytes.Equal(t, []byte(`"manual"`)) {
		return Started{}, &rotation.InvalidInput{Field: "trigger", Reason: "only a schedule's run is \"schedule\"; a request through the URL is \"manual\""}
	}
	fields["trigger"], _ = json.Marshal(trigger)
	fields["requestedBy"], _ = json.Marshal(requester) // the verified one, whatever the caller wrote
	if raw, err = json.Marshal(fields); err != nil {
		return Started{}, fmt.Errorf("encode the input: %w", err)
	}
	in, err := rotation.ParseInput(raw, r.Schema)
	if err != nil {
		return Started{}, err
	}
	now := time.Now
	if r.Clock != nil {
		now = r.Clock
	}
	at := now().UTC().Truncate(time.Second)
	// A member account's user's runs are named with the account (issue 15).
	account := in.Account
	if r.Account != nil {
		account = in.MemberAccount(r.Account(ctx))
	}
	if !fired.IsZero() {
		at = fired.UTC().Truncate(time.Second)
		sum := sha256.Sum256([]byte(requester + "\x00" + at.Format(time.RFC3339))) // the suffix: this schedule's, this firing's
		name = rotation.NewAccountExecutionName(account, in.User, at, bytes.NewReader(sum[:]))
	} else if name == "" {
		rnd := r.Rand
		if rnd == nil {
			rnd = rand.Reader
		}
		name = rotation.NewAccountExecutionName(account, in.User, at, rnd)
	} else if err := rotation.CheckExecutionName(name); err != nil {
		return Started{}, err
	}
	digest, err := rotation.InputDigest(raw)
	if err != nil {
		return Started{}, err
	}
	req := rotation.Request{Purpose: rotation.RequestPurpose, Execution: name, RequestedBy: requester, InputSHA256: digest, At: at}
	mac, err := r.Key.Sign(ctx, req.Message())
	if err != nil {
		return Started{}, err
	}
	signed, err := rotation.WithRequest(raw, rotation.SignedRequest{Request: req, MAC: mac})
	if err != nil {
		return Started{}, err
	}
	if len(signed) > rotation.MaxInputBytes {
		return Started{}, &rotation.InvalidInput{Reason: fmt.Sprintf("with its signed request the input is %d bytes: Step Functions takes at most %d", len(signed), rotation.MaxInputBytes)}
	}
	arn, err := r.Runs.Start(ctx, name, signed)
	if err != nil {
		return Started{}, err
	}
	return Started{ExecutionARN: arn, Name: name, RequestedBy: requester}, nil
}

// failure is err as the URL's answer: the refusals and bad input as 4xx
// naming what is wrong, AWS failing as 5xx (503 when a retry may help).
// Every body is an error name and sentences of ids: never a secret (I1),
// and the input carries none.
func failure(err error) events.LambdaFunctionURLResponse {
	if ref, ok := errors.AsType[*Refused](err); ok {
		return answer(http.StatusForbidden, errorBody("Refused", "", ref.Reason))
	}
	if ii, ok := errors.AsType[*rotation.InvalidInput](err); ok {
		return answer(http.StatusBadRequest, errorBody("InvalidInput", ii.Field, ii.Error()))
	}
	if ex, ok := errors.AsType[*executions.NameTaken](err); ok {
		return answer(http.StatusConflict, errorBody("ExecutionAlreadyExists", "name", ex.Error()))
	}
	if rt, ok := errors.AsType[*rotation.Retryable](err); ok {
		return answer(http.StatusServiceUnavailable, errorBody("Retryable", "", rt.Error()))
	}
	if ad, ok := errors.AsType[*rotation.AccessDenied](err); ok {
		return answer(http.StatusInternalServerError, errorBody("AccessDenied", "", ad.Error()))
	}
	return answer(http.StatusInternalServerError, errorBody("Internal", "", "the request could not be started: "+clip(err.Error())))
}

func errorBody(name, field, message string) []byte {
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Field   string `json:"field,omitempty"`
		Message string `json:"message"`
	}{name, field, message})
	return b
}

func answer(status int, body []byte) events.LambdaFunctionURLResponse {
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}
}
