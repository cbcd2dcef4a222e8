package cfn

import (
	"crypto/rand"
	"strings"
)

// PhysicalName is the name CloudFormation gives a resource whose template
// names none: "<stack>-<logicalId>-<random>", the stack name and the logical
// id shortened so the whole fits max characters.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html
func PhysicalName(r Resource, max int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	suffix := string(b)
	stack, id := r.StackName, r.LogicalID
	room := max - len(suffix) - 2
	if room < 2 {
		return suffix[:min(max, len(suffix))]
	}
	for len(stack)+len(id) > room {
		if len(stack) >= len(id) {
			stack = stack[:len(stack)-1]
		} else {
			id = id[:len(id)-1]
		}
	}
	return strings.Join([]string{stack, id, suffix}, "-")
}
