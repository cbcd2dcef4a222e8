package sns

import (
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: topic actions act on the
// topic (resource type "topic",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html);
// Unsubscribe on the subscription's topic; ListTopics on none.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	switch c.Action {
	case "ListTopics":
		return []string{"*"}
	case "CreateTopic":
		return []string{s.topicARN(c.Region, c.Params.Get("Name"))}
	case "Unsubscribe":
		sub := c.Params.Get("SubscriptionArn")
		if i := strings.LastIndex(sub, ":"); i > 0 {
			return []string{sub[:i]}
		}
		return []string{"*"}
	case "Publish":
		if t := c.Params.Get("TopicArn"); t != "" {
			return []string{t}
		}
		return []string{c.Params.Get("TargetArn")}
	}
	return []string{c.Params.Get("TopicArn")}
}
