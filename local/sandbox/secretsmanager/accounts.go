package secretsmanager

import (
	"sync"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Secrets belong to an account: the Service New returns is the server's
// own account's, InAccount (and sandbox.AccountScoped's ForAccount, by
// which the server hands a call to the caller's account) another's. A
// member account's secrets (its own targets) are reached with a session of
// a role of that account.

type family struct {
	mu        sync.RWMutex
	byAccount map[string]*Service
	order     []string
}

func (f *family) members() []*Service {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*Service, 0, len(f.order))
	for _, a := range f.order {
		out = append(out, f.byAccount[a])
	}
	return out
}

// InAccount is account's Secrets Manager ("" the server's own); nil if the
// server does not hold the account.
func (s *Service) InAccount(account string) *Service {
	if account == "" {
		account = s.srv.Account()
	}
	s.fam.mu.RLock()
	m, ok := s.fam.byAccount[account]
	s.fam.mu.RUnlock()
	if ok {
		return m
	}
	if !s.srv.HasAccount(account) {
		return nil
	}
	s.fam.mu.Lock()
	defer s.fam.mu.Unlock()
	if m, ok := s.fam.byAccount[account]; ok {
		return m
	}
	m = &Service{srv: s.srv, account: account, fam: s.fam, st: state{Secrets: map[string]*Secret{}}}
	s.fam.byAccount[account] = m
	s.fam.order = append(s.fam.order, account)
	return m
}

// ForAccount implements sandbox.AccountScoped.
func (s *Service) ForAccount(account string) sandbox.Service {
	if m := s.InAccount(account); m != nil {
		return m
	}
	return nil
}
