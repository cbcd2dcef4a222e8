package soracom_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// Test SAM users: the full-power one the tests sign in as, and one allowed
// only to read.
var (
	admin  = soracom.SAMUser{Name: "rotator", AuthKeyID: "keyId-rotator0000000000000000000001", AuthKey: "secret-rotator-authkey-0001"}
	reader = soracom.SAMUser{Name: "reader", AuthKeyID: "keyId-reader00000000000000000000001", AuthKey: "secret-reader-authkey-0001",
		Permissions: []string{"Credential:listCredentials", "Group:list*"}}
)

// newService is SORACOM on a sandbox server that is not serving AWS: the
// API tests need only its clock. Pushes are an hour apart, so none happen.
func newService(t *testing.T) (*soracom.Service, *sandbox.Server) {
	t.Helper()
	srv := sandbox.New(sandbox.Options{})
	s := soracom.New(srv, time.Hour)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, srv
}

func newOperator(t *testing.T, s *soracom.Service, cfg soracom.OperatorConfig) *soracom.Operator {
	t.Helper()
	if cfg.SAMUsers == nil {
		cfg.SAMUsers = []soracom.SAMUser{admin, reader}
	}
	o, err := s.AddOperator(cfg)
	if err != nil {
		t.Fatalf("AddOperator: %v", err)
	}
	return o
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// session calls an operator's API as a signed-in SAM user.
type session struct {
	t             *testing.T
	base          string
	apiKey, token string
}

func call(t *testing.T, base, method, path string, hdr map[string]string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func signIn(t *testing.T, o *soracom.Operator, u soracom.SAMUser, timeout int) *session {
	t.Helper()
	body := map[string]any{"authKeyId": u.AuthKeyID, "authKey": u.AuthKey}
	if timeout > 0 {
		body["tokenTimeoutSeconds"] = timeout
	}
	r := call(t, o.Endpoint(), http.MethodPost, "/auth", nil, body)
	if r.status != http.StatusOK {
		t.Fatalf("auth as %s: %s", u.Name, r)
	}
	var out struct{ APIKey, Token, OperatorID, UserName string }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.OperatorID != o.ID() || out.UserName != u.Name || !strings.HasPrefix(out.APIKey, "api-") || out.Token == "" {
		t.Fatalf("auth answer: %s", r.body)
	}
	return &session{t: t, base: o.Endpoint(), apiKey: out.APIKey, token: out.Token}
}

func (s *session) do(method, path string, body any) reply {
	s.t.Helper()
	return call(s.t, s.base, method, path, map[string]string{"X-Soracom-API-Key": s.apiKey, "X-Soracom-Token": s.token}, body)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s, srv := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{ID: "OP0000000001"})
	base := o.Endpoint()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/v1") {
		t.Fatalf("Endpoint() = %s", base)
	}
	cases := []struct {
		name string
		body any
		want int
		code string
	}{
		{"AuthKey", map[string]any{"authKeyId": admin.AuthKeyID, "authKey": admin.AuthKey}, 200, ""},
		{"longest token", map[string]any{"authKeyId": admin.AuthKeyID, "authKey": admin.AuthKey, "tokenTimeoutSeconds": 172800}, 200, ""},
		{"wrong AuthKey", map[string]any{"authKeyId": admin.AuthKeyID, "authKey": "secret-wrong"}, 401, soracom.CodeBadAuthKey},
		{"unknown AuthKey id", map[string]any{"authKeyId": "keyId-nobody", "authKey": admin.AuthKey}, 401, soracom.CodeBadAuthKey},
		{"password sign-in", map[string]any{"email": "a@example.com", "password": "p"}, 401, soracom.CodeBadAuthKey},
		{"token too long", map[string]any{"authKeyId": admin.AuthKeyID, "authKey": admin.AuthKey, "tokenTimeoutSeconds": 172801}, 400, soracom.CodeBadTokenTimeout},
		{"token zero", map[string]any{"authKeyId": admin.AuthKeyID, "authKey": admin.AuthKey, "tokenTimeoutSeconds": 0}, 400, soracom.CodeBadTokenTimeout},
		{"not JSON", "{", 400, soracom.CodeBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, base, http.MethodPost, "/auth", nil, c.body)
			if r.status != c.want || r.code() != c.code {
				t.Fatalf("got %s, want %d %s", r, c.want, c.code)
			}
			if strings.Contains(string(r.body), admin.AuthKey) {
				t.Errorf("the answer holds the AuthKey: %s", r.body)
			}
		})
	}

	// A token lives tokenTimeoutSeconds of the sandbox's clock.
	sess := signIn(t, o, admin, 600)
	if r := sess.do(http.MethodGet, "/credentials", nil); r.status != 200 {
		t.Fatalf("fresh token: %s", r)
	}
	srv.Clock().Advance(599 * time.Second)
	if r := sess.do(http.MethodGet, "/credentials", nil); r.status != 200 {
		t.Fatalf("token a second before expiry: %s", r)
	}
	srv.Clock().Advance(2 * time.Second)
	if r := sess.do(http.MethodGet, "/credentials", nil); r.status != 401 || r.code() != soracom.CodeBadToken {
		t.Fatalf("expired token: got %s, want 401 %s", r, soracom.CodeBadToken)
	}
	fresh := signIn(t, o, admin, 0) // default: a day
	srv.Clock().Advance(86399 * time.Second)
	if r := fresh.do(http.MethodGet, "/credentials", nil); r.status != 200 {
		t.Fatalf("default token before a day: %s", r)
	}

	headers := []struct {
		name string
		hdr  map[string]string
		code string
	}{
		{"no headers", nil, soracom.CodeNoToken},
		{"no token", map[string]string{"X-Soracom-API-Key": fresh.apiKey}, soracom.CodeNoToken},
		{"another key's token", map[string]string{"X-Soracom-API-Key": fresh.apiKey, "X-Soracom-Token": sess.token}, soracom.CodeBadToken},
		{"unknown API key", map[string]string{"X-Soracom-API-Key": "api-nope", "X-Soracom-Token": fresh.token}, soracom.CodeBadToken},
	}
	for _, c := range headers {
		t.Run(c.name, func(t *testing.T) {
			if r := call(t, base, http.MethodGet, "/groups", c.hdr, nil); r.status != 401 || r.code() != c.code {
				t.Fatalf("got %s, want 401 %s", r, c.code)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{})
	sess := signIn(t, o, admin, 0)
	aws := func(id, secret string) map[string]any {
		return map[string]any{"type": "aws-credentials", "description": "funnel", "credentials": map[string]any{"accessKeyId": id, "secretAccessKey": secret}}
	}
	steps := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
		code   string
	}{
		{"create", "POST", "/credentials/aws-funnel", aws("AKIAOLD0000000000001", "old-secret-value"), 201, ""},
		{"create again", "POST", "/credentials/aws-funnel", aws("AKIAOLD0000000000001", "old-secret-value"), 400, soracom.CodeCredentialTaken},
		{"create without secret", "POST", "/credentials/half", map[string]any{"type": "aws-credentials", "credentials": map[string]any{"accessKeyId": "AKIAX"}}, 400, soracom.CodeBadCredential},
		{"create with a number for the key id", "POST", "/credentials/num", map[string]any{"type": "aws-credentials", "credentials": map[string]any{"accessKeyId": 7, "secretAccessKey": "s"}}, 400, soracom.CodeBadCredential},
		{"create unknown type", "POST", "/credentials/odd", map[string]any{"type": "carrier-pigeon", "credentials": map[string]any{}}, 400, soracom.CodeBadCredential},
		{"create a PSK", "POST", "/credentials/psk1", map[string]any{"type": "psk", "credentials": map[string]any{"key": "cHNrLXNlY3JldA=="}}, 201, ""},
		{"update", "PUT", "/credentials/aws-funnel", aws("AKIANEW0000000000002", "new-secret-value"), 200, ""},
		{"update missing", "PUT", "/credentials/nope", aws("AKIANEW0000000000002", "new-secret-value"), 404, soracom.CodeNoCredential},
		{"update without secret", "PUT", "/credentials/aws-funnel", map[string]any{"type": "aws-credentials", "credentials": map[string]any{"accessKeyId": "AKIAX"}}, 400, soracom.CodeBadCredential},
		{"delete", "DELETE", "/credentials/psk1", nil, 204, ""},
		{"delete again", "DELETE", "/credentials/psk1", nil, 404, soracom.CodeNoCredential},
	}
	for _, st := range steps {
		r := sess.do(st.method, st.path, st.body)
		if r.status != st.want || r.code() != st.code {
			t.Fatalf("%s: got %s, want %d %s", st.name, r, st.want, st.code)
		}
		if strings.Contains(string(r.body), "secret-value") || (r.status < 300 && strings.Contains(string(r.body), "secretAccessKey")) {
			t.Fatalf("%s: the answer holds a secret: %s", st.name, r.body)
		}
	}

	r := sess.do("GET", "/credentials", nil)
	var list []map[string]any
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 {
		t.Fatalf("list: %s (%v)", r, err)
	}
	if len(list) != 1 {
		t.Fatalf("list: %s", r.body)
	}
	c := list[0]
	creds, _ := c["credentials"].(map[string]any)
	if c["credentialsId"] != "aws-funnel" || c["type"] != "aws-credentials" || c["description"] != "funnel" ||
		len(creds) != 1 || creds["accessKeyId"] != "AKIANEW0000000000002" || c["lastUsedDateTime"] != float64(0) {
		t.Errorf("list entry: %v", c)
	}
	created, updated := c["createDateTime"].(float64), c["updateDateTime"].(float64)
	if now := float64(time.Now().UnixMilli()); created < now-60e3 || created > now || updated < created {
		t.Errorf("times are not milliseconds of now: created %v updated %v", created, updated)
	}
	views := o.Credentials()
	if len(views) != 1 || views[0].AccessKeyID != "AKIANEW0000000000002" || !views[0].LastUsed.IsZero() {
		t.Errorf("Credentials(): %+v", views)
	}
}

func TestGroupsPaging(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{})
	var ids []string
	for i := range 7 {
		name := fmt.Sprintf("sensors-%d", i)
		if i == 6 {
			name = "gateway"
		}
		id, err := o.AddGroup(soracom.GroupConfig{Name: name, Tags: map[string]string{"site": "tokyo"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	sess := signIn(t, o, admin, 0)

	list := func(query string) ([]string, string, reply) {
		t.Helper()
		r := sess.do("GET", "/groups"+query, nil)
		if r.status != 200 {
			return nil, "", r
		}
		var gs []struct {
			GroupID    string            `json:"groupId"`
			OperatorID string            `json:"operatorId"`
			Tags       map[string]string `json:"tags"`
		}
		if err := json.Unmarshal(r.body, &gs); err != nil {
			t.Fatalf("GET /groups%s: %v", query, err)
		}
		var got []string
		for _, g := range gs {
			if g.OperatorID != o.ID() || g.Tags["name"] == "" {
				t.Errorf("group %+v", g)
			}
			got = append(got, g.GroupID)
		}
		return got, r.header.Get("X-Soracom-Next-Key"), r
	}

	var all []string
	pages := 0
	for key := ""; ; pages++ {
		q := "?limit=3"
		if key != "" {
			q += "&last_evaluated_key=" + key
		}
		got, next, r := list(q)
		if r.status != 200 {
			t.Fatalf("page %d: %s", pages, r)
		}
		all = append(all, got...)
		if next == "" {
			if len(got) != 1 {
				t.Errorf("last page has %d groups, want 1", len(got))
			}
			break
		}
		if len(got) != 3 || next != got[2] {
			t.Fatalf("page %d: %v, next key %q (want the page's last id)", pages, got, next)
		}
		key = next
	}
	if pages != 2 || !slices.Equal(all, ids) {
		t.Fatalf("paged %d+1 times to %v, want 3 pages of %v", pages, all, ids)
	}

	cases := []struct {
		name  string
		query string
		want  []string
		next  bool
	}{
		{"no limit: every group", "", ids, false},
		{"limit 0 is the default", "?limit=0", ids, false},
		{"limit above the page size", "?limit=1000", ids, false},
		{"after the last id", "?last_evaluated_key=" + ids[6], nil, false},
		{"after a key that is not an id", "?limit=2&last_evaluated_key=" + ids[2] + "0", ids[3:5], true},
		{"tag exact", "?tag_name=name&tag_value=gateway", []string{mustFind(t, o, "gateway")}, false},
		{"tag prefix", "?tag_name=name&tag_value=sensors-&tag_value_match_mode=prefix&limit=10", without(ids, mustFind(t, o, "gateway")), false},
		{"tag no match", "?tag_name=site&tag_value=osaka", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next, r := list(c.query)
			if r.status != 200 {
				t.Fatalf("%s", r)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if (next != "") != c.next {
				t.Errorf("next key %q, want one: %v", next, c.next)
			}
		})
	}
	for _, q := range []string{"?limit=abc", "?tag_name=name", "?tag_name=name&tag_value=x&tag_value_match_mode=fuzzy"} {
		if r := sess.do("GET", "/groups"+q, nil); r.status != 400 || r.code() != soracom.CodeBadRequest {
			t.Errorf("GET /groups%s: got %s, want 400", q, r)
		}
	}
}

func mustFind(t *testing.T, o *soracom.Operator, name string) string {
	t.Helper()
	for _, g := range o.Groups() {
		if g.Name == name {
			return g.ID
		}
	}
	t.Fatalf("no group %s", name)
	return ""
}

func without(ids []string, id string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
}

func TestGroupConfiguration(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{})
	id, err := o.AddGroup(soracom.GroupConfig{Name: "funnel", Configuration: map[string]map[string]any{
		"SoracomFunnel": {"enabled": true, "credentialsId": "old", "contentType": "json"}}})
	if err != nil {
		t.Fatal(err)
	}
	sess := signIn(t, o, admin, 0)

	r := sess.do("PUT", "/groups/"+id+"/configuration/SoracomFunnel", []map[string]any{{"key": "credentialsId", "value": "new"}, {"key": "addSimId", "value": true}})
	if r.status != 200 {
		t.Fatalf("put: %s", r)
	}
	var g struct {
		GroupID          string                    `json:"groupId"`
		Configuration    map[string]map[string]any `json:"configuration"`
		CreatedTime      int64                     `json:"createdTime"`
		LastModifiedTime int64                     `json:"lastModifiedTime"`
	}
	if err := json.Unmarshal(r.body, &g); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"enabled": true, "credentialsId": "new", "contentType": "json", "addSimId": true}
	if g.GroupID != id || fmt.Sprint(g.Configuration["SoracomFunnel"]) != fmt.Sprint(want) || g.LastModifiedTime < g.CreatedTime {
		t.Errorf("put answered %s; want the namespace %v (keys sent overwrite or append, the others stay)", r.body, want)
	}
	if v := o.Groups()[0].Configuration["SoracomFunnel"]["credentialsId"]; v != "new" {
		t.Errorf("Groups() after put: credentialsId %v", v)
	}

	cases := []struct {
		name, method, path string
		body               any
		want               int
		code               string
	}{
		{"get", "GET", "/groups/" + id, nil, 200, ""},
		{"get missing", "GET", "/groups/nope", nil, 404, soracom.CodeNoGroup},
		{"put unknown namespace", "PUT", "/groups/" + id + "/configuration/SoracomFunnell", []map[string]any{{"key": "a", "value": 1}}, 400, soracom.CodeBadNamespace},
		{"put missing group", "PUT", "/groups/nope/configuration/SoracomFunk", []map[string]any{{"key": "a", "value": 1}}, 404, soracom.CodeNoGroup},
		{"put an object, not an array", "PUT", "/groups/" + id + "/configuration/SoracomFunk", map[string]any{"key": "a", "value": 1}, 400, soracom.CodeBadRequest},
		{"put without value", "PUT", "/groups/" + id + "/configuration/SoracomFunk", []map[string]any{{"key": "a"}}, 400, soracom.CodeBadGroupBody},
		{"put without key", "PUT", "/groups/" + id + "/configuration/SoracomFunk", []map[string]any{{"value": 1}}, 400, soracom.CodeBadGroupBody},
		{"put a new namespace", "PUT", "/groups/" + id + "/configuration/SoracomFunk", []map[string]any{{"key": "enabled", "value": false}}, 200, ""},
		{"delete namespace", "DELETE", "/groups/" + id + "/configuration/SoracomFunk", nil, 204, ""},
		{"delete it again", "DELETE", "/groups/" + id + "/configuration/SoracomFunk", nil, 400, soracom.CodeBadNamespace},
		{"create group", "POST", "/groups", map[string]any{"tags": map[string]string{"name": "made"}, "configuration": map[string]any{"SoracomAir": map[string]any{"metadata": map[string]any{"enabled": true}}}}, 201, ""},
		{"create group in an unknown namespace", "POST", "/groups", map[string]any{"configuration": map[string]any{"Nope": map[string]any{}}}, 400, soracom.CodeBadNamespace},
		{"no such API", "GET", "/operators", nil, 404, soracom.CodeNoSuchAPI},
	}
	for _, c := range cases {
		if r := sess.do(c.method, c.path, c.body); r.status != c.want || r.code() != c.code {
			t.Errorf("%s: got %s, want %d %s", c.name, r, c.want, c.code)
		}
	}
	if len(o.Groups()) != 2 {
		t.Errorf("createGroup: %d groups, want 2", len(o.Groups()))
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	none := soracom.SAMUser{Name: "none", AuthKeyID: "keyId-none", AuthKey: "secret-none", Permissions: []string{}}
	wild := soracom.SAMUser{Name: "wild", AuthKeyID: "keyId-wild", AuthKey: "secret-wild", Permissions: []string{"Credential:*"}}
	o := newOperator(t, s, soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin, reader, none, wild}})
	gid, err := o.AddGroup(soracom.GroupConfig{Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		op, method, path string
		body             any
	}{
		{"Credential:listCredentials", "GET", "/credentials", nil},
		{"Credential:createCredential", "POST", "/credentials/c1", map[string]any{"type": "psk", "credentials": map[string]any{"key": "k"}}},
		{"Group:listGroups", "GET", "/groups", nil},
		{"Group:getGroup", "GET", "/groups/" + gid, nil},
		{"Group:putConfigurationParameters", "PUT", "/groups/" + gid + "/configuration/SoracomAir", []map[string]any{{"key": "k", "value": 1}}},
	}
	users := []struct {
		user    soracom.SAMUser
		allowed []string
	}{
		{admin, []string{"Credential:listCredentials", "Credential:createCredential", "Group:listGroups", "Group:getGroup", "Group:putConfigurationParameters"}},
		{reader, []string{"Credential:listCredentials", "Group:listGroups"}},
		{none, nil},
		{wild, []string{"Credential:listCredentials", "Credential:createCredential"}},
	}
	for _, u := range users {
		t.Run(u.user.Name, func(t *testing.T) {
			sess := signIn(t, o, u.user, 0)
			for _, c := range calls {
				r := sess.do(c.method, c.path, c.body)
				if slices.Contains(u.allowed, c.op) {
					if r.status >= 300 && r.code() != soracom.CodeCredentialTaken {
						t.Errorf("%s: got %s, want it allowed", c.op, r)
					}
					continue
				}
				if r.status != 403 || r.code() != soracom.CodeForbidden || !strings.Contains(string(r.body), "You are not allowed to call this API: "+c.op) {
					t.Errorf("%s: got %s, want 403 naming the operation", c.op, r)
				}
			}
		})
	}
	// A permission change applies to tokens already issued.
	sess := signIn(t, o, reader, 0)
	if err := o.SetPermissions("reader", []string{"Group:listGroups"}); err != nil {
		t.Fatal(err)
	}
	if r := sess.do("GET", "/credentials", nil); r.status != 403 {
		t.Errorf("after revoking: got %s", r)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{RatePerMinute: 3})
	sess := signIn(t, o, admin, 0)
	for i := 1; i <= 4; i++ {
		r := sess.do("GET", "/credentials", nil)
		limit, remaining := r.header.Get("X-Soracom-Ratelimit-Limit"), r.header.Get("X-Soracom-Ratelimit-Remaining")
		refresh, err := strconv.Atoi(r.header.Get("X-Soracom-Ratelimit-Seconds-Before-Refresh"))
		if limit != "3" || err != nil || refresh < 1 || refresh > 60 {
			t.Fatalf("call %d: headers %v", i, r.header)
		}
		wantStatus, wantRemaining := 200, strconv.Itoa(3-i)
		if i == 4 {
			wantStatus, wantRemaining = 429, "0"
		}
		if r.status != wantStatus || remaining != wantRemaining {
			t.Fatalf("call %d: %s remaining %s, want %d remaining %s", i, r, remaining, wantStatus, wantRemaining)
		}
		if i == 4 && r.code() != soracom.CodeRateLimited {
			t.Fatalf("429 body: %s", r.body)
		}
	}
	// Per API: another path has its own window.
	if r := sess.do("GET", "/groups", nil); r.status != 200 || r.header.Get("X-Soracom-Ratelimit-Remaining") != "2" {
		t.Fatalf("another API: %s %v", r, r.header)
	}
	// The service-wide knob applies to operators that set none.
	s.SetRatePerMinute(1)
	o2 := newOperator(t, s, soracom.OperatorConfig{})
	if r := call(t, o2.Endpoint(), "GET", "/groups", nil, nil); r.header.Get("X-Soracom-Ratelimit-Limit") != "1" {
		t.Fatalf("SetRatePerMinute(1): %v", r.header)
	}
}

func TestInjectedFailures(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{})
	var ids []string
	for i := range 5 {
		id, err := o.AddGroup(soracom.GroupConfig{Name: fmt.Sprint("g", i), Configuration: map[string]map[string]any{"SoracomFunnel": {"credentialsId": "old"}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	sess := signIn(t, o, admin, 0)
	o.Fail(soracom.Failure{Operation: "putConfigurationParameters", Status: 500, After: 2, Times: 2})
	// A call to another API neither fails nor uses up the After.
	if r := sess.do("GET", "/groups", nil); r.status != 200 {
		t.Fatalf("listGroups: %s", r)
	}
	var statuses []int
	for _, id := range ids {
		r := sess.do("PUT", "/groups/"+id+"/configuration/SoracomFunnel", []map[string]any{{"key": "credentialsId", "value": "new"}})
		statuses = append(statuses, r.status)
		if r.status == 500 && r.code() == "" {
			t.Errorf("injected 500 without SORACOM's error body: %s", r.body)
		}
	}
	if !slices.Equal(statuses, []int{200, 200, 500, 500, 200}) {
		t.Fatalf("statuses %v, want 2 through, 2 failed, then recovered", statuses)
	}
	for i, g := range o.Groups() {
		want := "new"
		if i == 2 || i == 3 {
			want = "old" // failed before any side effect
		}
		if got := g.Configuration["SoracomFunnel"]["credentialsId"]; got != want {
			t.Errorf("group %d: credentialsId %v, want %s", i, got, want)
		}
	}

	// A 429 says to come back in a second.
	o.Fail(soracom.Failure{Status: 429})
	r := sess.do("GET", "/credentials", nil)
	if r.status != 429 || r.code() != soracom.CodeRateLimited || r.header.Get("X-Soracom-Ratelimit-Seconds-Before-Refresh") != "1" ||
		r.header.Get("X-Soracom-Ratelimit-Remaining") != "0" || r.header.Get("X-Soracom-Ratelimit-Limit") == "" {
		t.Fatalf("injected 429: %s %v", r, r.header)
	}
	if r := sess.do("GET", "/credentials", nil); r.status != 200 {
		t.Fatalf("after the one 429: %s", r)
	}
	o.Fail(soracom.Failure{Status: 503, Times: 5})
	o.ClearFailures()
	if r := sess.do("GET", "/credentials", nil); r.status != 200 {
		t.Fatalf("after ClearFailures: %s", r)
	}

	// Every call is recorded, without a secret.
	calls := o.Calls()
	var put500 int
	for _, c := range calls {
		if c.Operation == "putConfigurationParameters" && c.Status == 500 {
			put500++
		}
		if strings.Contains(fmt.Sprintf("%+v", c), admin.AuthKey) {
			t.Errorf("a call record holds the AuthKey: %+v", c)
		}
	}
	if put500 != 2 || calls[0].Operation != "auth" || calls[0].User != admin.Name {
		t.Errorf("calls: %+v", calls)
	}
}

func TestSecretsStayHidden(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	o := newOperator(t, s, soracom.OperatorConfig{Credentials: map[string]soracom.CredentialInput{
		"aws": {Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": "AKIAHIDDEN0000000001", "secretAccessKey": "very-secret-value"}}}})
	printed := fmt.Sprintf("%v %+v %v", admin, soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin}}, soracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"secretAccessKey": "very-secret-value"}})
	b, err := json.Marshal(o.View())
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{printed, string(b)} {
		if strings.Contains(out, admin.AuthKey) || strings.Contains(out, "very-secret-value") {
			t.Errorf("a secret shows: %s", out)
		}
	}
	if !strings.Contains(string(b), "AKIAHIDDEN0000000001") || !strings.Contains(string(b), admin.AuthKeyID) {
		t.Errorf("the view lost the ids: %s", b)
	}
}

func TestAddOperatorRefuses(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	newOperator(t, s, soracom.OperatorConfig{ID: "OP0000000009"})
	cases := []struct {
		name string
		cfg  soracom.OperatorConfig
	}{
		{"same id", soracom.OperatorConfig{ID: "OP0000000009"}},
		{"bad coverage", soracom.OperatorConfig{Coverage: "eu"}},
		{"user without key", soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{{Name: "x", AuthKeyID: "keyId-x"}}}},
		{"same AuthKey twice", soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin, admin}}},
		{"bad credential", soracom.OperatorConfig{Credentials: map[string]soracom.CredentialInput{"c": {Type: "aws-credentials", Credentials: map[string]any{}}}}},
		{"bad namespace", soracom.OperatorConfig{Groups: []soracom.GroupConfig{{Name: "g", Configuration: map[string]map[string]any{"Funnel": {}}}}}},
	}
	for _, c := range cases {
		if _, err := s.AddOperator(c.cfg); err == nil {
			t.Errorf("%s: no error", c.name)
		} else if strings.Contains(err.Error(), admin.AuthKey) {
			t.Errorf("%s: the error holds the AuthKey: %v", c.name, err)
		}
	}
	o, err := s.AddOperator(soracom.OperatorConfig{})
	if err != nil || !strings.HasPrefix(o.ID(), "OP") || len(o.ID()) != 12 || o.Coverage() != "jp" {
		t.Fatalf("generated operator: %v %v", o, err)
	}
}
