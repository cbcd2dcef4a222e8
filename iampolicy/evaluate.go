package iampolicy

import (
	"slices"
	"strconv"
	"strings"
)

// PrincipalType is the kind of identity that signed a request.
type PrincipalType int

// The principal types the sandbox's callers have.
const (
	// User is an IAM user: arn:aws:iam::111122223333:user/path/name.
	User PrincipalType = iota
	// AssumedRole is a role session: arn:aws:sts::111122223333:assumed-role/Role/session.
	AssumedRole
	// Service is an AWS service principal (cloudwatch.amazonaws.com): it has
	// no identity policies, so only a resource-based policy can allow it.
	Service
)

// Principal is who makes the request. ARN is the service's name for a
// Service principal; Account is empty for one.
type Principal struct {
	ARN     string
	Account string
	Type    PrincipalType
}

// Request is what is being authorized.
type Request struct {
	Principal       Principal
	Action          string // "iam:GetUser"
	Resource        string // the resource ARN, or "*" for an action that has none
	ResourceAccount string // the account that owns Resource
	// Context holds the keys the request has, as AWS would set them: the
	// caller fills them (aws:SecureTransport, aws:SourceArn,
	// aws:SourceAccount, aws:CurrentTime, aws:username for a user,
	// aws:PrincipalArn — the role's ARN, not the session's, for a role
	// session), and a service's own keys (kms:ViaService) only in that
	// service's requests.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
	Context Context
}

// NamedPolicy is a parsed policy and the name a diagnostic calls it by (an
// inline policy's name, a managed policy's ARN, "topic policy of …").
type NamedPolicy struct {
	Name   string
	Policy *Policy
}

// Input is one authorization question.
type Input struct {
	Request Request
	// IdentityPolicies are the principal's inline and managed policies, all
	// together; ignored for a Service principal.
	IdentityPolicies []NamedPolicy
	// ResourcePolicy is the resource's policy, if it has one.
	ResourcePolicy *NamedPolicy
	// KeyPolicy applies KMS key-policy semantics to ResourcePolicy: identity
	// policies count only when the key policy allows the principal's
	// account, and a key without a policy allows no one.
	KeyPolicy bool
	// RoleTrust says ResourcePolicy is a role's trust policy and the action
	// sts:AssumeRole: the trust policy must allow the caller even within
	// one account, directly (its ARN, or its role's for a role session) or
	// by naming its account, in which case the caller's identity policies
	// must allow too; across accounts both must always allow. The same
	// rule as a KMS key policy's.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html
	RoleTrust bool
	// SessionPolicies are the policies passed to the AssumeRole call that
	// made the principal's session (the inline Policy and the PolicyArns),
	// nil if none was: the session may do only what its role's identity
	// policies and a session policy both allow. A resource policy that
	// names the session's ARN is not limited by them; one that names the
	// role's ARN or the account is.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session
	SessionPolicies []NamedPolicy
}

// DecisionKind says which of AWS's three outcomes a decision is.
type DecisionKind int

// The three outcomes of AWS's evaluation.
const (
	ImplicitDeny DecisionKind = iota
	Allowed
	ExplicitDeny
)

func (k DecisionKind) String() string {
	switch k {
	case Allowed:
		return "Allowed"
	case ExplicitDeny:
		return "ExplicitlyDenied"
	}
	return "ImplicitlyDenied"
}

// PolicyType names the kind of policy a decision points at, in the words of
// AWS's AccessDenied messages.
type PolicyType string

// The policy types this package evaluates.
const (
	IdentityBased PolicyType = "identity-based"
	ResourceBased PolicyType = "resource-based"
	SessionBased  PolicyType = "session"
)

// StatementRef names the statement that decided.
type StatementRef struct {
	Type   PolicyType
	Policy string
	Sid    string
	Index  int
}

func (r StatementRef) String() string {
	s := string(r.Type) + " policy " + r.Policy + " statement "
	if r.Sid != "" {
		return s + r.Sid
	}
	return s + "#" + strconv.Itoa(r.Index)
}

// Decision is the answer: Allowed, which kind of decision it was, the
// statement that decided (nil for an implicit deny), and for a denial AWS's
// AccessDenied message.
type Decision struct {
	Allowed   bool
	Kind      DecisionKind
	Statement *StatementRef
	// Missing is the policy type whose Allow was lacking (implicit deny) or
	// whose Deny decided (explicit deny).
	Missing PolicyType
	Message string
}

// principal match levels of a resource-policy statement, weakest first.
type principalMatch int

const (
	noMatch principalMatch = iota
	// matchAccount: the statement names the principal's account (its id or
	// root ARN): the account's identity policies must also allow.
	matchAccount
	// matchRoleOfSession: the statement names the role whose session asks.
	// Kept apart from matchDirect because AWS limits it by a session policy
	// or permissions boundary and a session-ARN grant not (see Evaluate).
	matchRoleOfSession
	// matchDirect: "*", the principal's own ARN, or its service name.
	matchDirect
)

// Evaluate decides a request as AWS's policy evaluation logic does for
// identity-based and resource-based policies:
//
//   - An applicable Deny in any policy wins (explicit deny).
//   - A service principal is allowed only by the resource policy.
//   - Within one account, an Allow in an identity-based policy or in the
//     resource-based policy suffices; a resource policy naming only the
//     account (root) delegates to identity policies and adds nothing.
//   - Across accounts, both the identity-based policy and the resource-based
//     policy (naming the principal or its account) must allow.
//   - For a KMS key (Input.KeyPolicy), the key policy must allow: directly,
//     or by naming the account, which then lets identity policies decide.
//
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
//
// A resource policy naming the role ARN grants its sessions; AWS limits
// such a grant (unlike one naming the session ARN) by a session policy
// (Input.SessionPolicies), and so does this package. Permissions
// boundaries are not evaluated.
func Evaluate(in *Input) Decision {
	req := &in.Request
	service := req.Principal.Type == Service

	var idDeny, idAllow *StatementRef
	if !service {
		for i := range in.IdentityPolicies {
			np := &in.IdentityPolicies[i]
			d, a := scanIdentity(np, req)
			if d != nil {
				idDeny = d
				break
			}
			if idAllow == nil {
				idAllow = a
			}
		}
	}

	var resDeny, resDirect, resRole, resAccount *StatementRef
	if in.ResourcePolicy != nil && in.ResourcePolicy.Policy != nil {
		resDeny, resDirect, resRole, resAccount = scanResource(in.ResourcePolicy, req)
	}

	// A session policy limits the identity policies' grants and a resource
	// policy's grant to the role; it adds nothing.
	session := in.SessionPolicies != nil && !service
	var sessDeny, sessAllow *StatementRef
	if session {
		for i := range in.SessionPolicies {
			d, a := scanIdentity(&in.SessionPolicies[i], req)
			if d != nil {
				sessDeny = &StatementRef{Type: SessionBased, Policy: d.Policy, Sid: d.Sid, Index: d.Index}
				break
			}
			if sessAllow == nil && a != nil {
				sessAllow = &StatementRef{Type: SessionBased, Policy: a.Policy, Sid: a.Sid, Index: a.Index}
			}
		}
	}

	switch {
	case idDeny != nil:
		return deny(req, ExplicitDeny, IdentityBased, idDeny)
	case sessDeny != nil:
		return deny(req, ExplicitDeny, SessionBased, sessDeny)
	case resDeny != nil:
		return deny(req, ExplicitDeny, ResourceBased, resDeny)
	}
	idMissing := IdentityBased // what an implicit deny lacked, when identity policies had to allow
	if session && sessAllow == nil {
		if idAllow != nil {
			idMissing = SessionBased
		}
		idAllow = nil
		resRole = nil
	}
	if resDirect == nil {
		resDirect = resRole
	}

	sameAccount := !service && req.Principal.Account != "" && req.Principal.Account == req.ResourceAccount
	switch {
	case service:
		if resDirect != nil {
			return allow(resDirect)
		}
		return deny(req, ImplicitDeny, ResourceBased, nil)
	case in.KeyPolicy, in.RoleTrust:
		if sameAccount && resDirect != nil {
			return allow(resDirect)
		}
		if resDirect == nil && resAccount == nil {
			return deny(req, ImplicitDeny, ResourceBased, nil)
		}
		if idAllow != nil {
			return allow(idAllow)
		}
		return deny(req, ImplicitDeny, idMissing, nil)
	case sameAccount:
		if idAllow != nil {
			return allow(idAllow)
		}
		if resDirect != nil {
			return allow(resDirect)
		}
		return deny(req, ImplicitDeny, idMissing, nil)
	default: // cross-account
		if idAllow == nil {
			return deny(req, ImplicitDeny, idMissing, nil)
		}
		if resDirect == nil && resAccount == nil {
			return deny(req, ImplicitDeny, ResourceBased, nil)
		}
		return allow(idAllow)
	}
}

func allow(by *StatementRef) Decision {
	return Decision{Allowed: true, Kind: Allowed, Statement: by}
}

// deny builds AWS's AccessDenied message:
// "User: <arn> is not authorized to perform: <action> on resource: <arn>
// because no identity-based policy allows the <action> action", or
// "… with an explicit deny in a resource-based policy".
// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
// (The Access Troubleshooter preview appends the denying policy's ARN and an
// authorization id; that is not emitted:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied-authorization-id.html)
func deny(req *Request, kind DecisionKind, t PolicyType, by *StatementRef) Decision {
	var b strings.Builder
	b.WriteString("User: ")
	b.WriteString(req.Principal.ARN)
	b.WriteString(" is not authorized to perform: ")
	b.WriteString(req.Action)
	if req.Resource != "" {
		b.WriteString(" on resource: ")
		b.WriteString(req.Resource)
	}
	if kind == ExplicitDeny {
		b.WriteString(" with an explicit deny in ")
		b.WriteString(article(t))
		b.WriteString(" ")
		b.WriteString(string(t))
		b.WriteString(" policy")
	} else {
		b.WriteString(" because no ")
		b.WriteString(string(t))
		b.WriteString(" policy allows the ")
		b.WriteString(req.Action)
		b.WriteString(" action")
	}
	return Decision{Kind: kind, Statement: by, Missing: t, Message: b.String()}
}

func article(t PolicyType) string {
	if t == IdentityBased {
		return "an"
	}
	return "a"
}

// scanIdentity returns the first applicable Deny of an identity policy, or
// else its first applicable Allow.
func scanIdentity(np *NamedPolicy, req *Request) (deny, allow *StatementRef) {
	if np.Policy == nil {
		return nil, nil
	}
	vars := varsFor(np.Policy, req)
	for i := range np.Policy.Statements {
		s := &np.Policy.Statements[i]
		if !s.applies(req, vars) {
			continue
		}
		ref := &StatementRef{Type: IdentityBased, Policy: np.Name, Sid: s.Sid, Index: s.Index}
		if s.Effect == Deny {
			return ref, nil
		}
		if allow == nil {
			allow = ref
		}
	}
	return nil, allow
}

// scanResource returns the resource policy's first applicable Deny, and its
// first Allow that names the principal directly and the first that names
// only its account.
func scanResource(np *NamedPolicy, req *Request) (deny, direct, role, account *StatementRef) {
	vars := varsFor(np.Policy, req)
	for i := range np.Policy.Statements {
		s := &np.Policy.Statements[i]
		pm := s.principalMatch(&req.Principal)
		if pm == noMatch || !s.applies(req, vars) {
			continue
		}
		ref := &StatementRef{Type: ResourceBased, Policy: np.Name, Sid: s.Sid, Index: s.Index}
		switch {
		case s.Effect == Deny:
			return ref, nil, nil, nil
		case pm == matchAccount:
			if account == nil {
				account = ref
			}
		case pm == matchRoleOfSession:
			if role == nil {
				role = ref
			}
		default:
			if direct == nil {
				direct = ref
			}
		}
	}
	return nil, direct, role, account
}

func varsFor(p *Policy, req *Request) *varSource {
	if p.Version != Version2012 {
		return nil
	}
	return &varSource{ctx: req.Context}
}

// applies: action, resource and every condition match (principal aside).
func (s *Statement) applies(req *Request, vars *varSource) bool {
	hit := false
	for _, a := range s.Actions {
		if matchAction(a, req.Action) {
			hit = true
			break
		}
	}
	if hit == s.NotActionSet {
		return false
	}
	if !s.NoResource {
		hit = false
		for _, r := range s.Resources {
			m, resolved := matchResource(r, req.Resource, vars, s.kind)
			if !resolved && s.NotResourceSet {
				// The entry cannot show the resource lies outside it.
				return false
			}
			if m {
				hit = true
			}
		}
		if hit == s.NotResourceSet {
			return false
		}
	}
	for i := range s.Conditions {
		if !s.Conditions[i].eval(req.Context, vars) {
			return false
		}
	}
	return true
}

// principalMatch says how the statement's Principal (or NotPrincipal) names
// the requester.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
func (s *Statement) principalMatch(p *Principal) principalMatch {
	if s.Principal == nil {
		return noMatch
	}
	if s.NotPrincipalSet {
		if s.Principal.exempts(p) {
			return noMatch
		}
		return matchDirect
	}
	return s.Principal.match(p)
}

// exempts says whether a NotPrincipal list leaves the requester out. AWS
// checks a requester level by level — its account, then the user, or the
// role and then its session — so the list must name the account as well as
// the user (or the role or session): naming the user alone still denies it,
// and naming the account alone denies every identity in it.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
func (ps *Principals) exempts(p *Principal) bool {
	if ps.Wildcard {
		return true
	}
	if p.Type == Service {
		return slices.Contains(ps.Service, p.ARN)
	}
	account, identity := false, false
	for _, a := range ps.AWS {
		switch {
		case a == p.ARN, p.Type == AssumedRole && roleOfSession(a, p.ARN):
			identity = true
		case isAccountPrincipal(a, p.Account):
			account = true
		}
	}
	return account && identity
}

func (ps *Principals) match(p *Principal) principalMatch {
	if ps.Wildcard {
		return matchDirect
	}
	if p.Type == Service {
		for _, s := range ps.Service {
			if s == p.ARN {
				return matchDirect
			}
		}
		return noMatch
	}
	best := noMatch
	for _, a := range ps.AWS {
		switch {
		case a == p.ARN:
			return matchDirect
		case isAccountPrincipal(a, p.Account):
			best = max(best, matchAccount)
		case p.Type == AssumedRole && roleOfSession(a, p.ARN):
			best = max(best, matchRoleOfSession)
		}
	}
	return best
}

// isAccountPrincipal: "111122223333" or "arn:aws:iam::111122223333:root".
func isAccountPrincipal(a, account string) bool {
	if account == "" {
		return false
	}
	if a == account {
		return true
	}
	parts, ok := arnParts(a)
	return ok && parts[2] == "iam" && parts[4] == account && parts[5] == "root"
}

// roleOfSession reports whether roleARN (arn:aws:iam::A:role/path/R) is the
// role of the session arn:aws:sts::A:assumed-role/R/session.
func roleOfSession(roleARN, sessionARN string) bool {
	rp, ok := arnParts(roleARN)
	if !ok || rp[2] != "iam" || !strings.HasPrefix(rp[5], "role/") {
		return false
	}
	sp, ok := arnParts(sessionARN)
	if !ok || sp[2] != "sts" || sp[0] != rp[0] || sp[1] != rp[1] || sp[4] != rp[4] {
		return false
	}
	rest, ok := strings.CutPrefix(sp[5], "assumed-role/")
	if !ok {
		return false
	}
	sessRole, _, _ := strings.Cut(rest, "/")
	name := rp[5][strings.LastIndexByte(rp[5], '/')+1:]
	return strings.EqualFold(name, sessRole)
}
