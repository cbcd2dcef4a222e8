// Package authz is the sandbox's IAM enforcement: a sandbox.Authorizer that
// decides every call as AWS does, with the iampolicy module's evaluator,
// over the caller's identity policies as the sandbox's IAM holds them (the
// deployed template's roles and policies) and the resource's policy (an SNS
// topic's policy; for a publish to an encrypted topic, the KMS key policy of
// the topic's key, with kms:ViaService). A refusal is the service's own
// AccessDenied error with AWS's message. The harness's admin identities
// keep full access: they stand for the account's administrator, who sets
// the sandbox up.
package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/iampolicy"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
)

// Identities are the sandbox's IAM: a principal's policies (*iam.Service).
type Identities interface {
	IdentityPolicies(principalARN string) ([]iam.IdentityPolicy, error)
}

// Roles are the sandbox's IAM seen by sts:AssumeRole (*iam.Service, every
// account's): a role's trust policy, by ARN, and the session policies of
// a role session, by its access key id. An Identities that is not also
// Roles has no role a caller may assume and no session policies.
type Roles interface {
	TrustPolicy(roleARN string) (json.RawMessage, bool)
	SessionPolicies(accessKeyID string) ([]iam.IdentityPolicy, bool)
}

// Topics are SNS's topic policies and keys (*sns.Service).
type Topics interface {
	TopicPolicy(arn string) (json.RawMessage, bool)
	TopicKey(arn string) (string, bool)
}

// Keys are KMS's key policies (*kms.Service).
type Keys interface {
	KeyPolicy(idOrARN string) (string, bool)
}

// Functions are Lambda's function policies (*lambda.Service): the
// statements AWS::Lambda::Permission and AddPermission put there.
type Functions interface {
	FunctionPolicy(functionARN string) (json.RawMessage, bool)
}

// Authorizer decides calls. Build it with New.
type Authorizer struct {
	iam       Identities
	topics    Topics    // nil: no topic has a policy
	keys      Keys      // nil: encrypted topics are not checked against their key
	functions Functions // nil: no function has a policy
	admins    map[string]bool
	now       func() time.Time
	record    func(Decision)

	mu     sync.Mutex
	parsed map[string]*iampolicy.Policy // by kind and document
}

// Options wire an Authorizer to the services that hold policies.
type Options struct {
	IAM       Identities
	Topics    Topics
	Keys      Keys
	Functions Functions
	// Admins are principal ARNs that are never refused (the harness's admin).
	Admins []string
	// Now is the sandbox clock (aws:CurrentTime).
	Now func() time.Time
	// Record, if set, is told every decision with the documents it was
	// made from (a differential test replays them to another evaluator).
	Record func(Decision)
}

// Decision is one decision with everything it was made from.
type Decision struct {
	Principal       iampolicy.Principal
	Action          string
	Resource        string
	ResourceAccount string
	Context         iampolicy.Context
	Identity        []RawPolicy
	ResourcePolicy  json.RawMessage // nil: none
	KeyPolicy       bool
	RoleTrust       bool            // ResourcePolicy is a role's trust policy (sts:AssumeRole)
	SessionPolicy   json.RawMessage // the caller's session policies as one document; nil: none
	Allowed         bool
}

// RawPolicy is a policy document as the service holds it.
type RawPolicy struct {
	Name string
	Doc  json.RawMessage
}

// New returns an Authorizer.
func New(o Options) *Authorizer {
	a := &Authorizer{iam: o.IAM, topics: o.Topics, keys: o.Keys, functions: o.Functions, admins: map[string]bool{}, now: o.Now, record: o.Record, parsed: map[string]*iampolicy.Policy{}}
	for _, arn := range o.Admins {
		a.admins[arn] = true
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

var _ sandbox.Authorizer = (*Authorizer)(nil)

// actions maps a service's API operation to its IAM action where the two
// differ (Service Authorization Reference): Lambda's Invoke is
// lambda:InvokeFunction.
var actions = map[string]string{
	"lambda:Invoke": "lambda:InvokeFunction",
}

// Action is the IAM action a call needs: the service's IAM namespace
// (ServiceInfo.IAMName: iot for the IoT data plane, cloudwatch for
// monitoring) and the operation.
func Action(info sandbox.ServiceInfo, action string) string {
	a := info.IAMName() + ":" + action
	if m, ok := actions[a]; ok {
		return m
	}
	return a
}

// AddAdmin makes principalARN an admin too (a member account's admin
// identity, added with the account).
func (a *Authorizer) AddAdmin(principalARN string) {
	a.mu.Lock()
	a.admins[principalARN] = true
	a.mu.Unlock()
}

func (a *Authorizer) isAdmin(principalARN string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admins[principalARN]
}

// Authorize implements sandbox.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, c *sandbox.Call, info sandbox.ServiceInfo) *sandbox.Error {
	if a.isAdmin(c.Principal.ARN) {
		return nil
	}
	p := principal(c.Principal)
	var identity []iampolicy.NamedPolicy
	var raw []RawPolicy
	if p.Type != iampolicy.Service {
		docs, err := a.iam.IdentityPolicies(c.Principal.ARN)
		if err != nil {
			return denied(info, fmt.Sprintf("%s is not authorized: its identity could not be read (%v)", c.Principal.ARN, err))
		}
		for _, d := range docs {
			if d.Document == nil {
				continue // an AWS managed policy the sandbox does not hold
			}
			pol, err := a.parse(d.Document, iampolicy.Identity)
			if err != nil {
				return denied(info, fmt.Sprintf("policy %s of %s is malformed: %v", d.Name, c.Principal.ARN, err))
			}
			identity = append(identity, iampolicy.NamedPolicy{Name: d.Name, Policy: pol})
			raw = append(raw, RawPolicy{Name: d.Name, Doc: d.Document})
		}
	}
	session, rawSession, e := a.sessionPolicies(c, info)
	if e != nil {
		return e
	}
	for _, res := range c.ResourceARNs {
		rp, rawRP := a.resourcePolicy(info.Name, res)
		assume := info.Name == "sts" && c.Action == "AssumeRole"
		var in *iampolicy.Input
		for _, chk := range checks(info, c, res) {
			cx := a.context(ctx, c)
			maps.Copy(cx, chk.context)
			req := iampolicy.Request{Principal: p, Action: chk.action, Resource: res, ResourceAccount: accountOf(res, c.Principal.Account), Context: cx}
			in = &iampolicy.Input{Request: req, IdentityPolicies: identity, ResourcePolicy: rp, KeyPolicy: info.Name == "kms" && rp != nil,
				RoleTrust: assume, SessionPolicies: session}
			d := iampolicy.Evaluate(in)
			a.noteSession(in, raw, rawRP, rawSession, d.Allowed)
			if !d.Allowed {
				if assume && d.Missing == iampolicy.ResourceBased {
					// AWS does not tell a caller what the role's trust
					// policy (or the role's absence) refused.
					return denied(info, AssumeRoleDenied(c.Principal.ARN, res))
				}
				return denied(info, d.Message)
			}
		}
		if e := a.viaKMS(ctx, c, info, p, identity, raw, res); e != nil {
			return e
		}
		if tagsOnCreate(info, c) {
			// "To add tags … you must have secretsmanager:TagResource" too
			// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
			in.Request.Action = "secretsmanager:TagResource"
			d := iampolicy.Evaluate(in)
			a.note(in, raw, rawRP, d.Allowed)
			if !d.Allowed {
				return denied(info, d.Message)
			}
		}
	}
	return nil
}

// AssumeRoleDenied is AWS's message when sts:AssumeRole is refused by the
// role's side (its trust policy, or no such role): "User: <caller> is not
// authorized to perform: sts:AssumeRole on resource: <role>".
// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html
func AssumeRoleDenied(caller, role string) string {
	return fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, role)
}

// sessionPolicies are the session policies of the caller's session, as one
// policy set (nil if it has none), and their documents as one document for
// a recorder (a referee takes one session policy).
func (a *Authorizer) sessionPolicies(c *sandbox.Call, info sandbox.ServiceInfo) ([]iampolicy.NamedPolicy, json.RawMessage, *sandbox.Error) {
	roles, ok := a.iam.(Roles)
	if !ok || c.Principal.Type != "AssumedRole" {
		return nil, nil, nil
	}
	docs, ok := roles.SessionPolicies(c.AccessKeyID)
	if !ok {
		return nil, nil, nil
	}
	out := []iampolicy.NamedPolicy{}
	var stmts []json.RawMessage
	for _, d := range docs {
		if d.Document == nil {
			continue // an AWS managed policy the sandbox does not hold allows nothing here
		}
		pol, err := a.parse(d.Document, iampolicy.Identity)
		if err != nil {
			return nil, nil, denied(info, fmt.Sprintf("session policy %s of %s is malformed: %v", d.Name, c.Principal.ARN, err))
		}
		out = append(out, iampolicy.NamedPolicy{Name: d.Name, Policy: pol})
		stmts = append(stmts, statementsOf(d.Document)...)
	}
	merged, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	return out, merged, nil
}

// statementsOf is a policy document's statements, each as JSON.
func statementsOf(doc json.RawMessage) []json.RawMessage {
	var d struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(d.Statement, &list) == nil {
		return list
	}
	return []json.RawMessage{d.Statement}
}

// check is one IAM action a call needs, with the condition keys the
// action's request carries beyond the global ones.
type check struct {
	action  string
	context iampolicy.Context
}

// checks are the authorizations a call needs on resource. Most need one
// action; a Lambda function URL call needs two, lambda:InvokeFunctionUrl
// (lambda:FunctionUrlAuthType is the URL's auth type, lambda:FunctionArn
// the function) and lambda:InvokeFunction with lambda:InvokedViaFunctionUrl
// true, from the identity policy or the function's policy
// (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html: "Starting
// in October 2025, new function URLs will require both
// lambda:InvokeFunctionUrl and lambda:InvokeFunction permissions"). A
// direct Invoke does not carry lambda:InvokedViaFunctionUrl, so a grant
// conditioned on it being true does not allow one. The sandbox serves
// AWS_IAM URLs only.
func checks(info sandbox.ServiceInfo, c *sandbox.Call, resource string) []check {
	if info.Name == "lambda" && c.Action == "InvokeFunctionUrl" {
		return []check{
			{action: "lambda:InvokeFunctionUrl", context: iampolicy.Context{"lambda:FunctionUrlAuthType": {"AWS_IAM"}, "lambda:FunctionArn": {resource}}},
			{action: "lambda:InvokeFunction", context: iampolicy.Context{"lambda:InvokedViaFunctionUrl": {"true"}}},
		}
	}
	if info.Name == "sts" && c.Action == "AssumeRole" {
		return []check{{action: "sts:AssumeRole", context: STSKeys(c)}}
	}
	return []check{{action: Action(info, c.Action)}}
}

// STSKeys are the condition keys an sts:AssumeRole request carries beyond
// the global ones: sts:ExternalId when the caller passed one,
// sts:RoleSessionName, sts:SourceIdentity when passed.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_externalid
func STSKeys(c *sandbox.Call) iampolicy.Context {
	cx := iampolicy.Context{}
	for param, key := range map[string]string{"ExternalId": "sts:ExternalId", "RoleSessionName": "sts:RoleSessionName", "SourceIdentity": "sts:SourceIdentity"} {
		if v := c.Params.Get(param); v != "" {
			cx[key] = []string{v}
		}
	}
	return cx
}

// tagsOnCreate says whether c is a CreateSecret that tags the secret.
func tagsOnCreate(info sandbox.ServiceInfo, c *sandbox.Call) bool {
	if info.Name != "secretsmanager" || c.Action != "CreateSecret" {
		return false
	}
	var in struct{ Tags []json.RawMessage }
	return json.Unmarshal(c.Body, &in) == nil && len(in.Tags) > 0
}

// viaKMS checks what SNS asks KMS on the publisher's behalf when the topic
// is encrypted: kms:GenerateDataKey* and kms:Decrypt on the topic's key, by
// the key policy's rules, with kms:ViaService sns.<region>.amazonaws.com
// (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
func (a *Authorizer) viaKMS(ctx context.Context, c *sandbox.Call, info sandbox.ServiceInfo, p iampolicy.Principal, identity []iampolicy.NamedPolicy, raw []RawPolicy, topic string) *sandbox.Error {
	if info.Name != "sns" || c.Action != "Publish" || a.topics == nil || a.keys == nil {
		return nil
	}
	key, ok := a.topics.TopicKey(topic)
	if !ok {
		return nil
	}
	keyARN := key
	if !strings.HasPrefix(key, "arn:") {
		keyARN = fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, accountOf(topic, c.Principal.Account), key)
	}
	doc, ok := a.keys.KeyPolicy(key)
	var kp *iampolicy.NamedPolicy
	if ok {
		pol, err := a.parse([]byte(doc), iampolicy.Resource)
		if err != nil {
			return denied(info, fmt.Sprintf("the key policy of %s is malformed: %v", keyARN, err))
		}
		kp = &iampolicy.NamedPolicy{Name: "key policy of " + keyARN, Policy: pol}
	}
	for _, action := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
		cx := a.context(ctx, c)
		cx["kms:ViaService"] = []string{"sns." + c.Region + ".amazonaws.com"}
		cx["kms:CallerAccount"] = []string{c.Principal.Account}
		in := &iampolicy.Input{
			Request:          iampolicy.Request{Principal: p, Action: action, Resource: keyARN, ResourceAccount: accountOf(keyARN, c.Principal.Account), Context: cx},
			IdentityPolicies: identity, ResourcePolicy: kp, KeyPolicy: true,
		}
		d := iampolicy.Evaluate(in)
		var rawKP json.RawMessage
		if ok {
			rawKP = json.RawMessage(doc)
		}
		a.note(in, raw, rawKP, d.Allowed)
		if !d.Allowed {
			return denied(info, fmt.Sprintf("the topic %s is encrypted and its key refused: %s", topic, d.Message))
		}
	}
	return nil
}

// resourcePolicy is the resource's policy, if the sandbox keeps one, and
// its document.
func (a *Authorizer) resourcePolicy(service, resource string) (*iampolicy.NamedPolicy, json.RawMessage) {
	var doc json.RawMessage
	var ok bool
	var name string
	switch {
	case service == "sns" && a.topics != nil:
		doc, ok = a.topics.TopicPolicy(resource)
		name = "topic policy of " + resource
	case service == "lambda" && a.functions != nil:
		doc, ok = a.functions.FunctionPolicy(resource)
		name = "function policy of " + resource
	case service == "sts":
		// sts:AssumeRole's resource is the role, and its policy the
		// role's trust policy (in the role's account).
		if roles, isRoles := a.iam.(Roles); isRoles {
			doc, ok = roles.TrustPolicy(resource)
		}
		name = "trust policy of " + resource
	case service == "kms" && a.keys != nil:
		// A key's policy decides every use of the key, with the KMS rule
		// that IAM policies count only where it allows the account
		// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
		var s string
		s, ok = a.keys.KeyPolicy(resource)
		doc = json.RawMessage(s)
		name = "key policy of " + resource
	}
	if !ok {
		return nil, nil
	}
	pol, err := a.parse(doc, iampolicy.Resource)
	if err != nil {
		// The services refuse a malformed policy when it is set; one that
		// got in allows nothing.
		return nil, nil
	}
	return &iampolicy.NamedPolicy{Name: name, Policy: pol}, doc
}

// note tells the recorder, if any, of a decision.
func (a *Authorizer) note(in *iampolicy.Input, identity []RawPolicy, resourcePolicy json.RawMessage, allowed bool) {
	a.noteSession(in, identity, resourcePolicy, nil, allowed)
}

// noteSession is note with the caller's session policies as one document.
func (a *Authorizer) noteSession(in *iampolicy.Input, identity []RawPolicy, resourcePolicy, session json.RawMessage, allowed bool) {
	if a.record == nil {
		return
	}
	r := in.Request
	a.record(Decision{Principal: r.Principal, Action: r.Action, Resource: r.Resource, ResourceAccount: r.ResourceAccount,
		Context: maps.Clone(r.Context), Identity: identity, ResourcePolicy: resourcePolicy, KeyPolicy: in.KeyPolicy, Allowed: allowed,
		RoleTrust: in.RoleTrust, SessionPolicy: session})
}

func (a *Authorizer) parse(doc []byte, kind iampolicy.Kind) (*iampolicy.Policy, error) {
	key := fmt.Sprint(kind) + "\x00" + string(doc)
	a.mu.Lock()
	p, ok := a.parsed[key]
	a.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := iampolicy.Parse(doc, kind)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.parsed[key] = p
	a.mu.Unlock()
	return p, nil
}

// context is the request's global condition keys, as AWS sets them
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html),
// and the keys a calling service put on ctx (aws:SourceArn…).
// aws:SecureTransport is true: AWS's endpoints are TLS, and the sandbox's
// loopback endpoint stands in for them.
func (a *Authorizer) context(ctx context.Context, c *sandbox.Call) iampolicy.Context {
	return GlobalContext(ctx, c, a.now())
}

// GlobalContext is the global condition keys of c's request at now (the
// sandbox clock), as the Authorizer sets them: what STS evaluates a role's
// trust policy with.
func GlobalContext(ctx context.Context, c *sandbox.Call, now time.Time) iampolicy.Context {
	cx := iampolicy.Context{
		"aws:SecureTransport": {"true"},
		"aws:CurrentTime":     {now.UTC().Format(time.RFC3339)},
		"aws:RequestedRegion": {c.Region},
	}
	p := c.Principal
	switch p.Type {
	case "IAMUser":
		cx["aws:username"] = []string{p.UserName}
		cx["aws:userid"] = []string{p.UserID}
		cx["aws:PrincipalArn"] = []string{p.ARN}
		cx["aws:PrincipalAccount"] = []string{p.Account}
		cx["aws:PrincipalType"] = []string{"User"}
	case "AssumedRole":
		cx["aws:userid"] = []string{p.UserID}
		cx["aws:PrincipalArn"] = []string{roleOf(p.ARN)}
		cx["aws:PrincipalAccount"] = []string{p.Account}
		cx["aws:PrincipalType"] = []string{"AssumedRole"}
	}
	for k, v := range sandbox.RequestContext(ctx) {
		cx[k] = []string{v}
	}
	return cx
}

// roleOf is the role ARN of a session ARN
// (arn:aws:sts::111122223333:assumed-role/Role/session → arn:aws:iam::111122223333:role/Role).
func roleOf(session string) string {
	parts := strings.SplitN(session, ":", 6)
	if len(parts) < 6 || !strings.HasPrefix(parts[5], "assumed-role/") {
		return session
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(parts[5], "assumed-role/"), "/")
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], name)
}

func principal(p sandbox.Principal) iampolicy.Principal {
	switch p.Type {
	case "AssumedRole":
		return iampolicy.Principal{ARN: p.ARN, Account: p.Account, Type: iampolicy.AssumedRole}
	case "AWSService":
		return iampolicy.Principal{ARN: p.ARN, Type: iampolicy.Service}
	}
	return iampolicy.Principal{ARN: p.ARN, Account: p.Account, Type: iampolicy.User}
}

// accountOf is an ARN's account, or def for "*" and ARNs without one.
func accountOf(arn, def string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[4] != "" {
		return parts[4]
	}
	return def
}

// denied is the service's own AccessDenied, as each documents it: Query
// services answer 403 AccessDenied (SNS: AuthorizationError), JSON services
// 400 AccessDeniedException, REST services 403 (IoT data:
// ForbiddenException).
func denied(info sandbox.ServiceInfo, msg string) *sandbox.Error {
	switch info.Name {
	case "sns":
		return sandbox.Errorf(http.StatusForbidden, "AuthorizationError", "%s", msg)
	case "iotdata":
		return sandbox.Errorf(http.StatusForbidden, "ForbiddenException", "%s", msg)
	case "sqs":
		return sandbox.Errorf(http.StatusForbidden, "AccessDenied", "%s", msg)
	}
	switch info.Protocol {
	case sandbox.Query:
		return sandbox.Errorf(http.StatusForbidden, "AccessDenied", "%s", msg)
	case sandbox.RESTJSON:
		return sandbox.Errorf(http.StatusForbidden, "AccessDeniedException", "%s", msg)
	}
	return sandbox.Errorf(http.StatusBadRequest, "AccessDeniedException", "%s", msg)
}

// Principal is the evaluator's view of a sandbox principal.
func Principal(p sandbox.Principal) iampolicy.Principal { return principal(p) }
