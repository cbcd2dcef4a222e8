package secretsmanager

import (
	"encoding/json"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Secrets belong to an account: the Service New returns is the server's
// own account's, InAccount (and sandbox.AccountScoped's ForAccount, by
// which the server hands a call to the caller's account) another's. A
// member account's secrets (its own targets) are reached with a session of
// a role of that account.

// InAccount is account's Secrets Manager ("" the server's own); nil if the
// server does not hold the account.
func (s *Service) InAccount(account string) *Service {
	m, _ := s.fam.Get(s.srv, account, s.member)
	return m
}

// member is a new, empty instance of the family for account.
func (s *Service) member(account string) *Service {
	return &Service{srv: s.srv, account: account, fam: s.fam, st: state{Secrets: map[string]*Secret{}}}
}

// stateJSON is this instance's state, for the family's snapshot.
func (s *Service) stateJSON() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.st)
}

// ForAccount implements sandbox.AccountScoped.
func (s *Service) ForAccount(account string) sandbox.Service {
	if m := s.InAccount(account); m != nil {
		return m
	}
	return nil
}
