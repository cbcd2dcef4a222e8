package soracom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Strategies of a soracom target.
const (
	NewCredential = "newCredential" // the source post's way: a new credential, groups repointed
	InPlace       = "inPlace"       // PUT /credentials/{id}: every user of the credential moves at once
)

// Namespaces whose configuration points at an AWS credential with credentialsId.
var Namespaces = []string{"SoracomFunnel", "SoracomFunk"}

// Permissions are the SAM operations keyrotator calls: the SAM user's
// permission must allow exactly these.
var Permissions = []string{
	"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential",
	"Group:listGroups", "Group:putConfigurationParameters",
}

const (
	awsCredentials = "aws-credentials"
	pageSize       = 100
)

// Connection is a target's connection secret: a SAM user's auth key.
type Connection struct {
	AuthKeyID string               `json:"authKeyId"`
	AuthKey   rotation.SecretValue `json:"authKey"`
	Coverage  string               `json:"coverage"`           // jp (default) or g
	Endpoint  string               `json:"endpoint,omitempty"` // instead of the coverage's: api-sandbox, or a local sandbox
}

// secrets reads connection secrets.
type secrets interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Target gives SORACOM the new key: the soracom kind's code (steps.Target),
// which also reports SORACOM's use of the credentials (steps.UsageReporter)
// and deletes the old one (steps.Cleaner).
type Target struct {
	Secrets secrets
	// MaxRateWait bounds how long SORACOM's rate limit is waited out in a
	// call before the step returns Retryable for Step Functions to retry later.
	MaxRateWait time.Duration
	// Now is the clock the new credential's date comes from (time.Now if nil).
	Now func() time.Time

	mu      sync.Mutex
	clients map[string]*Client // by connection secret and its content: a warm Lambda keeps its token
}

// session is one target's connection and client.
type session struct {
	tg       rotation.Target
	conn     Connection
	c        *Client
	operator string
}

func (t *Target) open(ctx context.Context, tg rotation.Target) (*session, error) {
	raw, err := t.Secrets.SecretString(ctx, tg.Connection)
	if err != nil {
		return nil, rotation.ConnectionUnreadable(tg, err)
	}
	var conn Connection
	if json.Unmarshal([]byte(raw), &conn) != nil || conn.AuthKeyID == "" || conn.AuthKey.Empty() {
		return nil, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(`connection secret %s must be JSON {"authKeyId","authKey","coverage"} (a SAM user's auth key; filled in after deploy)`, tg.Connection)}
	}
	if conn.Coverage == "" {
		conn.Coverage = "jp"
	}
	base, err := endpoint(conn)
	if err != nil {
		return nil, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("connection secret %s: %v", tg.Connection, err)}
	}
	sum := sha256.Sum256([]byte(raw))
	cacheKey := tg.Connection + "\x00" + hex.EncodeToString(sum[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients == nil {
		t.clients = map[string]*Client{}
	}
	c, ok := t.clients[cacheKey]
	if !ok {
		// 15 minutes: the longest a Lambda runs; SORACOM's default is a day.
		c = NewClient(base, conn.AuthKeyID, conn.AuthKey.Reveal(), 15*time.Minute, t.MaxRateWait)
		t.clients[cacheKey] = c
	}
	return &session{tg: tg, conn: conn, c: c}, nil
}

// endpoint is the API base for a connection: the coverage's, or an
// explicit https endpoint, or plain http on this machine only (the sandbox).
func endpoint(conn Connection) (string, error) {
	if conn.Endpoint == "" {
		base, ok := Endpoints[conn.Coverage]
		if !ok {
			return "", fmt.Errorf("coverage %q: want jp (Japan) or g (Global)", conn.Coverage)
		}
		return base, nil
	}
	u, err := url.Parse(conn.Endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a URL", conn.Endpoint)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) || u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("endpoint %s: only https, or plain http to a local sandbox", conn.Endpoint)
	}
	return conn.Endpoint, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// where names the account in receipts and alerts.
func (s *session) where() string {
	if s.operator != "" {
		return fmt.Sprintf("SORACOM operator %s (coverage %s)", s.operator, s.conn.Coverage)
	}
	return fmt.Sprintf("SORACOM (coverage %s, connection %s)", s.conn.Coverage, s.tg.Connection)
}

// fail words a SORACOM error for a person: what is wrong and what to do.
// Rate limits past the budget and 5xx are Retryable; the rest TargetFailed.
func (s *session) fail(err error, doing string) error {
	name := s.tg.Name
	var ae *APIError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return &rotation.Retryable{Reason: fmt.Sprintf("soracom target %s: %s: %v", name, doing, err)}
		}
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
			return &rotation.Retryable{Reason: fmt.Sprintf("soracom target %s: %s: %v", name, doing, err)}
		}
		return &rotation.TargetFailed{Target: name, Reason: fmt.Sprintf("%s: %v", doing, err)}
	}
	switch {
	case ae.Operation == "Auth:auth" && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusBadRequest || ae.Status == http.StatusForbidden):
		return &rotation.TargetFailed{Target: name, Reason: fmt.Sprintf("SORACOM refused the auth key %s in %s (%d %s): check authKeyId and authKey, that the SAM user has that auth key, and the coverage (%s)",
			s.conn.AuthKeyID, s.tg.Connection, ae.Status, ae.Code, s.conn.Coverage)}
	case ae.Status == http.StatusForbidden:
		return &rotation.TargetFailed{Target: name, Reason: fmt.Sprintf("the SAM user of %s may not call %s (%s, %s): its permission must allow %s",
			s.tg.Connection, ae.Operation, ae.Code, doing, strings.Join(Permissions, ", "))}
	case ae.Status == http.StatusTooManyRequests:
		return &rotation.Retryable{Reason: fmt.Sprintf("soracom target %s: %s: rate limited (429) past this attempt's budget", name, doing)}
	case ae.Status >= 500:
		return &rotation.Retryable{Reason: fmt.Sprintf("soracom target %s: %s: SORACOM answered %d %s", name, doing, ae.Status, ae.Code)}
	}
	return &rotation.TargetFailed{Target: name, Reason: fmt.Sprintf("%s: SORACOM answered %d %s: %s", doing, ae.Status, ae.Code, ae.Message)}
}

// Update gives the target the new key by its strategy and returns the
// receipt: the credential that holds the key, each group that uses it.
func (t *Target) Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	s, creds, groups, err := t.read(ctx, tg)
	if err != nil {
		return rotation.Receipt{}, err
	}
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetSoracom, Where: s.where(), PreviousKeyID: oldKeyID, NewKeyID: key.AccessKeyID}
	if oldKeyID == "" {
		return t.issue(ctx, s, r, creds, groups, key)
	}
	if tg.Strategy == InPlace {
		return t.inPlace(ctx, s, r, creds, groups, oldKeyID, key)
	}
	return t.newCredential(ctx, s, r, creds, groups, oldKeyID, key)
}

// Plan reads the credentials and groups and says what Update would do,
// changing nothing: which credential it would make or update, which groups
// it would repoint, which credential it would delete after the old key.
// resumeKeyID is the new key of a dead run this run resumes ("" if none):
// credentials and groups that run already moved to it are accepted, as Update does.
func (t *Target) Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error) {
	s, creds, groups, err := t.read(ctx, tg)
	if err != nil {
		return rotation.Receipt{}, err
	}
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetSoracom, Where: s.where(), PreviousKeyID: oldKeyID}
	if oldKeyID == "" {
		id, mine, err := t.issueCredential(s, creds, resumeKeyID)
		if err != nil {
			return rotation.Receipt{}, err
		}
		if mine {
			r.Planned = []string{fmt.Sprintf("in %s, credential %s already holds the resumed key %s (an earlier run made it): nothing to change", s.where(), id, resumeKeyID)}
			return r, nil
		}
		r.Planned = []string{fmt.Sprintf("in %s, create credential %s (aws-credentials) with the new key; no group is repointed: none uses a credential of this target yet (point a group's SoracomFunnel or SoracomFunk credentialsId at %s to use it)", s.where(), id, id)}
		return r, nil
	}
	if tg.Strategy == InPlace {
		c, err := inPlaceCredential(s, creds, oldKeyID, resumeKeyID)
		if err != nil {
			return rotation.Receipt{}, err
		}
		var users []string
		for _, u := range usersOf(groups, c.CredentialsID) {
			users = append(users, u.GroupID+" ("+u.Namespace+")")
		}
		r.Planned = []string{fmt.Sprintf("in %s, update credential %s in place with the new key (PUT /credentials/%s); the %d group(s) using it move with it: %s",
			s.where(), c.CredentialsID, c.CredentialsID, len(users), describeList(users, "none"))}
		return r, nil
	}
	p, err := planRepoint(s, creds, groups, oldKeyID, resumeKeyID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	id := t.newID(tg, p.taken)
	moved := make([]string, 0, len(p.todo))
	for _, m := range p.todo {
		moved = append(moved, fmt.Sprintf("%s %q (%s, on %s)", m.g.GroupID, m.g.Tags["name"], m.ns, m.from))
	}
	r.Planned = []string{
		fmt.Sprintf("in %s, create credential %s (aws-credentials) with the new key", s.where(), id),
		fmt.Sprintf("repoint %d group(s) to %s, each in the shape it stores credentialsId: %s", len(p.todo), id, strings.Join(moved, ", ")),
		fmt.Sprintf("after the old key is deleted, delete the old credential %s if no group uses it any more", strings.Join(p.oldIDs, ", ")),
	}
	return r, nil
}

// read opens the target's SORACOM and reads its credentials and groups.
func (t *Target) read(ctx context.Context, tg rotation.Target) (*session, []Credential, []Group, error) {
	s, err := t.open(ctx, tg)
	if err != nil {
		return nil, nil, nil, err
	}
	creds, err := s.c.ListCredentials(ctx)
	if err != nil {
		return nil, nil, nil, s.fail(err, "list credentials")
	}
	groups, err := s.c.ListGroups(ctx, pageSize)
	if err != nil {
		return nil, nil, nil, s.fail(err, "list groups")
	}
	for _, g := range groups {
		if g.OperatorID != "" {
			s.operator = g.OperatorID
			break
		}
	}
	return s, creds, groups, nil
}

// usersOf is every Funnel/Funk group namespace that uses credential id,
// as a group change that keeps it there (inPlace: the credential moves,
// the group does not).
func usersOf(groups []Group, id string) []rotation.GroupChange {
	out := []rotation.GroupChange{}
	for _, g := range groups {
		for _, ns := range Namespaces {
			if v, ok := g.Configuration[ns]["credentialsId"]; ok && credentialRef(v) == id {
				out = append(out, rotation.GroupChange{GroupID: g.GroupID, Name: g.Tags["name"], Namespace: ns, From: id, To: id})
			}
		}
	}
	return out
}

// owned says whether a credential is the target's by its id: the prefix
// itself, <prefix>-…, or one of credentialIds.
func owned(tg rotation.Target, id string) bool {
	p := tg.CredentialPrefix
	return p != "" && (id == p || strings.HasPrefix(id, p+"-")) || slices.Contains(tg.CredentialIDs, id)
}

// heldKey is the access key id a credential shows, if SORACOM shows it.
func heldKey(c Credential) string {
	id, _ := c.Credentials["accessKeyId"].(string)
	return id
}

// marker ties a credential to the key it was made for, so a retry finds it (I5).
func marker(keyID string) string { return "keyrotator: AWS access key " + keyID }

// move is one group namespace to repoint.
type move struct {
	g     Group
	ns    string
	from  string
	value any // credentialsId as the group stores it
}

// repoint is what a newCredential rotation has to do, read off the
// credentials and groups before anything changes.
type repoint struct {
	mine   string          // the credential an earlier attempt made for the new key ("": none yet)
	old    map[string]bool // the target's credentials that hold the old key
	oldIDs []string
	taken  map[string]bool // every credential id, for a free new one
	todo   []move          // groups still on an old credential
	done   []rotation.GroupChange
}

// planRepoint finds the old credentials and every group namespace that uses
// one (newKeyID "" in a dry run: no credential of the new key yet). A target
// that matches no group is a configuration error, found before a
// credential is made.
func planRepoint(s *session, creds []Credential, groups []Group, oldKeyID, newKeyID string) (repoint, error) {
	tg := s.tg
	p := repoint{old: map[string]bool{}, taken: map[string]bool{}}
	for _, c := range creds {
		p.taken[c.CredentialsID] = true
		held := heldKey(c)
		switch {
		case newKeyID != "" && c.Type == awsCredentials && (held == newKeyID || strings.Contains(c.Description, marker(newKeyID))):
			p.mine = c.CredentialsID // made by an earlier attempt of this rotation
		case owned(tg, c.CredentialsID) && c.Type == awsCredentials && (held == "" || held == oldKeyID),
			held != "" && held == oldKeyID && c.Type == awsCredentials:
			p.old[c.CredentialsID] = true
		}
	}
	p.oldIDs = sortedKeys(p.old)
	for _, g := range groups {
		for _, ns := range Namespaces {
			v, ok := g.Configuration[ns]["credentialsId"]
			if !ok {
				continue
			}
			ref := credentialRef(v)
			switch {
			case ref != "" && ref == p.mine:
				p.done = append(p.done, rotation.GroupChange{GroupID: g.GroupID, Name: g.Tags["name"], Namespace: ns, From: only(p.oldIDs), To: p.mine})
			case p.old[ref]:
				p.todo = append(p.todo, move{g: g, ns: ns, from: ref, value: v})
			}
		}
	}
	if len(p.todo) == 0 && len(p.done) == 0 {
		return repoint{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(
			"in %s no SIM group's %s configuration uses a credential of this target (%s; found %s): check credentialPrefix and credentialIds",
			s.where(), strings.Join(Namespaces, " or "), tg.CredentialsDescription(), describeList(p.oldIDs, "none of its credentials"))}
	}
	return p, nil
}

// newID is the id a new credential gets: <base>-<yyyymmdd>, free.
func (t *Target) newID(tg rotation.Target, taken map[string]bool) string {
	return freeID(tg.CredentialBase()+"-"+t.now().UTC().Format("20060102"), taken)
}

func (t *Target) newCredential(ctx context.Context, s *session, r rotation.Receipt, creds []Credential, groups []Group, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	p, err := planRepoint(s, creds, groups, oldKeyID, key.AccessKeyID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	mine, done := p.mine, p.done
	if mine == "" {
		id := t.newID(s.tg, p.taken)
		in := CredentialInput{Type: awsCredentials, Description: marker(key.AccessKeyID) + ", made " + t.now().UTC().Format(time.DateOnly),
			Credentials: map[string]any{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.Secret()}}
		if _, err := s.c.CreateCredential(ctx, id, in); err != nil {
			return rotation.Receipt{}, s.fail(err, "create credential "+id)
		}
		mine, r.Changed = id, true
	}
	r.Soracom = &rotation.SoracomChange{Operator: s.operator, Coverage: s.conn.Coverage, Strategy: NewCredential, NewCredential: mine, OldCredentials: p.oldIDs}
	for i, m := range p.todo {
		g, err := s.c.PutConfiguration(ctx, m.g.GroupID, m.ns, []Param{{Key: "credentialsId", Value: withRef(m.value, mine)}})
		if err == nil && credentialRef(g.Configuration[m.ns]["credentialsId"]) != mine {
			err = fmt.Errorf("group %s still shows credential %v in %s after the update", m.g.GroupID, g.Configuration[m.ns]["credentialsId"], m.ns)
		}
		if err != nil {
			return rotation.Receipt{}, partial(s.fail(err, fmt.Sprintf("repoint group %s (%s) to credential %s", m.g.GroupID, m.ns, mine)), done, p.todo[i:], mine, p.oldIDs)
		}
		done = append(done, rotation.GroupChange{GroupID: m.g.GroupID, Name: m.g.Tags["name"], Namespace: m.ns, From: m.from, To: mine, Changed: true})
		r.Changed = true
	}
	r.Soracom.Groups = done
	return r, nil
}

// partial says exactly where a repoint stopped: which groups already use
// the new credential, which still use the old one. Both keys work, so
// every group still delivers; a retry or re-run moves the rest.
func partial(err error, done []rotation.GroupChange, rest []move, mine string, oldIDs []string) error {
	moved := map[string][]string{}
	for _, d := range done {
		moved[d.Namespace] = append(moved[d.Namespace], d.GroupID)
	}
	left := map[string][]string{}
	for _, m := range rest {
		left[m.ns] = append(left[m.ns], m.g.GroupID)
	}
	detail := fmt.Sprintf("; %d group(s) already use the new credential %s: %s; %d still use the old credential %s: %s; both keys work meanwhile, and a re-run moves the rest",
		len(done), mine, byNamespace(moved), len(rest), strings.Join(oldIDs, ", "), byNamespace(left))
	var tf *rotation.TargetFailed
	if errors.As(err, &tf) {
		return &rotation.TargetFailed{Target: tf.Target, Reason: tf.Reason + detail}
	}
	var rt *rotation.Retryable
	if errors.As(err, &rt) {
		return &rotation.Retryable{Reason: rt.Reason + detail}
	}
	return err
}

// listLimit bounds the group ids an error lists per side: a Step Functions
// cause holds 32,768 characters, and 250 ids take about 10,000.
const listLimit = 400

// byNamespace lists group ids per namespace: "SoracomFunnel g1, g2; SoracomFunk g3".
func byNamespace(ids map[string][]string) string {
	if len(ids) == 0 {
		return "none"
	}
	var parts []string
	shown := 0
	for _, ns := range Namespaces {
		l := ids[ns]
		if len(l) == 0 {
			continue
		}
		if room := listLimit - shown; len(l) > room {
			parts = append(parts, fmt.Sprintf("%s %s … and %d more", ns, strings.Join(l[:max(room, 0)], ", "), len(l)-max(room, 0)))
			shown = listLimit
			continue
		}
		shown += len(l)
		parts = append(parts, ns+" "+strings.Join(l, ", "))
	}
	return strings.Join(parts, "; ")
}

// inPlaceCredential is the one credential of the target that holds the old
// key (or, on a retry, the new one), for the inPlace strategy.
func inPlaceCredential(s *session, creds []Credential, oldKeyID, newKeyID string) (Credential, error) {
	tg := s.tg
	var match []Credential
	for _, c := range creds {
		if held := heldKey(c); owned(tg, c.CredentialsID) && c.Type == awsCredentials && (held == "" || held == oldKeyID || newKeyID != "" && held == newKeyID) {
			match = append(match, c)
		}
	}
	switch {
	case len(match) == 0:
		return Credential{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("in %s no aws-credentials credential of this target (%s) holds key %s: check credentialPrefix and credentialIds", s.where(), tg.CredentialsDescription(), oldKeyID)}
	case len(match) > 1:
		ids := make([]string, len(match))
		for i, c := range match {
			ids[i] = c.CredentialsID
		}
		return Credential{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("inPlace updates one credential, and %s has %d of this target: %s; name the one in credentialIds", s.where(), len(match), strings.Join(ids, ", "))}
	}
	return match[0], nil
}

func (t *Target) inPlace(ctx context.Context, s *session, r rotation.Receipt, creds []Credential, groups []Group, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	tg := s.tg
	c, err := inPlaceCredential(s, creds, oldKeyID, key.AccessKeyID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	if heldKey(c) != key.AccessKeyID {
		desc := c.Description
		if desc == "" {
			desc = marker(key.AccessKeyID)
		}
		out, err := s.c.UpdateCredential(ctx, c.CredentialsID, CredentialInput{Type: awsCredentials, Description: desc,
			Credentials: map[string]any{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.Secret()}})
		if err != nil {
			return rotation.Receipt{}, s.fail(err, "update credential "+c.CredentialsID)
		}
		if held := heldKey(out); held != "" && held != key.AccessKeyID {
			return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("credential %s still shows key %s after the update", c.CredentialsID, held)}
		}
		r.Changed = true
	}
	r.Soracom = &rotation.SoracomChange{Operator: s.operator, Coverage: s.conn.Coverage, Strategy: InPlace, NewCredential: c.CredentialsID, Groups: usersOf(groups, c.CredentialsID)}
	return r, nil
}

// Cleanup deletes the old credentials a newCredential receipt names, each
// only if no group refers to it any more (in any namespace). It runs after
// DeleteOldKey, so a credential still referenced is a group that cannot
// deliver: it is kept, and named in a TargetFailed.
func (t *Target) Cleanup(ctx context.Context, tg rotation.Target, r rotation.Receipt) (string, error) {
	if r.Soracom == nil || r.Soracom.Strategy != NewCredential || len(r.Soracom.OldCredentials) == 0 {
		return fmt.Sprintf("%s (soracom): nothing kept for the old key", tg.Name), nil
	}
	s, err := t.open(ctx, tg)
	if err != nil {
		return "", err
	}
	groups, err := s.c.ListGroups(ctx, pageSize)
	if err != nil {
		return "", s.fail(err, "list groups")
	}
	users := map[string][]string{}
	for _, g := range groups {
		for ns, cfg := range g.Configuration {
			for _, v := range cfg {
				if ref := credentialRef(v); ref != "" {
					users[ref] = append(users[ref], g.GroupID+" ("+ns+")")
				}
			}
		}
	}
	var deleted, kept []string
	for _, id := range r.Soracom.OldCredentials {
		if u := users[id]; len(u) > 0 {
			slices.Sort(u)
			kept = append(kept, fmt.Sprintf("%s (still used by %s)", id, strings.Join(u, ", ")))
			continue
		}
		if err := s.c.DeleteCredential(ctx, id); err != nil {
			return "", s.fail(err, "delete old credential "+id)
		}
		deleted = append(deleted, id)
	}
	if len(kept) > 0 {
		return "", &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(
			"kept old credential %s: its key is deleted, so those groups cannot deliver; repoint them to %s, then delete the old credential (deleted: %s)",
			strings.Join(kept, "; "), r.Soracom.NewCredential, describeList(deleted, "none"))}
	}
	return fmt.Sprintf("%s (soracom): deleted old credential %s", tg.Name, strings.Join(deleted, ", ")), nil
}

// Usage is SORACOM's last use of the receipt's old and new credentials.
func (t *Target) Usage(ctx context.Context, tg rotation.Target, r rotation.Receipt) ([]rotation.CredentialUse, error) {
	if r.Soracom == nil {
		return nil, nil
	}
	s, err := t.open(ctx, tg)
	if err != nil {
		return nil, err
	}
	creds, err := s.c.ListCredentials(ctx)
	if err != nil {
		return nil, s.fail(err, "list credentials")
	}
	byID := map[string]Credential{}
	for _, c := range creds {
		byID[c.CredentialsID] = c
	}
	use := func(id, role string) rotation.CredentialUse {
		u := rotation.CredentialUse{Target: tg.Name, Credential: id, Role: role}
		if at, ok := byID[id].LastUsed(); ok {
			u.LastUsed = &at
		}
		return u
	}
	if r.Soracom.Strategy == InPlace {
		return []rotation.CredentialUse{use(r.Soracom.NewCredential, InPlace)}, nil
	}
	out := []rotation.CredentialUse{}
	for _, id := range r.Soracom.OldCredentials {
		out = append(out, use(id, "old"))
	}
	return append(out, use(r.Soracom.NewCredential, "new")), nil
}

func (t *Target) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// credentialRef is the credential id a configuration value names: SORACOM
// stores it as a plain string or as {"$credentialsId": id}.
func credentialRef(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		id, _ := x["$credentialsId"].(string)
		return id
	}
	return ""
}

// withRef is v with its credential id replaced, in the shape v has.
func withRef(v any, id string) any {
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = x
		}
		out["$credentialsId"] = id
		return out
	}
	return id
}

// freeID is id, or id-2, id-3… if an earlier rotation the same day took it.
func freeID(id string, taken map[string]bool) string {
	if !taken[id] {
		return id
	}
	for n := 2; ; n++ {
		if c := fmt.Sprintf("%s-%d", id, n); !taken[c] {
			return c
		}
	}
}

func describeList(l []string, empty string) string {
	if len(l) == 0 {
		return empty
	}
	return strings.Join(l, ", ")
}

// only is the one element of l, or "" if l has several (which one a
// group used before an earlier attempt moved it is then not known).
func only(l []string) string {
	if len(l) == 1 {
		return l[0]
	}
	return ""
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// FromEnv is the target as a Lambda builds it: SORACOM's rate limit,
// counted per minute, is waited out for up to wait (the function's share of
// its timeout), or SORACOM_MAX_RATE_WAIT if set; past that, Step Functions
// retries with backoff, each attempt resuming where the last stopped.
func FromEnv(s secrets, wait time.Duration) *Target {
	if d, err := time.ParseDuration(os.Getenv("SORACOM_MAX_RATE_WAIT")); err == nil && d > 0 {
		wait = d
	}
	return &Target{Secrets: s, MaxRateWait: wait}
}

// issueCredential is the credential an issue makes (Issuance): inPlace's
// first credentialIds, which later rotations update in place, else a
// rotation's <base>-<yyyymmdd>; mine when an earlier attempt (or the dead
// run this one resumes, newKeyID) made it already. A target that has a
// credential of its own already is refused: an issue fills a target that
// holds no key, and that credential may hold one (SORACOM does not show it).
func (t *Target) issueCredential(s *session, creds []Credential, newKeyID string) (id string, mine bool, err error) {
	tg := s.tg
	taken := map[string]bool{}
	var own []string
	for _, c := range creds {
		taken[c.CredentialsID] = true
		if newKeyID != "" && c.Type == awsCredentials && (heldKey(c) == newKeyID || strings.Contains(c.Description, marker(newKeyID))) {
			return c.CredentialsID, true, nil
		}
		if owned(tg, c.CredentialsID) {
			own = append(own, c.CredentialsID)
		}
	}
	if len(own) > 0 {
		return "", false, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf(
			"in %s this target (%s) has credential %s already: an issue fills only a target with no credential (it may hold a key); rotate the key it holds instead, or delete the credential",
			s.where(), tg.CredentialsDescription(), strings.Join(own, ", "))}
	}
	if tg.Strategy == InPlace && len(tg.CredentialIDs) > 0 {
		return tg.CredentialIDs[0], false, nil
	}
	return t.newID(tg, taken), false, nil
}

// issue makes the target's first credential with the new key (Issuance):
// no group is repointed, as none uses a credential of the target yet; the
// receipt names any that uses the new one (a person pointed it meanwhile).
// A retry finds the credential by the key id in its description (I5).
func (t *Target) issue(ctx context.Context, s *session, r rotation.Receipt, creds []Credential, groups []Group, key rotation.Credential) (rotation.Receipt, error) {
	id, mine, err := t.issueCredential(s, creds, key.AccessKeyID)
	if err != nil {
		return rotation.Receipt{}, err
	}
	if !mine {
		in := CredentialInput{Type: awsCredentials, Description: marker(key.AccessKeyID) + ", made " + t.now().UTC().Format(time.DateOnly),
			Credentials: map[string]any{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.Secret()}}
		if _, err := s.c.CreateCredential(ctx, id, in); err != nil {
			return rotation.Receipt{}, s.fail(err, "create credential "+id)
		}
		r.Changed = true
	}
	r.Soracom = &rotation.SoracomChange{Operator: s.operator, Coverage: s.conn.Coverage, Strategy: s.tg.Strategy, NewCredential: id, Groups: usersOf(groups, id)}
	return r, nil
}
