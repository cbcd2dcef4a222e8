package scheduler

import (
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: GetSchedule acts on the
// schedule (resource type "schedule",
// arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridgescheduler.html);
// ListSchedules on none.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	if c.Action != "GetSchedule" {
		return []string{"*"}
	}
	group := "default"
	if c.HTTP != nil {
		if g := c.HTTP.URL.Query().Get("groupName"); g != "" {
			group = g
		}
	}
	return []string{fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", c.Region, s.srv.Account(), group, c.Resource)}
}
