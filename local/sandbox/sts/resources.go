package sts

import "github.com/keyrotator/keyrotator/local/sandbox"

// ResourceARNs implements sandbox.ResourceNamer: GetCallerIdentity needs no
// permission, and an explicit Deny does not stop it ("No permissions are
// required to perform this operation",
// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	if c.Action == "GetCallerIdentity" {
		return nil
	}
	return []string{"*"}
}
