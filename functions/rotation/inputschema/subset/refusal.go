package subset

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Leaf is one complaint of a JSON Schema validation: a keyword that failed
// at a place in the input and has no complaint beneath it. A validation's
// leaves, in the order the library walks the schema (see Refusal), are all
// it says; package inputschema reads the same leaves out of the library's
// error tree, so both checks end in the same refusal.
type Leaf struct {
	// Loc is the instance location: the keys and indices down to the value.
	Loc []string
	// Reason is the library's words (kind.*.LocalizedString in English).
	Reason string
	// Missing is what a failed "required" found missing, in the schema's order.
	Missing []string
	// Unknown is what a failed "additionalProperties": false found, sorted.
	Unknown []string
}

// Refusal turns a validation's leaves into the one *rotation.InvalidInput
// a person reads. leaves are in the library's walk of the schema, with an
// object's members taken in ByLocation's order (the library takes them in
// Go's map order, so inputschema sorts them): keywords in the library's
// order, a value's own keywords before its members' unless they come after
// properties in the library (additionalProperties, allOf, anyOf, not, if).
//
// An unknown field is named before anything else: a misspelt "secretID"
// also leaves "secretId" missing, and the unknown one is the mistake (with
// the missing field at the same place that is closest to it, if one is
// within two edits, suggested). Otherwise the first leaf names the field; a
// failed "required" names its first missing member.
func Refusal(leaves []Leaf) *rotation.InvalidInput {
	if len(leaves) == 0 {
		return nil
	}
	if ii := unknownField(leaves); ii != nil {
		return ii
	}
	leaf := leaves[0]
	field := FieldPath(leaf.Loc)
	if len(leaf.Missing) > 0 {
		return &rotation.InvalidInput{Field: rotation.JoinField(field, leaf.Missing[0]), Reason: "is required"}
	}
	return &rotation.InvalidInput{Field: field, Reason: leaf.Reason}
}

func unknownField(leaves []Leaf) *rotation.InvalidInput {
	i := slices.IndexFunc(leaves, func(l Leaf) bool { return len(l.Unknown) > 0 })
	if i < 0 {
		return nil
	}
	extra := leaves[i]
	name := extra.Unknown[0]
	reason := "is not a known field"
	best, bestDist := "", 3 // suggest only within two edits
	for _, l := range leaves {
		if !slices.Equal(l.Loc, extra.Loc) {
			continue
		}
		for _, m := range l.Missing {
			if d := editDistance(strings.ToLower(name), strings.ToLower(m)); d < bestDist {
				best, bestDist = m, d
			}
		}
	}
	if best != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return &rotation.InvalidInput{Field: rotation.JoinField(FieldPath(extra.Loc), name), Reason: reason}
}

// editDistance is the Levenshtein distance of two short field names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// FieldPath writes an instance location as a refusal names it:
// targets[1].type.
func FieldPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// ByLocation orders instance locations: token by token, a location before
// the ones beneath it, indices (and keys of digits only) by number before
// other keys, other keys by bytes. It is the order in which Refusal takes
// an object's members.
func ByLocation(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if c := byToken(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func byToken(a, b string) int {
	da, db := digits(a), digits(b)
	switch {
	case da && db:
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

// digits reports whether tok is an index: decimal digits only, as
// strconv.Atoi would read it without a sign.
func digits(tok string) bool {
	if tok == "" {
		return false
	}
	for i := range len(tok) {
		if tok[i] < '0' || tok[i] > '9' {
			return false
		}
	}
	return true
}
