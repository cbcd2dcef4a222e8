package stepfunctions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// The resources the task bridge binds to sandbox services. Each service
// integration also runs as a callback Task, with CallbackSuffix.
const (
	ResourceLambdaInvoke = "arn:aws:states:::lambda:invoke"
	ResourceSNSPublish   = "arn:aws:states:::sns:publish"
	// CallbackSuffix makes a service integration wait for a task token:
	// arn:aws:states:::lambda:invoke.waitForTaskToken.
	CallbackSuffix = ".waitForTaskToken"
)

// taskKind is how a Task's Resource is served.
type taskKind int

const (
	unsupported  taskKind = iota
	lambdaInvoke          // arn:aws:states:::lambda:invoke (Parameters FunctionName, Payload)
	directLambda          // arn:aws:lambda:<region>:<account>:function:<name>
	snsPublish            // arn:aws:states:::sns:publish
)

// prefix is the history event prefix for the kind: LambdaFunction* for the
// legacy direct-ARN form, Task* for service integrations.
func (k taskKind) prefix() string {
	if k == directLambda {
		return "LambdaFunction"
	}
	return "Task"
}

// task is a Task state's call in flight.
type task struct {
	id           int64
	state        string
	kind         taskKind
	resourceType string // history: "lambda", "sns"
	resource     string // history: "invoke", "publish", "invoke.waitForTaskToken", or the function ARN
	arn          string // the Resource as written
	timeout      int64  // TimeoutSeconds (workflow time), 0 if the definition sets none
	heartbeat    int64  // HeartbeatSeconds of a callback Task, 0 if none
}

// classify says how a Task's Resource is served: a service integration
// with CallbackSuffix is that integration, then a wait for its token.
func classify(resource string) (kind taskKind, resourceType, name string, callback bool) {
	if base, ok := strings.CutSuffix(resource, CallbackSuffix); ok && strings.HasPrefix(resource, "arn:aws:states:::") {
		kind, resourceType, name, _ = classify(base)
		if kind == directLambda {
			kind = unsupported
		}
		return kind, resourceType, name + CallbackSuffix, true
	}
	switch resource {
	case ResourceLambdaInvoke:
		return lambdaInvoke, "lambda", "invoke", false
	case ResourceSNSPublish:
		return snsPublish, "sns", "publish", false
	}
	parts := strings.Split(resource, ":")
	if len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function" {
		return directLambda, "lambda", resource, false
	}
	if rest, ok := strings.CutPrefix(resource, "arn:aws:states:::"); ok {
		typ, name, _ := strings.Cut(rest, ":")
		return unsupported, typ, name, false
	}
	return unsupported, "", resource, false
}

// statesPrincipal is who a state machine's calls come from: its role,
// assumed by Step Functions for the execution.
func (s *Service) statesPrincipal(e *execution) sandbox.Principal {
	role := e.machine.RoleARN
	name := role
	if i := strings.LastIndex(role, "/"); i >= 0 {
		name = role[i+1:]
	}
	session := strings.ReplaceAll(sandbox.NewUUID(), "-", "")[:32]
	return sandbox.Principal{
		Account: s.srv.Account(), Type: "AssumedRole", UserName: session,
		UserID: "AROA" + strings.ToUpper(session[:17]) + ":" + session,
		ARN:    fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.srv.Account(), name, session),
	}
}

// startTask records a Task state's call as scheduled and runs it; the
// result goes back to the runner and into the history. A callback Task's
// call only submits it: its result is what its token is sent (callbacks.go).
func (r *run) startTask(m message) {
	kind, typ, name, isCallback := classify(m.Resource)
	t := &task{id: m.ID, state: m.State, kind: kind, resourceType: typ, resource: name, arn: m.Resource}
	if m.TimeoutSeconds != nil {
		t.timeout = *m.TimeoutSeconds
	}
	if m.HeartbeatSeconds != nil && isCallback {
		t.heartbeat = *m.HeartbeatSeconds
	}
	e, now, input := r.e, r.s.srv.Clock().Now(), m.Input
	params := string(input)
	if kind == directLambda {
		e.appendTo(t.state, "LambdaFunctionScheduled", now, func(h *HistoryEvent) {
			h.LambdaFunctionScheduled = &LambdaScheduledDetails{Resource: m.Resource, Input: &params, TimeoutInSeconds: m.TimeoutSeconds}
		})
	} else {
		e.appendTo(t.state, "TaskScheduled", now, func(h *HistoryEvent) {
			h.TaskScheduled = &TaskScheduledDetails{ResourceType: typ, Resource: name, Region: r.s.srv.Region(), Parameters: params,
				TimeoutInSeconds: m.TimeoutSeconds, HeartbeatInSeconds: positive(t.heartbeat)}
		})
	}
	fail := func(errName, cause string) {
		e.appendTo(t.state, "TaskStartFailed", now, func(h *HistoryEvent) {
			h.TaskStartFailed = &TaskDetails{ResourceType: typ, Resource: name, Error: errName, Cause: cause}
		})
		r.send(map[string]any{"type": "taskResult", "id": m.ID, "error": errName, "cause": cause})
	}
	if kind == unsupported {
		fail("States.TaskFailed", fmt.Sprintf("The sandbox cannot run the resource %s: it serves %s and %s (each also with %s) and Lambda function ARNs.",
			m.Resource, ResourceLambdaInvoke, ResourceSNSPublish, CallbackSuffix))
		return
	}
	if isCallback && !wellFormedToken(m.Token) {
		fail("States.Runtime", "The Step Functions runner gave the callback Task no task token.")
		return
	}
	e.appendTo(t.state, kind.prefix()+"Started", now, func(h *HistoryEvent) {
		if kind != directLambda {
			h.TaskStarted = &TaskDetails{ResourceType: typ, Resource: name}
		}
	})
	r.addTask(t)
	var cb *callback
	if isCallback {
		// Registered before the call: the function may send the token
		// back before its own invocation returns.
		cb = r.s.register(r, t, m.Token)
	}
	go func() {
		out, errName, cause := r.s.callTask(r.ctx, e, t, input)
		if cb != nil {
			r.s.submitted(cb, out, errName, cause)
			return
		}
		r.deliver(t, outcome{output: out, failed: errName != "", err: errName, cause: cause})
	}()
}

func positive(n int64) *int64 {
	if n <= 0 {
		return nil
	}
	return &n
}

// outcome is how a Task ended: its output, a failure (what Retry and Catch
// match, and its cause) or a timeout.
type outcome struct {
	output   json.RawMessage
	failed   bool
	err      string
	cause    string
	timedOut bool
}

// deliver records a Task's end in the history and tells the runner, once:
// not at all if the Task timed out or the execution ended meanwhile.
func (r *run) deliver(t *task, o outcome) {
	if !r.takeTask(t.id) {
		return
	}
	e, now := r.e, r.s.srv.Clock().Now()
	switch {
	case o.timedOut:
		e.appendTo(t.state, t.kind.prefix()+"TimedOut", now, func(h *HistoryEvent) {
			if t.kind == directLambda {
				h.LambdaFunctionTimedOut = &ErrorDetails{Error: "States.Timeout"}
				return
			}
			h.TaskTimedOut = &TaskDetails{ResourceType: t.resourceType, Resource: t.resource, Error: "States.Timeout"}
		})
		r.send(map[string]any{"type": "taskTimedOut", "id": t.id})
	case o.failed:
		e.appendTo(t.state, t.kind.prefix()+"Failed", now, func(h *HistoryEvent) {
			if t.kind == directLambda {
				h.LambdaFunctionFailed = &ErrorDetails{Error: o.err, Cause: o.cause}
				return
			}
			h.TaskFailed = &TaskDetails{ResourceType: t.resourceType, Resource: t.resource, Error: o.err, Cause: o.cause}
		})
		r.send(map[string]any{"type": "taskResult", "id": t.id, "error": o.err, "cause": o.cause})
	default:
		out := o.output
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		text := string(out)
		e.appendTo(t.state, t.kind.prefix()+"Succeeded", now, func(h *HistoryEvent) {
			if t.kind == directLambda {
				h.LambdaFunctionSucceeded = &OutputDetails{Output: &text}
				return
			}
			h.TaskSucceeded = &TaskDetails{ResourceType: t.resourceType, Resource: t.resource, Output: &text}
		})
		r.send(map[string]any{"type": "taskResult", "id": t.id, "output": out})
	}
}

// callTask runs one Task against the sandbox: the output, or an error name
// (what Retry and Catch match) and its cause.
func (s *Service) callTask(ctx context.Context, e *execution, t *task, input json.RawMessage) (out json.RawMessage, errName, cause string) {
	p := s.statesPrincipal(e)
	// The sandbox attributes this Task's calls, and its Lambda's, to it.
	ctx = sandbox.WithOrigin(ctx, sandbox.Origin{Execution: e.arn, State: t.state, Item: s.itemOf(input)})
	switch t.kind {
	case directLambda:
		raw, errName, cause := s.invoke(ctx, p, t.arn, input)
		if errName != "" {
			return nil, errName, cause
		}
		return payloadJSON(raw.Body), "", ""
	case lambdaInvoke:
		var params struct {
			FunctionName string          `json:"FunctionName"`
			Payload      json.RawMessage `json:"Payload"`
			Qualifier    string          `json:"Qualifier"`
		}
		if err := json.Unmarshal(input, &params); err != nil || params.FunctionName == "" {
			return nil, "States.Runtime", "lambda:invoke needs Parameters with a FunctionName (and a Payload)"
		}
		fn := params.FunctionName
		if params.Qualifier != "" {
			fn += ":" + params.Qualifier
		}
		raw, errName, cause := s.invoke(ctx, p, fn, params.Payload)
		if errName != "" {
			return nil, errName, cause
		}
		reqID := raw.Header.Get("X-Amzn-Requestid")
		if reqID == "" {
			reqID = sandbox.NewUUID()
		}
		version := raw.Header.Get("X-Amz-Executed-Version")
		if version == "" {
			version = "$LATEST"
		}
		headers := map[string]string{
			"Connection": "keep-alive", "Content-Length": fmt.Sprint(len(raw.Body)), "Content-Type": "application/json",
			"Date": s.srv.Clock().Now().Format(http.TimeFormat), "X-Amz-Executed-Version": version,
			"x-amzn-Remapped-Content-Length": "0", "x-amzn-RequestId": reqID,
		}
		b, _ := json.Marshal(map[string]any{
			"ExecutedVersion":     version,
			"Payload":             payloadJSON(raw.Body),
			"SdkHttpMetadata":     map[string]any{"AllHttpHeaders": listHeaders(headers), "HttpHeaders": headers, "HttpStatusCode": 200},
			"SdkResponseMetadata": map[string]any{"RequestId": reqID},
			"StatusCode":          200,
		})
		return b, "", ""
	case snsPublish:
		return s.publish(ctx, p, input)
	}
	return nil, "States.TaskFailed", "unsupported resource " + t.arn
}

// invoke calls the sandbox's Lambda as Step Functions does; a function
// error becomes its errorType with the whole error payload as the cause.
func (s *Service) invoke(ctx context.Context, p sandbox.Principal, fn string, payload json.RawMessage) (*sandbox.Raw, string, string) {
	if _, ok := s.srv.Service("lambda"); !ok {
		return nil, "States.TaskFailed", "the sandbox has no Lambda service"
	}
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	res, err := s.srv.Internal(ctx, "lambda", "Invoke", fn, p, payload)
	if err != nil {
		name, cause := sdkError("Lambda", "AWSLambda", err)
		return nil, name, cause
	}
	raw, ok := res.(*sandbox.Raw)
	if !ok {
		return nil, "States.TaskFailed", fmt.Sprintf("the sandbox's Lambda answered %T", res)
	}
	if raw.Header == nil {
		raw.Header = http.Header{}
	}
	if raw.Header.Get("X-Amz-Function-Error") != "" {
		var fe struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(raw.Body, &fe)
		if fe.ErrorType == "" {
			fe.ErrorType = "Lambda.Unknown"
		}
		return nil, fe.ErrorType, string(raw.Body)
	}
	return raw, "", ""
}

// sdkError names a service's API error as Step Functions does for its
// integrations: "<Service>.<ExceptionName>", with the SDK's words as cause.
func sdkError(service, sdkName string, err error) (string, string) {
	var se *sandbox.Error
	if !errors.As(err, &se) {
		return "States.TaskFailed", err.Error()
	}
	code := se.Code
	if !strings.HasSuffix(code, "Exception") {
		code += "Exception"
	}
	return service + "." + code, fmt.Sprintf("%s (Service: %s; Status Code: %d; Error Code: %s; Request ID: %s; Proxy: null)",
		se.Message, sdkName, se.Status, se.Code, sandbox.NewUUID())
}

// payloadJSON is a Lambda response payload as JSON: as it is when it is
// JSON, a JSON string otherwise, null when empty.
func payloadJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

func listHeaders(h map[string]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = []string{v}
	}
	return out
}

// publish is arn:aws:states:::sns:publish: the Parameters become SNS's
// Publish form, as the SDK would send it.
func (s *Service) publish(ctx context.Context, p sandbox.Principal, input json.RawMessage) (json.RawMessage, string, string) {
	if _, ok := s.srv.Service("sns"); !ok {
		return nil, "States.TaskFailed", "the sandbox has no SNS service"
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(input, &params); err != nil {
		return nil, "States.Runtime", "sns:publish needs Parameters that are an object"
	}
	form := url.Values{"Action": {"Publish"}, "Version": {"2010-03-31"}}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		switch k {
		case "Message":
			var str string
			if json.Unmarshal(v, &str) == nil {
				form.Set(k, str)
			} else {
				form.Set(k, string(v)) // not a string: AWS sends it JSON-encoded
			}
		case "MessageAttributes":
			var attrs map[string]struct {
				DataType    string `json:"DataType"`
				StringValue string `json:"StringValue"`
				BinaryValue string `json:"BinaryValue"`
			}
			if err := json.Unmarshal(v, &attrs); err != nil {
				return nil, "States.Runtime", "sns:publish: MessageAttributes must map names to {DataType, StringValue}"
			}
			names := make([]string, 0, len(attrs))
			for n := range attrs {
				names = append(names, n)
			}
			sort.Strings(names)
			for i, n := range names {
				pre := fmt.Sprintf("MessageAttributes.entry.%d.", i+1)
				form.Set(pre+"Name", n)
				form.Set(pre+"Value.DataType", attrs[n].DataType)
				if attrs[n].StringValue != "" {
					form.Set(pre+"Value.StringValue", attrs[n].StringValue)
				}
				if attrs[n].BinaryValue != "" {
					form.Set(pre+"Value.BinaryValue", attrs[n].BinaryValue)
				}
			}
		default:
			var str string
			if json.Unmarshal(v, &str) == nil {
				form.Set(k, str)
			} else {
				form.Set(k, string(v))
			}
		}
	}
	res, err := s.srv.Internal(ctx, "sns", "Publish", "", p, []byte(form.Encode()))
	if err != nil {
		name, cause := sdkError("SNS", "AmazonSNS", err)
		return nil, name, cause
	}
	b, _ := json.Marshal(res)
	var got struct {
		MessageID string `json:"MessageId"`
	}
	_ = json.Unmarshal(b, &got)
	reqID := sandbox.NewUUID()
	out, _ := json.Marshal(map[string]any{
		"MessageId": got.MessageID,
		"SdkHttpMetadata": map[string]any{
			"AllHttpHeaders": map[string][]string{"Content-Type": {"text/xml"}, "x-amzn-RequestId": {reqID}},
			"HttpHeaders":    map[string]string{"Content-Type": "text/xml", "x-amzn-RequestId": reqID},
			"HttpStatusCode": 200,
		},
		"SdkResponseMetadata": map[string]any{"RequestId": reqID},
	})
	return out, "", ""
}

// addTask and takeTask track the calls in flight: a result is delivered
// once, and not at all after the Task timed out.
func (r *run) addTask(t *task) {
	r.tmu.Lock()
	r.tasks[t.id] = t
	r.tmu.Unlock()
}

func (r *run) hasTask(id int64) bool {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	_, ok := r.tasks[id]
	return ok
}

func (r *run) takeTask(id int64) bool {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if _, ok := r.tasks[id]; !ok {
		return false
	}
	delete(r.tasks, id)
	return true
}

// timedOut takes the oldest call in flight of a Task state that the
// interpreter timed out.
func (r *run) timedOut(state string) *task {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	var found *task
	for _, t := range r.tasks {
		if t.state == state && (found == nil || t.id < found.id) {
			found = t
		}
	}
	if found != nil {
		delete(r.tasks, found.id)
	}
	return found
}
