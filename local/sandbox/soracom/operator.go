package soracom

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Namespaces are the group configuration namespaces the spec enumerates for
// putConfigurationParameters and deleteConfigurationNamespace.
var Namespaces = []string{
	"SoracomAir", "SoracomBeam", "SoracomEndorse", "SoracomFlux", "SoracomFunk", "SoracomFunnel",
	"SoracomHarvest", "SoracomHarvestFiles", "SoracomKrypton", "SoracomOrbit", "UnifiedEndpoint",
}

// credentialTypes is CredentialsModel's type enum: what the store accepts.
// (CreateAndUpdateCredentialsModel lists only four of them, yet the spec's
// own request examples use the others; SORACOM accepts them.)
var credentialTypes = []string{
	"api-token-credentials", "aws-credentials", "aws-iam-role-credentials", "azure-credentials",
	"azureIoT-credentials", "esrij-credentials", "google-service-account-json", "googleIoT-credentials",
	"infoteria-platio-credentials", "kii-thingif-credentials", "landlog-credentials", "mmcloud-credentials",
	"motionboard-credentials", "optim-cloud-IoT-OS-credentials", "private-key-pem", "psk",
	"pubnub-credentials", "sensorcorpus-credentials", "username-password-credentials", "x509",
}

// maxCalls bounds the call record of a long-running sandbox.
const maxCalls = 10000

// Operator is one SORACOM operator (account) with its own API endpoint.
type Operator struct {
	svc      *Service
	id       string
	coverage string
	rate     int // per API and minute; 0: the service's
	endpoint string
	hs       *http.Server
	stop     func()
	done     chan struct{}

	mu       sync.Mutex
	users    map[string]*SAMUser // by AuthKey id
	sessions map[string]*session // by API key
	creds    map[string]*credential
	groups   map[string]*group
	failures []Failure
	windows  map[string]*window // rate limit, by operationId
	calls    *sandbox.Ring[APICall]
}

type session struct {
	token   string
	keyID   string // the AuthKey it was issued for
	expires time.Time
}

type credential struct {
	in                         CredentialInput
	created, updated, lastUsed time.Time
}

type group struct {
	id                string
	tags              map[string]string
	config            map[string]map[string]any
	created, modified time.Time
	push              PushStats
}

type window struct {
	start time.Time
	count int
}

// PushStats is what a group's pushes came to.
type PushStats struct {
	Sent             int    `json:"sent"`
	Failed           int    `json:"failed"`
	LastKeyID        string `json:"lastKeyId,omitempty"`
	LastCredentialID string `json:"lastCredentialId,omitempty"`
	LastError        string `json:"lastError,omitempty"`
	// LastService is the AWS service the last push called ("iotdata", "lambda").
	LastService string `json:"lastService,omitempty"`
	// LastNote explains a push that succeeded oddly (a Funk function that does not exist).
	LastNote string    `json:"lastNote,omitempty"`
	LastAt   time.Time `json:"lastAt,omitzero"` // sandbox clock
}

// GroupView is a group as tests and the admin API see it.
type GroupView struct {
	ID            string                    `json:"id"`
	Name          string                    `json:"name"`
	Tags          map[string]string         `json:"tags"`
	Configuration map[string]map[string]any `json:"configuration"`
	Push          PushStats                 `json:"push"`
}

// CredentialView is a credential set without its secret.
type CredentialView struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Description string    `json:"description,omitempty"`
	AccessKeyID string    `json:"accessKeyId,omitempty"` // aws-credentials only
	LastUsed    time.Time `json:"lastUsed,omitzero"`     // zero: never used
	CreateTime  time.Time `json:"createTime"`
	UpdateTime  time.Time `json:"updateTime"`
}

// APICall is one call to the operator's API, as tests see it: never a body,
// a header or a secret.
type APICall struct {
	Time      time.Time `json:"time"` // sandbox clock
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Query     string    `json:"query,omitempty"`
	Operation string    `json:"operation"`      // operationId; "" for a path the API does not have
	User      string    `json:"user,omitempty"` // the SAM user, once known
	Status    int       `json:"status"`
	Code      string    `json:"code,omitempty"` // the error code of a failed call
}

func newOperator(s *Service, cfg OperatorConfig) *Operator {
	o := &Operator{svc: s, id: cfg.ID, coverage: cfg.Coverage, rate: cfg.RatePerMinute, done: make(chan struct{}),
		users: map[string]*SAMUser{}, sessions: map[string]*session{}, creds: map[string]*credential{},
		groups: map[string]*group{}, windows: map[string]*window{}, calls: sandbox.NewRing[APICall](maxCalls)}
	for _, u := range cfg.SAMUsers {
		u.Permissions = cloneStrings(u.Permissions)
		o.users[u.AuthKeyID] = &u
	}
	return o
}

// Endpoint is the base URL a client uses: "http://127.0.0.1:PORT/v1".
func (o *Operator) Endpoint() string { return o.endpoint }

// ID is the operator id.
func (o *Operator) ID() string { return o.id }

// Coverage is "jp" or "g".
func (o *Operator) Coverage() string { return o.coverage }

func (o *Operator) now() time.Time { return o.svc.srv.Clock().Now() }

// PutCredential creates or replaces credential set id directly (seeding),
// with the checks the API makes.
func (o *Operator) PutCredential(id string, c CredentialInput) error {
	if id == "" {
		return fmt.Errorf("soracom operator %s: credential id is required", o.id)
	}
	if e := validateCredential(c); e != nil {
		return fmt.Errorf("soracom operator %s: credential %s: %s", o.id, id, e.message)
	}
	c, err := cloneCredential(c)
	if err != nil {
		return fmt.Errorf("soracom operator %s: credential %s: %w", o.id, id, err)
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.creds[id]; ok {
		old.in, old.updated = c, now
		return nil
	}
	o.creds[id] = &credential{in: c, created: now, updated: now}
	return nil
}

// AddGroup makes a group and returns its id; Name becomes the "name" tag.
func (o *Operator) AddGroup(g GroupConfig) (string, error) {
	cfg, err := cloneConfiguration(g.Configuration)
	if err != nil {
		return "", fmt.Errorf("soracom operator %s: group %s: %w", o.id, g.Name, err)
	}
	for ns := range cfg {
		if !slices.Contains(Namespaces, ns) {
			return "", fmt.Errorf("soracom operator %s: group %s: namespace %q is not one of %v", o.id, g.Name, ns, Namespaces)
		}
	}
	tags := map[string]string{}
	for k, v := range g.Tags {
		tags[k] = v
	}
	tags["name"] = g.Name // the spec: tags always hold "name", "" when unnamed
	id := g.ID
	if id == "" {
		id = sandbox.NewUUID() // SORACOM's group ids are UUIDs
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.groups[id]; ok {
		return "", fmt.Errorf("soracom operator %s: group %s exists", o.id, id)
	}
	o.groups[id] = &group{id: id, tags: tags, config: cfg, created: now, modified: now}
	return id, nil
}

// Groups returns every group, sorted by id, with its configuration and push stats.
func (o *Operator) Groups() []GroupView {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]GroupView, 0, len(o.groups))
	for _, g := range o.sortedGroups() {
		cfg, _ := cloneConfiguration(g.config) // it was JSON when stored
		out = append(out, GroupView{ID: g.id, Name: g.tags["name"], Tags: cloneTags(g.tags), Configuration: cfg, Push: g.push})
	}
	return out
}

// Group returns one group.
func (o *Operator) Group(id string) (GroupView, bool) {
	for _, g := range o.Groups() {
		if g.ID == id {
			return g, true
		}
	}
	return GroupView{}, false
}

// Credentials returns every credential set, sorted by id, without secrets.
func (o *Operator) Credentials() []CredentialView {
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := make([]string, 0, len(o.creds))
	for id := range o.creds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]CredentialView, 0, len(ids))
	for _, id := range ids {
		c := o.creds[id]
		v := CredentialView{ID: id, Type: c.in.Type, Description: c.in.Description, LastUsed: c.lastUsed, CreateTime: c.created, UpdateTime: c.updated}
		if c.in.Type == "aws-credentials" {
			v.AccessKeyID, _ = c.in.Credentials["accessKeyId"].(string)
		}
		out = append(out, v)
	}
	return out
}

// Fail queues an injected failure; failures are tried in the order queued.
// A Status that is not an HTTP error (400–599) becomes 500.
func (o *Operator) Fail(f Failure) {
	if f.Status < 400 || f.Status > 599 {
		f.Status = http.StatusInternalServerError
	}
	if f.Times <= 0 {
		f.Times = 1
	}
	f.After = max(f.After, 0)
	o.mu.Lock()
	o.failures = append(o.failures, f)
	o.mu.Unlock()
}

// ClearFailures drops the failures still queued (the operator recovers).
func (o *Operator) ClearFailures() {
	o.mu.Lock()
	o.failures = nil
	o.mu.Unlock()
}

// Failures returns the failures still queued, with what is left of them.
func (o *Operator) Failures() []Failure {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Failure(nil), o.failures...)
}

// SetPermissions replaces a SAM user's permissions (nil: all allowed); it
// takes effect on the next call, as a SAM policy change does.
func (o *Operator) SetPermissions(userName string, perms []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, u := range o.users {
		if u.Name == userName {
			u.Permissions = cloneStrings(perms)
			return nil
		}
	}
	return fmt.Errorf("soracom operator %s: no SAM user %s", o.id, userName)
}

// Calls returns every API call so far (the last 10,000), oldest first.
func (o *Operator) Calls() []APICall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls.All()
}

func (o *Operator) record(c APICall) {
	o.mu.Lock()
	o.calls.Add(c)
	o.mu.Unlock()
}

// sortedGroups is every group by id; the caller holds o.mu.
func (o *Operator) sortedGroups() []*group {
	gs := make([]*group, 0, len(o.groups))
	for _, g := range o.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// OperatorView is an operator as the admin API shows it: no secret.
type OperatorView struct {
	ID            string           `json:"id"`
	Coverage      string           `json:"coverage"`
	Endpoint      string           `json:"endpoint"`
	RatePerMinute int              `json:"ratePerMinute"`
	SAMUsers      []SAMUserView    `json:"samUsers"`
	Credentials   []CredentialView `json:"credentials"`
	Groups        []GroupView      `json:"groups"`
	Failures      []Failure        `json:"failures,omitempty"`
}

// SAMUserView is a SAM user without its AuthKey.
type SAMUserView struct {
	Name        string   `json:"name"`
	AuthKeyID   string   `json:"authKeyId"`
	Permissions []string `json:"permissions"` // null: every operation
}

// View reports the operator.
func (o *Operator) View() OperatorView {
	v := OperatorView{ID: o.id, Coverage: o.coverage, Endpoint: o.endpoint, RatePerMinute: o.ratePerMinute(),
		Credentials: o.Credentials(), Groups: o.Groups(), Failures: o.Failures()}
	o.mu.Lock()
	for _, u := range o.users {
		v.SAMUsers = append(v.SAMUsers, SAMUserView{Name: u.Name, AuthKeyID: u.AuthKeyID, Permissions: cloneStrings(u.Permissions)})
	}
	o.mu.Unlock()
	sort.Slice(v.SAMUsers, func(i, j int) bool { return v.SAMUsers[i].Name < v.SAMUsers[j].Name })
	return v
}

func (o *Operator) ratePerMinute() int {
	if o.rate > 0 {
		return o.rate
	}
	return o.svc.ratePerMinute()
}

// ---- copies: what is stored is JSON, so callers never share a map with it --

func cloneJSON[T any](v T) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("not JSON: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("not JSON: %w", err)
	}
	return out, nil
}

func cloneConfiguration(c map[string]map[string]any) (map[string]map[string]any, error) {
	out, err := cloneJSON(c)
	if out == nil {
		out = map[string]map[string]any{}
	}
	for ns, kv := range out {
		if kv == nil {
			out[ns] = map[string]any{}
		}
	}
	return out, err
}

func cloneCredential(c CredentialInput) (CredentialInput, error) {
	m, err := cloneJSON(c.Credentials)
	c.Credentials = m
	return c, err
}

func cloneTags(t map[string]string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}
