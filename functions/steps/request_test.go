package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// The request path's step tier: requestrun (both callers) and Validate's
// check of the signed request, over a KMS whose HMAC is crypto/hmac with a
// key only the fake holds, and a Step Functions that keeps what it started.

const hmacKeyARN = "arn:aws:kms:us-east-1:111122223333:key/hmac-0000"

// newKMS is approval_test.go's KMS HMAC key (crypto/hmac with a secret
// only the fake holds) behind the call log l.
func newKMS(l *callLog) *kmsStub {
	return &kmsStub{l: l, key: []byte("the-fake-kms-hmac-key-never-leaves")}
}

// startStub is StartExecution: idempotent for a running execution's name
// and input, ExecutionAlreadyExists for its name with another input
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
type startStub struct {
	l       *callLog
	mu      sync.Mutex
	started map[string]string // name → input
}

const machineARN = "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator"

func (s *startStub) StartExecution(ctx context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	name := aws.ToString(in.Name)
	return callVia(ctx, s.l, stepCall{svc: "SFN", op: "StartExecution", detail: name, write: true}, func() (*sfn.StartExecutionOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if prev, ok := s.started[name]; ok && prev != aws.ToString(in.Input) {
			return nil, &sfntypes.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists: '" + name + "'")}
		}
		s.started[name] = aws.ToString(in.Input)
		return &sfn.StartExecutionOutput{ExecutionArn: aws.String(strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name), StartDate: aws.Time(time.Now())}, nil
	})
}

// requestRig is requestrun over the fakes.
type requestRig struct {
	e     *stepEnv
	kms   *kmsStub
	sfn   *startStub
	rr    *RequestRun
	clock time.Time
}

func newRequestRig(t *testing.T) *requestRig {
	t.Helper()
	w := newWorld()
	l := &callLog{}
	g := &requestRig{e: &stepEnv{w: w, l: l}, kms: newKMS(l), sfn: &startStub{l: l, started: map[string]string{}}, clock: w.now}
	g.rr = &RequestRun{Schema: subset.Check, Key: kmsmac.New(g.kms, hmacKeyARN), Runs: executions.NewStarter(g.sfn, machineARN),
		Account: func(context.Context) string { return "111122223333" }, Clock: func() time.Time { return g.clock },
		Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 64))}
	g.e.secrets = []string{string(g.kms.key)}
	return g
}

// urlEvent is a function URL request as AWS sends it (payload format 2.0)
// from caller with body.
func urlEvent(caller, body string) events.LambdaFunctionURLRequest {
	return events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/", Body: body,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID: "111122223333", HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost, Path: "/"},
			Authorizer: &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{
				AccessKey: "ASIAEXAMPLE", AccountID: strings.Split(caller+"::::", ":")[4], CallerID: "AROAEXAMPLE:alice", UserARN: caller, UserID: "AROAEXAMPLE:alice",
			}},
		}}
}

const alice = "arn:aws:sts::111122223333:assumed-role/operator/alice"

var requestApprovalInput = strings.Replace(scenInput, `{"user"`, `{"requireApproval":true,"approvers":["arn:aws:iam::111122223333:user/bob"],"requestedBy":"arn:aws:iam::111122223333:user/ceo","user"`, 1)

// The schedule's path, every call failing each way: KMS and Step Functions
// failures are named (the async invoke's retries, then its on-failure
// queue), and a retry after StartExecution's answer was lost starts no
// second run (the firing's name and signed input are the same).
func TestRequestRunScenario(t *testing.T) {
	t.Parallel()
	ev := `{"schedule":"app-key","scheduledTime":"2026-03-01T03:00:00Z","input":` + scenInput + `}`
	runScenario(t, loadASL(t), stepScenario{
		name: "RequestRun/schedule", state: endpointState,
		setup: func(t *testing.T) *stepEnv {
			g := newRequestRig(t)
			g.e.run = func(ctx context.Context) stepInvocation {
				return invokeLambda(ctx, "requestrun", g.rr.Run, json.RawMessage(ev))
			}
			g.e.check = func(t *testing.T, inv stepInvocation) {
				if len(g.sfn.started) > 1 {
					t.Errorf("one firing started %d runs: %v", len(g.sfn.started), g.sfn.started)
				}
				if inv.err != nil {
					return
				}
				var st Started
				if err := json.Unmarshal(inv.out, &st); err != nil || st.RequestedBy != "schedule app-key" || !strings.HasPrefix(st.Name, "mailer-20260301T030000Z-") {
					t.Errorf("answer %s (%v)", inv.out, err)
				}
				in, ok := g.sfn.started[st.Name]
				if !ok {
					t.Fatalf("no execution %s started: %v", st.Name, g.sfn.started)
				}
				verifies(t, g, st.Name, in, "schedule app-key")
			}
			return g.e
		},
	})
}

// verifies holds a started input to Validate's check: it verifies as
// signed by want, with trigger and requestedBy fixed.
func verifies(t *testing.T, g *requestRig, name, input, want string) {
	t.Helper()
	in, err := rotation.ParseInput([]byte(input), subset.Check)
	if err != nil {
		t.Fatalf("the started input does not parse: %v", err)
	}
	l := g.e.l
	l.mu.Lock()
	off := l.off
	l.off = true
	l.mu.Unlock()
	defer func() { l.mu.Lock(); l.off = off; l.mu.Unlock() }()
	ev := rotation.TaskInput{ExecutionName: name, Data: rotation.ExecutionData{Input: json.RawMessage(input), Execution: strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name}}
	got, err := requester(context.Background(), kmsmac.New(g.kms, hmacKeyARN), ev, in, true)
	if err != nil || got != want || in.RequestedBy != want {
		t.Errorf("the started input verifies as %q (input says %q), want %q: %v", got, in.RequestedBy, want, err)
	}
}

// The URL path: the caller signed in, whatever requestedBy the body
// claims; refusals and bad input are 4xx naming why; every failing AWS
// call (generated from the clean run's) is a 5xx naming it, nothing
// started twice, no secret in any answer.
func TestRequestRunURL(t *testing.T) {
	t.Parallel()
	body := func(input string, name string) string {
		b, _ := json.Marshal(map[string]any{"input": json.RawMessage(input), "name": name})
		return string(b)
	}
	cases := []struct {
		name, caller, body string
		status             int
		says               string
	}{
		{"signed as the caller", alice, body(requestApprovalInput, ""), 200, alice},
		{"a name given", alice, body(scenInput, "my-run-1"), 200, `"name":"my-run-1"`},
		{"a re-run's stale request is replaced", alice, body(strings.Replace(scenInput, `{"user"`, `{"request":{"purpose":"x","execution":"old","requestedBy":"y","inputSha256":"`+strings.Repeat("0", 64)+`","at":"2026-01-01T00:00:00Z","mac":"AA=="},"user"`, 1), ""), 200, alice},
		{"bad input", alice, body(`{"user":"mailer","targets":[]}`, ""), 400, `"field":"targets"`},
		{"a person passing a run off as a schedule's", alice, body(strings.Replace(scenInput, `{"user"`, `{"trigger":"schedule","user"`, 1), ""), 400, `"field":"trigger"`},
		{"bad name", alice, body(scenInput, "a:b"), 400, `"field":"name"`},
		{"unknown body field", alice, `{"input":` + scenInput + `,"requestedBy":"ceo"}`, 400, "InvalidInput"},
		{"root refused", "arn:aws:iam::111122223333:root", body(scenInput, ""), 403, "root"},
		{"another account refused", "arn:aws:sts::444455556666:assumed-role/x/y", body(scenInput, ""), 403, "444455556666"},
		{"no IAM caller", "", body(scenInput, ""), 403, "AWS_IAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newRequestRig(t)
			ev := urlEvent(tc.caller, tc.body)
			if tc.caller == "" {
				ev.RequestContext.Authorizer = nil
			}
			res := g.rr.URL(context.Background(), ev)
			if res.StatusCode != tc.status || !strings.Contains(res.Body, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", res.StatusCode, res.Body, tc.status, tc.says)
			}
			if tc.status != 200 {
				if len(g.sfn.started) != 0 {
					t.Errorf("refused (%d) but started %v", tc.status, g.sfn.started)
				}
				return
			}
			var st Started
			if err := json.Unmarshal([]byte(res.Body), &st); err != nil {
				t.Fatal(err)
			}
			verifies(t, g, st.Name, g.sfn.started[st.Name], alice)
		})
	}

	// Every call of the clean run failing each way.
	clean := newRequestRig(t)
	if res := clean.rr.URL(context.Background(), urlEvent(alice, body(requestApprovalInput, ""))); res.StatusCode != 200 {
		t.Fatalf("clean: %d %s", res.StatusCode, res.Body)
	}
	calls := clean.e.l.recorded()
	if len(calls) != 2 {
		t.Fatalf("the clean run's calls: %v, want GenerateMac, StartExecution", calls)
	}
	for i, c := range calls {
		for _, class := range errClasses {
			if class.sdk(c.svc, c.op) == nil {
				continue
			}
			t.Run(fmt.Sprintf("%02d_%s_%s", i, c.key(), class.name), func(t *testing.T) {
				t.Parallel()
				g := newRequestRig(t)
				g.e.l.fault = &injectedFault{at: i, class: class}
				ctx := newExpiring(context.Background())
				g.e.l.expire = ctx.expire
				res := g.rr.URL(ctx, urlEvent(alice, body(requestApprovalInput, "")))
				if res.StatusCode < 500 {
					t.Errorf("%s failing %s: %d %s, want a 5xx", c, class.name, res.StatusCode, res.Body)
				}
				var b struct{ Error, Message string }
				if json.Unmarshal([]byte(res.Body), &b) != nil || b.Error == "" || b.Message == "" {
					t.Errorf("the answer names no error: %s", res.Body)
				}
				if class.name == errThrottle.name && res.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("throttled: %d, want 503 (a retry may help)", res.StatusCode)
				}
				if strings.Contains(res.Body, string(g.kms.key)) {
					t.Error("I1: the HMAC key is in the answer")
				}
				if len(g.sfn.started) != 0 && c.op == "GenerateMac" {
					t.Errorf("GenerateMac failed, yet %v started", g.sfn.started)
				}
			})
		}
	}
}

// The direct path takes exactly {"schedule", "input", "scheduledTime"}: a
// forged requestContext is a URL request (and says who it claims), never a
// schedule's; a schedule claim with anything else is refused.
func TestRequestRunDirect(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, ev, wantErr string }{
		{"extra field", `{"schedule":"app-key","input":` + scenInput + `,"requestedBy":"ceo"}`, "InvalidInput"},
		{"bad schedule name", `{"schedule":"a b","input":` + scenInput + `}`, "InvalidInput"},
		{"no input", `{"schedule":"app-key"}`, "InvalidInput"},
		{"bad time", `{"schedule":"app-key","scheduledTime":"yesterday","input":` + scenInput + `}`, "InvalidInput"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newRequestRig(t)
			inv := invokeLambda(context.Background(), "requestrun", g.rr.Run, json.RawMessage(tc.ev))
			if got := errorTypeOf(inv.err); got != tc.wantErr || len(g.sfn.started) != 0 {
				t.Errorf("errorType %q (%v), started %v; want %s and nothing started", got, inv.err, g.sfn.started, tc.wantErr)
			}
		})
	}
	// A requestContext and a schedule: a URL request (HTTP answer), signed
	// as the requestContext's caller, never as the schedule.
	g := newRequestRig(t)
	raw, _ := json.Marshal(urlEvent(alice, `{"input":`+scenInput+`}`))
	raw = bytes.Replace(raw, []byte(`{"version"`), []byte(`{"schedule":"app-key","version"`), 1)
	inv := invokeLambda(context.Background(), "requestrun", g.rr.Run, json.RawMessage(raw))
	if inv.err != nil || !strings.Contains(string(inv.out), `"statusCode":200`) || strings.Contains(string(inv.out), "schedule app-key") {
		t.Errorf("a requestContext with a schedule: %s %v", inv.out, inv.err)
	}
	for _, in := range g.sfn.started {
		if strings.Contains(in, "schedule app-key") {
			t.Errorf("signed as the schedule: %s", in)
		}
	}
}

// signedFor is input signed by the rig's key for execution name as by.
func signedFor(t testing.TB, k *kmsStub, input, name, by string) string {
	t.Helper()
	d, err := rotation.InputDigest([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	r := rotation.Request{Purpose: rotation.RequestPurpose, Execution: name, RequestedBy: by, InputSHA256: d, At: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
	mac, err := kmsmac.New(*k, hmacKeyARN).Sign(context.Background(), r.Message())
	if err != nil {
		t.Fatal(err)
	}
	out, err := rotation.WithRequest([]byte(input), rotation.SignedRequest{Request: r, MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Validate's check of a run that needs approval, every call failing each
// way: the request is verified before anything else is read, and a run
// whose request does not verify is refused having written nothing.
func TestValidateRequestScenarios(t *testing.T) {
	t.Parallel()
	asl := loadASL(t)
	for _, sc := range []struct {
		name, wantClean string
		input           func(k *kmsStub) string
	}{
		{"signed", "", func(k *kmsStub) string { return signedFor(t, k, requestApprovalInput, "a", alice) }},
		{"forged MAC", "RequestForged", func(k *kmsStub) string {
			return strings.Replace(signedFor(t, k, requestApprovalInput, "a", alice), alice, "arn:aws:iam::111122223333:user/ceo", 1)
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, asl, stepScenario{
				name: "Validate/request/" + sc.name, state: "Validate", wantClean: sc.wantClean, wantFor: userGone,
				setup: func(t *testing.T) *stepEnv {
					p := newRotationRun(t)
					k := newKMS(p.e.l)
					p.validate.Requests = kmsmac.New(k, hmacKeyARN)
					p.data.Input = json.RawMessage(sc.input(k))
					e := p.checkedReadOnly(p.recording(func(ctx context.Context) stepInvocation {
						return invokeLambda(ctx, "validate", p.validate.Run, p.in(""))
					}))
					check := e.check
					e.check = func(t *testing.T, inv stepInvocation) {
						check(t, inv)
						calls := e.runCalls()
						if len(calls) > 0 && calls[0].key() != "KMS.VerifyMac" {
							t.Errorf("the first call is %s: the request is checked before anything is read", calls[0])
						}
						var plan rotation.Plan
						if inv.err == nil && (json.Unmarshal(inv.out, &plan) != nil || plan.RequestedBy != alice) {
							t.Errorf("the plan's requester is %q, want the verified %q (not the input's ceo)", plan.RequestedBy, alice)
						}
					}
					return e
				},
			})
		})
	}
}

// The refusals that need no call: a request for another run, for another
// input or purpose, or none; and the unverified word of a run that needs
// no approval, marked so.
func TestValidateRequestRefusals(t *testing.T) {
	t.Parallel()
	k := newKMS(&callLog{off: true})
	signed := signedFor(t, k, requestApprovalInput, "a", alice)
	cases := []struct {
		name, input, execName, want, says string
	}{
		{"unsigned", requestApprovalInput, "a", "RequestUnsigned", "carries no signed request"},
		{"replayed on another execution", signed, "b", "RequestForged", `signed for execution "a"`},
		{"re-encoded as Step Functions may (key order, spacing, 7.0)", reencoded(t, signed), "a", "", alice},
		{"targets changed", strings.Replace(signed, "worker/key", "evil/key", 1), "a", "RequestForged", "another input"},
		{"other purpose", strings.Replace(signed, rotation.RequestPurpose, "keyrotator/approval/v1", 1), "a", "RequestForged", "purpose"},
		{"not a request doc", strings.Replace(signed, `"mac":`, `"extra":1,"mac":`, 1), "a", "InvalidInput", "request.extra"},
		{"dry run needs none", strings.Replace(requestApprovalInput, `{"requireApproval"`, `{"dryRun":true,"requireApproval"`, 1), "a", "", "unverified"},
		{"no approval: the input's word, marked", requestApprovalInput[:1] + strings.Replace(requestApprovalInput[1:], `"requireApproval":true,`, "", 1), "a", "", "unverified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newRotationRun(t)
			p.validate.Requests = kmsmac.New(k, hmacKeyARN)
			p.data.Input = json.RawMessage(tc.input)
			ev := p.in("")
			ev.ExecutionName = tc.execName
			plan, err := p.validate.Run(context.Background(), ev)
			got := ""
			if err != nil {
				got = errorTypeOf(err)
			}
			if got != tc.want {
				t.Fatalf("errorType %q (%v), want %q", got, err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.says) || err == nil && !strings.Contains(plan.RequestedBy, tc.says) {
				t.Errorf("%v / requestedBy %q: want it to say %q", err, plan.RequestedBy, tc.says)
			}
			if w := writesOf(p.e.l.recorded()); len(w) > 0 {
				t.Errorf("wrote %v", w)
			}
		})
	}
}

// reencoded is input as another JSON encoder writes it: keys in another
// order, indented.
func reencoded(t *testing.T, input string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(input), &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// No mutation of a signed request verifies: any change to its fields, its
// MAC or the input it is for is RequestForged (or InvalidInput, for an
// input that no longer parses), never a pass, unless the mutation left the
// request as it was.
func FuzzRequestForgery(f *testing.F) {
	k := newKMS(&callLog{off: true})
	signed := signedFor(f, k, requestApprovalInput, "a", alice)
	f.Add(0, "arn:aws:iam::111122223333:user/ceo")
	f.Add(1, "b")
	f.Add(2, "keyrotator/approval/v1")
	f.Add(3, strings.Repeat("0", 64))
	f.Add(4, "2030-01-01T00:00:00Z")
	f.Add(5, "AAAA")
	f.Add(6, "evil/key")
	f.Add(7, `{"user":"mailer"}`)
	f.Fuzz(func(t *testing.T, field int, value string) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(signed), &m); err != nil {
			t.Fatal(err)
		}
		var req map[string]any
		_ = json.Unmarshal(m["request"], &req)
		names := []string{"requestedBy", "execution", "purpose", "inputSha256", "at", "mac"}
		switch i := ((field % 8) + 8) % 8; {
		case i < len(names):
			if req[names[i]] == value {
				return // unchanged
			}
			req[names[i]] = value
			m["request"], _ = json.Marshal(req)
		case i == 6: // the input's targets
			if strings.Contains(string(m["targets"]), value) || value == "" {
				return
			}
			m["targets"] = json.RawMessage(strings.Replace(string(m["targets"]), "worker/key", value, 1))
			if !json.Valid(m["targets"]) {
				return
			}
		default: // the request replaced whole
			if !json.Valid([]byte(value)) {
				return
			}
			m["request"] = json.RawMessage(value)
		}
		in, _ := json.Marshal(m)
		p := newRotationRun(t)
		p.validate.Requests = kmsmac.New(k, hmacKeyARN)
		p.data.Input = in
		ev := p.in("")
		ev.ExecutionName = "a"
		_, err := p.validate.Check(context.Background(), ev)
		if err == nil {
			t.Fatalf("a mutated request verified: %s", m["request"])
		}
		var forged *rotation.RequestForged
		var invalid *rotation.InvalidInput
		var unsigned *rotation.RequestUnsigned
		if !errors.As(err, &forged) && !errors.As(err, &invalid) && !errors.As(err, &unsigned) {
			t.Fatalf("refused as %T, want RequestForged: %v", err, err)
		}
	})
}
