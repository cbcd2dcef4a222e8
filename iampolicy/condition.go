package iampolicy

import (
	"bytes"
	"encoding/base64"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// condOp is a condition operator without its ForAnyValue:/ForAllValues:
// prefix and IfExists suffix.
type condOp int

const (
	opStringEquals condOp = iota
	opStringNotEquals
	opStringEqualsIgnoreCase
	opStringNotEqualsIgnoreCase
	opStringLike
	opStringNotLike
	opNumericEquals
	opNumericNotEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateNotEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opBinaryEquals
	opIPAddress
	opNotIPAddress
	opArnEquals
	opArnLike
	opArnNotEquals
	opArnNotLike
	opNull
)

// The operators AWS documents.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
var operators = map[string]condOp{
	"StringEquals": opStringEquals, "StringNotEquals": opStringNotEquals,
	"StringEqualsIgnoreCase": opStringEqualsIgnoreCase, "StringNotEqualsIgnoreCase": opStringNotEqualsIgnoreCase,
	"StringLike": opStringLike, "StringNotLike": opStringNotLike,
	"NumericEquals": opNumericEquals, "NumericNotEquals": opNumericNotEquals,
	"NumericLessThan": opNumericLessThan, "NumericLessThanEquals": opNumericLessThanEquals,
	"NumericGreaterThan": opNumericGreaterThan, "NumericGreaterThanEquals": opNumericGreaterThanEquals,
	"DateEquals": opDateEquals, "DateNotEquals": opDateNotEquals,
	"DateLessThan": opDateLessThan, "DateLessThanEquals": opDateLessThanEquals,
	"DateGreaterThan": opDateGreaterThan, "DateGreaterThanEquals": opDateGreaterThanEquals,
	"Bool": opBool, "BinaryEquals": opBinaryEquals,
	"IpAddress": opIPAddress, "NotIpAddress": opNotIPAddress,
	"ArnEquals": opArnEquals, "ArnLike": opArnLike, "ArnNotEquals": opArnNotEquals, "ArnNotLike": opArnNotLike,
	"Null": opNull,
}

// negated operators match a key that is absent, and combine several policy
// values with NOR.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
func (o condOp) negated() bool {
	switch o {
	case opStringNotEquals, opStringNotEqualsIgnoreCase, opStringNotLike, opNumericNotEquals,
		opDateNotEquals, opNotIPAddress, opArnNotEquals, opArnNotLike:
		return true
	}
	return false
}

type setQualifier int

const (
	setNone setQualifier = iota
	setForAnyValue
	setForAllValues
)

func parseOperator(name string) (op condOp, set setQualifier, ifExists bool, ok bool) {
	rest := name
	switch {
	case strings.HasPrefix(rest, "ForAnyValue:"):
		set, rest = setForAnyValue, strings.TrimPrefix(rest, "ForAnyValue:")
	case strings.HasPrefix(rest, "ForAllValues:"):
		set, rest = setForAllValues, strings.TrimPrefix(rest, "ForAllValues:")
	}
	if r, found := strings.CutSuffix(rest, "IfExists"); found {
		rest, ifExists = r, true
	}
	op, ok = operators[rest]
	if op == opNull && (ifExists || set != setNone) {
		return op, set, ifExists, false
	}
	return op, set, ifExists, ok
}

// eval decides one condition against the request context.
//
// A key absent from the request makes the condition false, except that a
// negated operator (StringNotEquals, ArnNotLike…) is then true, …IfExists is
// true, Null tests presence itself, and ForAllValues: is true (the empty set
// is a subset of anything) while ForAnyValue: is false.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
func (c *Condition) eval(ctx Context, vars *varSource) bool {
	vals, present := ctx.lookup(c.Key)
	if c.op == opNull {
		for _, v := range c.Values {
			if strings.EqualFold(v, strconv.FormatBool(!present)) {
				return true
			}
		}
		return false
	}
	switch c.set {
	case setForAllValues:
		if !present || len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if !c.matchOne(v, vars) {
				return false
			}
		}
		return true
	case setForAnyValue:
		if !present || len(vals) == 0 {
			return c.ifExists && !present
		}
		for _, v := range vals {
			if c.matchOne(v, vars) {
				return true
			}
		}
		return false
	}
	if !present {
		return c.ifExists || c.op.negated()
	}
	if len(vals) != 1 {
		// A single-valued operator over a multivalued key: the key holds a
		// set, which no single-valued comparison matches.
		return false
	}
	return c.matchOne(vals[0], vars)
}

// matchOne compares one request value with the condition's policy values:
// OR over them for a positive operator, NOR for a negated one.
func (c *Condition) matchOne(v string, vars *varSource) bool {
	hit := false
	for _, pv := range c.Values {
		if vars != nil && strings.Contains(pv, "${") && substitutes(c.op) {
			var ok bool
			pv, ok = vars.substitute(pv, c.op == opStringLike || c.op == opStringNotLike || c.op == opArnLike || c.op == opArnNotLike || c.op == opArnEquals || c.op == opArnNotEquals)
			if !ok {
				// An unresolvable variable invalidates the statement.
				return false
			}
		}
		if c.op.compare(v, pv) {
			hit = true
			break
		}
	}
	if c.op.negated() {
		return !hit
	}
	return hit
}

// substitutes says which operators resolve policy variables in their values
// (the string and ARN families; the doc marks the others "not supported").
func substitutes(o condOp) bool {
	switch o {
	case opStringEquals, opStringNotEquals, opStringEqualsIgnoreCase, opStringNotEqualsIgnoreCase,
		opStringLike, opStringNotLike, opArnEquals, opArnLike, opArnNotEquals, opArnNotLike, opBool:
		return true
	}
	return false
}

// compare is the positive form of the operator on one value pair.
func (o condOp) compare(v, pv string) bool {
	switch o {
	case opStringEquals, opStringNotEquals:
		return v == pv
	case opStringEqualsIgnoreCase, opStringNotEqualsIgnoreCase:
		return strings.EqualFold(v, pv)
	case opStringLike, opStringNotLike:
		return glob(pv, v, false)
	case opNumericEquals, opNumericNotEquals, opNumericLessThan, opNumericLessThanEquals,
		opNumericGreaterThan, opNumericGreaterThanEquals:
		a, ok1 := new(big.Rat).SetString(strings.TrimSpace(v))
		b, ok2 := new(big.Rat).SetString(strings.TrimSpace(pv))
		if !ok1 || !ok2 {
			return false
		}
		return cmpOK(o, a.Cmp(b))
	case opDateEquals, opDateNotEquals, opDateLessThan, opDateLessThanEquals,
		opDateGreaterThan, opDateGreaterThanEquals:
		a, ok1 := parseDate(v)
		b, ok2 := parseDate(pv)
		if !ok1 || !ok2 {
			return false
		}
		return cmpOK(o, a.Compare(b))
	case opBool:
		return strings.EqualFold(v, pv)
	case opBinaryEquals:
		a, err1 := base64.StdEncoding.DecodeString(v)
		b, err2 := base64.StdEncoding.DecodeString(pv)
		return err1 == nil && err2 == nil && bytes.Equal(a, b)
	case opIPAddress, opNotIPAddress:
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		if pfx, err := netip.ParsePrefix(pv); err == nil {
			return pfx.Contains(ip)
		}
		a, err := netip.ParseAddr(pv)
		return err == nil && a == ip
	case opArnEquals, opArnLike, opArnNotEquals, opArnNotLike:
		return matchARN(pv, v)
	}
	return false
}

func cmpOK(o condOp, c int) bool {
	switch o {
	case opNumericEquals, opNumericNotEquals, opDateEquals, opDateNotEquals:
		return c == 0
	case opNumericLessThan, opDateLessThan:
		return c < 0
	case opNumericLessThanEquals, opDateLessThanEquals:
		return c <= 0
	case opNumericGreaterThan, opDateGreaterThan:
		return c > 0
	case opNumericGreaterThanEquals, opDateGreaterThanEquals:
		return c >= 0
	}
	return false
}

// parseDate reads the date forms AWS accepts: ISO 8601 (W3C profile) or
// epoch seconds.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Date
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02", "2006-01"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Context is a request's context keys (aws:SourceArn, kms:ViaService…) and
// their values; a single-valued key holds one value. Key names compare
// case-insensitively, as AWS's do.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
type Context map[string][]string

func (c Context) lookup(key string) ([]string, bool) {
	if v, ok := c[key]; ok {
		return v, true
	}
	for k, v := range c {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// varSource resolves policy variables (${aws:username}, ${aws:SourceAccount}…)
// from the request context; nil when the policy's Version has none.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
type varSource struct{ ctx Context }

// substitute replaces each ${key} (or ${key, 'default'}) with the key's value
// and ${*}, ${?}, ${$} with the literal character. In a wildcard pattern
// (glob true) what a variable brings in is literal, so its '*', '?' and '\\'
// are escaped for glob. ok is false when a key is absent and has no
// default: the element then matches nothing.
func (v *varSource) substitute(s string, glob bool) (string, bool) {
	lit := func(b *strings.Builder, x string) {
		if !glob {
			b.WriteString(x)
			return
		}
		for _, r := range x {
			if r == '*' || r == '?' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		switch name {
		case "*", "?", "$":
			lit(&b, name)
			continue
		}
		def, hasDef := "", false
		if k := strings.IndexByte(name, ','); k >= 0 {
			d := strings.TrimSpace(name[k+1:])
			if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
				def, hasDef = d[1:len(d)-1], true
			}
			name = strings.TrimSpace(name[:k])
		}
		vals, ok := v.ctx.lookup(name)
		switch {
		case ok && len(vals) == 1:
			lit(&b, vals[0])
		case hasDef:
			lit(&b, def)
		default:
			return "", false
		}
	}
}
