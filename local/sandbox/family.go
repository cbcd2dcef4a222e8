package sandbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Family is one service's instances, one per account of the server, for a
// service whose resources belong to an account (IAM, Secrets Manager): the
// server hands a call to the caller's account's instance
// (AccountScoped). The server's own account's instance comes first.
type Family[T any] struct {
	mu        sync.RWMutex
	byAccount map[string]T
	order     []string
}

// NewFamily is a family holding own, the instance of the server's account.
func NewFamily[T any](account string, own T) *Family[T] {
	return &Family[T]{byAccount: map[string]T{account: own}, order: []string{account}}
}

// Get is account's instance ("" the server's own), made by newT on first
// use; ok is false if srv does not hold the account (Server.AddAccount).
func (f *Family[T]) Get(srv *Server, account string, newT func(account string) T) (t T, ok bool) {
	if account == "" {
		account = srv.Account()
	}
	f.mu.RLock()
	m, ok := f.byAccount[account]
	f.mu.RUnlock()
	if ok {
		return m, true
	}
	if !srv.HasAccount(account) {
		return t, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.byAccount[account]; ok {
		return m, true
	}
	m = newT(account)
	f.byAccount[account] = m
	f.order = append(f.order, account)
	return m, true
}

// Members are every account's instance, the server's own first.
func (f *Family[T]) Members() []T {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]T, 0, len(f.order))
	for _, a := range f.order {
		out = append(out, f.byAccount[a])
	}
	return out
}

// SnapshotOthers is every other account's instance's state (snapshot of
// each), by account, for a Snapshotter that keeps them under "accounts"
// beside its own.
func (f *Family[T]) SnapshotOthers(snapshot func(T) (json.RawMessage, error)) (map[string]json.RawMessage, error) {
	f.mu.RLock()
	order := slices.Clone(f.order[1:])
	members := make([]T, len(order))
	for i, a := range order {
		members[i] = f.byAccount[a]
	}
	f.mu.RUnlock()
	others := make(map[string]json.RawMessage, len(order))
	for i, a := range order {
		b, err := snapshot(members[i])
		if err != nil {
			return nil, err
		}
		others[a] = b
	}
	return others, nil
}

// RestoreOthers restores what SnapshotOthers kept under raw's "accounts":
// each account added to srv, its instance made and restored.
func (f *Family[T]) RestoreOthers(srv *Server, raw json.RawMessage, newT func(account string) T, restore func(T, json.RawMessage) error) error {
	var others struct {
		Accounts map[string]json.RawMessage `json:"accounts"`
	}
	if err := json.Unmarshal(raw, &others); err != nil {
		return err
	}
	own := srv.Account()
	f.mu.RLock()
	if len(f.order) > 0 {
		own = f.order[0]
	}
	f.mu.RUnlock()
	for account, b := range others.Accounts {
		if account == own {
			continue
		}
		if err := srv.AddAccount(account); err != nil {
			return err
		}
		m, ok := f.Get(srv, account, newT)
		if !ok {
			continue
		}
		if err := restore(m, b); err != nil {
			return fmt.Errorf("account %s: %w", account, err)
		}
	}
	return nil
}
