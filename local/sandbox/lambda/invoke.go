package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Route implements sandbox.Router for the paths of the 2015-03-31 API the
// sandbox answers.
func (s *Service) Route(r *http.Request) (action, resource string, ok bool) {
	if s.RoutesHost(r.Host) {
		u, ok := s.urlByHost(r.Host)
		return "InvokeFunctionUrl", u.Function, ok
	}
	if rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/2021-10-31/functions/"); found {
		name, tail, _ := strings.Cut(rest, "/")
		name, err := url.PathUnescape(name)
		if err != nil || strings.Trim(tail, "/") != "url" {
			return "", "", false
		}
		switch r.Method {
		case http.MethodGet:
			return "GetFunctionUrlConfig", name, true
		case http.MethodPost:
			return "CreateFunctionUrlConfig", name, true
		}
		return "", "", false
	}
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions")
	if !found {
		return "", "", false
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return "ListFunctions", "", r.Method == http.MethodGet
	}
	seg := strings.Split(rest, "/")
	name, err := url.PathUnescape(seg[0])
	if err != nil {
		return "", "", false
	}
	switch {
	case len(seg) == 2 && seg[1] == "invocations" && r.Method == http.MethodPost:
		return "Invoke", name, true
	case len(seg) == 1 && r.Method == http.MethodGet:
		return "GetFunction", name, true
	case len(seg) == 2 && seg[1] == "configuration" && r.Method == http.MethodGet:
		return "GetFunctionConfiguration", name, true
	case len(seg) == 2 && seg[1] == "policy" && r.Method == http.MethodGet:
		return "GetPolicy", name, true
	case len(seg) == 2 && seg[1] == "policy" && r.Method == http.MethodPost:
		return "AddPermission", name, true
	}
	return "", "", false
}

// Handle implements sandbox.Service.
func (s *Service) Handle(ctx context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "Invoke":
		return s.invoke(ctx, c)
	case "InvokeFunctionUrl":
		return s.invokeURL(ctx, c)
	case "AddPermission":
		return s.addPermissionAPI(c)
	case "GetPolicy":
		return s.getPolicyAPI(c)
	case "CreateFunctionUrlConfig", "GetFunctionUrlConfig":
		return s.urlConfigAPI(c)
	case "GetFunction", "GetFunctionConfiguration":
		return s.getFunction(c)
	case "ListFunctions":
		return s.listFunctions(c)
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "Unknown operation %s", c.Action)
}

// Invocation types and log types Invoke accepts.
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
	tailBytes       = 4096
)

// result is what an invocation came to.
type result struct {
	body   []byte
	failed bool // the function failed: X-Amz-Function-Error: Unhandled
	log    []byte
}

func (s *Service) invoke(ctx context.Context, c *sandbox.Call) (any, error) {
	fn, err := s.resolve(c.Region, c.Resource, c.HTTP.URL.Query().Get("Qualifier"))
	if err != nil {
		return nil, err
	}
	arn := s.functionARN(c.Region, fn.cfg.Name)
	typ := c.HTTP.Header.Get("X-Amz-Invocation-Type")
	if typ == "" {
		typ = RequestResponse
	}
	c.Touch("AWS::Lambda::Function", arn)
	c.RequestParameters(map[string]any{"functionName": arn, "invocationType": typ})
	switch typ {
	case RequestResponse, Event, DryRun:
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", typ)
	}
	logType := c.HTTP.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]", logType)
	}
	if len(c.Body) > MaxPayload {
		return nil, sandbox.Errorf(413, "RequestEntityTooLargeException", "Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayload)
	}
	payload := c.Body
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		return nil, sandbox.Errorf(400, "InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json")
	}
	var clientContext string
	if cc := c.HTTP.Header.Get("X-Amz-Client-Context"); cc != "" {
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			return nil, sandbox.Errorf(400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
		}
		clientContext = string(b)
	}
	h := http.Header{}
	h.Set("X-Amz-Executed-Version", "$LATEST")
	crash := c.Fault != nil && c.Fault.Crash
	inv := &invocation{id: c.RequestID, arn: arn, payload: payload, clientContext: clientContext, trace: traceID(), done: make(chan outcome, 1)}

	switch typ {
	case DryRun:
		return &sandbox.Raw{Status: http.StatusNoContent, Header: h}, nil
	case Event:
		s.mu.RLock()
		closed := s.closed
		if !closed {
			s.async.Add(1)
		}
		s.mu.RUnlock()
		if closed {
			return nil, errClosed()
		}
		go func() {
			defer s.async.Done()
			res, err := s.run(s.ctx, fn, inv, crash)
			if err != nil || res.failed {
				s.log.Debug("asynchronous invocation failed", "function", fn.cfg.Name, "requestId", inv.id, "err", err, "body", string(res.body))
			}
		}()
		return &sandbox.Raw{Status: http.StatusAccepted, Header: h}, nil
	}

	res, err := s.run(ctx, fn, inv, crash)
	if err != nil {
		return nil, err
	}
	h.Set("Content-Type", "application/json")
	if res.failed {
		h.Set("X-Amz-Function-Error", "Unhandled")
	}
	if logType == "Tail" {
		tail := res.log
		if len(tail) > tailBytes {
			tail = tail[len(tail)-tailBytes:]
		}
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(tail))
	}
	return &sandbox.Raw{Status: http.StatusOK, Header: h, Body: res.body}, nil
}

func traceID() string {
	h := strings.ReplaceAll(sandbox.NewUUID(), "-", "") + strings.ReplaceAll(sandbox.NewUUID(), "-", "")
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[32:48])
}

// run gets an instance and runs the invocation on it.
func (s *Service) run(ctx context.Context, fn *function, inv *invocation, crash bool) (result, error) {
	in, err := s.acquire(ctx, fn)
	var se *startError
	if errors.As(err, &se) {
		msg := "RequestId: " + inv.id + " Error: Couldn't run bootstrap: " + se.Error()
		return result{failed: true, body: mustJSON(sandboxError{Type: "Runtime.InvalidEntrypoint", Message: msg}), log: []byte(msg + "\n")}, nil
	}
	if err != nil {
		return result{}, err
	}
	return s.execute(ctx, fn, in, inv, crash), nil
}

// execute runs one invocation on an instance: cold start if need be, the
// invocation with its timeout, and Lambda's own log lines. It runs to its
// end even if the caller goes away, as in Lambda.
func (s *Service) execute(ctx context.Context, fn *function, in *instance, inv *invocation, crash bool) result {
	cold := !in.warm
	in.warm = true
	if cold {
		if res, ok := s.coldStart(ctx, in, inv); !ok {
			return res
		}
	}
	start := time.Now()
	inv.deadline = start.Add(fn.cfg.Timeout)
	in.mu.Lock()
	in.logInv = inv
	inv.log = append(inv.log, in.pre...)
	in.pre = nil
	in.mu.Unlock()
	in.platformLine(inv, "START RequestId: "+inv.id+" Version: $LATEST")
	if o, ok := sandbox.OriginFrom(ctx); ok {
		// What the instance calls while it runs this invocation is the
		// invocation's: by its key (AWS) or its process (Auth0, SORACOM).
		o.Invocation = inv.id
		defer s.srv.BindOrigin(sandbox.Binding{AccessKeyID: in.keyID, PID: in.pid}, o)()
	}
	in.invokes <- inv

	timer := time.NewTimer(fn.cfg.Timeout)
	defer timer.Stop()
	var out outcome
	status := ""
	select {
	case out = <-inv.done:
	case <-timer.C:
		select {
		case out = <-inv.done:
		default:
			status = "timeout"
		}
	case <-in.exited:
		select {
		case out = <-inv.done:
		default:
			status = "error"
		}
	}
	dur := time.Since(start)
	res := result{body: out.body, failed: out.failed}
	memUsed := 0
	switch status {
	case "timeout":
		in.kill()
		<-in.exited
		in.waitLogs()
		msg := fmt.Sprintf("Task timed out after %.2f seconds", fn.cfg.Timeout.Seconds())
		in.platformLine(inv, time.Now().UTC().Format("2006-01-02T15:04:05.000Z")+" "+inv.id+" "+msg)
		res = result{failed: true, body: mustJSON(sandboxError{Type: "Sandbox.Timedout", Message: "RequestId: " + inv.id + " Error: " + msg})}
	case "error":
		res = in.exitResult(inv)
	default:
		memUsed = maxMemoryMB(in.pid)
		in.drain()
		if crash {
			s.log.DebugContext(ctx, "crash fault: killing the instance after its result", "function", fn.cfg.Name, "pid", in.pid, "requestId", inv.id)
			in.kill()
			<-in.exited
			res = in.exitResult(inv)
			status = "error"
		}
	}
	in.platformLine(inv, "END RequestId: "+inv.id)
	report := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		inv.id, ms(dur), int64(math.Ceil(ms(dur))), fn.cfg.MemoryMB, memUsed)
	if cold {
		report += fmt.Sprintf("\tInit Duration: %.2f ms", ms(in.initDur))
	}
	switch status {
	case "timeout":
		report += "\tStatus: timeout"
	case "error":
		report += "\tStatus: error\tError Type: Runtime.ExitError"
	}
	in.platformLine(inv, report)
	in.mu.Lock()
	in.logInv = nil
	res.log = inv.log
	in.mu.Unlock()
	if status == "" {
		fn.release(in)
	}
	return res
}

// coldStart waits for a new instance's runtime to poll for its first
// invocation. It reports false with the result if the instance never does.
func (s *Service) coldStart(ctx context.Context, in *instance, inv *invocation) (result, bool) {
	t := time.NewTimer(InitTimeout)
	defer t.Stop()
	select {
	case <-in.polled:
		return result{}, true
	case body := <-in.initErr:
		in.kill()
		<-in.exited
		in.waitLogs()
		in.claimPre(inv)
		s.log.DebugContext(ctx, "function init failed", "function", in.fn.cfg.Name, "pid", in.pid)
		return result{failed: true, body: body, log: inv.log}, false
	case <-in.exited:
		in.waitLogs()
		in.claimPre(inv)
		res := in.exitResult(inv)
		res.log = inv.log
		return res, false
	case <-t.C:
		in.kill()
		<-in.exited
		in.waitLogs()
		in.claimPre(inv)
		msg := fmt.Sprintf("Task timed out after %.2f seconds", InitTimeout.Seconds())
		in.platformLine(inv, "INIT_REPORT Init Duration: "+fmt.Sprintf("%.2f ms", ms(InitTimeout))+"\tPhase: init\tStatus: timeout")
		return result{failed: true, body: mustJSON(sandboxError{Type: "Sandbox.Timedout", Message: "RequestId: " + inv.id + " Error: " + msg}), log: inv.log}, false
	}
}

// claimPre makes the init lines of an instance the invocation's log.
func (in *instance) claimPre(inv *invocation) {
	in.mu.Lock()
	inv.log = append(inv.log, in.pre...)
	in.pre = nil
	in.mu.Unlock()
}

// exitResult is the answer for a process that exited during an invocation.
func (in *instance) exitResult(inv *invocation) result {
	in.waitLogs()
	msg := "RequestId: " + inv.id + " Error: " + in.exitMessage()
	in.platformLine(inv, msg)
	in.platformLine(inv, "Runtime.ExitError")
	return result{failed: true, body: mustJSON(sandboxError{Type: "Runtime.ExitError", Message: msg})}
}

// waitLogs waits, briefly, for the output of a process that has exited.
func (in *instance) waitLogs() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-in.logsDone:
	case <-t.C:
		in.drain()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
