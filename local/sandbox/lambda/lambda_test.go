package lambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	// The test functions under testdata use aws-lambda-go; go mod tidy
	// ignores testdata, so this import keeps the module required.
	_ "github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The test functions, built once per test binary.
var (
	echoPath  string // testdata/echofn
	emptyPath string // testdata/emptyfn
	urlPath   string // testdata/urlfn
)

func TestMain(m *testing.M) {
	if p := os.Getenv("LAMBDA_TEST_ECHO"); p != "" { // a helper process: built already
		echoPath, emptyPath, urlPath = p, os.Getenv("LAMBDA_TEST_EMPTY"), os.Getenv("LAMBDA_TEST_URL")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "lambda-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	echoPath = filepath.Join(dir, "echofn", "bootstrap")
	emptyPath = filepath.Join(dir, "emptyfn", "bootstrap")
	urlPath = filepath.Join(dir, "urlfn", "bootstrap")
	for out, pkg := range map[string]string{echoPath: "./testdata/echofn", emptyPath: "./testdata/emptyfn", urlPath: "./testdata/urlfn"} {
		cmd := exec.CommandContext(context.Background(), "go", "build", "-tags", "lambda.norpc", "-o", out, pkg) // TestMain: no test's context yet
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			_ = os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// echoResponse is what testdata/echofn returns.
type echoResponse struct {
	Echo      json.RawMessage   `json:"echo"`
	PID       int               `json:"pid"`
	RequestID string            `json:"requestId"`
	ARN       string            `json:"arn"`
	Caller    string            `json:"caller"`
	Env       []string          `json:"env"`
	Vars      map[string]string `json:"vars"`
}

// lambdaError is Lambda's error document.
type lambdaError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

// start runs a sandbox with the echo function (1 s timeout) and returns an
// SDK client for it.
func start(t testing.TB, cfgs ...sblambda.FunctionConfig) (*sandboxtest.Sandbox, *lambda.Client) {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	if len(cfgs) == 0 {
		cfgs = []sblambda.FunctionConfig{{Name: "echo", Path: echoPath, Timeout: time.Second, Env: map[string]string{"GREETING": "hello"}}}
	}
	for _, c := range cfgs {
		if err := sb.Lambda.Register(c); err != nil {
			t.Fatalf("register %s: %v", c.Name, err)
		}
	}
	return sb, lambda.NewFromConfig(sb.Config(t))
}

func invoke(t testing.TB, c *lambda.Client, in *lambda.InvokeInput) *lambda.InvokeOutput {
	t.Helper()
	out, err := c.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

func payload(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func echo(t testing.TB, c *lambda.Client, req map[string]any) echoResponse {
	t.Helper()
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload(t, req)})
	if out.FunctionError != nil {
		t.Fatalf("echo %v: function error %s: %s", req, aws.ToString(out.FunctionError), out.Payload)
	}
	var r echoResponse
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("echo: decode %s: %v", out.Payload, err)
	}
	return r
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Serial: it sets the test process's environment to see that none of it
// reaches the function (t.Setenv cannot run beside parallel tests).
func TestInvokeResult(t *testing.T) {
	t.Setenv("KEYROTATOR_LEAK_CHECK", "must not reach the function")
	sb, c := start(t)
	arn := "arn:aws:lambda:us-east-1:111122223333:function:echo"
	for _, tc := range []struct {
		name, ref string
	}{
		{"name", "echo"},
		{"name and qualifier", "echo:$LATEST"},
		{"partial ARN", "111122223333:function:echo"},
		{"full ARN", arn},
		{"full ARN and qualifier", arn + ":$LATEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String(tc.ref), Payload: []byte(`{"value":{"a":[1,2]}}`)})
			if out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
				t.Fatalf("status %d, function error %v, version %q", out.StatusCode, out.FunctionError, aws.ToString(out.ExecutedVersion))
			}
			var r echoResponse
			if err := json.Unmarshal(out.Payload, &r); err != nil {
				t.Fatal(err)
			}
			if string(r.Echo) != `{"a":[1,2]}` || r.ARN != arn || r.RequestID == "" {
				t.Fatalf("echo %s arn %s request %q", r.Echo, r.ARN, r.RequestID)
			}
		})
	}

	r := echo(t, c, nil)
	wantVars := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "echo", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": sb.URL, "_HANDLER": "bootstrap",
		"TZ": ":UTC", "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/echo", "GREETING": "hello",
	}
	for k, v := range wantVars {
		if r.Vars[k] != v {
			t.Errorf("%s = %q, want %q", k, r.Vars[k], v)
		}
	}
	for _, k := range []string{"AWS_LAMBDA_RUNTIME_API", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_LOG_STREAM_NAME", "PATH", "LANG"} {
		if !slices.Contains(r.Env, k) {
			t.Errorf("%s not set", k)
		}
	}
	for _, k := range []string{"KEYROTATOR_LEAK_CHECK", "HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		if slices.Contains(r.Env, k) {
			t.Errorf("%s leaked from the sandbox's environment", k)
		}
	}
}

func TestFunctionErrors(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	for _, tc := range []struct {
		name     string
		req      map[string]any
		typ, msg string
	}{
		{"named error", map[string]any{"action": "error"}, "KeyLimitReached", "user alice already has 2 access keys"},
		{"timeout", map[string]any{"action": "sleep", "sleepMs": 5000}, "Sandbox.Timedout", "Error: Task timed out after 1.00 seconds"},
		{"exit", map[string]any{"action": "exit", "code": 3}, "Runtime.ExitError", "Error: Runtime exited with error: exit status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := echo(t, c, nil).PID
			out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload(t, tc.req)})
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" {
				t.Fatalf("status %d, function error %q", out.StatusCode, aws.ToString(out.FunctionError))
			}
			var e lambdaError
			if err := json.Unmarshal(out.Payload, &e); err != nil {
				t.Fatalf("decode %s: %v", out.Payload, err)
			}
			if e.Type != tc.typ || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("error %s, want type %s and message with %q", out.Payload, tc.typ, tc.msg)
			}
			if tc.typ != "KeyLimitReached" && !strings.HasPrefix(e.Message, "RequestId: ") {
				t.Fatalf("message %q does not name the request", e.Message)
			}
			// A function error keeps the instance; a timeout or an exit ends it.
			after := echo(t, c, nil).PID
			if wantSame := tc.typ == "KeyLimitReached"; (after == before) != wantSame {
				t.Fatalf("instance before %d, after %d: want same = %v", before, after, wantSame)
			}
		})
	}
}

func TestWarmReuse(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	first, second := echo(t, c, nil), echo(t, c, nil)
	if first.PID != second.PID || first.RequestID == second.RequestID {
		t.Fatalf("pids %d, %d; requests %s, %s: want one warm instance", first.PID, second.PID, first.RequestID, second.RequestID)
	}
}

func TestParallelGrowsPool(t *testing.T) {
	t.Parallel()
	sb, c := start(t,
		sblambda.FunctionConfig{Name: "echo", Path: echoPath},
		sblambda.FunctionConfig{Name: "narrow", Path: echoPath, MaxConcurrency: 2})
	const n = 4
	pids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { pids[i] = echo(t, c, map[string]any{"action": "sleep", "sleepMs": 300}).PID })
	}
	wg.Wait()
	slices.Sort(pids)
	if len(slices.Compact(pids)) != n {
		t.Fatalf("pids %v: want %d instances", pids, n)
	}
	v, _ := sb.Lambda.Function("echo")
	if len(v.Instances) != n {
		t.Fatalf("pool has %d instances, want %d", len(v.Instances), n)
	}

	// Beyond the function's concurrency, Lambda throttles.
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("narrow"), Payload: []byte(`{"action":"sleep","sleepMs":500}`)},
				func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
		})
	}
	wg.Wait()
	throttled := 0
	for _, err := range errs {
		var tm *types.TooManyRequestsException
		switch {
		case errors.As(err, &tm):
			throttled++
			// As AWS answers: 429, the limit named in Reason.
			if tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded || aws.ToString(tm.Message) != "Rate Exceeded." || aws.ToString(tm.Type) != "User" {
				t.Errorf("throttled with Reason %q, Type %q, message %q", tm.Reason, aws.ToString(tm.Type), aws.ToString(tm.Message))
			}
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusTooManyRequests {
				t.Errorf("throttled with %v, want status 429", err)
			}
			// A throttle to the SDK's own retryer, which backs off and retries it.
			if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
				t.Errorf("the SDK does not count %v as a throttle", err)
			}
		case err != nil:
			t.Fatalf("Invoke narrow: %v", err)
		}
	}
	if throttled != 1 {
		t.Fatalf("%d calls throttled, want 1: %v", throttled, errs)
	}
}

func TestCrashFault(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	before := echo(t, c, nil).PID
	sb.Fault(t, sandbox.Fault{Service: "lambda", Action: "Invoke", Resource: "echo", Crash: true})
	mark := filepath.Join(t.TempDir(), "side-effect")
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload(t, map[string]any{"action": "touch", "path": mark})})
	var e lambdaError
	if err := json.Unmarshal(out.Payload, &e); err != nil || aws.ToString(out.FunctionError) != "Unhandled" || e.Type != "Runtime.ExitError" ||
		!strings.Contains(e.Message, "Runtime exited with error") {
		t.Fatalf("crash: function error %q, payload %s (%v)", aws.ToString(out.FunctionError), out.Payload, err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the side effect did not happen before the crash: %v", err)
	}
	if after := echo(t, c, nil).PID; after == before {
		t.Fatalf("instance %d survived the crash", after)
	}
	if alive(before) {
		t.Fatalf("crashed process %d still runs", before)
	}
}

func TestTailLogs(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), LogType: types.LogTypeTail,
		Payload: []byte(`{"log":"hello from the function"}`)})
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult %q: %v", aws.ToString(out.LogResult), err)
	}
	var r echoResponse
	_ = json.Unmarshal(out.Payload, &r)
	tail := string(b)
	for _, want := range []string{"START RequestId: " + r.RequestID + " Version: $LATEST", "hello from the function", `echofn: action=""`,
		"END RequestId: " + r.RequestID, "REPORT RequestId: " + r.RequestID, "Init Duration: "} {
		if !strings.Contains(tail, want) {
			t.Errorf("tail lacks %q:\n%s", want, tail)
		}
	}
	// Warm: no Init Duration; a call without Tail has no LogResult.
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), LogType: types.LogTypeTail, Payload: []byte(`{}`)})
	if b, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); strings.Contains(string(b), "Init Duration") {
		t.Errorf("warm invocation reports an init:\n%s", b)
	}
	if out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo")}); out.LogResult != nil {
		t.Errorf("LogResult without Tail: %q", aws.ToString(out.LogResult))
	}
	// Tail is the last 4 KB.
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), LogType: types.LogTypeTail,
		Payload: payload(t, map[string]any{"log": strings.Repeat("x", 10000)})})
	if b, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); len(b) != 4096 || !strings.Contains(string(b), "REPORT") {
		t.Errorf("tail of a long log: %d bytes", len(b))
	}

	// The admin API keeps every line, and forgets them on request.
	var lines []sblambda.LogLine
	sb.AdminCall(t, http.MethodGet, "/lambda/functions/echo/logs", nil, &lines)
	if !slices.ContainsFunc(lines, func(l sblambda.LogLine) bool {
		return l.Message == "hello from the function" && l.RequestID == r.RequestID && l.PID == r.PID
	}) {
		t.Fatalf("admin logs lack the function's line: %+v", lines)
	}
	sb.AdminCall(t, http.MethodDelete, "/lambda/functions/echo/logs", nil, nil)
	lines = nil
	sb.AdminCall(t, http.MethodGet, "/lambda/functions/echo/logs", nil, &lines)
	if len(lines) != 0 {
		t.Fatalf("logs after DELETE: %+v", lines)
	}
}

func TestInvokeErrors(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	for _, tc := range []struct {
		name, fn string
		payload  []byte
		code     string
		msg      string
	}{
		{"unknown function", "nope", nil, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:111122223333:function:nope"},
		{"unknown ARN", "arn:aws:lambda:us-east-1:111122223333:function:nope:$LATEST", nil, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:111122223333:function:nope:$LATEST"},
		{"unknown version", "echo:7", nil, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:111122223333:function:echo:7"},
		{"payload too large", "echo", []byte(`"` + strings.Repeat("x", 6<<20) + `"`), "RequestEntityTooLargeException", "Request must be smaller than 6291456 bytes"},
		{"not JSON", "echo", []byte("{"), "InvalidRequestContentException", "Could not parse request body into json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(tc.fn), Payload: tc.payload})
			if apiCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %s: %s", err, tc.code, tc.msg)
			}
		})
	}
}

func TestFromInsideSTS(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	r := echo(t, c, map[string]any{"action": "whoami"})
	if want := "arn:aws:sts::111122223333:assumed-role/echo-role/echo"; r.Caller != want {
		t.Fatalf("caller inside the function: %q, want %q", r.Caller, want)
	}
	calls := sb.Calls(t, 0)
	if !slices.ContainsFunc(calls, func(c sandbox.CallRecord) bool {
		return c.Service == "sts" && c.Action == "GetCallerIdentity" && strings.HasPrefix(c.AccessKeyID, "ASIA") && c.Status == 200
	}) {
		t.Fatalf("no STS call with role credentials in the call log: %+v", calls)
	}
}

func TestInvocationTypes(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
	if out.StatusCode != 204 {
		t.Fatalf("DryRun: status %d", out.StatusCode)
	}
	mark := filepath.Join(t.TempDir(), "event")
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: payload(t, map[string]any{"action": "touch", "path": mark})})
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("Event: status %d, payload %q", out.StatusCode, out.Payload)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Event invocation never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInternalInvoke(t *testing.T) {
	t.Parallel()
	sb, _ := start(t)
	p := sandbox.Principal{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/sfn/exec", Type: "AssumedRole"}
	for _, tc := range []struct {
		name, body, fnErr, contains string
	}{
		{"result", `{"value":"hi"}`, "", `"echo":"hi"`},
		{"named error", `{"action":"error"}`, "Unhandled", `"errorType":"KeyLimitReached"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := sb.Server.Internal(context.Background(), "lambda", "Invoke", "echo", p, []byte(tc.body))
			if err != nil {
				t.Fatalf("Internal: %v", err)
			}
			raw, ok := res.(*sandbox.Raw)
			if !ok || raw.Status != 200 || raw.Header.Get("X-Amz-Function-Error") != tc.fnErr || !strings.Contains(string(raw.Body), tc.contains) {
				t.Fatalf("Internal: %T %+v", res, res)
			}
		})
	}
	_, err := sb.Server.Internal(context.Background(), "lambda", "Invoke", "nope", p, nil)
	var e *sandbox.Error
	if !errors.As(err, &e) || e.Code != "ResourceNotFoundException" {
		t.Fatalf("Internal, unknown function: %v", err)
	}
}

func TestFunctionAPIs(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	// Registered through the admin API: a second function, from a directory layout.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(emptyPath, filepath.Join(dir, "empty", "bootstrap")); err != nil {
		t.Fatal(err)
	}
	names, err := sb.Lambda.RegisterDir(dir)
	if err != nil || !slices.Equal(names, []string{"empty"}) {
		t.Fatalf("RegisterDir: %v %v", names, err)
	}
	var v sblambda.FunctionView
	if code := sb.AdminCall(t, http.MethodPut, "/lambda/functions/other", map[string]any{"path": echoPath, "timeout": 2, "memoryMB": 256, "role": "rotator"}, &v); code != http.StatusCreated ||
		v.ARN != "arn:aws:lambda:us-east-1:111122223333:function:other" {
		t.Fatalf("PUT function: %d %+v", code, v)
	}
	var bad map[string]string
	if code := sb.AdminCall(t, http.MethodPut, "/lambda/functions/bad", map[string]any{"path": echoPath, "env": map[string]string{"AWS_REGION": "x"}}, &bad); code != http.StatusBadRequest ||
		!strings.Contains(bad["error"], "Reserved keys used in this request: AWS_REGION") {
		t.Fatalf("PUT with a reserved key: %d %v", code, bad)
	}
	if out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("empty")}); string(out.Payload) != `"ok"` {
		t.Fatalf("empty function: %s", out.Payload)
	}

	got, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String("other")})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if fc := got.Configuration; aws.ToInt32(fc.Timeout) != 2 || aws.ToInt32(fc.MemorySize) != 256 || aws.ToString(fc.Role) != "arn:aws:iam::111122223333:role/rotator" ||
		fc.Runtime != types.RuntimeProvidedal2023 || aws.ToString(fc.CodeSha256) == "" || aws.ToString(fc.Version) != "$LATEST" {
		t.Fatalf("GetFunction: %+v", fc)
	}
	if _, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String("nope")}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetFunction nope: %v", err)
	}
	list, err := c.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatalf("ListFunctions: %v", err)
	}
	var listed []string
	for _, f := range list.Functions {
		listed = append(listed, aws.ToString(f.FunctionName))
	}
	if !slices.Equal(listed, []string{"echo", "empty", "other"}) {
		t.Fatalf("ListFunctions: %v", listed)
	}
	var all []sblambda.FunctionView
	sb.AdminCall(t, http.MethodGet, "/lambda/functions", nil, &all)
	if len(all) != 3 || len(all[1].Instances) != 1 {
		t.Fatalf("admin functions: %+v", all)
	}
}

func TestCloseStopsEveryProcess(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { echo(t, c, map[string]any{"action": "sleep", "sleepMs": 200}) })
	}
	wg.Wait()
	// One more is busy while the sandbox closes.
	busy := make(chan *lambda.InvokeOutput, 1)
	go func() {
		out, _ := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"action":"sleep","sleepMs":900}`)})
		busy <- out
	}()
	var v sblambda.FunctionView
	for deadline := time.Now().Add(5 * time.Second); !slices.ContainsFunc(v.Instances, func(in sblambda.InstanceView) bool { return in.Busy }); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the fourth invocation never started: instances %+v", v.Instances)
		}
		v, _ = sb.Lambda.Function("echo")
	}
	var pids []int
	for _, in := range v.Instances {
		pids = append(pids, in.PID)
	}
	if len(pids) != 3 {
		t.Fatalf("instances %v, want 3", pids)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("instance %d is not running", pid)
		}
	}
	if err := sb.Lambda.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil { // not even a zombie: Close reaps its children
			t.Errorf("process %d survived Close", pid)
		}
	}
	if out := <-busy; out == nil || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Errorf("invocation in flight at Close: %+v", out)
	}
	if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo")}, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }); apiCode(err) != "ServiceException" {
		t.Fatalf("Invoke after Close: %v", err)
	}
}

// alive says whether a process runs: it exists and is not a zombie
// waiting for a parent (or init) to reap it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // not Linux: existing is running
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func TestReregisterStopsOldInstances(t *testing.T) {
	t.Parallel()
	sb, c := start(t)
	before := echo(t, c, map[string]any{"value": 1})
	if err := sb.Lambda.Register(sblambda.FunctionConfig{Name: "echo", Path: echoPath, Env: map[string]string{"GREETING": "bonjour"}}); err != nil {
		t.Fatal(err)
	}
	after := echo(t, c, nil)
	if after.PID == before.PID || after.Vars["GREETING"] != "bonjour" {
		t.Fatalf("after re-registering: pid %d (was %d), GREETING %q", after.PID, before.PID, after.Vars["GREETING"])
	}
	deadline := time.Now().Add(3 * time.Second)
	for alive(before.PID) {
		if time.Now().After(deadline) {
			t.Fatalf("the old instance %d still runs", before.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The log survives the new code, as a log group does.
	lines, _ := sb.Lambda.Logs("echo")
	if !slices.ContainsFunc(lines, func(l sblambda.LogLine) bool { return l.RequestID == before.RequestID }) {
		t.Fatalf("the old instance's lines are gone")
	}
}

// TestChildrenDieWithTheSandbox kills a sandbox (another process running
// this test binary) without letting it close: its function processes must
// die with it.
func TestChildrenDieWithTheSandbox(t *testing.T) {
	t.Parallel()
	if os.Getenv("LAMBDA_TEST_HELPER") == "1" {
		_, c := start(t)
		fmt.Printf("pid=%d\n", echo(t, c, nil).PID)
		time.Sleep(time.Minute) // until killed
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildrenDieWithTheSandbox$")
	cmd.Env = append(os.Environ(), "LAMBDA_TEST_HELPER=1", "LAMBDA_TEST_ECHO="+echoPath, "LAMBDA_TEST_EMPTY="+emptyPath, "LAMBDA_TEST_URL="+urlPath)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pid int
	buf := make([]byte, 256)
	var got string
	for pid == 0 {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("helper: %v (output %q)", err, got)
		}
		got += string(buf[:n])
		if i := strings.Index(got, "pid="); i >= 0 && strings.Contains(got[i:], "\n") {
			_, _ = fmt.Sscanf(got[i:], "pid=%d", &pid)
		}
	}
	if !alive(pid) {
		t.Fatalf("function process %d is not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("function process %d outlived its killed sandbox", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shellRuntime is a custom runtime in sh and curl: the Runtime API as AWS
// documents it serves any client, not only aws-lambda-go.
const shellRuntime = `#!/bin/sh
set -u
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | tr -d '\r' | cut -d' ' -f2)
  rm -f "$H"
  echo "shell got $ID"
  case "$EVENT" in
  *fail*) curl -sS -o /dev/null -X POST "$API/invocation/$ID/error" -H 'Lambda-Runtime-Function-Error-Type: Shell.Failure' -d '{"errorMessage":"asked to fail","errorType":"Shell.Failure","stackTrace":[]}' ;;
  *) curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "$EVENT" ;;
  esac
done
`

// initErrorRuntime fails its init as a runtime reports it.
const initErrorRuntime = `#!/bin/sh
echo "cannot start: no config" >&2
curl -sS -o /dev/null -X POST "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error" -H 'Lambda-Runtime-Function-Error-Type: Runtime.ConfigError' -d '{"errorMessage":"no config","errorType":"Runtime.ConfigError"}'
exit 1
`

func TestCustomRuntime(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl for the shell runtimes")
	}
	dir := t.TempDir()
	for name, script := range map[string]string{"shell": shellRuntime, "initerr": initErrorRuntime} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sb, c := start(t)
	if names, err := sb.Lambda.RegisterDir(dir); err != nil || len(names) != 2 {
		t.Fatalf("RegisterDir: %v %v", names, err)
	}
	for _, tc := range []struct {
		name, fn, payload, fnErr, body string
	}{
		{"result", "shell", `{"hello":"world"}`, "", `{"hello":"world"}`},
		{"error", "shell", `{"fail":true}`, "Unhandled", `{"errorMessage":"asked to fail","errorType":"Shell.Failure","stackTrace":[]}`},
		{"init error", "initerr", `{}`, "Unhandled", `{"errorMessage":"no config","errorType":"Runtime.ConfigError"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String(tc.fn), Payload: []byte(tc.payload), LogType: types.LogTypeTail})
			if aws.ToString(out.FunctionError) != tc.fnErr || string(out.Payload) != tc.body {
				t.Fatalf("function error %q, payload %s", aws.ToString(out.FunctionError), out.Payload)
			}
			if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); tc.fn == "initerr" && !strings.Contains(string(tail), "cannot start: no config") {
				t.Fatalf("init log missing from the tail:\n%s", tail)
			}
		})
	}
}

// What a function calls while it runs an invocation that came with an
// origin (Step Functions' state and Map item) is that invocation's: the call
// log says so, by the instance's own credentials. An invocation without
// one leaves its calls without.
func TestCallsCarryTheInvocationsOrigin(t *testing.T) {
	t.Parallel()
	sb, _ := start(t)
	p := sandbox.Principal{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/sfn/exec", Type: "AssumedRole"}
	o := sandbox.Origin{Execution: "arn:aws:states:us-east-1:111122223333:execution:m:e", State: "UpdateSecret", Item: "app"}
	since := sb.Server.Calls().Last()
	if _, err := sb.Server.Internal(sandbox.WithOrigin(context.Background(), o), "lambda", "Invoke", "echo", p, []byte(`{"action":"whoami"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Server.Internal(context.Background(), "lambda", "Invoke", "echo", p, []byte(`{"action":"whoami"}`)); err != nil {
		t.Fatal(err)
	}
	var sts, invokes []sandbox.CallRecord
	for _, c := range sb.Calls(t, since) {
		switch {
		case c.Service == "sts" && c.Action == "GetCallerIdentity":
			sts = append(sts, c)
		case c.Service == "lambda" && c.Action == "Invoke":
			invokes = append(invokes, c)
		}
	}
	if len(sts) != 2 || len(invokes) != 2 {
		t.Fatalf("%d STS calls, %d invokes; want 2 and 2", len(sts), len(invokes))
	}
	if c := invokes[0]; c.Origin == nil || c.Origin.State != o.State || c.Origin.Invocation != "" || c.Ordinal != 1 {
		t.Errorf("the invoke: origin %+v ordinal %d", c.Origin, c.Ordinal)
	}
	if c := sts[0]; c.Origin == nil || c.Origin.State != o.State || c.Origin.Item != o.Item || c.Origin.Execution != o.Execution || c.Origin.Invocation == "" || c.Ordinal != 1 {
		t.Errorf("the function's call: origin %+v ordinal %d, want %+v with the invocation's id", c.Origin, c.Ordinal, o)
	}
	if sts[1].Origin != nil || invokes[1].Origin != nil {
		t.Errorf("calls without an origin got one: %+v, %+v", sts[1].Origin, invokes[1].Origin)
	}
}
