package sts

import "github.com/keyrotator/keyrotator/local/sandbox"

// ResourceARNs implements sandbox.ResourceNamer: GetCallerIdentity needs no
// permission, and an explicit Deny does not stop it ("No permissions are
// required to perform this operation",
// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
// AssumeRole acts on the role (resource type "role",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	switch c.Action {
	case "GetCallerIdentity":
		return nil
	case "AssumeRole":
		if arn := c.Params.Get("RoleArn"); arn != "" {
			return []string{arn}
		}
	}
	return []string{"*"}
}
