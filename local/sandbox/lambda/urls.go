package lambda

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Function URLs, as Lambda serves them
// (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html):
// each URL is https://<url-id>.lambda-url.<region>.on.aws/. The sandbox
// cannot own that DNS name, so it serves every URL on its one endpoint and
// tells them apart by the Host header: a client sends the request to the
// sandbox's endpoint (http://127.0.0.1:PORT/path) with Host
// <url-id>.lambda-url.<region>.on.aws, signed for that host with SigV4 for
// service "lambda" (URLTransport and NewURLRequest do both). The sandbox
// serves AuthType AWS_IAM only: the caller is authenticated like any AWS
// call, authorized (where the sandbox enforces IAM) for both
// lambda:InvokeFunctionUrl and lambda:InvokeFunction
// (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html), and the
// function receives the request as payload format 2.0 with
// requestContext.authorizer.iam naming the caller.

// Function URL auth types
// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunctionUrlConfig.html).
const (
	AuthTypeIAM  = "AWS_IAM"
	AuthTypeNone = "NONE"
)

// URLConfig is a function URL.
type URLConfig struct {
	ID         string    `json:"id"` // <url-id>, 32 lowercase letters and digits
	Function   string    `json:"function"`
	Region     string    `json:"region"`
	AuthType   string    `json:"authType"`
	Qualifier  string    `json:"qualifier,omitempty"`
	InvokeMode string    `json:"invokeMode"`
	Created    time.Time `json:"created"`
	Modified   time.Time `json:"modified"`
}

// URL is the function URL as AWS writes it:
// https://<url-id>.lambda-url.<region>.on.aws/.
func (u URLConfig) URL() string { return "https://" + u.Host() + "/" }

// Host is the URL's host name.
func (u URLConfig) Host() string { return u.ID + ".lambda-url." + u.Region + ".on.aws" }

// urlHost is a function URL's host: <url-id>.lambda-url.<region>.on.aws.
var urlHost = regexp.MustCompile(`^([a-z0-9]+)\.lambda-url\.([a-z0-9-]+)\.on\.aws$`)

// parseURLHost is the url id and region of a function URL's host (a port,
// if any, ignored).
func parseURLHost(host string) (id, region string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	m := urlHost.FindStringSubmatch(strings.ToLower(host))
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// RoutesHost implements sandbox.HostRouter: a function URL's host.
func (s *Service) RoutesHost(host string) bool {
	_, _, ok := parseURLHost(host)
	return ok
}

func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// CreateURL gives a function a URL (CreateFunctionUrlConfig), or returns
// the one it has with the configuration given. id "" makes a new url id;
// a redeploy passes the old one so the URL stays the same.
func (s *Service) CreateURL(region, function, authType, qualifier, id string) (URLConfig, error) {
	switch authType {
	case AuthTypeIAM:
	case AuthTypeNone:
		return URLConfig{}, sandbox.Errorf(400, "InvalidParameterValueException", "the sandbox serves function URLs with AuthType AWS_IAM only, not NONE")
	default:
		return URLConfig{}, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM]", authType)
	}
	if qualifier != "" && qualifier != "$LATEST" {
		return URLConfig{}, sandbox.Errorf(400, "InvalidParameterValueException", "the sandbox has no alias %q: it runs $LATEST only", qualifier)
	}
	if region == "" {
		region = s.srv.Region()
	}
	fn, err := s.resolve(region, function, "")
	if err != nil {
		return URLConfig{}, err
	}
	now := s.srv.Clock().Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.urls == nil {
		s.urls = map[string]*URLConfig{}
	}
	for _, u := range s.urls {
		if u.Function == fn.cfg.Name && u.ID != id {
			if id == "" {
				return URLConfig{}, sandbox.Errorf(409, "ResourceConflictException", "Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", s.functionARN(region, fn.cfg.Name))
			}
			delete(s.urls, u.ID) // a redeploy moved the URL
		}
	}
	if id == "" {
		id = newURLID()
	}
	u := &URLConfig{ID: id, Function: fn.cfg.Name, Region: region, AuthType: authType, Qualifier: qualifier, InvokeMode: "BUFFERED", Created: now, Modified: now}
	if old, ok := s.urls[id]; ok {
		u.Created = old.Created
	}
	s.urls[id] = u
	return *u, nil
}

// FunctionURL is a function's URL, https://<url-id>.lambda-url.<region>.on.aws/
// (send it to the sandbox with URLTransport), if it has one.
func (s *Service) FunctionURL(function string) (string, bool) {
	u, ok := s.URLOf(function)
	return u.URL(), ok
}

// URLOf is a function's URL configuration, by the function's name or ARN.
func (s *Service) URLOf(function string) (URLConfig, bool) {
	name := functionName(function)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, u := range s.urls {
		if u.Function == name {
			return *u, true
		}
	}
	return URLConfig{}, false
}

// urlByHost is the URL a host names.
func (s *Service) urlByHost(host string) (URLConfig, bool) {
	id, region, ok := parseURLHost(host)
	if !ok {
		return URLConfig{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.urls[id]
	if !ok || u.Region != region {
		return URLConfig{}, false
	}
	return *u, true
}

// functionName is the name in a function name or ARN (qualifier dropped).
func functionName(ref string) string {
	parts := strings.Split(ref, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn":
		return parts[6]
	case len(parts) >= 3 && parts[1] == "function":
		return parts[2]
	}
	return parts[0]
}

// forbidden is what a function URL answers a call it refuses, whatever the
// reason (no or a bad signature, no permission): 403 {"Message":"Forbidden"}.
func forbidden() *sandbox.Raw {
	return urlMessage(http.StatusForbidden, "Forbidden")
}

func urlMessage(status int, msg string) *sandbox.Raw {
	b, _ := json.Marshal(map[string]string{"Message": msg})
	return &sandbox.Raw{Status: status, Header: http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {msgType(status)}}, Body: b}
}

func msgType(status int) string {
	switch status {
	case http.StatusForbidden:
		return "AccessDeniedException"
	case http.StatusTooManyRequests:
		return "TooManyRequestsException"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLargeException"
	}
	return "ServiceException"
}

// ShapeError implements sandbox.ErrorShaper: a function URL's refusals are
// 403 {"Message":"Forbidden"}; its own failures the HTTP statuses of
// https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html. The
// API's errors keep Lambda's REST shape.
func (s *Service) ShapeError(c *sandbox.Call, e *sandbox.Error) (*sandbox.Raw, bool) {
	if c.Action != "InvokeFunctionUrl" && !s.RoutesHost(c.HTTP.Host) {
		return nil, false
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		return urlMessage(http.StatusTooManyRequests, "Rate Exceeded."), true
	case e.Status == http.StatusRequestEntityTooLarge:
		return urlMessage(http.StatusRequestEntityTooLarge, "Request Entity Too Large"), true
	case e.Status >= 500:
		return urlMessage(http.StatusBadGateway, "Internal Server Error"), true
	}
	return forbidden(), true
}

// URLEvent is the request as a function URL hands it to the function:
// payload format version 2.0
// (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads).
type URLEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        URLRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	PathParameters        map[string]string `json:"pathParameters"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
	StageVariables        map[string]string `json:"stageVariables"`
}

// URLRequestContext is URLEvent's requestContext.
type URLRequestContext struct {
	AccountID    string         `json:"accountId"` // the function owner's
	APIID        string         `json:"apiId"`     // the url id
	Authorizer   *URLAuthorizer `json:"authorizer,omitempty"`
	DomainName   string         `json:"domainName"`
	DomainPrefix string         `json:"domainPrefix"`
	HTTP         URLHTTP        `json:"http"`
	RequestID    string         `json:"requestId"`
	RouteKey     string         `json:"routeKey"`
	Stage        string         `json:"stage"`
	Time         string         `json:"time"` // 12/Mar/2020:19:03:58 +0000
	TimeEpoch    int64          `json:"timeEpoch"`
}

// URLAuthorizer holds the verified caller of an AWS_IAM function URL.
type URLAuthorizer struct {
	IAM *URLIAM `json:"iam"`
}

// URLIAM is requestContext.authorizer.iam: who signed the request.
type URLIAM struct {
	AccessKey       string  `json:"accessKey"`
	AccountID       string  `json:"accountId"`
	CallerID        string  `json:"callerId"`
	CognitoIdentity any     `json:"cognitoIdentity"` // null: no Cognito identity
	PrincipalOrgID  *string `json:"principalOrgId"`  // null: the sandbox has no organization
	UserARN         string  `json:"userArn"`
	UserID          string  `json:"userId"`
}

// URLHTTP is requestContext.http.
type URLHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// droppedHeaders are request headers the sandbox does not hand the
// function: the session token of the caller's temporary credentials is
// theirs, not the function's to log (I1).
var droppedHeaders = map[string]bool{"x-amz-security-token": true}

// urlEvent builds the event for c, a call to u.
func (s *Service) urlEvent(c *sandbox.Call, u URLConfig, trace string) URLEvent {
	r := c.HTTP
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	headers := map[string]string{}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" || droppedHeaders[lk] {
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = u.Host()
	headers["x-forwarded-proto"] = "https"
	headers["x-forwarded-port"] = "443"
	headers["x-forwarded-for"] = ip
	headers["x-amzn-trace-id"] = trace
	var cookies []string
	for _, line := range r.Header.Values("Cookie") {
		for ck := range strings.SplitSeq(line, ";") {
			if ck = strings.TrimSpace(ck); ck != "" {
				cookies = append(cookies, ck)
			}
		}
	}
	var qs map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		qs = map[string]string{}
		for k, vs := range q {
			qs[k] = strings.Join(vs, ",")
		}
	}
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	ev := URLEvent{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: qs,
		RequestContext: URLRequestContext{
			AccountID: s.srv.Account(), APIID: u.ID, DomainName: u.Host(), DomainPrefix: u.ID,
			HTTP:      URLHTTP{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent()},
			RequestID: c.RequestID, RouteKey: "$default", Stage: "$default",
			Time: c.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: c.Time.UnixMilli(),
		},
	}
	if u.AuthType == AuthTypeIAM {
		p := c.Principal
		ev.RequestContext.Authorizer = &URLAuthorizer{IAM: &URLIAM{
			AccessKey: c.AccessKeyID, AccountID: p.Account, CallerID: p.UserID, UserARN: p.ARN, UserID: p.UserID,
		}}
	}
	if len(c.Body) > 0 {
		if textual(r.Header.Get("Content-Type")) {
			ev.Body = string(c.Body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(c.Body), true
		}
	}
	return ev
}

// textual says whether a body of this content type reaches the function as
// text; anything else is base64, as function URLs do.
func textual(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	switch {
	case ct == "", strings.HasPrefix(ct, "text/"), strings.HasSuffix(ct, "json"), strings.HasSuffix(ct, "xml"),
		ct == "application/javascript", ct == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// invokeURL runs a function URL call: the event to the function, its
// answer to the caller.
func (s *Service) invokeURL(ctx context.Context, c *sandbox.Call) (any, error) {
	u, ok := s.urlByHost(c.HTTP.Host)
	if !ok {
		return nil, sandbox.Errorf(http.StatusForbidden, "AccessDeniedException", "no function URL at %s", c.HTTP.Host)
	}
	if c.Region != u.Region {
		// The credential scope names another region than the URL's.
		return nil, sandbox.Errorf(http.StatusForbidden, "AccessDeniedException", "signed for region %s, the URL is in %s", c.Region, u.Region)
	}
	fn, err := s.resolve(u.Region, u.Function, u.Qualifier)
	if err != nil {
		return nil, err
	}
	arn := s.functionARN(u.Region, fn.cfg.Name)
	c.Touch("AWS::Lambda::Function", arn)
	c.RequestParameters(map[string]any{"functionName": arn, "functionUrl": u.URL()})
	if len(c.Body) > MaxPayload {
		return nil, sandbox.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "Request must be smaller than %d bytes", MaxPayload)
	}
	trace := traceID()
	payload, err := json.Marshal(s.urlEvent(c, u, trace))
	if err != nil {
		return nil, fmt.Errorf("function URL event: %w", err)
	}
	crash := c.Fault != nil && c.Fault.Crash
	inv := &invocation{id: c.RequestID, arn: arn, payload: payload, trace: trace, done: make(chan outcome, 1)}
	res, err := s.run(ctx, fn, inv, crash)
	if err != nil {
		return nil, err
	}
	if res.failed {
		return urlMessage(http.StatusBadGateway, "Internal Server Error"), nil
	}
	return urlResponse(res.body), nil
}

// urlResponse turns the function's answer into the HTTP response, as
// function URLs do: an object with statusCode is a response (statusCode,
// headers, cookies, body, isBase64Encoded); any other JSON is the body of
// a 200 application/json.
// https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-response-payload
func urlResponse(body []byte) *sandbox.Raw {
	var probe map[string]json.RawMessage
	if json.Unmarshal(body, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var r struct {
				StatusCode      int               `json:"statusCode"`
				Headers         map[string]string `json:"headers"`
				Cookies         []string          `json:"cookies"`
				Body            string            `json:"body"`
				IsBase64Encoded bool              `json:"isBase64Encoded"`
			}
			if err := json.Unmarshal(body, &r); err != nil || r.StatusCode < 100 || r.StatusCode > 599 {
				return urlMessage(http.StatusBadGateway, "Internal Server Error")
			}
			h := http.Header{}
			for k, v := range r.Headers {
				h.Set(k, v)
			}
			for _, ck := range r.Cookies {
				h.Add("Set-Cookie", ck)
			}
			b := []byte(r.Body)
			if r.IsBase64Encoded {
				d, err := base64.StdEncoding.DecodeString(r.Body)
				if err != nil {
					return urlMessage(http.StatusBadGateway, "Internal Server Error")
				}
				b = d
			}
			if h.Get("Content-Type") == "" {
				h.Set("Content-Type", "application/json")
			}
			return &sandbox.Raw{Status: r.StatusCode, Header: h, Body: b}
		}
	}
	return &sandbox.Raw{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

var (
	_ sandbox.HostRouter  = (*Service)(nil)
	_ sandbox.ErrorShaper = (*Service)(nil)
)
