package cloudwatch

import (
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: DescribeAlarms and
// DescribeAlarmHistory act on alarms (resource type "alarm",
// arn:aws:cloudwatch:<region>:<account>:alarm:<name>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html):
// the ones named, or every alarm (alarm:*) when none is.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	arn := func(name string) string {
		return fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", c.Region, s.srv.Account(), name)
	}
	var names []string
	if c.Params != nil {
		for i := 1; ; i++ {
			n := c.Params.Get(fmt.Sprintf("AlarmNames.member.%d", i))
			if n == "" {
				break
			}
			names = append(names, arn(n))
		}
		if n := c.Params.Get("AlarmName"); n != "" {
			names = append(names, arn(n))
		}
	}
	if len(names) == 0 {
		return []string{arn("*")}
	}
	return names
}
