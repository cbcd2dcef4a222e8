package kms

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: a key's actions act on the
// key (resource type "key",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html),
// named by id, key ARN or alias (an alias resolves to its key, as KMS
// authorizes the key an alias points at).
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	if c.Action == "CreateKey" {
		return []string{"*"} // no key yet: kms:CreateKey takes no resource
	}
	var in struct {
		KeyID string `json:"KeyId"`
	}
	_ = json.Unmarshal(c.Body, &in)
	s.mu.Lock()
	k, ok := s.lookup(in.KeyID)
	s.mu.Unlock()
	if ok {
		return []string{k.ARN}
	}
	if strings.HasPrefix(in.KeyID, "arn:") {
		return []string{in.KeyID}
	}
	return []string{fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, s.srv.Account(), in.KeyID)}
}
