package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// soracomSpec is SORACOM's OpenAPI spec, copied byte for byte from
// soracom-cli (generators/assets/soracom-api.en.yaml, blob efd9ae46…).
const soracomSpec = "testdata/soracom-api.en.yaml"

// exchange is one request and its answer, as they crossed the wire.
type exchange struct {
	step         string // what the test was doing
	requestValid bool   // false: the test sent a request the spec forbids, on purpose
	method, url  string
	reqHeader    http.Header
	reqBody      []byte
	status       int
	header       http.Header
	body         []byte
}

func (e exchange) String() string {
	return fmt.Sprintf("[%s] %s %s → %d %s", e.step, e.method, e.url, e.status, e.body)
}

// wire records every request to the operators through reverse proxies in
// front of them: the client keeps its http.Client to itself, so the test
// listens where the client talks.
type wire struct {
	mu           sync.Mutex
	step         string
	requestValid bool
	log          []exchange
}

// during labels the exchanges that f causes.
func (w *wire) during(step string, requestValid bool, f func()) {
	w.mu.Lock()
	w.step, w.requestValid = step, requestValid
	w.mu.Unlock()
	f()
}

// front starts a recording proxy for endpoint (".../v1") and returns its own base URL.
func (w *wire) front(t *testing.T, endpoint string) string {
	t.Helper()
	origin := strings.TrimSuffix(endpoint, "/v1")
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, origin+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		respBody, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		w.mu.Lock()
		w.log = append(w.log, exchange{step: w.step, requestValid: w.requestValid, method: r.Method,
			url: "http://" + r.Host + r.URL.RequestURI(), reqHeader: r.Header.Clone(), reqBody: body,
			status: resp.StatusCode, header: resp.Header.Clone(), body: respBody})
		w.mu.Unlock()
		for k, vs := range resp.Header {
			rw.Header()[k] = vs
		}
		rw.WriteHeader(resp.StatusCode)
		_, _ = rw.Write(respBody)
	}))
	t.Cleanup(proxy.Close)
	return proxy.URL + "/v1"
}

func (w *wire) exchanges() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// loadSoracomSpec loads the spec and closes the objects the sandbox answers
// with. The spec leaves them open — Group has no required fields, and every
// object allows unknown ones — so a renamed field would pass unnoticed;
// closed, each field the sandbox sends must be the spec's, and the fields
// SORACOM always returns must be there.
func loadSoracomSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(soracomSpec)
	if err != nil {
		t.Fatalf("load %s: %v", soracomSpec, err)
	}
	// Two checks of the document itself are off, for faults in routes we
	// do not serve: its examples do not all match their schemas (the first:
	// GetOrderResponse's, a number where a string is declared), and one
	// parameter's default is not in its own enum (GET /query/sigfox_devices,
	// status: default "and"). Everything else must validate.
	if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation(), openapi3.DisableSchemaDefaultsValidation()); err != nil {
		t.Fatalf("%s is not valid OpenAPI 3: %v", soracomSpec, err)
	}
	closed := false
	required := map[string][]string{
		"AuthResponse":        {"apiKey", "operatorId", "token", "userName"}, // userName: we sign in as SAM users
		"CredentialsModel":    nil,                                           // the spec's own list
		"Group":               {"configuration", "createdTime", "groupId", "lastModifiedTime", "operatorId", "tags"},
		"APICallErrorMessage": nil,
	}
	for name, req := range required {
		ref, ok := doc.Components.Schemas[name]
		if !ok || ref.Value == nil {
			t.Fatalf("the spec has no schema %s", name)
		}
		ref.Value.AdditionalProperties = openapi3.AdditionalProperties{Has: &closed}
		if req != nil {
			ref.Value.Required = req
		}
	}
	return doc
}

// authenticate stands in for SORACOM's check of the two security schemes:
// the spec can only say the headers must be there.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "apiKey" || s.In != "header" {
		return fmt.Errorf("security scheme %s: not an API key header", in.SecuritySchemeName)
	}
	if in.RequestValidationInput.Request.Header.Get(s.Name) == "" {
		return fmt.Errorf("security scheme %s: no %s header", in.SecuritySchemeName, s.Name)
	}
	return nil
}

// Every route of the sandbox's SORACOM, driven through the real client
// (functions/targets/soracom) and plain HTTP for what the client never
// sends, with each request and response checked against SORACOM's spec.
func TestSoracomSandboxConformsToOpenAPI(t *testing.T) {
	t.Parallel()
	doc := loadSoracomSpec(t)
	srv := sandbox.New(sandbox.Options{})
	svc := sbsoracom.New(srv, time.Hour) // no pushes: this is about the API
	t.Cleanup(func() { _ = svc.Close() })

	rotator := sbsoracom.SAMUser{Name: "keyrotator", AuthKeyID: "keyId-rotator000000000000000000000001", AuthKey: "secret-rotator-authkey-do-not-print"}
	lister := sbsoracom.SAMUser{Name: "lister", AuthKeyID: "keyId-lister0000000000000000000000001", AuthKey: "secret-lister-authkey-do-not-print",
		Permissions: []string{"Credential:listCredentials"}}
	op, err := svc.AddOperator(sbsoracom.OperatorConfig{ID: "OP0012345678", SAMUsers: []sbsoracom.SAMUser{rotator, lister}})
	if err != nil {
		t.Fatal(err)
	}
	limited, err := svc.AddOperator(sbsoracom.OperatorConfig{ID: "OP0087654321", SAMUsers: []sbsoracom.SAMUser{rotator}, RatePerMinute: 2})
	if err != nil {
		t.Fatal(err)
	}
	var groupIDs []string
	for i := range 7 {
		id, err := op.AddGroup(sbsoracom.GroupConfig{Name: fmt.Sprintf("devices-%d", i), Configuration: map[string]map[string]any{
			"SoracomFunnel": {"enabled": true, "credentialsId": "funnel-key", "contentType": "json",
				"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://abc-ats.iot.ap-northeast-1.amazonaws.com/devices"}}}})
		if err != nil {
			t.Fatal(err)
		}
		groupIDs = append(groupIDs, id)
	}

	w := &wire{}
	base, limitedBase := w.front(t, op.Endpoint()), w.front(t, limited.Endpoint())
	doc.Servers = openapi3.Servers{{URL: base}, {URL: limitedBase}} // the spec's are SORACOM's own hosts
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}

	ctx := context.Background()
	client := soracom.NewClient(base, rotator.AuthKeyID, rotator.AuthKey, 15*time.Minute, 5*time.Second)
	status := func(err error) int {
		var ae *soracom.APIError
		if errors.As(err, &ae) {
			return ae.Status
		}
		if err != nil {
			t.Fatalf("not an API error: %v", err)
		}
		return 0
	}
	expect := func(what string, err error, want int) {
		t.Helper()
		if got := status(err); got != want {
			t.Fatalf("%s: got status %d (%v), want %d", what, got, err, want)
		}
	}
	raw := func(b, method, path string, hdr map[string]string, body any) (int, http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(j)
		}
		req, err := http.NewRequestWithContext(ctx, method, b+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, rb
	}
	signIn := func(b string) map[string]string {
		t.Helper()
		code, _, body := raw(b, "POST", "/auth", nil, map[string]any{"authKeyId": rotator.AuthKeyID, "authKey": rotator.AuthKey})
		var a struct{ APIKey, Token string }
		if code != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("auth: %d %s", code, body)
		}
		return map[string]string{"X-Soracom-API-Key": a.APIKey, "X-Soracom-Token": a.Token}
	}
	awsKey := func(id, secret string) soracom.CredentialInput {
		return soracom.CredentialInput{Type: "aws-credentials", Description: "Funnel to AWS IoT",
			Credentials: map[string]any{"accessKeyId": id, "secretAccessKey": secret}}
	}
	const oldSecret, newSecret = "old-secret-access-key-do-not-print", "new-secret-access-key-do-not-print"

	// ---- /auth ----
	w.during("auth with a wrong AuthKey", true, func() {
		if code, _, _ := raw(base, "POST", "/auth", nil, map[string]any{"authKeyId": rotator.AuthKeyID, "authKey": "secret-wrong"}); code != 401 {
			t.Fatalf("wrong AuthKey: %d", code)
		}
	})
	w.during("auth asking for a token beyond the maximum", false, func() {
		if code, _, _ := raw(base, "POST", "/auth", nil, map[string]any{"authKeyId": rotator.AuthKeyID, "authKey": rotator.AuthKey, "tokenTimeoutSeconds": 172801}); code != 400 {
			t.Fatalf("tokenTimeoutSeconds 172801: %d", code)
		}
	})
	w.during("a call without API key and token", false, func() {
		if code, _, _ := raw(base, "GET", "/credentials", nil, nil); code != 401 {
			t.Fatalf("no token: %d", code)
		}
	})

	// ---- /credentials ----
	w.during("create credentials", true, func() {
		c, err := client.CreateCredential(ctx, "funnel-key", awsKey("AKIAOLDKEY0000000001", oldSecret))
		expect("create", err, 0)
		if c.CredentialsID != "funnel-key" || c.Credentials["accessKeyId"] != "AKIAOLDKEY0000000001" || c.CreateDateTime == 0 {
			t.Fatalf("created: %+v", c)
		}
		_, err = client.CreateCredential(ctx, "to-delete", awsKey("AKIATODELETE00000001", oldSecret))
		expect("create another", err, 0)
	})
	w.during("create credentials that exist", true, func() {
		_, err := client.CreateCredential(ctx, "funnel-key", awsKey("AKIAOLDKEY0000000001", oldSecret))
		expect("create again", err, 400)
	})
	w.during("create AWS credentials without the secret", true, func() {
		_, err := client.CreateCredential(ctx, "half", soracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": "AKIAHALF"}})
		expect("create without secret", err, 400)
	})
	w.during("create credentials of a type the spec does not have", false, func() {
		_, err := client.CreateCredential(ctx, "odd", soracom.CredentialInput{Type: "carrier-pigeon", Credentials: map[string]any{}})
		expect("create odd type", err, 400)
	})
	w.during("list credentials", true, func() {
		list, err := client.ListCredentials(ctx)
		expect("list", err, 0)
		if len(list) != 2 || list[0].CredentialsID != "funnel-key" || list[0].LastUsedDateTime != 0 {
			t.Fatalf("list: %+v", list)
		}
		for _, c := range list {
			if _, ok := c.Credentials["secretAccessKey"]; ok {
				t.Fatalf("list shows the secret access key of %s", c.CredentialsID) // not the value: test logs are read too
			}
		}
	})
	w.during("update credentials", true, func() {
		c, err := client.UpdateCredential(ctx, "funnel-key", awsKey("AKIANEWKEY0000000002", newSecret))
		expect("update", err, 0)
		if c.Credentials["accessKeyId"] != "AKIANEWKEY0000000002" || c.UpdateDateTime < c.CreateDateTime {
			t.Fatalf("updated: %+v", c)
		}
	})
	w.during("update credentials that do not exist", true, func() {
		_, err := client.UpdateCredential(ctx, "nope", awsKey("AKIANEWKEY0000000002", newSecret))
		expect("update missing", err, 404)
	})
	w.during("delete credentials", true, func() {
		expect("delete", client.DeleteCredential(ctx, "to-delete"), 0)
		// Already gone: the client treats the 404 as done, the wire still carries it.
		expect("delete again", client.DeleteCredential(ctx, "to-delete"), 0)
	})

	// ---- /groups ----
	target := slices.Min(groupIDs) // a seeded group, with a Funnel configuration
	w.during("create a group", true, func() {
		code, _, body := raw(base, "POST", "/groups", signIn(base), map[string]any{"tags": map[string]string{"name": "made-by-api"},
			"configuration": map[string]any{"SoracomAir": map[string]any{"metadata": map[string]any{"enabled": true}}}})
		var g soracom.Group
		if code != 201 || json.Unmarshal(body, &g) != nil || g.GroupID == "" {
			t.Fatalf("createGroup: %d %s", code, body)
		}
		groupIDs = append(groupIDs, g.GroupID)
	})
	slices.Sort(groupIDs)
	w.during("list groups, three a page", true, func() {
		groups, err := client.ListGroups(ctx, 3)
		expect("list groups", err, 0)
		var got []string
		for _, g := range groups {
			got = append(got, g.GroupID)
		}
		if !slices.Equal(got, groupIDs) {
			t.Fatalf("paged list: %v, want %v", got, groupIDs)
		}
	})
	var pages []exchange
	for _, e := range w.exchanges() {
		if e.step == "list groups, three a page" && e.method == "GET" {
			pages = append(pages, e)
		}
	}
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3 (8 groups, 3 a page)", len(pages))
	}
	for i, p := range pages {
		var gs []soracom.Group
		if err := json.Unmarshal(p.body, &gs); err != nil {
			t.Fatal(err)
		}
		next := p.header.Get("X-Soracom-Next-Key")
		if last := i == len(pages)-1; last != (next == "") || (!last && next != gs[len(gs)-1].GroupID) {
			t.Errorf("page %d: X-Soracom-Next-Key %q (want the page's last group id, absent on the last page)", i, next)
		}
		if i > 0 && !strings.Contains(p.url, "last_evaluated_key="+pages[i-1].header.Get("X-Soracom-Next-Key")) {
			t.Errorf("page %d was not asked with the previous next key: %s", i, p.url)
		}
	}
	w.during("get a group", true, func() {
		hdr := signIn(base)
		if code, _, _ := raw(base, "GET", "/groups/"+target, hdr, nil); code != 200 {
			t.Fatalf("getGroup: %d", code)
		}
		if code, _, _ := raw(base, "GET", "/groups/no-such-group", hdr, nil); code != 404 {
			t.Fatalf("getGroup missing: %d", code)
		}
	})
	w.during("put configuration", true, func() {
		g, err := client.PutConfiguration(ctx, target, "SoracomFunnel", []soracom.Param{{Key: "credentialsId", Value: "funnel-key-2"}, {Key: "addSimId", Value: true}})
		expect("put", err, 0)
		if g.Configuration["SoracomFunnel"]["credentialsId"] != "funnel-key-2" || g.Configuration["SoracomFunnel"]["contentType"] != "json" {
			t.Fatalf("put answered %+v (keys not sent must stay)", g.Configuration)
		}
	})
	w.during("put configuration of a group that does not exist", true, func() {
		_, err := client.PutConfiguration(ctx, "no-such-group", "SoracomFunnel", []soracom.Param{{Key: "enabled", Value: false}})
		expect("put missing group", err, 404)
	})
	w.during("put configuration in a namespace the spec does not have", false, func() {
		_, err := client.PutConfiguration(ctx, target, "SoracomFunnell", []soracom.Param{{Key: "enabled", Value: false}})
		expect("put bad namespace", err, 400)
	})
	w.during("delete a configuration namespace", true, func() {
		hdr := signIn(base)
		if code, _, _ := raw(base, "DELETE", "/groups/"+target+"/configuration/SoracomFunnel", hdr, nil); code != 204 {
			t.Fatalf("deleteConfigurationNamespace: %d", code)
		}
		if code, _, _ := raw(base, "DELETE", "/groups/"+target+"/configuration/SoracomFunnel", hdr, nil); code != 400 {
			t.Fatalf("deleteConfigurationNamespace again: %d", code)
		}
	})

	// ---- what SORACOM answers outside the spec: 401, 403, 429, 5xx ----
	w.during("a SAM user without the permission", true, func() {
		l := soracom.NewClient(base, lister.AuthKeyID, lister.AuthKey, 15*time.Minute, 0)
		_, err := l.ListCredentials(ctx)
		expect("lister lists", err, 0)
		_, err = l.CreateCredential(ctx, "not-allowed", awsKey("AKIANOTALLOWED000001", newSecret))
		expect("lister creates", err, 403)
		// The client keeps only the operation, status and code of an answer
		// to a call that carried a secret (I1); the sandbox's own 403 body,
		// read raw, names the operation the SAM user may not call, as
		// SORACOM's does.
		if ae := new(soracom.APIError); !errors.As(err, &ae) || ae.Operation != "Credential:createCredential" || strings.Contains(ae.Message, newSecret) {
			t.Errorf("403 from createCredential: %v", err)
		}
		code, _, body := raw(base, "POST", "/auth", nil, map[string]any{"authKeyId": lister.AuthKeyID, "authKey": lister.AuthKey})
		var a struct{ APIKey, Token string }
		if code != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("lister auth: %d %s", code, body)
		}
		code, _, body = raw(base, "POST", "/credentials/not-allowed", map[string]string{"X-Soracom-API-Key": a.APIKey, "X-Soracom-Token": a.Token},
			map[string]any{"type": "aws-credentials", "credentials": map[string]any{"accessKeyId": "AKIANOTALLOWED000001", "secretAccessKey": newSecret}})
		if code != 403 || !strings.Contains(string(body), "Credential:createCredential") {
			t.Errorf("the sandbox's 403 does not name the operation: %d %s", code, body)
		}
	})
	w.during("an injected 429, waited out", true, func() {
		op.Fail(sbsoracom.Failure{Operation: "listCredentials", Status: 429})
		_, err := client.ListCredentials(ctx)
		expect("list after a 429", err, 0)
	})
	w.during("an injected 500", true, func() {
		op.Fail(sbsoracom.Failure{Operation: "getGroup", Status: 500})
		if code, _, _ := raw(base, "GET", "/groups/"+target, signIn(base), nil); code != 500 {
			t.Fatalf("injected 500: %d", code)
		}
	})
	w.during("the rate limit", true, func() {
		hdr := signIn(limitedBase)
		var codes []int
		for range 3 {
			code, _, _ := raw(limitedBase, "GET", "/groups", hdr, nil)
			codes = append(codes, code)
		}
		if !slices.Equal(codes, []int{200, 200, 429}) {
			t.Fatalf("2 a minute: %v", codes)
		}
	})
	w.during("an expired token, signed in again", true, func() {
		srv.Clock().Advance(16 * time.Minute) // past the client's 15-minute token
		_, err := client.ListGroups(ctx, 100)
		expect("list with an expired token", err, 0)
	})

	// ---- every exchange against the spec ----
	seen := map[string]bool{} // "operationId status"
	var opsOnWire []string    // of the first operator, in order
	for _, e := range w.exchanges() {
		op := validateExchange(t, doc, router, e)
		seen[fmt.Sprintf("%s %d", op, e.status)] = true
		if strings.HasPrefix(e.url, base) {
			opsOnWire = append(opsOnWire, op)
		}
		for _, secret := range []string{rotator.AuthKey, lister.AuthKey, oldSecret, newSecret} {
			if bytes.Contains(e.body, []byte(secret)) {
				t.Errorf("%s: the answer holds a secret", e)
			}
		}
	}

	// Every route and outcome the sandbox has was on the wire.
	want := []string{
		"auth 200", "auth 401", "auth 400",
		"listCredentials 200", "listCredentials 401", "listCredentials 429",
		"createCredential 201", "createCredential 400", "createCredential 403",
		"updateCredential 200", "updateCredential 404",
		"deleteCredential 204", "deleteCredential 404",
		"createGroup 201", "listGroups 200", "listGroups 401", "listGroups 429",
		"getGroup 200", "getGroup 404", "getGroup 500",
		"putConfigurationParameters 200", "putConfigurationParameters 400", "putConfigurationParameters 404",
		"deleteConfigurationNamespace 204", "deleteConfigurationNamespace 400",
	}
	for _, k := range want {
		if !seen[k] {
			t.Errorf("never on the wire: %s", k)
		}
	}
	// The sandbox names each call with the spec's operationId (its SAM
	// permissions and injected failures are keyed by it).
	var opsRecorded []string
	for _, c := range op.Calls() {
		opsRecorded = append(opsRecorded, c.Operation)
	}
	if !slices.Equal(opsOnWire, opsRecorded) {
		t.Errorf("operations the spec routes to:\n %v\nthe sandbox recorded:\n %v", opsOnWire, opsRecorded)
	}
}

// validateExchange checks one exchange against the spec and returns its operationId.
func validateExchange(t *testing.T, doc *openapi3.T, router routers.Router, e exchange) string {
	t.Helper()
	ctx := context.Background()
	req, err := http.NewRequestWithContext(ctx, e.method, e.url, bytes.NewReader(e.reqBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = e.reqHeader.Clone()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s: no such route in the spec: %v", e, err)
		return ""
	}
	opts := &openapi3filter.Options{AuthenticationFunc: authenticate, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case e.requestValid && err != nil:
		t.Errorf("%s: the request breaks the spec: %v", e, err)
	case !e.requestValid && err == nil:
		t.Errorf("%s: the request was meant to break the spec, and does not", e)
	}

	for _, h := range []string{"X-Soracom-Ratelimit-Limit", "X-Soracom-Ratelimit-Remaining", "X-Soracom-Ratelimit-Seconds-Before-Refresh"} {
		if _, err := strconv.Atoi(e.header.Get(h)); err != nil {
			t.Errorf("%s: header %s = %q, want an integer", e, h, e.header.Get(h))
		}
	}
	if len(e.body) > 0 && !strings.HasPrefix(e.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: Content-Type %q", e, e.header.Get("Content-Type"))
	}
	if e.status >= 400 {
		// SORACOM's error body, whether or not the operation lists the status
		// (401, 403, 429 and 5xx are in few operations' responses).
		var v any
		if err := json.Unmarshal(e.body, &v); err != nil {
			t.Errorf("%s: error body is not JSON: %v", e, err)
		} else if err := doc.Components.Schemas["APICallErrorMessage"].Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
			t.Errorf("%s: error body is not APICallErrorMessage: %v", e, err)
		}
	}
	if route.Operation.Responses.Status(e.status) == nil {
		if e.status < 400 {
			t.Errorf("%s: status %d is not in the spec for %s", e, e.status, route.Operation.OperationID)
		}
		return route.Operation.OperationID
	}
	// Validated as an answer to a well-formed request, even when ours was not.
	in.Options = &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: e.status, Header: e.header, Options: in.Options}
	out.SetBodyBytes(e.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s: the response breaks the spec: %v", e, err)
	}
	return route.Operation.OperationID
}
