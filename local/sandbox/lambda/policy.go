package lambda

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Permission is one statement of a function's resource-based policy, as
// AddPermission (https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html)
// and AWS::Lambda::Permission take it.
type Permission struct {
	StatementID           string `json:"statementId"`
	Action                string `json:"action"`    // lambda:InvokeFunction, lambda:InvokeFunctionUrl…
	Principal             string `json:"principal"` // "*", an account id, an ARN or a service principal
	SourceArn             string `json:"sourceArn,omitempty"`
	SourceAccount         string `json:"sourceAccount,omitempty"`
	PrincipalOrgID        string `json:"principalOrgId,omitempty"`
	EventSourceToken      string `json:"eventSourceToken,omitempty"`
	FunctionURLAuthType   string `json:"functionUrlAuthType,omitempty"`
	InvokedViaFunctionURL bool   `json:"invokedViaFunctionUrl,omitempty"`
	Qualifier             string `json:"qualifier,omitempty"`
}

var (
	statementIDPattern = regexp.MustCompile(`^[a-zA-Z0-9-_.]{1,100}$`)
	accountID          = regexp.MustCompile(`^\d{12}$`)
)

// statement is the permission as the policy document GetPolicy returns
// holds it: Principal as {"AWS": root ARN or ARN} or {"Service": …}, the
// options as conditions (SourceArn ArnLike, SourceAccount StringEquals,
// FunctionUrlAuthType StringEquals lambda:FunctionUrlAuthType,
// InvokedViaFunctionUrl Bool lambda:InvokedViaFunctionUrl).
func (p Permission) statement(resource string) map[string]any {
	var principal any
	switch {
	case p.Principal == "*":
		principal = "*"
	case accountID.MatchString(p.Principal):
		principal = map[string]any{"AWS": "arn:aws:iam::" + p.Principal + ":root"}
	case strings.HasPrefix(p.Principal, "arn:"):
		principal = map[string]any{"AWS": p.Principal}
	default:
		principal = map[string]any{"Service": p.Principal}
	}
	st := map[string]any{"Sid": p.StatementID, "Effect": "Allow", "Principal": principal, "Action": p.Action, "Resource": resource}
	cond := map[string]map[string]string{}
	add := func(op, key, v string) {
		if v == "" {
			return
		}
		if cond[op] == nil {
			cond[op] = map[string]string{}
		}
		cond[op][key] = v
	}
	add("ArnLike", "AWS:SourceArn", p.SourceArn)
	add("StringEquals", "AWS:SourceAccount", p.SourceAccount)
	add("StringEquals", "aws:PrincipalOrgID", p.PrincipalOrgID)
	add("StringEquals", "lambda:EventSourceToken", p.EventSourceToken)
	add("StringEquals", "lambda:FunctionUrlAuthType", p.FunctionURLAuthType)
	if p.InvokedViaFunctionURL {
		add("Bool", "lambda:InvokedViaFunctionUrl", "true")
	}
	if len(cond) > 0 {
		st["Condition"] = cond
	}
	return st
}

// AddPermission adds a statement to the policy of a function (by name or
// ARN), or replaces the statement of the same id when replace is set (a
// stack update).
func (s *Service) AddPermission(region, function string, p Permission, replace bool) (json.RawMessage, error) {
	if !statementIDPattern.MatchString(p.StatementID) {
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)", p.StatementID)
	}
	if !strings.HasPrefix(p.Action, "lambda:") || p.Principal == "" {
		return nil, sandbox.Errorf(400, "InvalidParameterValueException", "Action must be a lambda: action and Principal is required")
	}
	if p.InvokedViaFunctionURL && p.Action != "lambda:InvokeFunction" {
		return nil, sandbox.Errorf(400, "InvalidParameterValueException", "InvokedViaFunctionUrl is only valid with the lambda:InvokeFunction action")
	}
	switch p.FunctionURLAuthType {
	case "", AuthTypeIAM, AuthTypeNone:
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'functionUrlAuthType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM]", p.FunctionURLAuthType)
	}
	if region == "" {
		region = s.srv.Region()
	}
	fn, err := s.resolve(region, function, p.Qualifier)
	if err != nil {
		return nil, err
	}
	resource := s.functionARN(region, fn.cfg.Name)
	if p.Qualifier != "" {
		resource += ":" + p.Qualifier
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policies == nil {
		s.policies = map[string][]Permission{}
	}
	list := s.policies[fn.cfg.Name]
	for i, old := range list {
		if old.StatementID == p.StatementID {
			if !replace {
				return nil, sandbox.Errorf(409, "ResourceConflictException", "The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", p.StatementID)
			}
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	s.policies[fn.cfg.Name] = append(list, p)
	b, _ := json.Marshal(p.statement(resource))
	return b, nil
}

// RemovePermission takes a statement out of a function's policy.
func (s *Service) RemovePermission(function, statementID string) bool {
	name := functionName(function)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.policies[name] {
		if p.StatementID == statementID {
			s.policies[name] = append(s.policies[name][:i:i], s.policies[name][i+1:]...)
			return true
		}
	}
	return false
}

// FunctionPolicy is the resource-based policy of the function an ARN (or
// name) names, as GetPolicy returns it, for an IAM evaluator; false if the
// function has no statement.
func (s *Service) FunctionPolicy(function string) (json.RawMessage, bool) {
	name := functionName(function)
	region := s.srv.Region()
	if parts := strings.Split(function, ":"); len(parts) >= 7 && parts[0] == "arn" && parts[3] != "" {
		region = parts[3]
	}
	s.mu.RLock()
	perms := append([]Permission(nil), s.policies[name]...)
	s.mu.RUnlock()
	if len(perms) == 0 {
		return nil, false
	}
	sts := make([]any, 0, len(perms))
	for _, p := range perms {
		res := s.functionARN(region, name)
		if p.Qualifier != "" {
			res += ":" + p.Qualifier
		}
		sts = append(sts, p.statement(res))
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": sts})
	return b, true
}

// addPermissionAPI is AddPermission (POST /2015-03-31/functions/{name}/policy).
func (s *Service) addPermissionAPI(c *sandbox.Call) (any, error) {
	var in struct {
		StatementID           string `json:"StatementId"`
		Action                string `json:"Action"`
		Principal             string `json:"Principal"`
		SourceArn             string `json:"SourceArn"`
		SourceAccount         string `json:"SourceAccount"`
		PrincipalOrgID        string `json:"PrincipalOrgID"`
		EventSourceToken      string `json:"EventSourceToken"`
		Qualifier             string `json:"Qualifier"`
		FunctionURLAuthType   string `json:"FunctionUrlAuthType"`
		InvokedViaFunctionURL bool   `json:"InvokedViaFunctionUrl"`
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if in.Qualifier == "" {
		in.Qualifier = c.HTTP.URL.Query().Get("Qualifier")
	}
	p := Permission{StatementID: in.StatementID, Action: in.Action, Principal: in.Principal, SourceArn: in.SourceArn,
		SourceAccount: in.SourceAccount, PrincipalOrgID: in.PrincipalOrgID, EventSourceToken: in.EventSourceToken,
		FunctionURLAuthType: in.FunctionURLAuthType, InvokedViaFunctionURL: in.InvokedViaFunctionURL, Qualifier: in.Qualifier}
	st, err := s.AddPermission(c.Region, c.Resource, p, false)
	if err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"functionName": c.Resource, "statementId": p.StatementID, "action": p.Action, "principal": p.Principal})
	raw, err := jsonRaw(map[string]string{"Statement": string(st)})
	if raw != nil {
		raw.Status = http.StatusCreated
	}
	return raw, err
}

// getPolicyAPI is GetPolicy (GET /2015-03-31/functions/{name}/policy).
func (s *Service) getPolicyAPI(c *sandbox.Call) (any, error) {
	fn, err := s.resolve(c.Region, c.Resource, c.HTTP.URL.Query().Get("Qualifier"))
	if err != nil {
		return nil, err
	}
	doc, ok := s.FunctionPolicy(s.functionARN(c.Region, fn.cfg.Name))
	if !ok {
		return nil, sandbox.Errorf(404, "ResourceNotFoundException", "The resource you requested does not exist.")
	}
	return jsonRaw(map[string]string{"Policy": string(doc), "RevisionId": sandbox.NewUUID()})
}

// urlConfigDoc is FunctionUrlConfig
// (https://docs.aws.amazon.com/lambda/latest/api/API_FunctionUrlConfig.html).
func (s *Service) urlConfigDoc(u URLConfig) map[string]any {
	const iso = "2006-01-02T15:04:05.000000Z"
	return map[string]any{
		"FunctionUrl": u.URL(), "FunctionArn": s.functionARN(u.Region, u.Function), "AuthType": u.AuthType,
		"CreationTime": u.Created.UTC().Format(iso), "LastModifiedTime": u.Modified.UTC().Format(iso), "InvokeMode": u.InvokeMode,
	}
}

// urlConfigAPI is CreateFunctionUrlConfig (POST) and GetFunctionUrlConfig
// (GET) at /2021-10-31/functions/{name}/url.
func (s *Service) urlConfigAPI(c *sandbox.Call) (any, error) {
	if c.Action == "GetFunctionUrlConfig" {
		fn, err := s.resolve(c.Region, c.Resource, c.HTTP.URL.Query().Get("Qualifier"))
		if err != nil {
			return nil, err
		}
		u, ok := s.URLOf(fn.cfg.Name)
		if !ok {
			return nil, sandbox.Errorf(404, "ResourceNotFoundException", "The resource you requested does not exist.")
		}
		return jsonRaw(s.urlConfigDoc(u))
	}
	var in struct{ AuthType, InvokeMode string }
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if in.InvokeMode != "" && in.InvokeMode != "BUFFERED" {
		return nil, sandbox.Errorf(400, "InvalidParameterValueException", "the sandbox serves BUFFERED function URLs only, not %s", in.InvokeMode)
	}
	u, err := s.CreateURL(c.Region, c.Resource, in.AuthType, c.HTTP.URL.Query().Get("Qualifier"), "")
	if err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"functionName": c.Resource, "authType": in.AuthType})
	doc := s.urlConfigDoc(u)
	delete(doc, "LastModifiedTime")
	raw, err := jsonRaw(doc)
	if raw != nil {
		raw.Status = http.StatusCreated
	}
	return raw, err
}

// Permissions lists each function's policy statements, by function (admin API).
func (s *Service) Permissions() map[string][]Permission {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]Permission{}
	for fn, ps := range s.policies {
		out[fn] = append([]Permission(nil), ps...)
	}
	return out
}

// URLs lists the function URLs, by function name.
func (s *Service) URLs() []URLConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]URLConfig, 0, len(s.urls))
	for _, u := range s.urls {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}
