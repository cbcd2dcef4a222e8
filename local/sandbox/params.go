package sandbox

import (
	"fmt"
	"net/url"
)

// Members reads a Query-protocol list of structures: prefix.1.Field, prefix.2.Field, …
// (e.g. Tags.member.1.Key). It stops at the first missing index.
func Members(p url.Values, prefix string, fields ...string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		m := map[string]string{}
		for _, f := range fields {
			if v, ok := p[fmt.Sprintf("%s.%d.%s", prefix, i, f)]; ok && len(v) > 0 {
				m[f] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

// MemberValues reads a Query-protocol list of scalars: prefix.1, prefix.2, …
func MemberValues(p url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v := p.Get(fmt.Sprintf("%s.%d", prefix, i))
		if v == "" {
			return out
		}
		out = append(out, v)
	}
}

// Required returns the named parameter or the validation error AWS gives for a missing one.
func Required(p url.Values, name string) (string, error) {
	v := p.Get(name)
	if v == "" {
		return "", Errorf(400, "ValidationError", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
