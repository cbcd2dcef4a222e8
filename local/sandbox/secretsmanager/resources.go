package secretsmanager

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: every secret action acts
// on the secret's full ARN, random suffix included (resource type
// "Secret", https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html);
// ListSecrets supports no resource. A secret that does not exist is named
// by the ARN or name the caller gave.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	if c.Action == "ListSecrets" {
		return []string{"*"}
	}
	var in struct{ SecretId, Name string }
	_ = json.Unmarshal(c.Body, &in) // a bad body is refused by the action itself
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Action == "CreateSecret" {
		return []string{s.newARN(c.Region, in.Name)}
	}
	if sec, err := s.find(c.Region, in.SecretId); err == nil {
		return []string{sec.ARN}
	}
	if strings.HasPrefix(in.SecretId, "arn:") {
		return []string{in.SecretId}
	}
	return []string{fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s", c.Region, s.account, in.SecretId)}
}
