// Package iam is the sandbox's IAM: users, their access keys (two at most),
// key last-used data, user tags, and the role credentials the sandbox hands
// to Lambda functions. It is also the key store that SigV4 checks against.
package iam

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// MaxKeysPerUser is IAM's fixed quota of access keys per user, inactive keys included.
const MaxKeysPerUser = 2

// DefaultLag is how long after a use GetAccessKeyLastUsed shows it, on the
// sandbox clock: AWS documents that IAM's last-accessed data may lag by up to
// about four hours, so the sandbox shows every use exactly that late.
const DefaultLag = 4 * time.Hour

// reportStep is the width of the fixed buckets of the clock (whole minutes)
// in which uses waiting to be reported are coalesced (the latest in a bucket
// stands for all of it), so a key used every second keeps at most
// Lag/reportStep+1 pending uses and a use shows at most reportStep later
// than lag after it.
const reportStep = time.Minute

// Service is the IAM service.
type Service struct {
	srv     *sandbox.Server
	account string                    // the account whose IAM this is
	fam     *sandbox.Family[*Service] // every account's IAM on the server (accounts.go)
	lag     time.Duration             // how late GetAccessKeyLastUsed shows a use
	mu      sync.RWMutex
	st      state
	issued  []string // every user key's secret, deleted ones too (for leak checks)
}

type state struct {
	Users    map[string]*User          `json:"users"`
	Keys     map[string]*Key           `json:"keys"`               // by access key id, live keys only
	Sessions map[string]*Session       `json:"sessions"`           // temporary credentials (ASIA…)
	Admin    string                    `json:"admin"`              // the seeded admin user's name
	Roles    map[string]*Role          `json:"roles,omitempty"`    // by name
	Policies map[string]*ManagedPolicy `json:"policies,omitempty"` // customer managed, by ARN
	Report   *CredentialReport         `json:"credentialReport,omitempty"`
}

// User is an IAM user.
type User struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Path     string            `json:"path"`
	Created  time.Time         `json:"created"`
	Tags     map[string]string `json:"tags,omitempty"`
	TagKeys  []string          `json:"tagKeys,omitempty"`  // tag order as set
	Inline   map[string]string `json:"inline,omitempty"`   // policy name → document
	Attached []string          `json:"attached,omitempty"` // managed policy ARNs, in attach order
}

// Key is an access key and what IAM knows of its last use: LastUsed is the
// truth (the admin view), Reported and Pending what GetAccessKeyLastUsed
// shows and will show once the lag has passed.
type Key struct {
	ID          string     `json:"id"`
	Secret      string     `json:"secret"`
	User        string     `json:"user"`
	Status      string     `json:"status"`
	Created     time.Time  `json:"created"`
	LastUsed    *time.Time `json:"lastUsed,omitempty"`
	LastService string     `json:"lastService,omitempty"`
	LastRegion  string     `json:"lastRegion,omitempty"`
	Reported    *Use       `json:"reported,omitempty"`
	Pending     []Use      `json:"pending,omitempty"` // oldest first, one per reportStep bucket
}

// Use is one use of a key as IAM reports it.
type Use struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	Region  string    `json:"region"`
}

// reported is the last use IAM shows at now: the latest one at least lag old.
func (k *Key) reported(now time.Time, lag time.Duration) *Use {
	r := k.Reported
	for i := range k.Pending {
		if k.Pending[i].At.After(now.Add(-lag)) {
			break
		}
		r = &k.Pending[i]
	}
	return r
}

// Session is a set of temporary credentials for an assumed role.
type Session struct {
	AccessKeyID string `json:"accessKeyId"`
	Secret      string `json:"secret"`
	Token       string `json:"token"`
	Role        string `json:"role"`
	RoleID      string `json:"roleId"`
	SessionName string `json:"sessionName"`
	// Expires ends an AssumeRole session (sandbox clock); nil: a
	// function's execution-role session, valid while the sandbox runs.
	Expires *time.Time `json:"expires,omitempty"`
	// Policy and PolicyARNs are the session policies AssumeRole was
	// passed: the session may do only what they and the role both allow.
	Policy     string   `json:"policy,omitempty"`
	PolicyARNs []string `json:"policyArns,omitempty"`
}

// New returns an empty IAM bound to srv (its clock and account) that shows a
// use of a key lag after it happened (0: at once).
func New(srv *sandbox.Server, lag time.Duration) *Service {
	s := &Service{srv: srv, lag: lag, account: srv.Account(), st: newState()}
	s.fam = sandbox.NewFamily(s.account, s)
	return s
}

func newState() state {
	return state{Users: map[string]*User{}, Keys: map[string]*Key{}, Sessions: map[string]*Session{}, Roles: map[string]*Role{}, Policies: map[string]*ManagedPolicy{}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "iam", Protocol: sandbox.Query, XMLNamespace: "https://iam.amazonaws.com/doc/2010-05-08/",
		Global: true, EventSource: "iam.amazonaws.com",
	}
}

func (s *Service) userARN(u *User) string {
	return fmt.Sprintf("arn:aws:iam::%s:user%s%s", s.account, u.Path, u.Name)
}

func (s *Service) principal(u *User) sandbox.Principal {
	return sandbox.Principal{Account: s.account, ARN: s.userARN(u), UserID: u.ID, UserName: u.Name, Type: "IAMUser"}
}

// credential resolves a key of this account.
func (s *Service) credential(id string) (sandbox.Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.st.Keys[id]; ok {
		u := s.st.Users[k.User]
		return sandbox.Credential{AccessKeyID: k.ID, Secret: k.Secret, Active: k.Status == "Active", Principal: s.principal(u)}, true
	}
	if ss, ok := s.st.Sessions[id]; ok {
		var exp time.Time
		if ss.Expires != nil {
			exp = *ss.Expires
		}
		return sandbox.Credential{AccessKeyID: ss.AccessKeyID, Secret: ss.Secret, SessionToken: ss.Token, Active: true, Expires: exp,
			Principal: sandbox.Principal{
				Account: s.account, Type: "AssumedRole", UserName: ss.SessionName, UserID: ss.RoleID + ":" + ss.SessionName,
				ARN: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.account, ss.Role, ss.SessionName),
			}}, true
	}
	return sandbox.Credential{}, false
}

// markUsed is MarkUsed for a key of this account: false if it has no such key.
func (s *Service) markUsed(id, service, region string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.st.Keys[id]
	if !ok {
		return false
	}
	if k.LastUsed == nil || at.After(*k.LastUsed) {
		k.LastUsed, k.LastService, k.LastRegion = &at, service, region
	}
	// What the lag has passed for is reported now; the rest waits.
	if r := k.reported(at, s.lag); r != nil {
		u := *r
		k.Reported = &u
		k.Pending = slices.DeleteFunc(k.Pending, func(p Use) bool { return !p.At.After(u.At) })
	}
	k.Pending = addUse(k.Pending, k.Reported, Use{At: at, Service: service, Region: region})
	return true
}

// addUse puts u into pending (oldest first), coalesced with a use in the same
// fixed reportStep bucket of the clock (the later one stands for both). The
// buckets do not move with the uses, so a steady stream of uses cannot slide
// one pending entry forward for ever: each bucket's entry becomes due lag
// after its last use, at most reportStep after its first. A use no later
// than what is already reported changes nothing IAM shows.
func addUse(pending []Use, reported *Use, u Use) []Use {
	if reported != nil && !u.At.After(reported.At) {
		return pending
	}
	b := u.At.Truncate(reportStep)
	i, found := slices.BinarySearchFunc(pending, b, func(p Use, b time.Time) int { return p.At.Truncate(reportStep).Compare(b) })
	switch {
	case !found:
		return slices.Insert(pending, i, u)
	case u.At.After(pending[i].At):
		pending[i] = u
	}
	return pending
}

// AccessKey is a newly made key with its secret: returned only by the calls
// that create one, as in IAM.
type AccessKey struct {
	UserName        string          `xml:"UserName" json:"userName"`
	AccessKeyID     string          `xml:"AccessKeyId" json:"accessKeyId"`
	Status          string          `xml:"Status" json:"status"`
	SecretAccessKey string          `xml:"SecretAccessKey" json:"secretAccessKey"`
	CreateDate      sandbox.ISOTime `xml:"CreateDate" json:"-"`
}

// CreateUser makes a user; it is what the IAM action and the admin seeding share.
func (s *Service) CreateUser(name, path string, tags [][2]string) (*User, error) {
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || !strings.HasSuffix(path, "/") {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	if len(name) == 0 || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("+=,.@_-", r)
	}) {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for userName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-")
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for existing := range s.st.Users {
		if strings.EqualFold(existing, name) {
			return nil, sandbox.Errorf(409, "EntityAlreadyExists", "User with name %s already exists.", name)
		}
	}
	u := &User{Name: name, ID: sandbox.NewID("AIDA", 17), Path: path, Created: s.srv.Clock().Now()}
	for _, t := range tags {
		setTag(u, t[0], t[1])
	}
	s.st.Users[name] = u
	return u, nil
}

func setTag(u *User, k, v string) {
	if u.Tags == nil {
		u.Tags = map[string]string{}
	}
	if _, ok := u.Tags[k]; !ok {
		u.TagKeys = append(u.TagKeys, k)
	}
	u.Tags[k] = v
}

// CreateAccessKey makes a key for user, within the two-key quota.
func (s *Service) CreateAccessKey(user string) (AccessKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Users[user]; !ok {
		return AccessKey{}, noSuchUser(user)
	}
	if len(s.keysOf(user)) >= MaxKeysPerUser {
		return AccessKey{}, sandbox.Errorf(409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: %d", MaxKeysPerUser)
	}
	k := &Key{ID: sandbox.NewID("AKIA", 16), Secret: sandbox.NewSecret(), User: user, Status: "Active", Created: s.srv.Clock().Now()}
	s.st.Keys[k.ID] = k
	s.issued = append(s.issued, k.Secret)
	return AccessKey{UserName: user, AccessKeyID: k.ID, Status: k.Status, SecretAccessKey: k.Secret, CreateDate: sandbox.ISOTime(k.Created)}, nil
}

// keysOf lists a user's keys, oldest first. Callers hold s.mu.
func (s *Service) keysOf(user string) []*Key {
	var ks []*Key
	for _, k := range s.st.Keys {
		if k.User == user {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].Created.Equal(ks[j].Created) {
			return ks[i].Created.Before(ks[j].Created)
		}
		return ks[i].ID < ks[j].ID
	})
	return ks
}

func noSuchUser(name string) error {
	return sandbox.Errorf(404, "NoSuchEntity", "The user with name %s cannot be found.", name)
}

func noSuchKey(id string) error {
	return sandbox.Errorf(404, "NoSuchEntity", "The Access Key with id %s cannot be found.", id)
}

// IssueRoleCredentials returns temporary credentials for role (its name or
// its ARN), as STS would give a Lambda function its execution role's
// session. A role the sandbox does not hold still gets a session, with the
// id its name would have (functions registered without a deployed role).
func (s *Service) IssueRoleCredentials(role, sessionName string) sandbox.Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	role = nameOf(role)
	id := roleID(role)
	if r, ok := s.st.Roles[role]; ok {
		id = r.ID
	}
	ss := &Session{AccessKeyID: sandbox.NewID("ASIA", 16), Secret: sandbox.NewSecret(), Token: "IQoJb3JpZ2luX2VjE" + sandbox.NewSecret() + sandbox.NewSecret(),
		Role: role, RoleID: id, SessionName: sessionName}
	s.st.Sessions[ss.AccessKeyID] = ss
	c := sandbox.Credential{AccessKeyID: ss.AccessKeyID, Secret: ss.Secret, SessionToken: ss.Token, Active: true}
	return c
}

// roleID is stable per role name so that a role's sessions share it.
func roleID(role string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := []byte("AROA")
	h := uint64(14695981039346656037)
	for i := 0; i < 17; i++ {
		for _, c := range []byte(role) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		h = (h ^ uint64(i)) * 1099511628211
		b = append(b, alphabet[h%32])
	}
	return string(b)
}

// SeedAdmin makes (once) the admin user whose key the sandbox prints on
// start, and returns that key with its secret.
func (s *Service) SeedAdmin(name string) (sandbox.Credential, error) {
	s.mu.RLock()
	admin := s.st.Admin
	s.mu.RUnlock()
	if admin == "" {
		if _, err := s.CreateUser(name, "/", [][2]string{{"keyrotator:sandbox", "admin"}}); err != nil {
			return sandbox.Credential{}, err
		}
		if _, err := s.CreateAccessKey(name); err != nil {
			return sandbox.Credential{}, err
		}
		s.mu.Lock()
		s.st.Admin = name
		s.mu.Unlock()
		admin = name
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ks := s.keysOf(admin)
	if len(ks) == 0 {
		return sandbox.Credential{}, fmt.Errorf("admin user %s has no key", admin)
	}
	u := s.st.Users[admin]
	return sandbox.Credential{AccessKeyID: ks[0].ID, Secret: ks[0].Secret, Active: true, Principal: s.principal(u)}, nil
}

// Snapshot implements sandbox.Snapshotter: this account's state, and the
// other accounts' under "accounts".
func (s *Service) Snapshot() (json.RawMessage, error) {
	others, err := s.fam.SnapshotOthers((*Service).stateJSON)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := json.Marshal(s.st)
	if err != nil || len(others) == 0 {
		return b, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if top["accounts"], err = json.Marshal(others); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	if err := s.fam.RestoreOthers(s.srv, raw, s.member, (*Service).Restore); err != nil {
		return err
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.Users == nil {
		st.Users = map[string]*User{}
	}
	if st.Keys == nil {
		st.Keys = map[string]*Key{}
	}
	if st.Sessions == nil {
		st.Sessions = map[string]*Session{}
	}
	if st.Roles == nil {
		st.Roles = map[string]*Role{}
	}
	if st.Policies == nil {
		st.Policies = map[string]*ManagedPolicy{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// Backdate sets a key's creation date (key-age tests, the demo's 95-day-old
// key). It reports whether the key exists.
func (s *Service) Backdate(id string, created time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.st.Keys[id]
	if ok {
		k.Created = created.UTC()
	}
	return ok
}

// Secrets returns the secret of every key the sandbox has issued, live or
// not: what a leak check (I1) scans every output for. Tests only.
func (s *Service) Secrets() []string {
	var out []string
	for _, m := range s.fam.Members() {
		m.mu.RLock()
		out = append(out, m.issued...)
		m.mu.RUnlock()
	}
	return out
}

// KeyView is a key as the admin API shows it: never its secret.
type KeyView struct {
	AccessKeyID string     `json:"accessKeyId"`
	Status      string     `json:"status"`
	Created     time.Time  `json:"created"`
	LastUsed    *time.Time `json:"lastUsed,omitempty"`
	LastService string     `json:"lastService,omitempty"`
	LastRegion  string     `json:"lastRegion,omitempty"`
}

// Keys lists a user's keys without secrets (tests, the demo report).
func (s *Service) Keys(user string) ([]KeyView, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.st.Users[user]; !ok {
		return nil, false
	}
	var out []KeyView
	for _, k := range s.keysOf(user) {
		out = append(out, KeyView{AccessKeyID: k.ID, Status: k.Status, Created: k.Created, LastUsed: k.LastUsed, LastService: k.LastService, LastRegion: k.LastRegion})
	}
	return out, true
}

// Admin implements sandbox.Administered:
//
//	POST /users {"userName","path","keys":N,"tags":{}} makes a user with N keys and returns them with their secrets;
//	GET  /users/{name} shows a user's keys (no secrets) and tags;
//	PATCH /keys/{id} {"createDate"} backdates a key (key-age tests).
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserName string            `json:"userName"`
			Path     string            `json:"path"`
			Keys     int               `json:"keys"`
			Tags     map[string]string `json:"tags"`
		}
		if err := sandbox.ReadJSON(r, &req); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		var tags [][2]string
		for k, v := range req.Tags {
			tags = append(tags, [2]string{k, v})
		}
		slices.SortFunc(tags, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		if _, err := s.CreateUser(req.UserName, req.Path, tags); err != nil {
			sandbox.WriteJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		keys := []AccessKey{}
		for range req.Keys {
			k, err := s.CreateAccessKey(req.UserName)
			if err != nil {
				sandbox.WriteJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
				return
			}
			keys = append(keys, k)
		}
		s.srv.MarkDirty()
		sandbox.WriteJSON(w, http.StatusCreated, map[string]any{"userName": req.UserName, "keys": keys})
	})
	m.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		keys, ok := s.Keys(r.PathValue("name"))
		if !ok {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such user"})
			return
		}
		s.mu.RLock()
		tags := s.st.Users[r.PathValue("name")].Tags
		s.mu.RUnlock()
		sandbox.WriteJSON(w, http.StatusOK, map[string]any{"userName": r.PathValue("name"), "keys": keys, "tags": tags})
	})
	m.HandleFunc("PATCH /keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			CreateDate time.Time `json:"createDate"`
		}
		if err := sandbox.ReadJSON(r, &req); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if !s.Backdate(r.PathValue("id"), req.CreateDate) {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such key"})
			return
		}
		s.srv.MarkDirty()
		w.WriteHeader(http.StatusNoContent)
	})
	return m
}

var _ sandbox.Credentials = (*Service)(nil)
