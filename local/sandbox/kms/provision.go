package kms

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{"AWS::KMS::Key"} }

// Create implements cfn.Provisioner: AWS::KMS::Key with KeyPolicy,
// Description, EnableKeyRotation and Enabled. Ref is the key id; GetAtt Arn
// and KeyId, as the resource's page says:
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html
func (s *Service) Create(_ context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	p := r.Properties
	policy := ""
	switch v := p["KeyPolicy"].(type) {
	case nil:
		policy = DefaultPolicy(r.Partition, r.Account)
	case string:
		policy = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return cfn.Provisioned{}, fmt.Errorf("KeyPolicy: %w", err)
		}
		policy = string(b)
	}
	if spec, _ := p["KeySpec"].(string); spec != "" && spec != "SYMMETRIC_DEFAULT" {
		return cfn.Provisioned{}, fmt.Errorf("KeySpec: the sandbox makes SYMMETRIC_DEFAULT keys only, not %s", spec)
	}
	desc, _ := p["Description"].(string)
	rotation := boolProp(p["EnableKeyRotation"])
	k, err := s.CreateKey(r.Region, desc, policy, rotation)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("KeyPolicy: %w", err)
	}
	if v, ok := p["Enabled"]; ok && !boolProp(v) {
		s.mu.Lock()
		s.st.Keys[k.ID].Enabled = false
		s.mu.Unlock()
	}
	return cfn.Provisioned{Ref: k.ID, Attrs: map[string]string{"Arn": k.ARN, "KeyId": k.ID}}, nil
}

var _ cfn.Provisioner = (*Service)(nil)

// boolProp reads a template boolean, which may be written as a string.
func boolProp(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}
