package soracom

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Error codes, in SORACOM's shape (three letters, four digits). SORACOM does
// not publish its codes for these cases, so these are the sandbox's own; each
// case always gets the same one.
const (
	CodeBadRequest      = "COM0001" // 400: a body or parameter the API cannot read
	CodeNoSuchAPI       = "COM0002" // 404: no such method and path
	CodeRateLimited     = "COM0003" // 429: the operator's limit for this API this minute
	CodeBadAuthKey      = "AUM0001" // 401: /auth with an unknown AuthKey id or a wrong AuthKey
	CodeNoToken         = "AUM0002" // 401: no X-Soracom-API-Key / X-Soracom-Token
	CodeBadToken        = "AUM0003" // 401: an API key and token never issued, or expired
	CodeBadTokenTimeout = "AUM0004" // 400: tokenTimeoutSeconds out of range
	CodeForbidden       = "SAM0001" // 403: the SAM user may not call this API
	CodeCredentialTaken = "CRD0001" // 400: createCredential on an id that exists
	CodeBadCredential   = "CRD0002" // 400: a credential set the store refuses
	CodeNoCredential    = "CRD0003" // 404: no such credential set
	CodeNoGroup         = "GRP0001" // 404: no such group
	CodeBadNamespace    = "GRP0002" // 400: a namespace not in the enum, or not in the group
	CodeBadGroupBody    = "GRP0003" // 400: a configuration or tags body the API refuses
)

// Token lifetimes /auth accepts, in seconds (AuthRequest.tokenTimeoutSeconds).
const (
	defaultTokenTimeout = 86400
	maxTokenTimeout     = 172800
)

// Paging of listGroups: SORACOM documents no default or maximum for limit;
// the sandbox answers up to 100 a page, and 100 when limit is absent or ≤ 0.
const (
	defaultPageSize = 100
	maxPageSize     = 100
)

const maxBody = 1 << 20

// apiError is SORACOM's error answer (APICallErrorMessage) with its status.
type apiError struct {
	status        int
	code, message string
}

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// operation is one API: its operationId and the name SAM permissions use.
type operation struct {
	id  string
	sam string // "" for /auth, which needs no token and no permission
}

func op(service, id string) operation { return operation{id: id, sam: service + ":" + id} }

var (
	opAuth             = operation{id: "auth"}
	opNone             = operation{} // a path the API does not have
	opListCredentials  = op("Credential", "listCredentials")
	opCreateCredential = op("Credential", "createCredential")
	opUpdateCredential = op("Credential", "updateCredential")
	opDeleteCredential = op("Credential", "deleteCredential")
	opListGroups       = op("Group", "listGroups")
	opCreateGroup      = op("Group", "createGroup")
	opGetGroup         = op("Group", "getGroup")
	opPutConfiguration = op("Group", "putConfigurationParameters")
	opDeleteNamespace  = op("Group", "deleteConfigurationNamespace")
)

func (o *Operator) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/auth", o.api(opAuth, o.auth))
	m.HandleFunc("GET /v1/credentials", o.api(opListCredentials, o.listCredentials))
	m.HandleFunc("POST /v1/credentials/{credentials_id}", o.api(opCreateCredential, o.createCredential))
	m.HandleFunc("PUT /v1/credentials/{credentials_id}", o.api(opUpdateCredential, o.updateCredential))
	m.HandleFunc("DELETE /v1/credentials/{credentials_id}", o.api(opDeleteCredential, o.deleteCredential))
	m.HandleFunc("GET /v1/groups", o.api(opListGroups, o.listGroups))
	m.HandleFunc("POST /v1/groups", o.api(opCreateGroup, o.createGroup))
	m.HandleFunc("GET /v1/groups/{group_id}", o.api(opGetGroup, o.getGroup))
	m.HandleFunc("PUT /v1/groups/{group_id}/configuration/{namespace}", o.api(opPutConfiguration, o.putConfiguration))
	m.HandleFunc("DELETE /v1/groups/{group_id}/configuration/{namespace}", o.api(opDeleteNamespace, o.deleteNamespace))
	m.HandleFunc("/", o.api(opNone, func(w http.ResponseWriter, r *http.Request, _ *callInfo) {
		writeError(w, fail(http.StatusNotFound, CodeNoSuchAPI, "No such API: %s %s", r.Method, r.URL.Path))
	}))
	return m
}

// callInfo is what the checks learn about a call, for the handler and the record.
type callInfo struct {
	user string
}

// recorder keeps the status and error code a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	code   string
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) setCode(code string) { r.code = code }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// api runs the checks every call goes through, in SORACOM's order as far as
// it shows: the rate limit (every response carries its headers), the API
// key and token, the SAM permission, then injected failures (so a failure
// queued with After counts only calls that would have reached the API), and
// only then the handler. The call is recorded without body or headers.
func (o *Operator) api(op operation, h func(http.ResponseWriter, *http.Request, *callInfo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		info := &callInfo{}
		defer func() {
			o.record(APICall{Time: o.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
				Operation: op.id, User: info.user, Status: rec.status, Code: rec.code})
		}()
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if e := o.limit(rec, op); e != nil {
			writeError(rec, e)
			return
		}
		if op.sam != "" {
			u, e := o.authenticate(r)
			if e == nil {
				info.user = u.Name
				if !allowed(u.Permissions, op.sam) {
					e = fail(http.StatusForbidden, CodeForbidden, "You are not allowed to call this API: %s", op.sam)
				}
			}
			if e != nil {
				writeError(rec, e)
				return
			}
		}
		if e := o.injected(rec, op); e != nil {
			writeError(rec, e)
			return
		}
		h(rec, r, info)
	}
}

// limit counts the call against the operator's limit for this API, per
// minute of real time (SORACOM's window is a wall-clock minute, not the
// sandbox's moved clock), and sets the rate-limit headers. SORACOM limits
// /auth per caller IP instead; here every caller of an operator's port is
// one, so /auth simply has its own window like any other API.
func (o *Operator) limit(w http.ResponseWriter, op operation) *apiError {
	limit := o.ratePerMinute()
	now := time.Now()
	o.mu.Lock()
	win := o.windows[op.id]
	if win == nil || now.Sub(win.start) >= time.Minute {
		win = &window{start: now}
		o.windows[op.id] = win
	}
	win.count++
	remaining := limit - win.count
	refresh := int(math.Ceil(win.start.Add(time.Minute).Sub(now).Seconds()))
	o.mu.Unlock()
	setRateHeaders(w, limit, max(remaining, 0), max(refresh, 1))
	if remaining < 0 {
		return fail(http.StatusTooManyRequests, CodeRateLimited, "Rate limit exceeded for %s: %d calls a minute. Retry after %d seconds.", apiName(op), limit, max(refresh, 1))
	}
	return nil
}

func setRateHeaders(w http.ResponseWriter, limit, remaining, refresh int) {
	w.Header().Set("X-Soracom-Ratelimit-Limit", strconv.Itoa(limit))
	w.Header().Set("X-Soracom-Ratelimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-Soracom-Ratelimit-Seconds-Before-Refresh", strconv.Itoa(refresh))
}

func apiName(op operation) string {
	if op.sam != "" {
		return op.sam
	}
	if op.id != "" {
		return op.id
	}
	return "this path"
}

// injected answers the first queued failure that matches op, once its
// After calls have gone through.
func (o *Operator) injected(w http.ResponseWriter, op operation) *apiError {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.failures {
		f := &o.failures[i]
		if f.Operation != "" && f.Operation != op.id {
			continue
		}
		if f.After > 0 {
			f.After--
			return nil
		}
		f.Times--
		status := f.Status
		if f.Times <= 0 {
			o.failures = slices.Delete(o.failures, i, i+1)
		}
		if status == http.StatusTooManyRequests {
			// Short, so a client that honours the header retries within a second.
			w.Header().Set("X-Soracom-Ratelimit-Remaining", "0")
			w.Header().Set("X-Soracom-Ratelimit-Seconds-Before-Refresh", "1")
		}
		return injectedError(status, op)
	}
	return nil
}

// injectedError is what a real failure of that status would say.
func injectedError(status int, op operation) *apiError {
	switch status {
	case http.StatusUnauthorized:
		return fail(status, CodeBadToken, "Invalid API key or token, or the token has expired. (injected)")
	case http.StatusForbidden:
		return fail(status, CodeForbidden, "You are not allowed to call this API: %s (injected)", apiName(op))
	case http.StatusNotFound:
		return fail(status, CodeNoSuchAPI, "Not found. (injected)")
	case http.StatusTooManyRequests:
		return fail(status, CodeRateLimited, "Rate limit exceeded for %s. Retry after 1 seconds. (injected)", apiName(op))
	}
	return fail(status, fmt.Sprintf("COM%04d", status), "%s (injected)", http.StatusText(status))
}

// authenticate finds the SAM user an API key and token were issued to.
func (o *Operator) authenticate(r *http.Request) (SAMUser, *apiError) {
	key, tok := r.Header.Get("X-Soracom-API-Key"), r.Header.Get("X-Soracom-Token")
	if key == "" || tok == "" {
		return SAMUser{}, fail(http.StatusUnauthorized, CodeNoToken, "The X-Soracom-API-Key and X-Soracom-Token headers are required.")
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.sessions[key]
	if ok && !now.Before(s.expires) {
		delete(o.sessions, key)
		ok = false
	}
	if !ok || subtle.ConstantTimeCompare([]byte(s.token), []byte(tok)) != 1 {
		return SAMUser{}, fail(http.StatusUnauthorized, CodeBadToken, "Invalid API key or token, or the token has expired.")
	}
	u := o.users[s.keyID]
	return SAMUser{Name: u.Name, AuthKeyID: u.AuthKeyID, Permissions: cloneStrings(u.Permissions)}, nil
}

// allowed says whether SAM permissions let a user call api ("Service:operation").
func allowed(perms []string, api string) bool {
	if perms == nil {
		return true
	}
	for _, p := range perms {
		if p == api || p == "*" || (strings.HasSuffix(p, "*") && strings.HasPrefix(api, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, fail(http.StatusInternalServerError, "COM0500", "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if c, ok := w.(interface{ setCode(string) }); ok { // the call record keeps the code
		c.setCode(e.code)
	}
	b, _ := json.Marshal(map[string]string{"code": e.code, "message": e.message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// decode reads a JSON body; SORACOM ignores fields it does not know.
func decode(r *http.Request, v any) *apiError {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "Invalid request body: %v", err)
	}
	return nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ---- /auth -------------------------------------------------------------------

// authResponse is AuthResponse.
type authResponse struct {
	APIKey     string `json:"apiKey"`
	OperatorID string `json:"operatorId"`
	Token      string `json:"token"`
	UserName   string `json:"userName,omitempty"`
}

func (o *Operator) auth(w http.ResponseWriter, r *http.Request, info *callInfo) {
	var req struct {
		AuthKeyID           string `json:"authKeyId"`
		AuthKey             string `json:"authKey"`
		TokenTimeoutSeconds *int64 `json:"tokenTimeoutSeconds"`
	}
	if e := decode(r, &req); e != nil {
		writeError(w, e)
		return
	}
	timeout := int64(defaultTokenTimeout)
	if req.TokenTimeoutSeconds != nil {
		timeout = *req.TokenTimeoutSeconds
	}
	if timeout < 1 || timeout > maxTokenTimeout {
		writeError(w, fail(http.StatusBadRequest, CodeBadTokenTimeout, "tokenTimeoutSeconds must be between 1 and %d.", maxTokenTimeout))
		return
	}
	o.mu.Lock()
	u, ok := o.users[req.AuthKeyID]
	o.mu.Unlock()
	// Email/password and SAM-user/password sign-ins are not offered: a
	// rotation signs in with an AuthKey. They fail as a wrong AuthKey does.
	if !ok || req.AuthKey == "" || subtle.ConstantTimeCompare([]byte(u.AuthKey), []byte(req.AuthKey)) != 1 {
		writeError(w, fail(http.StatusUnauthorized, CodeBadAuthKey, "Invalid AuthKey ID or AuthKey."))
		return
	}
	info.user = u.Name
	apiKey, token := "api-"+sandbox.NewUUID(), newToken()
	now := o.now()
	o.mu.Lock()
	for k, s := range o.sessions { // forget expired sessions, so a long run does not grow
		if !now.Before(s.expires) {
			delete(o.sessions, k)
		}
	}
	o.sessions[apiKey] = &session{token: token, keyID: u.AuthKeyID, expires: now.Add(time.Duration(timeout) * time.Second)}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, authResponse{APIKey: apiKey, OperatorID: o.id, Token: token, UserName: u.Name})
}

func newToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- /credentials ------------------------------------------------------------

// credentialsModel is CredentialsModel.
type credentialsModel struct {
	CredentialsID    string         `json:"credentialsId"`
	Type             string         `json:"type"`
	Description      string         `json:"description"`
	Credentials      map[string]any `json:"credentials"`
	CreateDateTime   int64          `json:"createDateTime"`
	UpdateDateTime   int64          `json:"updateDateTime"`
	LastUsedDateTime int64          `json:"lastUsedDateTime"`
}

func (c *credential) model(id string) credentialsModel {
	return credentialsModel{CredentialsID: id, Type: c.in.Type, Description: c.in.Description,
		Credentials: publicCredentials(c.in.Type, c.in.Credentials), CreateDateTime: millis(c.created),
		UpdateDateTime: millis(c.updated), LastUsedDateTime: millis(c.lastUsed)}
}

// publicCredentials is what a read shows of a credential set: only what
// identifies it. Inferred: the spec does not document whether SORACOM
// returns secrets (api-facts §2.2); the sandbox never does, so no client
// can come to depend on reading a secret back.
func publicCredentials(typ string, c map[string]any) map[string]any {
	out := map[string]any{}
	var keep string
	switch typ {
	case "aws-credentials":
		keep = "accessKeyId"
	case "aws-iam-role-credentials":
		keep = "roleArn"
	}
	if v, ok := c[keep]; ok && keep != "" {
		out[keep] = v
	}
	return out
}

func validateCredential(in CredentialInput) *apiError {
	if !slices.Contains(credentialTypes, in.Type) {
		return fail(http.StatusBadRequest, CodeBadCredential, "Invalid credentials type %q.", in.Type)
	}
	if in.Credentials == nil {
		return fail(http.StatusBadRequest, CodeBadCredential, "credentials is required.")
	}
	var required []string
	switch in.Type {
	case "aws-credentials":
		required = []string{"accessKeyId", "secretAccessKey"}
	case "aws-iam-role-credentials":
		required = []string{"roleArn"}
	}
	for _, f := range required {
		if s, ok := in.Credentials[f].(string); !ok || s == "" {
			return fail(http.StatusBadRequest, CodeBadCredential, "credentials.%s is required for %s.", f, in.Type)
		}
	}
	return nil
}

func (o *Operator) listCredentials(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	o.mu.Lock()
	ids := make([]string, 0, len(o.creds))
	for id := range o.creds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]credentialsModel, 0, len(ids))
	for _, id := range ids {
		out = append(out, o.creds[id].model(id))
	}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// readCredential decodes and checks a CreateAndUpdateCredentialsModel body.
func readCredential(r *http.Request) (CredentialInput, *apiError) {
	var in CredentialInput
	if e := decode(r, &in); e != nil {
		return in, e
	}
	if e := validateCredential(in); e != nil {
		return in, e
	}
	return in, nil
}

func (o *Operator) createCredential(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	id := r.PathValue("credentials_id")
	in, e := readCredential(r)
	if e != nil {
		writeError(w, e)
		return
	}
	now := o.now()
	o.mu.Lock()
	if _, ok := o.creds[id]; ok {
		o.mu.Unlock()
		writeError(w, fail(http.StatusBadRequest, CodeCredentialTaken, "Credentials %s already exist.", id))
		return
	}
	c := &credential{in: in, created: now, updated: now}
	o.creds[id] = c
	m := c.model(id)
	o.mu.Unlock()
	writeJSON(w, http.StatusCreated, m)
}

func (o *Operator) updateCredential(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	id := r.PathValue("credentials_id")
	in, e := readCredential(r)
	if e != nil {
		writeError(w, e)
		return
	}
	now := o.now()
	o.mu.Lock()
	c, ok := o.creds[id]
	if !ok {
		o.mu.Unlock()
		writeError(w, fail(http.StatusNotFound, CodeNoCredential, "Credentials %s do not exist.", id))
		return
	}
	// Replaced in place: every group that points at id uses the new key from
	// its next push, as SORACOM's do.
	c.in, c.updated = in, now
	m := c.model(id)
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, m)
}

func (o *Operator) deleteCredential(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	id := r.PathValue("credentials_id")
	o.mu.Lock()
	_, ok := o.creds[id]
	delete(o.creds, id)
	o.mu.Unlock()
	if !ok {
		writeError(w, fail(http.StatusNotFound, CodeNoCredential, "Credentials %s do not exist.", id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- /groups -----------------------------------------------------------------

// groupModel is Group.
type groupModel struct {
	GroupID          string                    `json:"groupId"`
	OperatorID       string                    `json:"operatorId"`
	Configuration    map[string]map[string]any `json:"configuration"`
	Tags             map[string]string         `json:"tags"`
	CreatedTime      int64                     `json:"createdTime"`
	LastModifiedTime int64                     `json:"lastModifiedTime"`
}

// model is the group as the API writes it; the caller holds o.mu.
func (o *Operator) model(g *group) groupModel {
	cfg, _ := cloneConfiguration(g.config) // it was JSON when stored
	return groupModel{GroupID: g.id, OperatorID: o.id, Configuration: cfg, Tags: cloneTags(g.tags),
		CreatedTime: millis(g.created), LastModifiedTime: millis(g.modified)}
}

func (o *Operator) listGroups(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	q := r.URL.Query()
	size := defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeError(w, fail(http.StatusBadRequest, CodeBadRequest, "limit must be an integer."))
			return
		}
		if n > 0 {
			size = min(n, maxPageSize)
		}
	}
	tagName, tagValue, mode := q.Get("tag_name"), q.Get("tag_value"), q.Get("tag_value_match_mode")
	if mode == "" {
		mode = "exact"
	}
	if mode != "exact" && mode != "prefix" {
		writeError(w, fail(http.StatusBadRequest, CodeBadRequest, "tag_value_match_mode must be exact or prefix."))
		return
	}
	if tagName != "" && !q.Has("tag_value") {
		writeError(w, fail(http.StatusBadRequest, CodeBadRequest, "tag_value is required when tag_name is specified."))
		return
	}
	after := q.Get("last_evaluated_key")

	o.mu.Lock()
	var matched []*group
	for _, g := range o.sortedGroups() {
		if after != "" && g.id <= after {
			continue
		}
		if tagName != "" {
			v, ok := g.tags[tagName]
			if !ok || (mode == "exact" && v != tagValue) || (mode == "prefix" && !strings.HasPrefix(v, tagValue)) {
				continue
			}
		}
		matched = append(matched, g)
	}
	page := matched[:min(size, len(matched))]
	out := make([]groupModel, 0, len(page))
	for _, g := range page {
		out = append(out, o.model(g))
	}
	o.mu.Unlock()
	if len(matched) > len(page) {
		// SORACOM's paging header: the last id of this page, given back as
		// last_evaluated_key; absent on the last page.
		w.Header().Set("X-Soracom-Next-Key", page[len(page)-1].id)
	}
	writeJSON(w, http.StatusOK, out)
}

func (o *Operator) getGroup(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	o.mu.Lock()
	g, ok := o.groups[r.PathValue("group_id")]
	var m groupModel
	if ok {
		m = o.model(g)
	}
	o.mu.Unlock()
	if !ok {
		writeError(w, fail(http.StatusNotFound, CodeNoGroup, "The specified group does not exist."))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (o *Operator) createGroup(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	var req struct {
		Configuration map[string]map[string]any `json:"configuration"`
		Tags          map[string]string         `json:"tags"`
	}
	if e := decode(r, &req); e != nil {
		writeError(w, e)
		return
	}
	for ns := range req.Configuration {
		if !slices.Contains(Namespaces, ns) {
			writeError(w, fail(http.StatusBadRequest, CodeBadNamespace, "Invalid namespace: %s.", ns))
			return
		}
	}
	id, err := o.AddGroup(GroupConfig{Name: req.Tags["name"], Tags: req.Tags, Configuration: req.Configuration})
	if err != nil {
		writeError(w, fail(http.StatusBadRequest, CodeBadGroupBody, "Invalid group."))
		return
	}
	o.mu.Lock()
	m := o.model(o.groups[id])
	o.mu.Unlock()
	writeJSON(w, http.StatusCreated, m)
}

func (o *Operator) putConfiguration(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	ns := r.PathValue("namespace")
	if !slices.Contains(Namespaces, ns) {
		writeError(w, fail(http.StatusBadRequest, CodeBadNamespace, "Invalid namespace: %s.", ns))
		return
	}
	var params []map[string]json.RawMessage
	if e := decode(r, &params); e != nil {
		writeError(w, e)
		return
	}
	type kv struct {
		key   string
		value any
	}
	updates := make([]kv, 0, len(params))
	for i, p := range params {
		var key string
		if err := json.Unmarshal(p["key"], &key); err != nil || key == "" {
			writeError(w, fail(http.StatusBadRequest, CodeBadGroupBody, "[%d].key is required and must be a string.", i))
			return
		}
		raw, ok := p["value"]
		if !ok {
			writeError(w, fail(http.StatusBadRequest, CodeBadGroupBody, "[%d].value is required.", i))
			return
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			writeError(w, fail(http.StatusBadRequest, CodeBadGroupBody, "[%d].value: %v", i, err))
			return
		}
		updates = append(updates, kv{key, v})
	}
	now := o.now()
	o.mu.Lock()
	g, ok := o.groups[r.PathValue("group_id")]
	if !ok {
		o.mu.Unlock()
		writeError(w, fail(http.StatusNotFound, CodeNoGroup, "The specified group does not exist."))
		return
	}
	if g.config[ns] == nil {
		g.config[ns] = map[string]any{}
	}
	for _, u := range updates { // a key sent overwrites or is appended; the others stay
		g.config[ns][u.key] = u.value
	}
	g.modified = now
	m := o.model(g)
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, m)
}

func (o *Operator) deleteNamespace(w http.ResponseWriter, r *http.Request, _ *callInfo) {
	ns := r.PathValue("namespace")
	if !slices.Contains(Namespaces, ns) {
		writeError(w, fail(http.StatusBadRequest, CodeBadNamespace, "Invalid namespace: %s.", ns))
		return
	}
	now := o.now()
	o.mu.Lock()
	var e *apiError
	switch g, ok := o.groups[r.PathValue("group_id")]; {
	case !ok:
		e = fail(http.StatusNotFound, CodeNoGroup, "The specified group does not exist.")
	case g.config[ns] == nil:
		e = fail(http.StatusBadRequest, CodeBadNamespace, "The specified namespace does not exist.")
	default:
		delete(g.config, ns)
		g.modified = now
	}
	o.mu.Unlock()
	if e != nil {
		writeError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
