package lambda

import (
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: a function's actions act
// on the function (resource type "function",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html),
// named by name or ARN; ListFunctions on none.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	if c.Resource == "" {
		return []string{"*"}
	}
	if strings.HasPrefix(c.Resource, "arn:") {
		return []string{c.Resource}
	}
	return []string{s.functionARN(c.Region, c.Resource)}
}
