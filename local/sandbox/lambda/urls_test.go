package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

const fnARN = "arn:aws:lambda:us-east-1:111122223333:function:urlfn"

// startURL runs a sandbox with testdata/urlfn behind an AWS_IAM function URL.
func startURL(t *testing.T, enforce bool) (*sandboxtest.Sandbox, string) {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{EnforceIAM: enforce})
	if err := sb.Lambda.Register(sblambda.FunctionConfig{Name: "urlfn", Path: urlPath, Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	u, err := sb.Lambda.CreateURL("", "urlfn", sblambda.AuthTypeIAM, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := sb.Lambda.FunctionURL(fnARN); !ok || got != u.URL() {
		t.Fatalf("FunctionURL = %q %v, want %q", got, ok, u.URL())
	}
	var listed []struct{ Function, URL string }
	sb.AdminCall(t, http.MethodGet, "/lambda/urls", nil, &listed)
	if len(listed) != 1 || listed[0].Function != "urlfn" || listed[0].URL != u.URL() {
		t.Fatalf("GET /_sandbox/lambda/urls = %+v", listed)
	}
	return sb, u.URL()
}

// answer is a function URL's HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// callURL sends req to the sandbox through URLTransport.
func callURL(t *testing.T, sb *sandboxtest.Sandbox, req *http.Request) answer {
	t.Helper()
	tr, err := sblambda.URLTransport(sb.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// signed is a request to url signed with cfg, then changed by edit (if any).
func signed(t *testing.T, cfg aws.Config, method, url string, body []byte, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := sblambda.NewURLRequest(context.Background(), cfg, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	return req
}

func forbidden(t *testing.T, a answer) {
	t.Helper()
	if a.status != http.StatusForbidden || strings.TrimSpace(string(a.body)) != `{"Message":"Forbidden"}` {
		t.Fatalf("answer %d %s, want 403 {\"Message\":\"Forbidden\"}", a.status, a.body)
	}
}

// A signed call reaches the function with the request as function URLs
// send it (read by aws-lambda-go's own event type) and the verified caller
// in requestContext.authorizer.iam: a user, and an assumed-role session.
func TestFunctionURLCaller(t *testing.T) {
	t.Parallel()
	sb, url := startURL(t, false)
	user := sb.User(t, "approver", 1)[0]
	if _, err := sb.IAM.CreateRole("security-lead", "/aws-reserved/sso.amazonaws.com/", "", json.RawMessage(`{"Version":"2012-10-17","Statement":[]}`), 0); err != nil {
		t.Fatal(err)
	}
	sess := sb.IAM.IssueRoleCredentials("security-lead", "alice@example.com")
	roleID := strings.Split(mustPrincipal(t, sb, sess.AccessKeyID).UserID, ":")[0]
	for _, tt := range []struct {
		name                   string
		id, secret, token      string
		wantARN, wantID, wantA string
	}{
		{"IAM user", user.AccessKeyID, user.SecretAccessKey, "", "arn:aws:iam::111122223333:user/approver", mustPrincipal(t, sb, user.AccessKeyID).UserID, "111122223333"},
		{"assumed-role session", sess.AccessKeyID, sess.Secret, sess.SessionToken, "arn:aws:sts::111122223333:assumed-role/security-lead/alice@example.com", roleID + ":alice@example.com", "111122223333"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := sb.ConfigAs(t, tt.id, tt.secret, tt.token)
			body := []byte(`{"execution":"run-1","decision":"approve"}`)
			req := signed(t, cfg, http.MethodPost, url+"approve/x?b=3&a=1&a=2", body, func(r *http.Request) {
				r.Header.Set("User-Agent", "keyrotator-test")
			})
			sentQuery := req.URL.RawQuery // as the signer left it
			a := callURL(t, sb, req)
			if a.status != http.StatusCreated || a.header.Get("X-Echo") != "1" || !slices.Contains(a.header.Values("Set-Cookie"), "seen=1") {
				t.Fatalf("answer %d %v %s", a.status, a.header, a.body)
			}
			var ev events.LambdaFunctionURLRequest
			if err := json.Unmarshal(a.body, &ev); err != nil {
				t.Fatalf("event %s: %v", a.body, err)
			}
			host := strings.TrimSuffix(strings.TrimPrefix(url, "https://"), "/")
			iam := ev.RequestContext.Authorizer.IAM
			switch {
			case iam == nil:
				t.Fatalf("no authorizer.iam in %s", a.body)
			case iam.AccessKey != tt.id || iam.AccountID != tt.wantA || iam.UserARN != tt.wantARN || iam.UserID != tt.wantID || iam.CallerID != tt.wantID:
				t.Errorf("authorizer.iam = %+v, want key %s, account %s, arn %s, id %s", *iam, tt.id, tt.wantA, tt.wantARN, tt.wantID)
			}
			rc := ev.RequestContext
			if ev.Version != "2.0" || ev.RawPath != "/approve/x" || ev.RawQueryString != sentQuery ||
				ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "3" || ev.Body != string(body) || ev.IsBase64Encoded ||
				ev.Headers["host"] != host || ev.Headers["content-type"] != "application/json" || ev.Headers["user-agent"] != "keyrotator-test" {
				t.Errorf("request fields: %s", a.body)
			}
			if rc.AccountID != "111122223333" || rc.DomainName != host || rc.APIID != strings.Split(host, ".")[0] || rc.DomainPrefix != rc.APIID ||
				rc.HTTP.Method != http.MethodPost || rc.HTTP.Path != "/approve/x" || rc.HTTP.Protocol != "HTTP/1.1" || rc.HTTP.SourceIP != "127.0.0.1" ||
				rc.HTTP.UserAgent != "keyrotator-test" || rc.RequestID == "" || rc.TimeEpoch == 0 {
				t.Errorf("requestContext: %+v", rc)
			}
			if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time); err != nil {
				t.Errorf("requestContext.time %q: %v", rc.Time, err)
			}
			// The members aws-lambda-go's type leaves out, as AWS's example has them
			// (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html).
			var raw struct {
				RouteKey       string `json:"routeKey"`
				RequestContext struct {
					RouteKey   string                       `json:"routeKey"`
					Stage      string                       `json:"stage"`
					Authorizer struct{ IAM map[string]any } `json:"authorizer"`
					Rest       map[string]json.RawMessage   `json:"-"`
				} `json:"requestContext"`
			}
			if err := json.Unmarshal(a.body, &raw); err != nil {
				t.Fatal(err)
			}
			if raw.RouteKey != "$default" || raw.RequestContext.RouteKey != "$default" || raw.RequestContext.Stage != "$default" {
				t.Errorf("routeKey/stage: %s", a.body)
			}
			for _, k := range []string{"cognitoIdentity", "principalOrgId"} {
				if v, ok := raw.RequestContext.Authorizer.IAM[k]; !ok || v != nil {
					t.Errorf("authorizer.iam.%s = %v (present %v), want null", k, v, ok)
				}
			}
			if tt.token != "" && strings.Contains(string(a.body), tt.token) {
				t.Error("the caller's session token reached the function")
			}
		})
	}
	// Cookies go in "cookies", not in the headers.
	a := callURL(t, sb, signed(t, sb.ConfigAs(t, user.AccessKeyID, user.SecretAccessKey, ""), http.MethodGet, url, nil, func(r *http.Request) {
		r.Header.Add("Cookie", "c1=v1; c2=v2")
	}))
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(a.body, &ev); err != nil || !slices.Equal(ev.Cookies, []string{"c1=v1", "c2=v2"}) || ev.Headers["cookie"] != "" || ev.RawPath != "/" {
		t.Errorf("cookies: %v %s", err, a.body)
	}
}

func mustPrincipal(t *testing.T, sb *sandboxtest.Sandbox, keyID string) sandbox.Principal {
	t.Helper()
	c, ok := sb.IAM.Credential(keyID)
	if !ok {
		t.Fatalf("no credential %s", keyID)
	}
	return c.Principal
}

// What a function URL answers besides a function's response: AWS's 403
// {"Message":"Forbidden"} for an unsigned or badly signed call, a bare
// JSON value as a 200 application/json, a function error as a 502.
func TestFunctionURLAnswers(t *testing.T) {
	t.Parallel()
	sb, url := startURL(t, false)
	user := sb.User(t, "caller", 1)[0]
	cfg := sb.ConfigAs(t, user.AccessKeyID, user.SecretAccessKey, "")
	wrong := cfg.Copy()
	wrong.Credentials = credentials.NewStaticCredentialsProvider(user.AccessKeyID, "not-the-secret-0123456789", "")
	euWest := cfg.Copy()
	euWest.Region = "eu-west-1"
	since := sb.Server.Calls().Last()
	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		ctype  string
		body   string
	}{
		{"unsigned", func(t *testing.T) *http.Request {
			r, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(`{}`))
			return r
		}, 403, "", ""},
		{"signed with the wrong secret", func(t *testing.T) *http.Request { return signed(t, wrong, http.MethodGet, url, nil, nil) }, 403, "", ""},
		{"body changed after signing", func(t *testing.T) *http.Request {
			return signed(t, cfg, http.MethodPost, url, []byte(`{"a":1}`), func(r *http.Request) {
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(`{"a":2}`)), 7
			})
		}, 403, "", ""},
		{"signed for execute-api", func(t *testing.T) *http.Request {
			r := signed(t, cfg, http.MethodGet, url, nil, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/lambda/", "/execute-api/", 1))
			return r
		}, 403, "", ""},
		{"signed for another region", func(t *testing.T) *http.Request { return signed(t, euWest, http.MethodGet, url, nil, nil) }, 403, "", ""},
		{"no such URL", func(t *testing.T) *http.Request {
			return signed(t, cfg, http.MethodGet, "https://"+strings.Repeat("a", 32)+".lambda-url.us-east-1.on.aws/", nil, nil)
		}, 403, "", ""},
		{"bare JSON answer", func(t *testing.T) *http.Request { return signed(t, cfg, http.MethodGet, url+"bare", nil, nil) }, 200, "application/json", `["bare","GET"]`},
		{"base64 answer", func(t *testing.T) *http.Request { return signed(t, cfg, http.MethodGet, url+"binary", nil, nil) }, 200, "application/octet-stream", "\x00\x01\x02\xff"},
		{"function error", func(t *testing.T) *http.Request { return signed(t, cfg, http.MethodGet, url+"fail", nil, nil) }, 502, "application/json", `{"Message":"Internal Server Error"}`},
	}
	t.Run("answers", func(t *testing.T) {
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				a := callURL(t, sb, tt.req(t))
				if tt.status == 403 {
					forbidden(t, a)
					return
				}
				if a.status != tt.status || a.header.Get("Content-Type") != tt.ctype || strings.TrimSpace(string(a.body)) != tt.body {
					t.Fatalf("answer %d %q %q, want %d %q %q", a.status, a.header.Get("Content-Type"), a.body, tt.status, tt.ctype, tt.body)
				}
			})
		}
	})
	t.Run("call log", func(t *testing.T) {
		status, body := sb.CallURL(t, cfg, "urlfn", http.MethodGet, "/bare", nil) // the helper other tests use
		if status != 200 || string(body) != `["bare","GET"]` {
			t.Fatalf("%d %s", status, body)
		}
		calls := sb.Calls(t, since)
		i := slices.IndexFunc(calls, func(c sandbox.CallRecord) bool {
			return c.Action == "InvokeFunctionUrl" && c.Status == 200 && c.Principal == "arn:aws:iam::111122223333:user/caller"
		})
		if i < 0 || !slices.Equal(calls[i].ResourceARNs, []string{fnARN}) || calls[i].Service != "lambda" {
			t.Fatalf("no InvokeFunctionUrl call by the user on %s in %+v", fnARN, calls)
		}
		if !slices.ContainsFunc(calls, func(c sandbox.CallRecord) bool { return c.Action == "InvokeFunctionUrl" && c.Status == 403 }) {
			t.Error("refused calls are not in the call log")
		}
	})
}

// allow is an identity policy of one statement.
func allow(action, condOp, key, value string) string {
	st := map[string]any{"Effect": "Allow", "Action": action, "Resource": fnARN}
	if condOp != "" {
		st["Condition"] = map[string]any{condOp: map[string]string{key: value}}
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
	return string(b)
}

// Where the sandbox enforces IAM, a URL call needs lambda:InvokeFunctionUrl
// and lambda:InvokeFunction (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html),
// from the identity or the function's policy; an InvokeFunction grant
// conditioned on lambda:InvokedViaFunctionUrl allows no direct Invoke.
func TestFunctionURLAuthorization(t *testing.T) {
	t.Parallel()
	sb, url := startURL(t, true)
	urlOnly := allow("lambda:InvokeFunctionUrl", "StringEquals", "lambda:FunctionUrlAuthType", "AWS_IAM")
	urlNone := allow("lambda:InvokeFunctionUrl", "StringEquals", "lambda:FunctionUrlAuthType", "NONE")
	viaURL := allow("lambda:InvokeFunction", "Bool", "lambda:InvokedViaFunctionUrl", "true")
	invoke := allow("lambda:InvokeFunction", "", "", "")
	denyURL := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"lambda:InvokeFunctionUrl","Resource":"*"}]}`
	// The function's policy grants the "granted" user both, as
	// AWS::Lambda::Permission resources would.
	for _, p := range []sblambda.Permission{
		{StatementID: "url", Action: "lambda:InvokeFunctionUrl", Principal: "arn:aws:iam::111122223333:user/granted", FunctionURLAuthType: "AWS_IAM"},
		{StatementID: "invoke", Action: "lambda:InvokeFunction", Principal: "arn:aws:iam::111122223333:user/granted", InvokedViaFunctionURL: true},
		{StatementID: "url-half", Action: "lambda:InvokeFunctionUrl", Principal: "arn:aws:iam::111122223333:user/halfgranted", FunctionURLAuthType: "AWS_IAM"},
	} {
		if _, err := sb.Lambda.AddPermission("", "urlfn", p, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name     string
		policies []string
		urlOK    bool
		directOK bool
	}{
		{"both permissions", []string{urlOnly, viaURL}, true, false},
		{"only lambda:InvokeFunctionUrl", []string{urlOnly}, false, false},
		{"only lambda:InvokeFunction via URL", []string{viaURL}, false, false},
		{"InvokeFunctionUrl for AuthType NONE only", []string{urlNone, viaURL}, false, false},
		{"unconditional InvokeFunction", []string{urlOnly, invoke}, true, true},
		{"an explicit Deny wins", []string{urlOnly, invoke, denyURL}, false, true},
		{"granted", nil, true, false},                  // by the function's policy alone
		{"halfgranted", []string{viaURL}, true, false}, // one from each
		{"nothing", nil, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := strings.NewReplacer(" ", "-", ":", "", "'", "").Replace(tt.name)
			key := sb.User(t, name, 1)[0]
			for i, p := range tt.policies {
				if err := sb.IAM.PutUserPolicy(name, fmt.Sprint("p", i), json.RawMessage(p)); err != nil {
					t.Fatal(err)
				}
			}
			cfg := sb.ConfigAs(t, key.AccessKeyID, key.SecretAccessKey, "")
			a := callURL(t, sb, signed(t, cfg, http.MethodPost, url, []byte(`{}`), nil))
			if tt.urlOK && a.status != http.StatusCreated {
				t.Errorf("URL call: %d %s, want 201", a.status, a.body)
			}
			if !tt.urlOK {
				forbidden(t, a)
			}
			_, err := lambda.NewFromConfig(cfg).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("urlfn"), Payload: []byte(`{}`)})
			switch {
			case tt.directOK && err != nil:
				t.Errorf("direct Invoke: %v", err)
			case !tt.directOK && apiCode(err) != "AccessDeniedException":
				t.Errorf("direct Invoke: %v, want AccessDeniedException", err)
			}
		})
	}
}

// AWS::Lambda::Url and AWS::Lambda::Permission as a template makes them,
// read back through Lambda's API; a stack update keeps the URL.
func TestFunctionURLFromTemplate(t *testing.T) {
	t.Parallel()
	sb, c := start(t, sblambda.FunctionConfig{Name: "answer", Path: urlPath})
	ctx := context.Background()
	arn := "arn:aws:lambda:us-east-1:111122223333:function:answer"
	res := cfn.Resource{LogicalID: "AnswerUrl", Type: "AWS::Lambda::Url", StackName: "keyrotator", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"TargetFunctionArn": arn, "AuthType": "AWS_IAM"}}
	got, err := sb.Lambda.Create(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != arn || got.Attrs["FunctionArn"] != arn || !urlPattern(got.Attrs["FunctionUrl"]) {
		t.Fatalf("Provisioned %+v", got)
	}
	cfgOut, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("answer")})
	if err != nil || aws.ToString(cfgOut.FunctionUrl) != got.Attrs["FunctionUrl"] || cfgOut.AuthType != "AWS_IAM" || aws.ToString(cfgOut.FunctionArn) != arn {
		t.Fatalf("GetFunctionUrlConfig: %v %+v", err, cfgOut)
	}
	res.Previous = &got
	again, err := sb.Lambda.Create(ctx, res)
	if err != nil || again.Attrs["FunctionUrl"] != got.Attrs["FunctionUrl"] {
		t.Fatalf("update: %v, URL %s then %s", err, got.Attrs["FunctionUrl"], again.Attrs["FunctionUrl"])
	}
	for _, bad := range []map[string]any{
		{"TargetFunctionArn": arn, "AuthType": "NONE"},
		{"TargetFunctionArn": arn, "AuthType": "AWS_IAM", "Qualifier": "live"},
		{"TargetFunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:nope", "AuthType": "AWS_IAM"},
	} {
		if _, err := sb.Lambda.Create(ctx, cfn.Resource{Type: "AWS::Lambda::Url", Region: "us-east-1", Account: "111122223333", Partition: "aws", Properties: bad}); err == nil {
			t.Errorf("AWS::Lambda::Url %v made", bad)
		}
	}

	perm := cfn.Resource{LogicalID: "AnswerInvoke", Type: "AWS::Lambda::Permission", StackName: "keyrotator", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"Action": "lambda:InvokeFunction", "FunctionName": arn, "Principal": "111122223333", "InvokedViaFunctionUrl": true}}
	p, err := sb.Lambda.Create(ctx, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Lambda.Create(ctx, cfn.Resource{Type: "AWS::Lambda::Permission", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"Action": "lambda:InvokeFunctionUrl", "FunctionName": "answer", "Principal": "111122223333", "InvokedViaFunctionUrl": "true"}}); err == nil {
		t.Error("InvokedViaFunctionUrl on lambda:InvokeFunctionUrl accepted")
	}
	if _, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("answer"), StatementId: aws.String("url"), Action: aws.String("lambda:InvokeFunctionUrl"),
		Principal: aws.String("arn:aws:iam::111122223333:role/approver"), FunctionUrlAuthType: "AWS_IAM"}); err != nil {
		t.Fatalf("AddPermission: %v", err)
	}
	if _, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("answer"), StatementId: aws.String("url"), Action: aws.String("lambda:InvokeFunctionUrl"),
		Principal: aws.String("111122223333")}); apiCode(err) != "ResourceConflictException" {
		t.Errorf("AddPermission of a taken statement id: %v", err)
	}
	pol, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("answer")})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Sid       string
			Principal map[string]string
			Action    string
			Resource  string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil || len(doc.Statement) != 2 {
		t.Fatalf("GetPolicy %s: %v", aws.ToString(pol.Policy), err)
	}
	s0, s1 := doc.Statement[0], doc.Statement[1]
	if s0.Sid != p.Ref || s0.Principal["AWS"] != "arn:aws:iam::111122223333:root" || s0.Action != "lambda:InvokeFunction" || s0.Resource != arn ||
		s0.Condition["Bool"]["lambda:InvokedViaFunctionUrl"] != "true" {
		t.Errorf("statement from the template: %+v", s0)
	}
	if s1.Sid != "url" || s1.Principal["AWS"] != "arn:aws:iam::111122223333:role/approver" || s1.Condition["StringEquals"]["lambda:FunctionUrlAuthType"] != "AWS_IAM" {
		t.Errorf("statement from AddPermission: %+v", s1)
	}
	// CreateFunctionUrlConfig through the API: a second one is a conflict.
	if err := sb.Lambda.Register(sblambda.FunctionConfig{Name: "other", Path: urlPath}); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("other"), AuthType: "AWS_IAM"})
	if err != nil || !urlPattern(aws.ToString(out.FunctionUrl)) {
		t.Fatalf("CreateFunctionUrlConfig: %v %+v", err, out)
	}
	if _, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("other"), AuthType: "AWS_IAM"}); apiCode(err) != "ResourceConflictException" {
		t.Errorf("a second CreateFunctionUrlConfig: %v", err)
	}
}

func urlPattern(u string) bool {
	id, rest, ok := strings.Cut(strings.TrimPrefix(u, "https://"), ".")
	return ok && strings.HasPrefix(u, "https://") && len(id) == 32 && rest == "lambda-url.us-east-1.on.aws/" && !bytes.ContainsAny([]byte(id), "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")
}

// EventBridge Scheduler invokes a function target directly (not through its
// URL), asynchronously, as the schedule's role: the scheduler path of
// issue 14's requestrun.
func TestScheduleInvokesFunction(t *testing.T) {
	t.Parallel()
	sb, _ := start(t)
	svc, _ := sb.Server.Service("scheduler")
	prov := svc.(interface {
		Create(context.Context, cfn.Resource) (cfn.Provisioned, error)
	})
	const role = "arn:aws:iam::111122223333:role/keyrotator-SchedulerRole"
	target := "arn:aws:lambda:us-east-1:111122223333:function:echo"
	if _, err := prov.Create(context.Background(), cfn.Resource{LogicalID: "Run", Type: "AWS::Scheduler::Schedule", StackName: "keyrotator",
		Region: "us-east-1", Account: "111122223333", Partition: "aws", Properties: map[string]any{
			"FlexibleTimeWindow": map[string]any{"Mode": "OFF"}, "ScheduleExpression": "rate(1 hour)", "State": "ENABLED",
			"Target": map[string]any{"Arn": target, "RoleArn": role, "Input": `{"action":"echo","log":"scheduled run of schedule Run"}`},
		}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines, _ := sb.Lambda.Logs("echo")
		if slices.ContainsFunc(lines, func(l sblambda.LogLine) bool { return strings.Contains(l.Message, "scheduled run of schedule Run") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule never ran the function: %+v", lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls, _ := sb.Server.Calls().Since(0)
	i := slices.IndexFunc(calls, func(c sandbox.CallRecord) bool { return c.Service == "lambda" && c.Action == "Invoke" })
	if i < 0 || calls[i].Status != http.StatusAccepted || !strings.HasPrefix(calls[i].Principal, "arn:aws:sts::111122223333:assumed-role/keyrotator-SchedulerRole/") ||
		!slices.Equal(calls[i].ResourceARNs, []string{target}) {
		t.Fatalf("Invoke in the call log: %+v", calls)
	}
}
