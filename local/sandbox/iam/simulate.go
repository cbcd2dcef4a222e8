package iam

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keyrotator/keyrotator/iampolicy"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// SimulatePrincipalPolicy answers as IAM's policy simulator does
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html):
// each action in ActionNames on each ARN in ResourceArns ("*" when none is
// given), evaluated with the sandbox's evaluator (iampolicy) over the
// identity policies of PolicySourceArn (a user or a role; a role session's
// ARN is refused, as AWS refuses it), any PolicyInputList documents, and
// ResourcePolicy when given. ContextEntries set the request's condition
// keys; a key a relevant statement tests that the request lacks is listed
// in MissingContextValues. Results page with MaxItems and Marker.
//
// Not simulated, as AWS documents they are not: SCPs and RCPs of an
// organization are (here there is none); permissions boundaries and
// session policies (PermissionsBoundaryPolicyInputList) are not evaluated.
func (s *Service) simulatePrincipalPolicy(c *sandbox.Call) (any, error) {
	source, err := sandbox.Required(c.Params, "PolicySourceArn")
	if err != nil {
		return nil, err
	}
	if strings.Contains(source, ":assumed-role/") || !strings.HasPrefix(source, "arn:") {
		// AWS: "Invalid Entity Arn" for anything but a user, group or role.
		return nil, sandbox.Errorf(400, "InvalidInput", "Invalid Entity Arn: %s does not clear the IAM entity ARN check.", source)
	}
	actions := sandbox.MemberValues(c.Params, "ActionNames.member")
	if len(actions) == 0 {
		return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null")
	}
	resources := sandbox.MemberValues(c.Params, "ResourceArns.member")
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	ctx, err := contextEntries(c)
	if err != nil {
		return nil, err
	}
	ip, err := s.IdentityPolicies(source)
	if err != nil {
		return nil, err
	}
	var identity []iampolicy.NamedPolicy
	for _, p := range ip {
		if p.Document == nil {
			continue // an AWS managed policy: its text is not held
		}
		pol, err := iampolicy.Parse(p.Document, iampolicy.Identity)
		if err != nil {
			return nil, sandbox.Errorf(400, "MalformedPolicyDocument", "policy %s: %v", p.Name, err)
		}
		name := p.Name
		if p.ARN != "" {
			name = p.ARN
		}
		identity = append(identity, iampolicy.NamedPolicy{Name: name, Policy: pol})
	}
	for i, doc := range sandbox.MemberValues(c.Params, "PolicyInputList.member") {
		pol, err := iampolicy.Parse([]byte(doc), iampolicy.Identity)
		if err != nil {
			return nil, sandbox.Errorf(400, "MalformedPolicyDocument", "PolicyInputList.%d: %v", i+1, err)
		}
		identity = append(identity, iampolicy.NamedPolicy{Name: "PolicyInputList." + strconv.Itoa(i+1), Policy: pol})
	}
	var resPolicy *iampolicy.NamedPolicy
	if doc := c.Params.Get("ResourcePolicy"); doc != "" {
		pol, err := iampolicy.Parse([]byte(doc), iampolicy.Resource)
		if err != nil {
			return nil, sandbox.Errorf(400, "MalformedPolicyDocument", "ResourcePolicy: %v", err)
		}
		resPolicy = &iampolicy.NamedPolicy{Name: "ResourcePolicy", Policy: pol}
	}
	account := s.account
	owner := account
	if o := c.Params.Get("ResourceOwner"); o != "" {
		owner = accountOf(o)
	}
	principal := iampolicy.Principal{ARN: source, Account: account, Type: iampolicy.User}
	if strings.Contains(source, ":role/") {
		principal.Type = iampolicy.AssumedRole
	}

	var all []evalResultXML
	for _, action := range actions {
		for _, res := range resources {
			req := iampolicy.Request{Principal: principal, Action: action, Resource: res, ResourceAccount: owner, Context: ctx}
			if req.Context == nil {
				req.Context = iampolicy.Context{}
			}
			if _, ok := req.Context["aws:PrincipalArn"]; !ok {
				req.Context["aws:PrincipalArn"] = []string{source}
			}
			in := &iampolicy.Input{Request: req, IdentityPolicies: identity, ResourcePolicy: resPolicy}
			d := iampolicy.Evaluate(in)
			r := evalResultXML{EvalActionName: action, EvalResourceName: res, EvalDecision: decisionWord(d.Kind)}
			if d.Statement != nil {
				r.MatchedStatements = []statementXML{{SourcePolicyID: d.Statement.Policy, SourcePolicyType: policyTypeWord(source, d.Statement), Index: d.Statement.Index}}
			}
			r.MissingContextValues = missingContext(in)
			all = append(all, r)
		}
	}

	max := 100
	if m := c.Params.Get("MaxItems"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 1000 {
			return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", m)
		}
		max = n
	}
	start := 0
	if m := c.Params.Get("Marker"); m != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "sim-"))
		if err != nil || n < 0 || n > len(all) {
			return nil, sandbox.Errorf(400, "InvalidInput", "Invalid Marker: %s", m)
		}
		start = n
	}
	var out struct {
		EvaluationResults []evalResultXML `xml:"EvaluationResults>member"`
		IsTruncated       bool            `xml:"IsTruncated"`
		Marker            string          `xml:"Marker,omitempty"`
	}
	end := min(start+max, len(all))
	out.EvaluationResults = all[start:end]
	if end < len(all) {
		out.IsTruncated = true
		out.Marker = "sim-" + strconv.Itoa(end)
	}
	return out, nil
}

// contextEntries reads ContextEntries.member.N.{ContextKeyName,
// ContextKeyType, ContextKeyValues.member.M}.
func contextEntries(c *sandbox.Call) (iampolicy.Context, error) {
	ctx := iampolicy.Context{}
	for i := 1; ; i++ {
		base := fmt.Sprintf("ContextEntries.member.%d.", i)
		name := c.Params.Get(base + "ContextKeyName")
		if name == "" {
			if c.Params.Get(base+"ContextKeyType") != "" {
				return nil, sandbox.Errorf(400, "ValidationError", "ContextEntries.%d: ContextKeyName is required", i)
			}
			return ctx, nil
		}
		ctx[name] = sandbox.MemberValues(c.Params, base+"ContextKeyValues.member")
	}
}

// missingContext is every condition key that a statement of in's policies
// tests, where the statement would otherwise apply to the request, and that
// the request's context lacks: AWS's MissingContextValues ("context keys
// that are required by the included input policies but that were not
// provided").
func missingContext(in *iampolicy.Input) []string {
	missing := map[string]bool{}
	check := func(p *iampolicy.Policy, kind bool) {
		if p == nil {
			return
		}
		for _, st := range p.Statements {
			if len(st.Conditions) == 0 {
				continue
			}
			var keys []string
			for _, cond := range st.Conditions {
				if !hasKey(in.Request.Context, cond.Key) {
					keys = append(keys, cond.Key)
				}
			}
			if len(keys) == 0 {
				continue
			}
			// Would the statement apply but for its conditions?
			bare := st
			bare.Conditions = nil
			bare.Effect = iampolicy.Allow
			probe := &iampolicy.Input{Request: in.Request}
			np := iampolicy.NamedPolicy{Name: "probe", Policy: &iampolicy.Policy{Version: p.Version, Statements: []iampolicy.Statement{bare}}}
			if kind {
				probe.ResourcePolicy = &np
			} else {
				probe.IdentityPolicies = []iampolicy.NamedPolicy{np}
			}
			if iampolicy.Evaluate(probe).Allowed {
				for _, k := range keys {
					missing[k] = true
				}
			}
		}
	}
	for _, np := range in.IdentityPolicies {
		check(np.Policy, false)
	}
	if in.ResourcePolicy != nil {
		check(in.ResourcePolicy.Policy, true)
	}
	return slices.Sorted(maps.Keys(missing))
}

func hasKey(ctx iampolicy.Context, key string) bool {
	for k := range ctx {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// decisionWord is the simulator's EvalDecision: allowed, explicitDeny or
// implicitDeny.
func decisionWord(k iampolicy.DecisionKind) string {
	switch k {
	case iampolicy.Allowed:
		return "allowed"
	case iampolicy.ExplicitDeny:
		return "explicitDeny"
	}
	return "implicitDeny"
}

// policyTypeWord is a MatchedStatement's SourcePolicyType: resource, a
// customer managed policy's user-managed, else the inline policy's entity
// (role, user).
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_Statement.html
func policyTypeWord(source string, st *iampolicy.StatementRef) string {
	switch {
	case st.Type == iampolicy.ResourceBased:
		return "resource"
	case strings.HasPrefix(st.Policy, "arn:"):
		return "user-managed"
	case strings.HasPrefix(st.Policy, "PolicyInputList."):
		return "none"
	case strings.Contains(source, ":role/"):
		return "role"
	}
	return "user"
}

func accountOf(arnOrAccount string) string {
	parts := strings.Split(arnOrAccount, ":")
	if len(parts) >= 5 {
		return parts[4]
	}
	return arnOrAccount
}

type evalResultXML struct {
	EvalActionName       string         `xml:"EvalActionName"`
	EvalResourceName     string         `xml:"EvalResourceName"`
	EvalDecision         string         `xml:"EvalDecision"`
	MatchedStatements    []statementXML `xml:"MatchedStatements>member"`
	MissingContextValues []string       `xml:"MissingContextValues>member"`
}

// statementXML is a Statement (MatchedStatements): AWS gives the policy's
// id and type and the statement's start and end positions in the document;
// the sandbox gives the statement's 0-based index as its start line, so only
// SourcePolicyId and SourcePolicyType are to be relied on.
type statementXML struct {
	SourcePolicyID   string `xml:"SourcePolicyId"`
	SourcePolicyType string `xml:"SourcePolicyType"`
	Index            int    `xml:"StartPosition>Line"`
}
