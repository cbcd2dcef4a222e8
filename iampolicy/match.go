package iampolicy

import (
	"strings"
	"unicode/utf8"
)

// glob matches s against pattern, where '*' is any run of characters (none
// included) and '?' is exactly one; fold makes the comparison
// case-insensitive, as action names are. A '\\' makes the next character
// literal: policy variables substitute their values escaped, so ${*} and a
// value holding '*' match only a '*'.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
func glob(pattern, s string, fold bool) bool {
	// Iterative matcher with one backtrack point: linear in practice, no
	// regexp compiled per request.
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			pc, pw := utf8.DecodeRuneInString(pattern[p:])
			sc, sw := utf8.DecodeRuneInString(s[i:])
			switch {
			case pc == '*':
				starP, starI = p, i
				p += pw
				continue
			case pc == '\\' && p+pw < len(pattern):
				lc, lw := utf8.DecodeRuneInString(pattern[p+pw:])
				if lc == sc || fold && equalFoldRune(lc, sc) {
					p += pw + lw
					i += sw
					continue
				}
			case pc == '?' || pc == sc || fold && equalFoldRune(pc, sc):
				p += pw
				i += sw
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry.
		_, sw := utf8.DecodeRuneInString(s[starI:])
		starI += sw
		i = starI
		p = starP + 1
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func equalFoldRune(a, b rune) bool {
	return strings.EqualFold(string(a), string(b))
}

// matchAction reports whether a policy's action pattern covers the request's
// action ("service:Name"): case-insensitive, '*' and '?' wildcards.
func matchAction(pattern, action string) bool {
	if pattern == "*" {
		return true
	}
	return glob(pattern, action, true)
}

// arnParts splits an ARN into its six colon-separated parts (the last keeps
// any further colons); ok is false for fewer than six.
func arnParts(arn string) (parts [6]string, ok bool) {
	for i := range 5 {
		j := strings.IndexByte(arn, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], arn = arn[:j], arn[j+1:]
	}
	parts[5] = arn
	return parts, true
}

// matchResource reports whether a Resource pattern of a statement covers the
// request's resource ARN. Each of the first five ARN parts is matched on its
// own (a wildcard does not cross a colon there); in the resource part the
// resource type before the first '/' or ':' must be literal — AWS names a
// wildcard there "incorrect wildcard usage"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html) —
// and the rest is a wildcard pattern in which policy variables have been
// replaced (vars nil for a 2008-10-17 policy, where ${…} is literal).
// resolved is false when a variable names a key the request lacks: AWS says
// this "might cause the entire statement to be invalid"; we read it per
// entry, as iam-simulate does: such an entry matches nothing under Resource,
// and under NotResource keeps the statement from applying.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
//
// A pattern shorter than six parts has its missing parts read as "*" in an
// identity-based policy; in a resource-based policy only when it holds a
// wildcard (as iam-simulate reads them; AWS's docs are silent).
func matchResource(pattern, resource string, vars *varSource, kind Kind) (match, resolved bool) {
	if pattern == "*" {
		return true, true
	}
	pp, ok := arnParts(pattern)
	if !ok {
		if kind == Resource && !strings.Contains(pattern, "*") {
			return false, true
		}
		for strings.Count(pattern, ":") < 5 {
			pattern += ":*"
		}
		pp, _ = arnParts(pattern)
	}
	rp, ok := arnParts(resource)
	if !ok {
		return false, true
	}
	for i := range 5 {
		if !glob(pp[i], rp[i], false) {
			return false, true
		}
	}
	prefix := resourceTypePrefix(pp)
	if !strings.HasPrefix(rp[5], prefix) {
		return false, true
	}
	id := pp[5][len(prefix):]
	if vars != nil && strings.Contains(id, "${") {
		var ok bool
		id, ok = vars.substitute(id, true)
		if !ok {
			return false, false
		}
	}
	return glob(id, rp[5][len(prefix):], false), true
}

// resourceTypePrefix is the literal resource-type prefix of an ARN's
// resource part ("user/", "secret:"), empty when there is none or the ARN is
// an S3 one (bucket and object names carry no type).
func resourceTypePrefix(p [6]string) string {
	if p[2] == "s3" && p[3] == "" && p[4] == "" {
		return ""
	}
	r := p[5]
	i := strings.IndexAny(r, "/:")
	if i < 0 {
		return ""
	}
	return r[:i+1]
}

// matchARN is ArnEquals/ArnLike: the six parts are compared one by one,
// each a wildcard pattern; a value that is not an ARN matches nothing.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
func matchARN(pattern, value string) bool {
	pp, ok := arnParts(pattern)
	if !ok {
		return false
	}
	vp, ok := arnParts(value)
	if !ok {
		return false
	}
	for i := range 6 {
		if !glob(pp[i], vp[i], false) {
			return false
		}
	}
	return true
}
