package soracom

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// operatorState is what an operator keeps across restarts (--state): its
// SAM users with their AuthKeys, its sessions, its credential sets with
// their secrets, and its groups. Those secrets go into the state file only
// (the sandbox's own store, written 0600, as IAM's keys are), never a view,
// a log or an error. Injected failures, rate windows and the call record
// are the run's, not the account's, and start afresh.
type operatorState struct {
	ID            string                     `json:"id"`
	Coverage      string                     `json:"coverage"`
	RatePerMinute int                        `json:"ratePerMinute,omitempty"`
	Endpoint      string                     `json:"endpoint"` // the connection secrets name it
	SAMUsers      []SAMUser                  `json:"samUsers"`
	Sessions      map[string]sessionState    `json:"sessions,omitempty"` // by API key
	Credentials   map[string]credentialState `json:"credentials,omitempty"`
	Groups        []groupState               `json:"groups,omitempty"`
}

type sessionState struct {
	Token   string    `json:"token"`
	KeyID   string    `json:"keyId"`
	Expires time.Time `json:"expires"`
}

type credentialState struct {
	In       CredentialInput `json:"in"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
	LastUsed time.Time       `json:"lastUsed,omitzero"`
}

type groupState struct {
	ID       string                    `json:"id"`
	Tags     map[string]string         `json:"tags"`
	Config   map[string]map[string]any `json:"config"`
	Created  time.Time                 `json:"created"`
	Modified time.Time                 `json:"modified"`
	Push     PushStats                 `json:"push"`
}

// Snapshot implements sandbox.Snapshotter: every operator, its endpoint,
// users, sessions, credentials and groups.
func (s *Service) Snapshot() (json.RawMessage, error) {
	ops := s.Operators()
	out := make([]operatorState, 0, len(ops))
	for _, o := range ops {
		o.mu.Lock()
		st := operatorState{ID: o.id, Coverage: o.coverage, RatePerMinute: o.rate, Endpoint: o.endpoint,
			Sessions: map[string]sessionState{}, Credentials: map[string]credentialState{}}
		for _, u := range o.users {
			u := *u
			u.Permissions = cloneStrings(u.Permissions)
			st.SAMUsers = append(st.SAMUsers, u)
		}
		for apiKey, se := range o.sessions {
			st.Sessions[apiKey] = sessionState{Token: se.token, KeyID: se.keyID, Expires: se.expires}
		}
		for id, c := range o.creds {
			st.Credentials[id] = credentialState{In: c.in, Created: c.created, Updated: c.updated, LastUsed: c.lastUsed}
		}
		for _, g := range o.sortedGroups() {
			st.Groups = append(st.Groups, groupState{ID: g.id, Tags: g.tags, Config: g.config, Created: g.created, Modified: g.modified, Push: g.push})
		}
		// Marshal under the lock: the maps above are the operator's own.
		b, err := json.Marshal(st)
		o.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("soracom operator %s: snapshot: %w", o.id, err)
		}
		var copied operatorState
		if err := json.Unmarshal(b, &copied); err != nil {
			return nil, fmt.Errorf("soracom operator %s: snapshot: %w", o.id, err)
		}
		out = append(out, copied)
	}
	return json.Marshal(out)
}

// Restore implements sandbox.Snapshotter: each operator is served again on
// the port it had, which the connection secrets name; if another process
// took that port, on a new one, and the log says so.
func (s *Service) Restore(raw json.RawMessage) error {
	var sts []operatorState
	if err := json.Unmarshal(raw, &sts); err != nil {
		return fmt.Errorf("soracom: decode state: %w", err)
	}
	for _, st := range sts {
		o := newOperator(s, OperatorConfig{ID: st.ID, Coverage: st.Coverage, RatePerMinute: st.RatePerMinute, SAMUsers: st.SAMUsers})
		for apiKey, se := range st.Sessions {
			o.sessions[apiKey] = &session{token: se.Token, keyID: se.KeyID, expires: se.Expires}
		}
		for id, c := range st.Credentials {
			o.creds[id] = &credential{in: c.In, created: c.Created, updated: c.Updated, lastUsed: c.LastUsed}
		}
		for _, g := range st.Groups {
			cfg, err := cloneConfiguration(g.Config)
			if err != nil {
				return fmt.Errorf("soracom: restore operator %s group %s: %w", st.ID, g.ID, err)
			}
			o.groups[g.ID] = &group{id: g.ID, tags: cloneTags(g.Tags), config: cfg, created: g.Created, modified: g.Modified, push: g.Push}
		}
		addr := "127.0.0.1:0"
		if u, err := url.Parse(st.Endpoint); err == nil && u.Host != "" {
			addr = u.Host
		}
		l, err := sandbox.ListenAgain(context.Background(), addr, 2*time.Second)
		if err != nil {
			if l, err = new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
				return fmt.Errorf("soracom: restore operator %s: listen: %w", st.ID, err)
			}
			s.log.Warn("soracom operator restored on a new port: its connection secrets need the new endpoint",
				"operator", st.ID, "was", st.Endpoint, "now", "http://"+l.Addr().String()+"/v1")
		}
		if err := s.serve(o, l); err != nil {
			return fmt.Errorf("soracom: restore: %w", err)
		}
	}
	return nil
}

var _ sandbox.Snapshotter = (*Service)(nil)
