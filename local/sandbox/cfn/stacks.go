package cfn

import (
	"encoding/json"
	"sync"
)

// Stacks remembers the stacks deployed into a sandbox, so a deploy of a
// stack that exists (a sandbox restarted with --state) is an update, as in
// CloudFormation, not a second set of resources. It is a
// sandbox.Snapshotter: attach it to the server to keep it across restarts.
type Stacks struct {
	mu     sync.Mutex
	stacks map[string]*Stack
}

// Get returns the stack deployed under name, if any.
func (s *Stacks) Get(name string) (*Stack, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stacks[name]
	return st, ok
}

// Put records a deployed stack under its name.
func (s *Stacks) Put(st *Stack) { s.PutAt(st.Name, st) }

// PutAt records a deployed stack under key: a stack in a member account
// is kept as "<account>/<name>" (StackKey), since stack names are unique
// only within an account and region.
func (s *Stacks) PutAt(key string, st *Stack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stacks == nil {
		s.stacks = map[string]*Stack{}
	}
	s.stacks[key] = st
}

// StackKey is the key Stacks keeps a stack under: its name in the
// sandbox's own account (home), "<account>/<name>" in another.
func StackKey(home, account, name string) string {
	if account == "" || account == home {
		return name
	}
	return account + "/" + name
}

// Snapshot implements sandbox.Snapshotter.
func (s *Stacks) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.stacks)
}

// Restore implements sandbox.Snapshotter.
func (s *Stacks) Restore(raw json.RawMessage) error {
	var m map[string]*Stack
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stacks = m
	return nil
}
