package stepfunctions_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/local/sandbox"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

const (
	echoARN = "arn:aws:lambda:us-east-1:111122223333:function:echo"
	day     = 24 * 60 * 60 // seconds
)

// approvalMachine is the shape of keyrotator's approval gate: a
// lambda:invoke.waitForTaskToken whose Payload carries $$.Task.Token, with
// its timeout read from the state input (not from the Parameters). The
// Catch on States.TaskFailed comes before the one on States.Timeout: a
// timeout that States.TaskFailed matched would land in $.taskFailed.
func approvalMachine(t *testing.T, sb *sandboxtest.Sandbox, c *sfn.Client, extra map[string]any) string {
	t.Helper()
	if sb.Lambda == nil {
		t.Skip("the sandbox has no Lambda service")
	}
	if err := sb.Lambda.Register(sblambda.FunctionConfig{Name: "echo", Path: echoFunction(t), Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("register echo: %v", err)
	}
	approve := map[string]any{
		"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters": map[string]any{
			"FunctionName": echoARN,
			"Payload": map[string]any{"action.$": "$.action", "sleepMs.$": "$.sleepMs",
				"value": map[string]any{"kind": "approval", "token.$": "$$.Task.Token", "now.$": "$$.State.EnteredTime", "data.$": "$"}},
		},
		"TimeoutSecondsPath": "$.plan.approvalTimeoutSeconds",
		"ResultPath":         "$.approval",
		"Retry":              []any{map[string]any{"ErrorEquals": []string{"Lambda.TooManyRequestsException"}, "IntervalSeconds": 2, "MaxAttempts": 2}},
		"Catch": []any{
			map[string]any{"ErrorEquals": []string{"ApprovalRejected"}, "ResultPath": "$.rejected", "Next": "Rejected"},
			map[string]any{"ErrorEquals": []string{"States.TaskFailed"}, "ResultPath": "$.taskFailed", "Next": "Rejected"},
			map[string]any{"ErrorEquals": []string{"States.Timeout"}, "ResultPath": "$.timedOut", "Next": "Expired"},
		},
		"Next": "CreateKey",
	}
	for k, v := range extra {
		approve[k] = v
	}
	return create(t, c, "approval", map[string]any{
		"StartAt": "Approve",
		"States": map[string]any{
			"Approve":   approve,
			"CreateKey": map[string]any{"Type": "Pass", "End": true},
			"Rejected":  map[string]any{"Type": "Pass", "End": true},
			"Expired":   map[string]any{"Type": "Pass", "End": true},
		},
	})
}

func approvalInput(timeoutSeconds int, action string, sleepMs int) string {
	b, _ := json.Marshal(map[string]any{"user": "alice", "action": action, "sleepMs": sleepMs,
		"plan": map[string]any{"approvalTimeoutSeconds": timeoutSeconds}})
	return string(b)
}

func startExecution(t *testing.T, c *sfn.Client, machine, input string) string {
	t.Helper()
	st, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(input)})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	return aws.ToString(st.ExecutionArn)
}

func finished(t *testing.T, c *sfn.Client, sf *stepfunctions.Service, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sf.WaitForExecution(ctx, arn); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("DescribeExecution: %v", err)
	}
	return d
}

// scheduled returns the TaskScheduled events of a state, in order, as the
// operator CLI finds them: the TaskScheduled events after that state's
// TaskStateEntered.
func scheduled(h []types.HistoryEvent, state string) []types.HistoryEvent {
	var out []types.HistoryEvent
	in := false
	for _, e := range h {
		switch {
		case e.StateEnteredEventDetails != nil:
			in = aws.ToString(e.StateEnteredEventDetails.Name) == state
		case e.Type == types.HistoryEventTypeTaskScheduled && in:
			out = append(out, e)
		}
	}
	return out
}

// tokenOf reads the token from a TaskScheduled event's parameters, where
// approvalMachine's Parameters put it.
func tokenOf(t *testing.T, e types.HistoryEvent) string {
	t.Helper()
	var p struct {
		FunctionName string
		Payload      struct {
			Value struct {
				Token string `json:"token"`
			} `json:"value"`
		}
	}
	if err := json.Unmarshal([]byte(aws.ToString(e.TaskScheduledEventDetails.Parameters)), &p); err != nil || p.Payload.Value.Token == "" {
		t.Fatalf("TaskScheduled parameters %s: no token (%v)", aws.ToString(e.TaskScheduledEventDetails.Parameters), err)
	}
	return p.Payload.Value.Token
}

// waitToken polls the history until the n-th attempt of Approve is
// scheduled and returns its token.
func waitToken(t *testing.T, c *sfn.Client, arn string, n int) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s := scheduled(history(t, c, arn), "Approve"); len(s) >= n {
			return tokenOf(t, s[n-1])
		}
	}
	t.Fatalf("attempt %d of Approve was never scheduled: %v", n, eventTypes(history(t, c, arn)))
	return ""
}

func output(t *testing.T, d *sfn.DescribeExecutionOutput) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %q: %v", aws.ToString(d.Output), err)
	}
	return out
}

// waited is how long a callback Task waited, from its TaskStarted to its
// TaskTimedOut: the shortened timeout, without the runner's start or the
// function's, which a loaded machine stretches to seconds.
func waited(h []types.HistoryEvent) time.Duration {
	var started, timedOut time.Time
	for _, e := range h {
		switch e.Type {
		case types.HistoryEventTypeTaskStarted:
			started = aws.ToTime(e.Timestamp)
		case types.HistoryEventTypeTaskTimedOut:
			timedOut = aws.ToTime(e.Timestamp)
		}
	}
	if started.IsZero() || timedOut.IsZero() {
		return time.Duration(1<<63 - 1) // never started, or never timed out
	}
	return timedOut.Sub(started)
}

func typesOf(h []types.HistoryEvent) string { return strings.Join(eventTypes(h), ",") }

// Serial: "nobody answers" bounds the real time a shortened timeout takes
// (2 s), which a loaded machine's parallel tests would stretch.
func TestCallbackTask(t *testing.T) {
	sb, c, sf := start(t)
	machine := approvalMachine(t, sb, c, nil)
	ctx := context.Background()
	success := func(tok, out string) error {
		_, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(out)})
		return err
	}
	tests := []struct {
		name  string
		input string
		// act plays the approver once the token is in the history.
		act    func(t *testing.T, arn, token string)
		status types.ExecutionStatus
		check  func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent)
	}{
		{
			name: "approved: the output sent is the task's result", input: approvalInput(3*day, "echo", 0),
			act: func(t *testing.T, _, tok string) {
				if err := success(tok, `{"approvedBy":"arn:aws:iam::111122223333:user/bob","reason":"ok"}`); err != nil {
					t.Fatalf("SendTaskSuccess: %v", err)
				}
			},
			status: types.ExecutionStatusSucceeded,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				out := output(t, d)
				if b, _ := json.Marshal(out["approval"]); string(b) != `{"approvedBy":"arn:aws:iam::111122223333:user/bob","reason":"ok"}` {
					t.Errorf("$.approval = %s", b)
				}
				want := "ExecutionStarted,TaskStateEntered,TaskScheduled,TaskStarted,TaskSubmitted,TaskSucceeded,TaskStateExited,PassStateEntered,PassStateExited,ExecutionSucceeded"
				if got := typesOf(h); got != want {
					t.Fatalf("history %s\nwant    %s", got, want)
				}
				ts := h[2].TaskScheduledEventDetails
				if aws.ToString(ts.ResourceType) != "lambda" || aws.ToString(ts.Resource) != "invoke.waitForTaskToken" || aws.ToString(ts.Region) != "us-east-1" ||
					aws.ToInt64(ts.TimeoutInSeconds) != 3*day || ts.HeartbeatInSeconds != nil {
					t.Errorf("TaskScheduled %+v", ts)
				}
				var params map[string]any
				_ = json.Unmarshal([]byte(aws.ToString(ts.Parameters)), &params)
				payload, _ := params["Payload"].(map[string]any)
				value, _ := payload["value"].(map[string]any)
				if params["FunctionName"] != echoARN || value["kind"] != "approval" || value["now"] == nil || value["data"] == nil || len(params) != 2 {
					t.Errorf("TaskScheduled parameters %s: want FunctionName and Payload only, the sandbox's own fields taken out", aws.ToString(ts.Parameters))
				}
				if st := h[3].TaskStartedEventDetails; aws.ToString(st.Resource) != "invoke.waitForTaskToken" || aws.ToString(st.ResourceType) != "lambda" {
					t.Errorf("TaskStarted %+v", st)
				}
				// TaskSubmitted: the Lambda invoke's answer, shaped as lambda:invoke's.
				var sub struct {
					ExecutedVersion string
					Payload         struct {
						Echo struct {
							Token string `json:"token"`
						} `json:"echo"`
					}
					SdkHttpMetadata struct{ HttpStatusCode int }
					StatusCode      int
				}
				d5 := h[4].TaskSubmittedEventDetails
				if err := json.Unmarshal([]byte(aws.ToString(d5.Output)), &sub); err != nil || sub.StatusCode != 200 || sub.ExecutedVersion != "$LATEST" ||
					sub.SdkHttpMetadata.HttpStatusCode != 200 || sub.Payload.Echo.Token != tokenOf(t, h[2]) || aws.ToString(d5.Resource) != "invoke.waitForTaskToken" {
					t.Errorf("TaskSubmitted %s (%v)", aws.ToString(d5.Output), err)
				}
				if ok := h[5].TaskSucceededEventDetails; !strings.Contains(aws.ToString(ok.Output), `"approvedBy"`) || aws.ToString(ok.ResourceType) != "lambda" {
					t.Errorf("TaskSucceeded %+v", ok)
				}
			},
		},
		{
			name: "rejected: the error sent is what Catch matches", input: approvalInput(3*day, "echo", 0),
			act: func(t *testing.T, _, tok string) {
				if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(tok), Error: aws.String("ApprovalRejected"), Cause: aws.String("not during the freeze")}); err != nil {
					t.Fatalf("SendTaskFailure: %v", err)
				}
			},
			status: types.ExecutionStatusSucceeded,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				out := output(t, d)
				if b, _ := json.Marshal(out["rejected"]); string(b) != `{"Cause":"not during the freeze","Error":"ApprovalRejected"}` {
					t.Errorf("$.rejected = %s", b)
				}
				for _, e := range h {
					if e.Type == types.HistoryEventTypeTaskFailed && (aws.ToString(e.TaskFailedEventDetails.Error) != "ApprovalRejected" ||
						aws.ToString(e.TaskFailedEventDetails.Cause) != "not during the freeze" || aws.ToString(e.TaskFailedEventDetails.Resource) != "invoke.waitForTaskToken") {
						t.Errorf("TaskFailed %+v", e.TaskFailedEventDetails)
					}
				}
				if count(h, types.HistoryEventTypeTaskFailed) != 1 || count(h, types.HistoryEventTypeTaskSubmitted) != 1 {
					t.Errorf("history %s", typesOf(h))
				}
			},
		},
		{
			name: "nobody answers: States.Timeout after the shortened timeout", input: approvalInput(3600, "echo", 0),
			status: types.ExecutionStatusSucceeded,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				out := output(t, d)
				if te, _ := out["timedOut"].(map[string]any); te["Error"] != "States.Timeout" || out["taskFailed"] != nil {
					t.Errorf("output %s: want the timeout caught by States.Timeout, not States.TaskFailed", aws.ToString(d.Output))
				}
				if took := waited(h); took > 2*time.Second {
					t.Errorf("a 1-hour approval window took %v to time out, want 1 h × 1/43200 ≈ 83 ms", took)
				}
				var timedOut *types.TaskTimedOutEventDetails
				for _, e := range h {
					if e.TaskTimedOutEventDetails != nil {
						timedOut = e.TaskTimedOutEventDetails
					}
				}
				if timedOut == nil || aws.ToString(timedOut.Error) != "States.Timeout" || timedOut.Cause != nil ||
					aws.ToString(timedOut.Resource) != "invoke.waitForTaskToken" || count(h, types.HistoryEventTypeTaskSucceeded) != 0 {
					t.Errorf("history %s, TaskTimedOut %+v: want States.Timeout without a cause, as AWS records it", typesOf(h), timedOut)
				}
			},
		},
		{
			name: "answered before the function returned: TaskSubmitted comes first", input: approvalInput(3*day, "sleep", 700),
			act: func(t *testing.T, _, tok string) {
				if err := success(tok, `"early"`); err != nil {
					t.Fatalf("SendTaskSuccess: %v", err)
				}
			},
			status: types.ExecutionStatusSucceeded,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				if out := output(t, d); out["approval"] != "early" {
					t.Errorf("output %s", aws.ToString(d.Output))
				}
				if got := typesOf(h); !strings.Contains(got, "TaskStarted,TaskSubmitted,TaskSucceeded,TaskStateExited") {
					t.Errorf("history %s", got)
				}
			},
		},
		{
			name: "the function fails: the task fails with its error", input: approvalInput(3*day, "error", 0),
			status: types.ExecutionStatusSucceeded,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				if tf, _ := output(t, d)["taskFailed"].(map[string]any); tf["Error"] != "KeyLimitReached" {
					t.Errorf("output %s", aws.ToString(d.Output))
				}
				if count(h, types.HistoryEventTypeTaskSubmitted) != 0 || count(h, types.HistoryEventTypeTaskFailed) != 1 {
					t.Errorf("history %s", typesOf(h))
				}
			},
		},
		{
			name: "StopExecution ends the wait", input: approvalInput(3*day, "echo", 0),
			act: func(t *testing.T, arn, _ string) {
				if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn), Error: aws.String("Operator.Stop")}); err != nil {
					t.Fatalf("StopExecution: %v", err)
				}
			},
			status: types.ExecutionStatusAborted,
			check: func(t *testing.T, d *sfn.DescribeExecutionOutput, h []types.HistoryEvent) {
				if got := typesOf(h); !strings.HasSuffix(got, "TaskSubmitted,ExecutionAborted") && !strings.HasSuffix(got, "TaskStarted,ExecutionAborted") {
					t.Errorf("history %s", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arn := startExecution(t, c, machine, tc.input)
			if tc.act != nil {
				tc.act(t, arn, waitToken(t, c, arn, 1))
			}
			d := finished(t, c, sf, arn)
			if d.Status != tc.status {
				t.Fatalf("status %s (%s: %s), want %s; output %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause), tc.status, aws.ToString(d.Output))
			}
			h := history(t, c, arn)
			tc.check(t, d, h)
			// However it ended, its token is spent: AWS answers TaskTimedOut.
			tok := tokenOf(t, scheduled(h, "Approve")[0])
			if err := success(tok, `{}`); apiCode(err) != "TaskTimedOut" {
				t.Errorf("SendTaskSuccess after the end: %v, want TaskTimedOut", err)
			}
			var closed *types.TaskTimedOut
			if _, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(tok)}); !errors.As(err, &closed) {
				t.Errorf("SendTaskHeartbeat after the end: %v, want TaskTimedOut", err)
			}
		})
	}
}

// aToken is well formed, as the sandbox makes tokens, but was never issued.
func aToken() string {
	b := make([]byte, 68)
	_, _ = rand.Read(b)
	copy(b, "\x01sbx")
	return base64.StdEncoding.EncodeToString(b)
}

func TestCallbackTokenErrors(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := approvalMachine(t, sb, c, nil)
	ctx := context.Background()
	arn := startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	tok := waitToken(t, c, arn, 1)
	if len(tok) > 1024 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
		t.Errorf("token %q: want base64, at most 1024 characters", tok)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"garbage", func() error {
			_, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String("not-a-token"), Output: aws.String("{}")})
			return err
		}, "InvalidToken"},
		{"a token cut short", func() error {
			_, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(tok[:40])})
			return err
		}, "InvalidToken"},
		{"too long", func() error {
			_, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(strings.Repeat("A", 2049))})
			return err
		}, "ValidationException"},
		{"well formed, never issued", func() error {
			_, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(aToken()), Output: aws.String("{}")})
			return err
		}, "TaskDoesNotExist"},
		{"output that is not JSON", func() error {
			_, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String("{approved")})
			return err
		}, "InvalidOutput"},
		{"heartbeat of a task without HeartbeatSeconds", func() error {
			_, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(tok)})
			return err
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// None of that ended the wait.
	if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(`{"ok":true}`)}); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}
	if d := finished(t, c, sf, arn); d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s", d.Status)
	}
	var tokens []stepfunctions.TaskToken
	sb.AdminCall(t, "GET", "/states/task-tokens", nil, &tokens)
	if len(tokens) != 1 || tokens[0].Token != tok || tokens[0].Status != stepfunctions.Succeeded || tokens[0].State != "Approve" || tokens[0].ExecutionARN != arn {
		t.Errorf("admin task-tokens %+v", tokens)
	}
}

// Serial: heartbeats 250 ms apart against a 1-s heartbeat timeout, and a
// bound on the real time the timeout takes: timing, which parallel tests
// on a 2-core machine stretch.
func TestCallbackHeartbeat(t *testing.T) {
	sb, c, sf := start(t)
	ctx := context.Background()
	// 12 hours between heartbeats last 1 s; the 10-day timeout 20 s.
	machine := approvalMachine(t, sb, c, map[string]any{"HeartbeatSeconds": 12 * 60 * 60})
	arn := startExecution(t, c, machine, approvalInput(10*day, "echo", 0))
	tok := waitToken(t, c, arn, 1)
	for range 8 { // 2 s of heartbeats, twice the heartbeat timeout
		time.Sleep(250 * time.Millisecond)
		if _, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(tok)}); err != nil {
			t.Fatalf("SendTaskHeartbeat: %v", err)
		}
	}
	if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(`"alive"`)}); err != nil {
		t.Fatalf("SendTaskSuccess after heartbeats: %v", err)
	}
	if d := finished(t, c, sf, arn); d.Status != types.ExecutionStatusSucceeded || output(t, d)["approval"] != "alive" {
		t.Fatalf("status %s output %s", d.Status, aws.ToString(d.Output))
	}
	if ts := scheduled(history(t, c, arn), "Approve")[0].TaskScheduledEventDetails; aws.ToInt64(ts.HeartbeatInSeconds) != 12*60*60 || aws.ToInt64(ts.TimeoutInSeconds) != 10*day {
		t.Errorf("TaskScheduled heartbeat %v timeout %v", aws.ToInt64(ts.HeartbeatInSeconds), aws.ToInt64(ts.TimeoutInSeconds))
	}

	// Without heartbeats, the heartbeat timeout ends the task: AWS records
	// it as States.Timeout.
	arn = startExecution(t, c, machine, approvalInput(10*day, "echo", 0))
	d := finished(t, c, sf, arn)
	if te, _ := output(t, d)["timedOut"].(map[string]any); te["Error"] != "States.Timeout" || waited(history(t, c, arn)) > 5*time.Second {
		t.Errorf("no heartbeat: %s after %v", aws.ToString(d.Output), waited(history(t, c, arn)))
	}
}

// A retried attempt gets a token of its own; the first one's is spent.
func TestCallbackRetryGetsANewToken(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := approvalMachine(t, sb, c, nil)
	sb.Fault(t, sandbox.Fault{Service: "lambda", Action: "Invoke", Resource: "echo", Kind: "throttle"})
	arn := startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	second := waitToken(t, c, arn, 2)
	first := tokenOf(t, scheduled(history(t, c, arn), "Approve")[0])
	if first == second {
		t.Fatalf("both attempts have the token %s", first)
	}
	ctx := context.Background()
	if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(first), Output: aws.String("{}")}); apiCode(err) != "TaskTimedOut" {
		t.Errorf("the failed attempt's token: %v, want TaskTimedOut", err)
	}
	if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(second), Output: aws.String(`"second"`)}); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}
	if d := finished(t, c, sf, arn); d.Status != types.ExecutionStatusSucceeded || output(t, d)["approval"] != "second" {
		t.Fatalf("status %s output %s", d.Status, aws.ToString(d.Output))
	}
	if h := history(t, c, arn); count(h, types.HistoryEventTypeTaskFailed) != 1 || count(h, types.HistoryEventTypeTaskSucceeded) != 1 {
		t.Errorf("history %s", typesOf(h))
	}
}

// Tokens hold +, / and =: the AWS CLI (botocore, its own signing and
// parsing) must carry them as they are.
//
// Serial: each AWS CLI call starts Python (seconds on a loaded machine).
// The approval window is 3 days at a callback scale of 1/1440 (3 minutes
// of real time), not the floor's 6 s, which a loaded machine outlasted
// between two CLI calls (the heartbeat found the task timed out).
func TestCallbackAWSCLI(t *testing.T) {
	cli, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed here: skipping the second-client check for it")
	}
	sb, c, sf := startWith(t, fullsandbox.Options{WaitScale: 1e-6, CallbackScale: 1.0 / 1440})
	machine := approvalMachine(t, sb, c, nil)
	awsCLI := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), cli, append(args, "--output", "json")...)
		cmd.Env = sb.Env()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	arn := startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	tok := waitToken(t, c, arn, 1)
	if out, err := awsCLI("stepfunctions", "send-task-heartbeat", "--task-token", tok); err != nil {
		t.Fatalf("send-task-heartbeat: %v\n%s", err, out)
	}
	if out, err := awsCLI("stepfunctions", "send-task-success", "--task-token", tok, "--task-output", `{"approvedBy":"cli"}`); err != nil {
		t.Fatalf("send-task-success: %v\n%s", err, out)
	}
	if d := finished(t, c, sf, arn); d.Status != types.ExecutionStatusSucceeded || !strings.Contains(aws.ToString(d.Output), `"approvedBy":"cli"`) {
		t.Fatalf("status %s output %s", d.Status, aws.ToString(d.Output))
	}
	if out, err := awsCLI("stepfunctions", "send-task-success", "--task-token", tok, "--task-output", "{}"); err == nil || !strings.Contains(out, "TaskTimedOut") {
		t.Errorf("send-task-success again: err=%v out=%s", err, out)
	}

	arn = startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	tok = waitToken(t, c, arn, 1)
	if out, err := awsCLI("stepfunctions", "send-task-failure", "--task-token", tok, "--error", "ApprovalRejected", "--cause", "from the CLI"); err != nil {
		t.Fatalf("send-task-failure: %v\n%s", err, out)
	}
	if d := finished(t, c, sf, arn); !strings.Contains(aws.ToString(d.Output), `"rejected":{"Error":"ApprovalRejected","Cause":"from the CLI"}`) {
		t.Errorf("output %s", aws.ToString(d.Output))
	}
	out, err := awsCLI("stepfunctions", "get-execution-history", "--execution-arn", arn)
	if err != nil || !strings.Contains(out, `"resource": "invoke.waitForTaskToken"`) || !strings.Contains(out, "TaskSubmitted") {
		t.Errorf("get-execution-history: %v\n%s", err, out)
	}
	if out, err := awsCLI("stepfunctions", "send-task-success", "--task-token", "nonsense", "--task-output", "{}"); err == nil || !strings.Contains(out, "InvalidToken") {
		t.Errorf("send-task-success with nonsense: err=%v out=%s", err, out)
	}
}

// A restart keeps the tokens of the executions it keeps: they are closed.
func TestCallbackTokensSurviveSnapshot(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	machine := approvalMachine(t, sb, c, nil)
	ctx := context.Background()
	done := startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	tok := waitToken(t, c, done, 1)
	if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String("{}")}); err != nil {
		t.Fatal(err)
	}
	finished(t, c, sf, done)
	waiting := startExecution(t, c, machine, approvalInput(3*day, "echo", 0))
	pending := waitToken(t, c, waiting, 1)

	raw, err := sf.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	restored := stepfunctions.New(sandbox.New(sandbox.Options{}), stepfunctions.Options{})
	if err := restored.Restore(raw); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	got := map[string]string{}
	for _, tt := range restored.TaskTokens() {
		got[tt.Token] = tt.Status + " " + tt.State
	}
	if got[tok] != "SUCCEEDED Approve" || got[pending] != "ABORTED Approve" || len(got) != 2 {
		t.Errorf("restored tokens %v", got)
	}
}
