package sts

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/keyrotator/keyrotator/iampolicy"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
)

// AssumeRole as the STS API reference documents it
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html):
//
//   - RoleSessionName: 2–64 characters of [\w+=,.@-]; ExternalId: 2–1224
//     of [\w+=,.@:/-]; DurationSeconds: 900 up to the role's maximum
//     session duration (3600 if it sets none), 3600 by default.
//   - The role's trust policy must allow the caller, directly or by its
//     account, with its conditions (sts:ExternalId, aws:PrincipalArn,
//     aws:PrincipalAccount …) met; across accounts the caller's identity
//     policies must allow sts:AssumeRole on the role too — the sandbox's
//     Authorizer decides that side when IAM is enforced
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
//     The trust is checked here whether or not IAM is enforced: a role no
//     one trusts is assumed by no one, the sandbox's admin included.
//   - A missing role, a trust that does not allow the caller and a wrong or
//     missing external id are all the same AccessDenied: "User: <caller> is
//     not authorized to perform: sts:AssumeRole on resource: <role ARN>".
//     AWS does not tell the caller which.
//   - Policy (inline JSON) and PolicyArns (up to 10 managed policies of the
//     role's account) are session policies: the session may do only what
//     the role's identity policies and a session policy both allow
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).
//   - The session is arn:aws:sts::<role account>:assumed-role/<role name>/<session name>
//     (the role's path is dropped), its id <role id>:<session name>, its
//     key ASIA…, with a session token and an expiration.

var (
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	roleARNPattern     = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})$`)
)

// DefaultMaxSession is a role's maximum session duration when it sets none.
const DefaultMaxSession = 3600

// maxPolicyChars is the plaintext limit of the inline and managed session
// policies together.
const maxPolicyChars = 2048

// allowAll stands for the caller's identity policies in the trust check
// STS itself makes: the Authorizer evaluates them when IAM is enforced.
var allowAll = func() []iampolicy.NamedPolicy {
	p, err := iampolicy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`), iampolicy.Identity)
	if err != nil {
		panic(err)
	}
	return []iampolicy.NamedPolicy{{Name: "identity (decided by the Authorizer)", Policy: p}}
}()

type credentialsXML struct {
	AccessKeyID     string          `xml:"AccessKeyId"`
	SecretAccessKey string          `xml:"SecretAccessKey"`
	SessionToken    string          `xml:"SessionToken"`
	Expiration      sandbox.ISOTime `xml:"Expiration"`
}

type assumeRoleResult struct {
	Credentials     credentialsXML `xml:"Credentials"`
	AssumedRoleUser struct {
		AssumedRoleID string `xml:"AssumedRoleId"`
		Arn           string `xml:"Arn"`
	} `xml:"AssumedRoleUser"`
	PackedPolicySize *int `xml:"PackedPolicySize,omitempty"`
}

func validation(field, value, constraint string) error {
	return sandbox.Errorf(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

func (s *Service) assumeRole(ctx context.Context, c *sandbox.Call) (any, error) {
	roleARN, err := sandbox.Required(c.Params, "RoleArn")
	if err != nil {
		return nil, err
	}
	session, err := sandbox.Required(c.Params, "RoleSessionName")
	if err != nil {
		return nil, err
	}
	switch {
	case len(roleARN) < 20 || len(roleARN) > 2048:
		return nil, validation("roleArn", roleARN, "Member must have length greater than or equal to 20")
	case len(session) < 2 || len(session) > 64:
		return nil, validation("roleSessionName", session, "Member must have length less than or equal to 64 and greater than or equal to 2")
	case !sessionNamePattern.MatchString(session):
		return nil, validation("roleSessionName", session, `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	if ext, ok := c.Params["ExternalId"]; ok {
		e := ext[0]
		if len(e) < 2 || len(e) > 1224 {
			return nil, validation("externalId", e, "Member must have length less than or equal to 1224 and greater than or equal to 2")
		}
		if !externalIDPattern.MatchString(e) {
			return nil, validation("externalId", e, `Member must satisfy regular expression pattern: [\w+=,.@:/-]*`)
		}
	}
	duration := DefaultMaxSession
	if d := c.Params.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 {
			return nil, validation("durationSeconds", d, "Member must have value greater than or equal to 900")
		}
		if n > 43200 {
			return nil, validation("durationSeconds", d, "Member must have value less than or equal to 43200")
		}
		duration = n
	}
	policy := c.Params.Get("Policy")
	var policyARNs []string
	for _, m := range sandbox.Members(c.Params, "PolicyArns.member", "arn") {
		policyARNs = append(policyARNs, m["arn"])
	}
	if len(policyARNs) > 10 {
		return nil, validation("policyArns", fmt.Sprint(policyARNs), "Member must have length less than or equal to 10")
	}
	if policy != "" {
		if len(policy) > maxPolicyChars {
			return nil, validation("policy", "…", "Member must have length less than or equal to 2048")
		}
		if _, err := iampolicy.Parse([]byte(policy), iampolicy.Identity); err != nil {
			return nil, sandbox.Errorf(http.StatusBadRequest, "MalformedPolicyDocument", "The policy is not in the valid JSON format: %v", err)
		}
	}

	denied := sandbox.Errorf(http.StatusForbidden, "AccessDenied", "%s", authz.AssumeRoleDenied(c.Principal.ARN, roleARN))
	m := roleARNPattern.FindStringSubmatch(roleARN)
	if m == nil {
		return nil, denied
	}
	account := m[1]
	store, ok := s.iam()
	if !ok {
		return nil, denied
	}
	role, ok := store.RoleByARN(roleARN)
	if !ok {
		return nil, denied
	}
	trust, err := iampolicy.Parse(role.AssumeRolePolicy, iampolicy.Resource)
	if err != nil {
		return nil, denied
	}
	cx := authz.GlobalContext(ctx, c, s.srv.Clock().Now())
	for k, v := range authz.STSKeys(c) {
		cx[k] = v
	}
	d := iampolicy.Evaluate(&iampolicy.Input{
		Request:          iampolicy.Request{Principal: authz.Principal(c.Principal), Action: "sts:AssumeRole", Resource: roleARN, ResourceAccount: account, Context: cx},
		IdentityPolicies: allowAll, ResourcePolicy: &iampolicy.NamedPolicy{Name: "trust policy of " + roleARN, Policy: trust}, RoleTrust: true,
	})
	if !d.Allowed {
		return nil, denied
	}
	maxSession := role.MaxSession
	if maxSession == 0 {
		maxSession = DefaultMaxSession
	}
	if duration > maxSession {
		return nil, sandbox.Errorf(http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	member := store.InAccount(account)
	if member == nil {
		return nil, denied
	}
	expires := s.srv.Clock().Now().Add(time.Duration(duration) * time.Second).Truncate(time.Second)
	ends := expires
	if s.keepSessions.Load() {
		ends = time.Time{} // valid while the sandbox runs (KeepSessions)
	}
	cred, err := member.NewSession(iam.RoleSession{Role: role.Name, SessionName: session, Expires: ends, Policy: policy, PolicyARNs: policyARNs})
	if err != nil {
		return nil, err
	}
	var res assumeRoleResult
	res.Credentials = credentialsXML{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.Secret, SessionToken: cred.SessionToken, Expiration: sandbox.ISOTime(expires)}
	res.AssumedRoleUser.AssumedRoleID = cred.Principal.UserID
	res.AssumedRoleUser.Arn = cred.Principal.ARN
	if policy != "" || len(policyARNs) > 0 {
		// The share of the packed-policy limit used, as a percentage.
		size := min(100, (len(policy)+len(policyARNs)*64)*100/maxPolicyChars+1)
		res.PackedPolicySize = &size
	}
	c.Touch("AWS::IAM::Role", roleARN)
	params := map[string]any{"roleArn": roleARN, "roleSessionName": session, "durationSeconds": duration}
	if _, ok := c.Params["ExternalId"]; ok {
		params["externalId"] = c.Params.Get("ExternalId")
	}
	c.RequestParameters(params)
	// CloudTrail's AssumeRole event names the new key, never its secret
	// or token (I1).
	c.ResponseElements(map[string]any{
		"credentials":     map[string]any{"accessKeyId": cred.AccessKeyID, "expiration": expires.UTC().Format(time.RFC3339)},
		"assumedRoleUser": map[string]any{"assumedRoleId": cred.Principal.UserID, "arn": cred.Principal.ARN},
	})
	return res, nil
}

// iam is the sandbox's IAM, every account's.
func (s *Service) iam() (*iam.Service, bool) {
	svc, ok := s.srv.Service("iam")
	if !ok {
		return nil, false
	}
	store, ok := svc.(*iam.Service)
	return store, ok
}
