package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/cli/endpoint"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// requestRunName is the stack's request endpoint's function: the one
// AWS::Lambda::Function whose FunctionName ends in -requestrun.
func (h *H) requestRunName() string {
	h.t.Helper()
	for _, id := range h.dep.Stack.OfType("AWS::Lambda::Function") {
		if n, _ := h.dep.Stack.Resources[id].Properties["FunctionName"].(string); strings.HasSuffix(n, "-requestrun") {
			return n
		}
	}
	h.t.Fatal("the stack has no requestrun function")
	return ""
}

// Request posts {"input", "name"} to the request endpoint's function URL,
// signed as the test's own identity (the sandbox's admin), as keyrotator
// start does (cli/endpoint), and answers what it said.
func (h *H) Request(input any, name string) endpoint.Answer {
	h.t.Helper()
	return h.requestWith(h.sb.Config(h.t), input, name)
}

// requestWith is Request signed with cfg's credentials.
func (h *H) requestWith(cfg aws.Config, input any, name string) endpoint.Answer {
	h.t.Helper()
	ctx := context.Background()
	u, err := lambda.NewFromConfig(h.sb.Config(h.t)).GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(h.requestRunName())})
	if err != nil {
		h.t.Fatalf("GetFunctionUrlConfig: %v", err)
	}
	c := &endpoint.Client{Credentials: cfg.Credentials, Region: cfg.Region, Endpoint: aws.ToString(cfg.BaseEndpoint)}
	body := map[string]any{"input": input}
	if name != "" {
		body["name"] = name
	}
	ans, err := c.Post(ctx, aws.ToString(u.FunctionUrl), body)
	if err != nil {
		h.t.Fatalf("POST the request endpoint: %v", err)
	}
	return ans
}

// RequestRun starts a run through the request endpoint and answers its ARN.
func (h *H) RequestRun(input any) string {
	h.t.Helper()
	ans := h.Request(input, "")
	var st struct {
		ExecutionARN string `json:"executionArn"`
	}
	if ans.Status != http.StatusOK || json.Unmarshal(ans.Body, &st) != nil || st.ExecutionARN == "" {
		h.t.Fatalf("the request endpoint answered %d: %s", ans.Status, ans.Body)
	}
	return st.ExecutionARN
}

// needsApproval says whether input is a run that needs approval (and is
// no dry run): StartExecution sends those through the request endpoint.
func needsApproval(input any) bool {
	m, ok := input.(map[string]any)
	return ok && m["requireApproval"] == true && m["dryRun"] != true
}

// The request path (issue 14), on one deploy: a run that needs approval
// started without the endpoint is refused RequestUnsigned; a signed
// request replayed on another execution name is refused RequestForged;
// both before any write, the failure alert the only one. A request through
// the endpoint is signed as the caller AWS authenticated, whatever
// requestedBy the input claims.
func TestRequestPath(t *testing.T) {
	t.Parallel()
	h := Start(t)
	ctx := context.Background()
	me := h.callerARN()

	t.Run("unsigned", func(t *testing.T) {
		h := h.For(t)
		f := h.seed("req-unsigned", 95)
		seq := h.sb.Server.Calls().Last()
		arn := h.StartUnsigned(f.input(map[string]any{"requireApproval": true, "approvers": []string{"arn:aws:iam::111122223333:user/req-approver"}, "requestedBy": "arn:aws:iam::111122223333:user/ceo"}))
		r := h.Wait(arn)
		if r.Status != types.ExecutionStatusFailed || r.Error != "RequestUnsigned" || !strings.Contains(r.Cause, "request endpoint") {
			t.Errorf("%s %s: %s, want refused RequestUnsigned saying why", r.Status, r.Error, r.Cause)
		}
		for _, w := range h.writesOf(arn, seq) {
			if w.Service != "sns" {
				t.Errorf("an unsigned run wrote %+v", w)
			}
		}
		if len(h.keys(f.user)) != 1 {
			t.Errorf("keys %v, want the one old key", h.keys(f.user))
		}
	})

	t.Run("replayed", func(t *testing.T) {
		h := h.For(t)
		f := h.seed("req-replayed", 95)
		first := h.RequestRun(f.input(map[string]any{"requireApproval": true, "approvers": []string{"arn:aws:iam::111122223333:user/req-approver"}, "requestedBy": "arn:aws:iam::111122223333:user/ceo"}))
		d, err := h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(first)})
		if err != nil {
			t.Fatal(err)
		}
		req, ok, err := rotation.ParseSignedRequest([]byte(aws.ToString(d.Input)))
		if err != nil || !ok || req.RequestedBy != me || req.Execution != rotation.ExecutionNameOf(first) || !strings.Contains(aws.ToString(d.Input), `"requestedBy":"`+me+`"`) {
			t.Errorf("the signed request %+v (%v %v): want it signed as %s for %s, the input's requestedBy replaced", req, ok, err, me, first)
		}
		// The same input, signed request and all, under another name.
		seq := h.sb.Server.Calls().Last()
		replay := h.StartUnsigned(aws.ToString(d.Input))
		r := h.Wait(replay)
		if r.Status != types.ExecutionStatusFailed || r.Error != "RequestForged" || !strings.Contains(r.Cause, "signed for execution") {
			t.Errorf("%s %s: %s, want refused RequestForged (another execution)", r.Status, r.Error, r.Cause)
		}
		for _, w := range h.writesOf(replay, seq) {
			if w.Service != "sns" {
				t.Errorf("the replay wrote %+v", w)
			}
		}
		if _, err := h.sfn.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(first)}); err != nil {
			t.Errorf("stop the first run: %v", err)
		}
		h.Wait(first)
	})

	t.Run("refusals", func(t *testing.T) {
		h := h.For(t)
		f := h.seed("req-refusals", 95)
		for _, tc := range []struct {
			input  any
			status int
			says   string
		}{
			{f.input(map[string]any{"trigger": "schedule", "requireApproval": true, "approvers": []string{"arn:aws:iam::111122223333:user/req-approver"}}), 400, `"field":"trigger"`},
			{map[string]any{"user": f.user}, 400, `"field":"targets"`},
		} {
			if ans := h.Request(tc.input, ""); ans.Status != tc.status || !strings.Contains(string(ans.Body), tc.says) {
				t.Errorf("%d %s, want %d saying %s", ans.Status, ans.Body, tc.status, tc.says)
			}
		}
	})
}

// writesOf are the writes since seq that the sandbox attributes to
// execution arn (other runs go on beside it: the first, legit run of a
// replay takes its lock meanwhile).
func (h *H) writesOf(arn string, seq int64) []sandbox.CallRecord {
	var w []sandbox.CallRecord
	for _, c := range h.writesSince(seq) {
		if c.Origin != nil && c.Origin.Execution == arn {
			w = append(w, c)
		}
	}
	return w
}

// callerARN is the test identity's ARN, as STS says.
func (h *H) callerARN() string {
	h.t.Helper()
	out, err := sts.NewFromConfig(h.sb.Config(h.t)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		h.t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(out.Arn)
}
