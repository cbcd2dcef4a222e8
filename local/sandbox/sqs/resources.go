package sqs

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: a queue's actions act on
// the queue (resource type "queue", arn:aws:sqs:<region>:<account>:<name>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html),
// named by its URL (…/<account>/<name>) or, for CreateQueue and
// GetQueueUrl, its name.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	var in struct {
		QueueURL  string `json:"QueueUrl"`
		QueueName string `json:"QueueName"`
	}
	_ = json.Unmarshal(c.Body, &in) // a bad body is refused by the action itself
	account, name := s.srv.Account(), in.QueueName
	if in.QueueURL != "" {
		parts := strings.Split(strings.TrimRight(in.QueueURL, "/"), "/")
		if len(parts) >= 2 {
			account, name = parts[len(parts)-2], parts[len(parts)-1]
		}
	}
	if name == "" {
		return []string{"*"}
	}
	return []string{fmt.Sprintf("arn:aws:sqs:%s:%s:%s", c.Region, account, name)}
}
