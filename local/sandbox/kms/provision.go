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
// Description, EnableKeyRotation, Enabled, KeySpec (SYMMETRIC_DEFAULT or
// HMAC_224/256/384/512) and KeyUsage (GENERATE_VERIFY_MAC for HMAC). Ref is the key id; GetAtt Arn
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
	spec, _ := p["KeySpec"].(string)
	usage, _ := p["KeyUsage"].(string)
	desc, _ := p["Description"].(string)
	rotation := boolProp(p["EnableKeyRotation"])
	k, err := s.NewKey(r.Region, KeyOptions{Description: desc, Policy: policy, KeySpec: spec, KeyUsage: usage, Rotation: rotation})
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("KeySpec %q, KeyUsage %q, KeyPolicy: %w", spec, usage, err)
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
