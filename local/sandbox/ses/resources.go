package ses

import (
	"fmt"
	"net/mail"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: a send acts on the sending
// identity (resource type "identity", arn:aws:ses:<region>:<account>:identity/<address>,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonses.html).
// A raw send without Source names the message's own From, which the
// sandbox does not parse here: it is named "*".
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	src := c.Params.Get("Source")
	if a, err := mail.ParseAddress(src); err == nil {
		src = a.Address
	}
	if src == "" {
		return []string{"*"}
	}
	return []string{fmt.Sprintf("arn:aws:ses:%s:%s:identity/%s", c.Region, s.srv.Account(), src)}
}
