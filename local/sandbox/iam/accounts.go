package iam

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// IAM is per account: users, roles, managed policies and keys belong to
// the account whose IAM made them, and a principal's ARN names it. The
// Service that New returns is the server's own account's; InAccount (and
// sandbox.AccountScoped's ForAccount, through which the server hands a call
// to the caller's account) is another account's. Every account's IAM is
// the key store: an access key resolves to its account's principal.

// Account is the account whose IAM this is.
func (s *Service) Account() string { return s.account }

// InAccount is the IAM of account ("" the server's own), made empty on
// first use; nil if the server does not hold the account
// (sandbox.Server.AddAccount).
func (s *Service) InAccount(account string) *Service {
	m, _ := s.fam.Get(s.srv, account, s.member)
	return m
}

// member is a new, empty instance of the family for account.
func (s *Service) member(account string) *Service {
	return &Service{srv: s.srv, lag: s.lag, account: account, fam: s.fam, st: newState()}
}

// stateJSON is this instance's state, for the family's snapshot.
func (s *Service) stateJSON() (json.RawMessage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return json.Marshal(s.st)
}

// ForAccount implements sandbox.AccountScoped.
func (s *Service) ForAccount(account string) sandbox.Service {
	if m := s.InAccount(account); m != nil {
		return m
	}
	return nil
}

// Credential implements sandbox.Credentials: a key or session of any
// account on the server, with its account's principal.
func (s *Service) Credential(id string) (sandbox.Credential, bool) {
	for _, m := range s.fam.Members() {
		if c, ok := m.credential(id); ok {
			return c, true
		}
	}
	return sandbox.Credential{}, false
}

// MarkUsed implements sandbox.Credentials: the key's last-used becomes this
// call, reported by GetAccessKeyLastUsed only once the lag has passed.
func (s *Service) MarkUsed(id, service, region string, at time.Time) {
	if !strings.HasPrefix(id, "AKIA") {
		return // sessions have no last-used data
	}
	for _, m := range s.fam.Members() {
		if m.markUsed(id, service, region, at) {
			return
		}
	}
}

// arnAccount is the account an ARN names ("" if none).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		return parts[4]
	}
	return ""
}

// RoleSession is what AssumeRole asks IAM to issue: a session of Role (this
// account's, by name) that ends at Expires (zero: valid while the sandbox
// runs, sts.Service.KeepSessions), limited by the session
// policies Policy (JSON, "" none) and PolicyARNs (this account's managed
// policies).
type RoleSession struct {
	Role        string
	SessionName string
	Expires     time.Time
	Policy      string
	PolicyARNs  []string
}

// NewSession issues temporary credentials (ASIA…) for a session of one of
// this account's roles, as sts:AssumeRole does once the caller is allowed.
func (s *Service) NewSession(in RoleSession) (sandbox.Credential, error) {
	id, err := s.newSession(in)
	if err != nil {
		return sandbox.Credential{}, err
	}
	c, _ := s.credential(id)
	return c, nil
}

func (s *Service) newSession(in RoleSession) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Roles[in.Role]
	if !ok {
		return "", noSuchRole(in.Role)
	}
	for _, arn := range in.PolicyARNs {
		if _, ok := s.st.Policies[arn]; !ok && !strings.HasPrefix(arn, "arn:aws:iam::aws:policy/") {
			return "", sandbox.Errorf(404, "NoSuchEntity", "Policy %s does not exist or is not attachable.", arn)
		}
	}
	var exp *time.Time // nil: valid while the sandbox runs
	if !in.Expires.IsZero() {
		t := in.Expires.UTC()
		exp = &t
	}
	ss := &Session{AccessKeyID: sandbox.NewID("ASIA", 16), Secret: sandbox.NewSecret(), Token: "IQoJb3JpZ2luX2VjE" + sandbox.NewSecret() + sandbox.NewSecret(),
		Role: r.Name, RoleID: r.ID, SessionName: in.SessionName, Expires: exp, Policy: in.Policy, PolicyARNs: in.PolicyARNs}
	s.st.Sessions[ss.AccessKeyID] = ss
	s.srv.MarkDirty()
	return ss.AccessKeyID, nil
}

// SessionPolicies are the session policies of the session whose access key
// is id, the inline one first (named "session policy") and then the managed
// ones; ok is false for a key that is not a session with session policies.
// A managed policy the sandbox does not hold (an AWS managed one) has a nil
// Document.
func (s *Service) SessionPolicies(id string) (pols []IdentityPolicy, ok bool) {
	for _, m := range s.fam.Members() {
		m.mu.RLock()
		ss, found := m.st.Sessions[id]
		if found && (ss.Policy != "" || len(ss.PolicyARNs) > 0) {
			if ss.Policy != "" {
				pols = append(pols, IdentityPolicy{Name: "session policy", Document: json.RawMessage(ss.Policy)})
			}
			for _, arn := range ss.PolicyARNs {
				p := IdentityPolicy{Name: nameOf(arn), ARN: arn}
				if mp, ok := m.st.Policies[arn]; ok {
					p.Document = mp.Document
				}
				pols = append(pols, p)
			}
			ok = true
		}
		m.mu.RUnlock()
		if found {
			return pols, ok
		}
	}
	return nil, false
}

// RoleByARN is a copy of a role of any account on the server, by its ARN
// (whose path must match, as IAM matches an ARN).
func (s *Service) RoleByARN(arn string) (Role, bool) {
	m := s.InAccount(arnAccount(arn))
	if m == nil || !strings.HasPrefix(arn, "arn:aws:iam::") || !strings.Contains(arn, ":role/") {
		return Role{}, false
	}
	return m.GetRole(arn)
}

// ARN is the role's ARN in account.
func (r Role) ARN(account string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role%s%s", account, r.Path, r.Name)
}
