package iam

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Role is an IAM role: its trust policy, its inline policies and the
// managed policies attached to it.
type Role struct {
	Name             string            `json:"name"`
	ID               string            `json:"id"`
	Path             string            `json:"path"`
	Description      string            `json:"description,omitempty"`
	AssumeRolePolicy json.RawMessage   `json:"assumeRolePolicy"`
	Inline           map[string]string `json:"inline,omitempty"`   // policy name → document
	Attached         []string          `json:"attached,omitempty"` // managed policy ARNs, in attach order
	MaxSession       int               `json:"maxSession,omitempty"`
	Created          time.Time         `json:"created"`
}

// ManagedPolicy is a customer managed policy (its default version's document).
type ManagedPolicy struct {
	Name        string          `json:"name"`
	ID          string          `json:"id"`
	Path        string          `json:"path"`
	ARN         string          `json:"arn"`
	Description string          `json:"description,omitempty"`
	Document    json.RawMessage `json:"document"`
	Created     time.Time       `json:"created"`
}

// IdentityPolicy is one policy that applies to a principal: an inline
// policy of the user or role (ARN empty) or an attached managed policy.
// Document is the raw policy JSON as it was put; it is nil for an AWS
// managed policy (arn:aws:iam::aws:policy/…), whose text the sandbox does
// not hold.
type IdentityPolicy struct {
	Name     string          `json:"name"`
	ARN      string          `json:"arn,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
}

func validEntityName(n string, max int) bool {
	return len(n) > 0 && len(n) <= max && !strings.ContainsFunc(n, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("+=,.@_-", r)
	})
}

func validPath(p string) bool {
	return strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") && len(p) <= 512
}

func validDocument(what string, doc json.RawMessage) error {
	var d struct {
		Statement any `json:"Statement"`
	}
	if len(doc) == 0 || json.Unmarshal(doc, &d) != nil || d.Statement == nil {
		return sandbox.Errorf(400, "MalformedPolicyDocument", "%s: the policy document must be JSON with a Statement", what)
	}
	return nil
}

func (s *Service) roleARN(r *Role) string {
	return fmt.Sprintf("arn:aws:iam::%s:role%s%s", s.account, r.Path, r.Name)
}

// nameOf is the role or policy name an ARN ends with ("role/path/name"), or
// the name itself.
func nameOf(nameOrARN string) string {
	if i := strings.LastIndex(nameOrARN, "/"); strings.HasPrefix(nameOrARN, "arn:") && i >= 0 {
		return nameOrARN[i+1:]
	}
	return nameOrARN
}

// CreateRole makes a role, as iam:CreateRole does.
func (s *Service) CreateRole(name, path, description string, trust json.RawMessage, maxSession int) (*Role, error) {
	if path == "" {
		path = "/"
	}
	if !validEntityName(name, 64) {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for roleName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-")
	}
	if !validPath(path) {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	if err := validDocument("AssumeRolePolicyDocument", trust); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for existing := range s.st.Roles {
		if strings.EqualFold(existing, name) {
			return nil, sandbox.Errorf(409, "EntityAlreadyExists", "Role with name %s already exists.", name)
		}
	}
	r := &Role{Name: name, ID: roleID(name), Path: path, Description: description, AssumeRolePolicy: trust, MaxSession: maxSession, Created: s.srv.Clock().Now()}
	s.st.Roles[name] = r
	s.srv.MarkDirty()
	return r, nil
}

// updateRole sets an existing role's description, trust policy and
// session duration, as a stack update does (UpdateRole,
// UpdateAssumeRolePolicy); nil if there is no such role.
func (s *Service) updateRole(name, description string, trust json.RawMessage, maxSession int) *Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Roles[name]
	if !ok || validDocument("AssumeRolePolicyDocument", trust) != nil {
		return nil
	}
	r.Description, r.AssumeRolePolicy, r.MaxSession = description, trust, maxSession
	s.srv.MarkDirty()
	return r
}

// updatePolicy gives an existing managed policy a new default version's
// document (CreatePolicyVersion), as a stack update does; nil if there is
// no such policy.
func (s *Service) updatePolicy(arn, description string, doc json.RawMessage) *ManagedPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.st.Policies[arn]
	if !ok || validDocument(p.Name, doc) != nil {
		return nil
	}
	p.Description, p.Document = description, doc
	s.srv.MarkDirty()
	return p
}

// RoleARN is the ARN of a role by name, if it exists.
func (s *Service) RoleARN(name string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.st.Roles[nameOf(name)]
	if !ok {
		return "", false
	}
	return s.roleARN(r), true
}

// GetRole returns a copy of a role, by name or ARN.
func (s *Service) GetRole(nameOrARN string) (Role, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.st.Roles[nameOf(nameOrARN)]
	if !ok || (strings.HasPrefix(nameOrARN, "arn:") && s.roleARN(r) != nameOrARN) {
		return Role{}, false
	}
	cp := *r
	cp.Attached = slices.Clone(r.Attached)
	cp.Inline = map[string]string{}
	for k, v := range r.Inline {
		cp.Inline[k] = v
	}
	return cp, true
}

// PutRolePolicy sets an inline policy of a role, as iam:PutRolePolicy does.
func (s *Service) PutRolePolicy(role, name string, doc json.RawMessage) error {
	if !validEntityName(name, 128) {
		return sandbox.Errorf(400, "ValidationError", "The specified value for policyName is invalid.")
	}
	if err := validDocument(name, doc); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Roles[role]
	if !ok {
		return noSuchRole(role)
	}
	if r.Inline == nil {
		r.Inline = map[string]string{}
	}
	r.Inline[name] = string(doc)
	s.srv.MarkDirty()
	return nil
}

// PutUserPolicy sets an inline policy of a user, as iam:PutUserPolicy does.
func (s *Service) PutUserPolicy(user, name string, doc json.RawMessage) error {
	if !validEntityName(name, 128) {
		return sandbox.Errorf(400, "ValidationError", "The specified value for policyName is invalid.")
	}
	if err := validDocument(name, doc); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.Users[user]
	if !ok {
		return noSuchUser(user)
	}
	if u.Inline == nil {
		u.Inline = map[string]string{}
	}
	u.Inline[name] = string(doc)
	s.srv.MarkDirty()
	return nil
}

// CreatePolicy makes a customer managed policy, as iam:CreatePolicy does.
func (s *Service) CreatePolicy(name, path, description string, doc json.RawMessage) (*ManagedPolicy, error) {
	if path == "" {
		path = "/"
	}
	if !validEntityName(name, 128) {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for policyName is invalid.")
	}
	if !validPath(path) {
		return nil, sandbox.Errorf(400, "ValidationError", "The specified value for path is invalid.")
	}
	if err := validDocument(name, doc); err != nil {
		return nil, err
	}
	arn := fmt.Sprintf("arn:aws:iam::%s:policy%s%s", s.account, path, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Policies[arn]; ok {
		return nil, sandbox.Errorf(409, "EntityAlreadyExists", "A policy called %s already exists. Duplicate names are not allowed.", name)
	}
	p := &ManagedPolicy{Name: name, ID: sandbox.NewID("ANPA", 17), Path: path, ARN: arn, Description: description, Document: doc, Created: s.srv.Clock().Now()}
	s.st.Policies[arn] = p
	s.srv.MarkDirty()
	return p, nil
}

// attachable refuses a policy ARN that is neither this account's managed
// policy nor an AWS managed one. Callers hold s.mu.
func (s *Service) attachable(arn string) error {
	if _, ok := s.st.Policies[arn]; ok || strings.HasPrefix(arn, "arn:aws:iam::aws:policy/") {
		return nil
	}
	return sandbox.Errorf(404, "NoSuchEntity", "Policy %s does not exist or is not attachable.", arn)
}

// AttachRolePolicy attaches a managed policy to a role.
func (s *Service) AttachRolePolicy(role, arn string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Roles[role]
	if !ok {
		return noSuchRole(role)
	}
	if err := s.attachable(arn); err != nil {
		return err
	}
	if !slices.Contains(r.Attached, arn) {
		r.Attached = append(r.Attached, arn)
	}
	s.srv.MarkDirty()
	return nil
}

// AttachUserPolicy attaches a managed policy to a user.
func (s *Service) AttachUserPolicy(user, arn string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.Users[user]
	if !ok {
		return noSuchUser(user)
	}
	if err := s.attachable(arn); err != nil {
		return err
	}
	if !slices.Contains(u.Attached, arn) {
		u.Attached = append(u.Attached, arn)
	}
	s.srv.MarkDirty()
	return nil
}

// ManagedPolicyDocument is a managed policy's document, by ARN.
func (s *Service) ManagedPolicyDocument(arn string) (json.RawMessage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.st.Policies[arn]
	if !ok {
		return nil, false
	}
	return p.Document, true
}

// TrustPolicy is a role's trust policy (AssumeRolePolicyDocument), by
// name (this account's role) or ARN (any account's).
func (s *Service) TrustPolicy(role string) (json.RawMessage, bool) {
	m := s
	if strings.HasPrefix(role, "arn:") {
		if m = s.InAccount(arnAccount(role)); m == nil {
			return nil, false
		}
	}
	r, ok := m.GetRole(role)
	return r.AssumeRolePolicy, ok
}

// IdentityPolicies are the policies that apply to a principal, by its ARN:
// an IAM user's (arn:aws:iam::<account>:user/<path><name>), a role's
// (arn:aws:iam::<account>:role/<path><name>) or an assumed role session's
// (arn:aws:sts::<account>:assumed-role/<role>/<session>): its inline
// policies by name, then its attached managed policies in attach order.
// The documents are raw JSON, for a policy evaluator to read.
func (s *Service) IdentityPolicies(principalARN string) ([]IdentityPolicy, error) {
	m := s.InAccount(arnAccount(principalARN))
	if m == nil {
		return nil, sandbox.Errorf(400, "ValidationError", "%s names an account the sandbox does not hold", principalARN)
	}
	return m.identityPolicies(principalARN)
}

func (s *Service) identityPolicies(principalARN string) ([]IdentityPolicy, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var inline map[string]string
	var attached []string
	switch {
	case strings.Contains(principalARN, ":assumed-role/"):
		rest := principalARN[strings.Index(principalARN, ":assumed-role/")+len(":assumed-role/"):]
		name, _, _ := strings.Cut(rest, "/")
		r, ok := s.st.Roles[name]
		if !ok {
			return nil, noSuchRole(name)
		}
		inline, attached = r.Inline, r.Attached
	case strings.Contains(principalARN, ":role/"):
		r, ok := s.st.Roles[nameOf(principalARN)]
		if !ok || s.roleARN(r) != principalARN {
			return nil, noSuchRole(nameOf(principalARN))
		}
		inline, attached = r.Inline, r.Attached
	case strings.Contains(principalARN, ":user/"):
		u, ok := s.st.Users[nameOf(principalARN)]
		if !ok || s.userARN(u) != principalARN {
			return nil, noSuchUser(nameOf(principalARN))
		}
		inline, attached = u.Inline, u.Attached
	default:
		return nil, sandbox.Errorf(400, "ValidationError", "%s names no IAM user, role or role session", principalARN)
	}
	var out []IdentityPolicy
	for _, name := range slices.Sorted(maps.Keys(inline)) {
		out = append(out, IdentityPolicy{Name: name, Document: json.RawMessage(inline[name])})
	}
	for _, arn := range attached {
		ip := IdentityPolicy{Name: nameOf(arn), ARN: arn}
		if p, ok := s.st.Policies[arn]; ok {
			ip.Document = p.Document
		}
		out = append(out, ip)
	}
	return out, nil
}

func noSuchRole(name string) error {
	return sandbox.Errorf(404, "NoSuchEntity", "The role with name %s cannot be found.", name)
}
