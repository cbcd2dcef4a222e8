package iotdata

import (
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: iot:Publish acts on the
// topic (resource type "topic", arn:aws:iot:<region>:<account>:topic/<name>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html).
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	return []string{fmt.Sprintf("arn:aws:iot:%s:%s:topic/%s", c.Region, s.srv.Account(), c.Resource)}
}
