package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// IAM's resource types, as the CloudFormation User Guide documents them:
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-role.html
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-policy.html
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-managedpolicy.html
const (
	typeRole          = "AWS::IAM::Role"
	typePolicy        = "AWS::IAM::Policy"
	typeManagedPolicy = "AWS::IAM::ManagedPolicy"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{typeRole, typePolicy, typeManagedPolicy} }

// Create implements cfn.Provisioner, in the IAM of the stack's account.
func (s *Service) Create(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	if r.Account != "" && r.Account != s.account {
		m := s.InAccount(r.Account)
		if m == nil {
			return cfn.Provisioned{}, fmt.Errorf("iam: the sandbox holds no account %s", r.Account)
		}
		return m.Create(ctx, r)
	}
	switch r.Type {
	case typeRole:
		return s.createRoleResource(r)
	case typePolicy:
		return s.createPolicyResource(r)
	case typeManagedPolicy:
		return s.createManagedPolicyResource(r)
	}
	return cfn.Provisioned{}, fmt.Errorf("iam: no provisioner for %s", r.Type)
}

// createRoleResource: CreateRole, then PutRolePolicy for each of Policies
// and AttachRolePolicy for each of ManagedPolicyArns. Ref is the role
// name; Fn::GetAtt gives Arn and RoleId.
func (s *Service) createRoleResource(r cfn.Resource) (cfn.Provisioned, error) {
	name, err := r.Str("RoleName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		name = cfn.PhysicalName(r, 64)
		if r.Previous != nil {
			name = r.Previous.Ref
		}
	}
	path, err := r.Str("Path")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	desc, err := r.Str("Description")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	trust, err := r.Document("AssumeRolePolicyDocument")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if trust == nil {
		return cfn.Provisioned{}, errors.New("property AssumeRolePolicyDocument: required")
	}
	maxSession, _, err := r.Int("MaxSessionDuration")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	managed, err := r.Strings("ManagedPolicyArns")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	inline, err := inlinePolicies(r)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	var role *Role
	if r.Previous != nil {
		role = s.updateRole(name, desc, trust, maxSession) // nil if it is gone
	}
	if role == nil {
		if role, err = s.CreateRole(name, path, desc, trust, maxSession); err != nil {
			return cfn.Provisioned{}, err
		}
	}
	for _, p := range inline {
		if err := s.PutRolePolicy(role.Name, p.name, p.doc); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Policies: %w", err)
		}
	}
	for _, arn := range managed {
		if err := s.AttachRolePolicy(role.Name, arn); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property ManagedPolicyArns: %w", err)
		}
	}
	arn, _ := s.RoleARN(role.Name)
	return cfn.Provisioned{Ref: role.Name, Attrs: map[string]string{"Arn": arn, "RoleId": role.ID}}, nil
}

type namedDoc struct {
	name string
	doc  []byte
}

// inlinePolicies reads a role's Policies: [{PolicyName, PolicyDocument}].
func inlinePolicies(r cfn.Resource) ([]namedDoc, error) {
	raw, ok := r.Properties["Policies"]
	if !ok || raw == nil {
		return nil, nil
	}
	l, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("property Policies: expected a list, got %T", raw)
	}
	var out []namedDoc
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("property Policies[%d]: expected {PolicyName, PolicyDocument}", i)
		}
		p := cfn.Resource{Properties: m}
		name, err := p.RequiredStr("PolicyName")
		if err != nil {
			return nil, fmt.Errorf("property Policies[%d]: %w", i, err)
		}
		doc, err := p.Document("PolicyDocument")
		if err != nil || doc == nil {
			return nil, fmt.Errorf("property Policies[%d]: PolicyDocument: a JSON policy is required", i)
		}
		out = append(out, namedDoc{name, doc})
	}
	return out, nil
}

// attachments reads the Roles, Users and Groups a policy goes on. The
// sandbox's IAM has no groups.
func attachments(r cfn.Resource) (roles, users []string, err error) {
	if roles, err = r.Strings("Roles"); err != nil {
		return nil, nil, err
	}
	if users, err = r.Strings("Users"); err != nil {
		return nil, nil, err
	}
	groups, err := r.Strings("Groups")
	if err != nil {
		return nil, nil, err
	}
	if len(groups) > 0 {
		return nil, nil, errors.New("property Groups: the sandbox's IAM has no groups")
	}
	for i := range roles {
		roles[i] = nameOf(roles[i])
	}
	return roles, users, nil
}

// createPolicyResource puts an inline policy on each of its Roles and
// Users (iam:PutRolePolicy, iam:PutUserPolicy): AWS::IAM::Policy is no
// entity of its own. Ref and Fn::GetAtt Id are a generated id.
func (s *Service) createPolicyResource(r cfn.Resource) (cfn.Provisioned, error) {
	name, err := r.RequiredStr("PolicyName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	doc, err := r.Document("PolicyDocument")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if doc == nil {
		return cfn.Provisioned{}, errors.New("property PolicyDocument: required")
	}
	roles, users, err := attachments(r)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if len(roles)+len(users) == 0 {
		return cfn.Provisioned{}, errors.New("at least one of [Groups, Roles, Users] must be non-empty")
	}
	for _, role := range roles {
		if err := s.PutRolePolicy(role, name, doc); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Roles: %w", err)
		}
	}
	for _, user := range users {
		if err := s.PutUserPolicy(user, name, doc); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Users: %w", err)
		}
	}
	id := cfn.PhysicalName(r, 64)
	if r.Previous != nil {
		id = r.Previous.Ref
	}
	return cfn.Provisioned{Ref: id, Attrs: map[string]string{"Id": id}}, nil
}

// createManagedPolicyResource: CreatePolicy, then attach it to its Roles and
// Users. Ref is the policy ARN.
func (s *Service) createManagedPolicyResource(r cfn.Resource) (cfn.Provisioned, error) {
	name, err := r.Str("ManagedPolicyName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		name = cfn.PhysicalName(r, 128)
		if r.Previous != nil {
			name = nameOf(r.Previous.Ref)
		}
	}
	path, err := r.Str("Path")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	desc, err := r.Str("Description")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	doc, err := r.Document("PolicyDocument")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	roles, users, err := attachments(r)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	var p *ManagedPolicy
	if r.Previous != nil {
		p = s.updatePolicy(r.Previous.Ref, desc, doc) // nil if it is gone
	}
	if p == nil {
		if p, err = s.CreatePolicy(name, path, desc, doc); err != nil {
			return cfn.Provisioned{}, err
		}
	}
	for _, role := range roles {
		if err := s.AttachRolePolicy(role, p.ARN); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Roles: %w", err)
		}
	}
	for _, user := range users {
		if err := s.AttachUserPolicy(user, p.ARN); err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property Users: %w", err)
		}
	}
	return cfn.Provisioned{Ref: p.ARN, Attrs: map[string]string{"PolicyArn": p.ARN, "PolicyId": p.ID, "DefaultVersionId": "v1"}}, nil
}

var _ cfn.Provisioner = (*Service)(nil)
