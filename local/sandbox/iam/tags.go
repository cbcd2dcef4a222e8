package iam

import (
	"regexp"
	"unicode/utf8"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Tag keys and values as IAM takes them: a key of 1 to 128 characters, a
// value of 0 to 256, each of letters, digits, spaces and _.:/=+-@
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html).
var (
	tagKeyPattern   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValuePattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// checkTags refuses what IAM refuses, with its ValidationError; param is
// the request's list ("tags").
func checkTags(tags [][2]string) error {
	if len(tags) > 50 {
		return sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, t := range tags {
		k, v := t[0], t[1]
		switch {
		case utf8.RuneCountInString(k) > 128:
			return sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'tags.X.member.key' failed to satisfy constraint: Member must have length less than or equal to 128.", k)
		case !tagKeyPattern.MatchString(k):
			return sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'tags.X.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", k)
		case utf8.RuneCountInString(v) > 256:
			return sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'tags.X.member.value' failed to satisfy constraint: Member must have length less than or equal to 256.", v)
		case !tagValuePattern.MatchString(v):
			return sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'tags.X.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", v)
		}
	}
	return nil
}
