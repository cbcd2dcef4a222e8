package sandbox

import (
	"fmt"
	"regexp"
	"slices"
)

// The sandbox holds several AWS accounts on one endpoint: the server's own
// (Options.Account, the default) and the member accounts added with
// Options.Accounts or AddAccount. An access key resolves to a principal of
// one account (Credentials); a service that keeps state per account is an
// AccountScoped service, and the server hands each call to the instance of
// the caller's account, as AWS answers a call in the account of the
// credentials that signed it.

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// AccountScoped is a service whose resources belong to an account (IAM's
// users and roles, CloudTrail's event history, Secrets Manager's secrets):
// ForAccount is its instance for an account of the server, "" being the
// server's own.
type AccountScoped interface {
	ForAccount(account string) Service
}

// scoped is svc's instance for account, if svc keeps one per account.
func scoped(svc Service, account string) Service {
	if as, ok := svc.(AccountScoped); ok && account != "" {
		if inst := as.ForAccount(account); inst != nil {
			return inst
		}
	}
	return svc
}

// AddAccount makes the server hold account (12 digits) as well: its IAM,
// CloudTrail and Secrets Manager start empty. Adding an account the server
// holds already is no error.
func (s *Server) AddAccount(account string) error {
	if !accountID.MatchString(account) {
		return fmt.Errorf("sandbox: account id %q: want 12 digits", account)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.accounts, account) {
		s.accounts = append(s.accounts, account)
	}
	return nil
}

// Accounts are the accounts the server holds, its own first.
func (s *Server) Accounts() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.accounts)
}

// HasAccount says whether the server holds account.
func (s *Server) HasAccount(account string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Contains(s.accounts, account)
}
