package iampolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind says where a policy document is attached, which decides the elements
// it must and must not carry: an identity-based policy names no principal and
// must name its resources; a resource-based policy (a topic, queue, secret or
// key policy) must name its principal.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
type Kind int

const (
	// Identity is a policy attached to a user or role, inline or managed.
	Identity Kind = iota
	// Resource is a resource-based policy: SNS topic policy, SQS queue policy,
	// Secrets Manager resource policy, KMS key policy.
	Resource
)

// The two policy language versions AWS accepts; only 2012-10-17 has policy
// variables. A document without Version is taken as 2008-10-17.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Effect is a statement's Effect.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement of a policy, with its position (0-based) so a
// statement without a Sid can still be named in a diagnostic.
type Statement struct {
	Index  int
	Sid    string
	Effect Effect

	// Exactly one of Action and NotAction is set (NotAction when
	// NotActionSet).
	Actions      []string
	NotActionSet bool

	// Resources, or NotResources when NotResourceSet. A resource-based policy
	// may omit both: the statement then covers the policy's own resource.
	Resources      []string
	NotResourceSet bool
	NoResource     bool

	// Principal, or NotPrincipal when NotPrincipalSet; nil in identity
	// policies.
	Principal       *Principals
	NotPrincipalSet bool

	Conditions []Condition

	kind Kind
}

// Principals is a Principal or NotPrincipal element: "*" or a map of
// principal types to values.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
type Principals struct {
	Wildcard      bool     // "Principal": "*" (or {"AWS": "*"})
	AWS           []string // account ids, root ARNs, user/role/assumed-role ARNs
	Service       []string // e.g. cloudwatch.amazonaws.com
	Federated     []string
	CanonicalUser []string
}

// Condition is one (operator, key, values) triple of a Condition element.
type Condition struct {
	Operator string // as written, e.g. "ForAllValues:StringLikeIfExists"
	op       condOp
	set      setQualifier
	ifExists bool
	Key      string
	Values   []string
}

// Error is a policy document AWS would refuse with MalformedPolicyDocument;
// the message says which element is wrong.
type Error struct{ Msg string }

func (e *Error) Error() string { return "MalformedPolicyDocument: " + e.Msg }

func malformed(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

var (
	actionRE  = regexp.MustCompile(`^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// Parse reads a policy document of the given kind strictly: an element AWS
// does not know, a missing required element or a malformed value is an
// *Error, as AWS answers MalformedPolicyDocument.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
func Parse(doc []byte, kind Kind) (*Policy, error) {
	var top map[string]json.RawMessage
	if err := strictObject(doc, &top); err != nil {
		return nil, malformed("policy document is not a JSON object: %v", err)
	}
	p := &Policy{Version: Version2008}
	var stmts []json.RawMessage
	for k, v := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(v, &p.Version); err != nil || (p.Version != Version2012 && p.Version != Version2008) {
				return nil, malformed("Version must be %q or %q", Version2012, Version2008)
			}
		case "Id":
			if err := json.Unmarshal(v, &p.ID); err != nil {
				return nil, malformed("Id must be a string")
			}
		case "Statement":
			if isArray(v) {
				if err := json.Unmarshal(v, &stmts); err != nil {
					return nil, malformed("Statement: %v", err)
				}
			} else {
				stmts = []json.RawMessage{v}
			}
		default:
			return nil, malformed("unknown element %q", k)
		}
	}
	if _, ok := top["Statement"]; !ok {
		return nil, malformed("missing Statement")
	}
	if len(stmts) == 0 {
		return nil, malformed("Statement is empty")
	}
	for i, raw := range stmts {
		s, err := parseStatement(raw, kind)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		s.Index = i
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

func parseStatement(raw json.RawMessage, kind Kind) (Statement, error) {
	var m map[string]json.RawMessage
	if err := strictObject(raw, &m); err != nil {
		return Statement{}, malformed("statement is not a JSON object")
	}
	s := Statement{kind: kind}
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition":
		default:
			return s, malformed("unknown element %q", k)
		}
	}
	if v, ok := m["Sid"]; ok {
		if err := json.Unmarshal(v, &s.Sid); err != nil {
			return s, malformed("Sid must be a string")
		}
	}
	var eff string
	if err := json.Unmarshal(m["Effect"], &eff); err != nil || (eff != string(Allow) && eff != string(Deny)) {
		return s, malformed("Effect must be Allow or Deny")
	}
	s.Effect = Effect(eff)

	var err error
	switch a, na := m["Action"], m["NotAction"]; {
	case a != nil && na != nil:
		return s, malformed("both Action and NotAction")
	case a == nil && na == nil:
		return s, malformed("missing Action or NotAction")
	case a != nil:
		s.Actions, err = stringOrList(a, "Action")
	default:
		s.Actions, err = stringOrList(na, "NotAction")
		s.NotActionSet = true
	}
	if err != nil {
		return s, err
	}
	for _, a := range s.Actions {
		if a != "*" && !actionRE.MatchString(a) {
			return s, malformed("action %q is not service:action", a)
		}
	}

	switch r, nr := m["Resource"], m["NotResource"]; {
	case r != nil && nr != nil:
		return s, malformed("both Resource and NotResource")
	case r == nil && nr == nil:
		if kind == Identity {
			return s, malformed("missing Resource or NotResource")
		}
		s.NoResource = true
	case r != nil:
		s.Resources, err = stringOrList(r, "Resource")
	default:
		s.Resources, err = stringOrList(nr, "NotResource")
		s.NotResourceSet = true
	}
	if err != nil {
		return s, err
	}
	for _, r := range s.Resources {
		// AWS accepts an ARN shorter than six parts (arn:aws:sns:*); its
		// missing parts are matched as in matchResource.
		if r != "*" && (!strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 2) {
			return s, malformed("resource %q is not an ARN", r)
		}
	}

	switch p, np := m["Principal"], m["NotPrincipal"]; {
	case p != nil && np != nil:
		return s, malformed("both Principal and NotPrincipal")
	case p == nil && np == nil:
		if kind == Resource {
			return s, malformed("missing Principal or NotPrincipal")
		}
	default:
		if kind == Identity {
			return s, malformed("an identity-based policy names no Principal")
		}
		raw := p
		if raw == nil {
			// "NotPrincipal must be used with "Effect":"Deny". Using it with
			// "Effect":"Allow" is not supported."
			// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
			if s.Effect != Deny {
				return s, malformed("NotPrincipal with Allow is not supported")
			}
			raw, s.NotPrincipalSet = np, true
		}
		s.Principal, err = parsePrincipals(raw)
		if err != nil {
			return s, err
		}
	}

	if c, ok := m["Condition"]; ok {
		s.Conditions, err = parseConditions(c)
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func parsePrincipals(raw json.RawMessage) (*Principals, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, malformed("Principal must be \"*\" or an object")
		}
		return &Principals{Wildcard: true}, nil
	}
	var m map[string]json.RawMessage
	if err := strictObject(raw, &m); err != nil {
		return nil, malformed("Principal must be \"*\" or an object")
	}
	if len(m) == 0 {
		return nil, malformed("Principal is empty")
	}
	p := &Principals{}
	for k, v := range m {
		vals, err := stringOrList(v, "Principal "+k)
		if err != nil {
			return nil, err
		}
		switch k {
		case "AWS":
			for _, a := range vals {
				switch {
				case a == "*":
					p.Wildcard = true
				case accountRE.MatchString(a), strings.HasPrefix(a, "arn:") && strings.Count(a, ":") >= 5:
					p.AWS = append(p.AWS, a)
				default:
					return nil, malformed("invalid AWS principal %q", a)
				}
			}
		case "Service":
			for _, a := range vals {
				if a == "*" || strings.ContainsAny(a, "*?: ") {
					return nil, malformed("invalid Service principal %q", a)
				}
			}
			p.Service = append(p.Service, vals...)
		case "Federated":
			p.Federated = append(p.Federated, vals...)
		case "CanonicalUser":
			p.CanonicalUser = append(p.CanonicalUser, vals...)
		default:
			return nil, malformed("unknown principal type %q", k)
		}
	}
	return p, nil
}

func parseConditions(raw json.RawMessage) ([]Condition, error) {
	var ops map[string]json.RawMessage
	if err := strictObject(raw, &ops); err != nil {
		return nil, malformed("Condition must be an object")
	}
	var out []Condition
	for opName, body := range ops {
		op, set, ifExists, ok := parseOperator(opName)
		if !ok {
			return nil, malformed("unknown condition operator %q", opName)
		}
		var keys map[string]json.RawMessage
		if err := strictObject(body, &keys); err != nil || len(keys) == 0 {
			return nil, malformed("condition %s must map keys to values", opName)
		}
		for key, v := range keys {
			vals, err := conditionValues(v)
			if err != nil {
				return nil, malformed("condition %s %s: %v", opName, key, err)
			}
			if key == "" {
				return nil, malformed("condition %s has an empty key", opName)
			}
			out = append(out, Condition{Operator: opName, op: op, set: set, ifExists: ifExists, Key: key, Values: vals})
		}
	}
	return out, nil
}

// conditionValues accepts what AWS accepts for a condition's value: a string,
// a boolean or a number, or a non-empty list of them.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if isArray(raw) {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("empty list of values")
		}
	} else {
		list = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, err
		}
		switch t := x.(type) {
		case string:
			out = append(out, t)
		case bool:
			out = append(out, strconv.FormatBool(t))
		case float64:
			out = append(out, strings.TrimSpace(string(v)))
		default:
			return nil, fmt.Errorf("a value must be a string, boolean or number")
		}
	}
	return out, nil
}

func stringOrList(raw json.RawMessage, elem string) ([]string, error) {
	if isArray(raw) {
		var l []string
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, malformed("%s must be a string or a list of strings", elem)
		}
		if len(l) == 0 {
			return nil, malformed("%s is an empty list", elem)
		}
		return l, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, malformed("%s must be a string or a list of strings", elem)
	}
	if s == "" {
		return nil, malformed("%s is empty", elem)
	}
	return []string{s}, nil
}

func isArray(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '['
}

// strictObject decodes a JSON object, refusing anything else (null included).
func strictObject(raw []byte, out *map[string]json.RawMessage) error {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("not an object")
	}
	return json.Unmarshal(b, out)
}
