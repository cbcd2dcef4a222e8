package iam

import (
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: each user action acts on
// the user (resource type "user", arn:aws:iam::<account>:user/<path><name>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
// Without UserName, an IAM user's key call acts on the caller itself.
// GetAccessKeyLastUsed acts on the key's owner.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch c.Action {
	case "ListUsers", "GenerateCredentialReport", "GetCredentialReport": // no resource types
		return []string{"*"}
	case "SimulatePrincipalPolicy": // the user or role simulated
		return []string{c.Params.Get("PolicySourceArn")}
	case "GetAccessKeyLastUsed":
		if k, ok := s.st.Keys[c.Params.Get("AccessKeyId")]; ok {
			if u, ok := s.st.Users[k.User]; ok {
				return []string{s.userARN(u)}
			}
		}
		return []string{"*"} // no such key: IAM answers for the account
	case "CreateUser":
		path := c.Params.Get("Path")
		if path == "" {
			path = "/"
		}
		return []string{fmt.Sprintf("arn:aws:iam::%s:user%s%s", s.account, path, c.Params.Get("UserName"))}
	}
	name := c.Params.Get("UserName")
	if name == "" && c.Principal.Type == "IAMUser" {
		name = c.Principal.UserName
	}
	if u, ok := s.st.Users[name]; ok {
		return []string{s.userARN(u)}
	}
	return []string{fmt.Sprintf("arn:aws:iam::%s:user/%s", s.account, name)}
}
