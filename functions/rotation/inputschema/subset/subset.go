// Package subset holds a rotation's input to its JSON Schema
// (functions/rotation/input.schema.json) without a JSON Schema library: a
// validator of the keywords that schema uses, read from the schema itself
// on first use. It is the Validate Lambda's check. The library that package
// inputschema uses compiles every draft's meta-schemas in its package init
// (about 4 ms and 1.7 MB at each cold start, which would make Validate's
// cold start 2.3× a Go+SDK binary's; issue 12 allows 1.2×).
//
// It refuses what the library refuses and names the same field with the
// same words: inputschema's differential test and fuzz target run both on
// every input and fail on any difference. A keyword it does not implement
// makes the schema fail to compile (every Check then fails, and the tests
// say which keyword), so a schema change cannot silently check less.
package subset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Check holds raw to the schema (a rotation.SchemaCheck): nil if it
// conforms, an *rotation.InvalidInput naming the field if not.
func Check(raw []byte) error {
	leaves, err := Validate(raw)
	if err != nil {
		return err
	}
	if ii := Refusal(leaves); ii != nil {
		return ii
	}
	return nil
}

// Validate returns every complaint the schema has about raw, in the order
// Refusal reads them; an *rotation.InvalidInput if raw is not JSON.
func Validate(raw []byte) ([]Leaf, error) {
	root, err := compiled()
	if err != nil {
		return nil, err
	}
	doc, err := unmarshal(raw)
	if err != nil {
		return nil, &rotation.InvalidInput{Reason: "not valid JSON: " + rotation.PlainJSONError(err)}
	}
	return root.validate(doc, nil), nil
}

// unmarshal decodes as the library's jsonschema.UnmarshalJSON does:
// numbers as json.Number, one value and nothing after it.
func unmarshal(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil || !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid character after top-level value")
	}
	return doc, nil
}

var schema struct {
	once sync.Once
	root *Schema
	err  error
}

// compiled is the input schema, compiled on first use (not at init: a
// cold start pays nothing for it).
func compiled() (*Schema, error) {
	schema.once.Do(func() { schema.root, schema.err = Compile(rotation.InputSchemaJSON()) })
	return schema.root, schema.err
}

// Schema is a compiled (sub)schema: the keywords this validator implements.
type Schema struct {
	always     *bool // a boolean schema
	typ        string
	constant   *any
	enum       []any
	ref        *Schema // "$ref": "#/$defs/<name>"
	required   []string
	properties map[string]*Schema
	additional *bool
	items      *Schema
	minItems   *int
	maxItems   *int
	unique     bool
	minLength  *int
	maxLength  *int
	pattern    *regexp.Regexp
	minimum    *big.Rat
	maximum    *big.Rat
	not        *Schema
	allOf      []*Schema
	anyOf      []*Schema
	ifS        *Schema
	thenS      *Schema
	elseS      *Schema
}

// annotations are keywords that do not assert anything about an instance.
var annotations = []string{"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}

// Compile reads a JSON Schema (draft 2020-12) in the keyword subset: type
// (one name), const, enum, $ref (to #/$defs/…), required, properties,
// additionalProperties (a boolean), items, minItems, maxItems,
// uniqueItems, minLength, maxLength, pattern, minimum, maximum, not,
// allOf, anyOf, if/then/else. Any other keyword is an error.
func Compile(doc []byte) (*Schema, error) {
	v, err := unmarshal(doc)
	if err != nil {
		return nil, fmt.Errorf("subset: input schema: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("subset: input schema: not an object")
	}
	if s, _ := obj["$schema"].(string); s != "https://json-schema.org/draft/2020-12/schema" {
		return nil, fmt.Errorf("subset: input schema: $schema %q: only draft 2020-12 is implemented", s)
	}
	c := compiler{defs: map[string]*Schema{}}
	defs, _ := obj["$defs"].(map[string]any)
	for name := range defs { // declared first, so any $ref resolves
		c.defs[name] = &Schema{}
	}
	for name, d := range defs {
		n, err := c.compile(d, "/$defs/"+name)
		if err != nil {
			return nil, err
		}
		*c.defs[name] = *n
	}
	root, err := c.compile(obj, "")
	if err != nil {
		return nil, err
	}
	return root, nil
}

type compiler struct{ defs map[string]*Schema }

func (c *compiler) compile(v any, at string) (*Schema, error) {
	fail := func(format string, args ...any) (*Schema, error) {
		return nil, fmt.Errorf("subset: input schema at %q: %s", at, fmt.Sprintf(format, args...))
	}
	if b, ok := v.(bool); ok {
		return &Schema{always: &b}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fail("a schema is an object or a boolean")
	}
	n := &Schema{}
	for kw, val := range obj {
		var err error
		switch kw {
		case "type":
			s, ok := val.(string)
			if !ok || !slices.Contains([]string{"null", "boolean", "object", "array", "number", "string", "integer"}, s) {
				return fail("type: only one type name is implemented")
			}
			n.typ = s
		case "const":
			n.constant = &val
		case "enum":
			arr, ok := val.([]any)
			if !ok {
				return fail("enum: not an array")
			}
			for _, e := range arr {
				switch e.(type) {
				case []any, map[string]any:
					return fail("enum: only primitive values are implemented")
				}
			}
			n.enum = arr
		case "$ref":
			s, _ := val.(string)
			name, ok := strings.CutPrefix(s, "#/$defs/")
			if !ok || c.defs[name] == nil {
				return fail("$ref %q: only #/$defs/<name> is implemented", s)
			}
			n.ref = c.defs[name]
		case "required":
			arr, ok := val.([]any)
			if !ok {
				return fail("required: not an array")
			}
			for _, e := range arr {
				s, ok := e.(string)
				if !ok {
					return fail("required: not a string")
				}
				n.required = append(n.required, s)
			}
		case "properties":
			props, ok := val.(map[string]any)
			if !ok {
				return fail("properties: not an object")
			}
			n.properties = map[string]*Schema{}
			for name, p := range props {
				if n.properties[name], err = c.compile(p, at+"/properties/"+name); err != nil {
					return nil, err
				}
			}
		case "additionalProperties":
			b, ok := val.(bool)
			if !ok {
				return fail("additionalProperties: only a boolean is implemented")
			}
			n.additional = &b
		case "items":
			if n.items, err = c.compile(val, at+"/items"); err != nil {
				return nil, err
			}
		case "minItems", "maxItems", "minLength", "maxLength":
			i, err := count(val)
			if err != nil {
				return fail("%s: %v", kw, err)
			}
			switch kw {
			case "minItems":
				n.minItems = &i
			case "maxItems":
				n.maxItems = &i
			case "minLength":
				n.minLength = &i
			default:
				n.maxLength = &i
			}
		case "uniqueItems":
			b, ok := val.(bool)
			if !ok {
				return fail("uniqueItems: not a boolean")
			}
			n.unique = b
		case "pattern":
			s, _ := val.(string)
			re, err := regexp.Compile(s) // the library's default engine: Go's regexp
			if err != nil {
				return fail("pattern: %v", err)
			}
			n.pattern = re
		case "minimum", "maximum":
			num, ok := val.(json.Number)
			r, ok2 := new(big.Rat).SetString(string(num))
			if !ok || !ok2 {
				return fail("%s: not a number", kw)
			}
			if kw == "minimum" {
				n.minimum = r
			} else {
				n.maximum = r
			}
		case "not", "if", "then", "else":
			s, err := c.compile(val, at+"/"+kw)
			if err != nil {
				return nil, err
			}
			switch kw {
			case "not":
				n.not = s
			case "if":
				n.ifS = s
			case "then":
				n.thenS = s
			default:
				n.elseS = s
			}
		case "allOf", "anyOf":
			arr, ok := val.([]any)
			if !ok || len(arr) == 0 {
				return fail("%s: not a non-empty array", kw)
			}
			list := make([]*Schema, len(arr))
			for i, e := range arr {
				if list[i], err = c.compile(e, fmt.Sprintf("%s/%s/%d", at, kw, i)); err != nil {
					return nil, err
				}
			}
			if kw == "allOf" {
				n.allOf = list
			} else {
				n.anyOf = list
			}
		default:
			if !slices.Contains(annotations, kw) {
				return fail("keyword %q is not implemented", kw)
			}
			if kw == "$id" && at != "" {
				return fail("$id below the root is not implemented")
			}
		}
	}
	return n, nil
}

// count reads a non-negative integer keyword.
func count(v any) (int, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	i, err := strconv.Atoi(string(num))
	if err != nil || i < 0 {
		return 0, errors.New("not a non-negative integer")
	}
	return i, nil
}

// validate returns v's leaves under n at loc, walking the keywords in the
// order the library's validator.validate does (type, const, enum, $ref, the
// type's keywords, then not, allOf, anyOf, if/then/else), an object's
// members in ByLocation's order.
func (n *Schema) validate(v any, loc []string) []Leaf {
	if n.always != nil {
		if *n.always {
			return nil
		}
		return []Leaf{leaf(loc, "false schema")}
	}
	got := typeOf(v)
	if n.typ != "" && got != n.typ && (n.typ != "integer" || got != "number" || !isInteger(v)) {
		return []Leaf{leaf(loc, fmt.Sprintf("got %s, want %s", got, n.typ))}
	}
	if n.constant != nil && !equal(v, *n.constant) {
		return []Leaf{leaf(loc, "value must be "+display(*n.constant))}
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return equal(v, e) }) {
		if len(n.enum) == 1 {
			return []Leaf{leaf(loc, "value must be "+display(n.enum[0]))}
		}
		want := make([]string, len(n.enum))
		for i, e := range n.enum {
			want[i] = display(e)
		}
		return []Leaf{leaf(loc, "value must be one of "+strings.Join(want, ", "))}
	}
	var out []Leaf
	if n.ref != nil {
		out = append(out, n.ref.validate(v, loc)...)
	}
	switch x := v.(type) {
	case map[string]any:
		out = append(out, n.object(x, loc)...)
	case []any:
		out = append(out, n.array(x, loc)...)
	case string:
		out = append(out, n.str(x, loc)...)
	case json.Number:
		out = append(out, n.number(x, loc)...)
	}
	if n.not != nil && len(n.not.validate(v, loc)) == 0 {
		out = append(out, leaf(loc, "'not' failed"))
	}
	for _, s := range n.allOf {
		out = append(out, s.validate(v, loc)...)
	}
	if len(n.anyOf) > 0 {
		var all []Leaf
		matched := false
		for _, s := range n.anyOf {
			l := s.validate(v, loc)
			if len(l) == 0 {
				matched = true
				break
			}
			all = append(all, l...)
		}
		if !matched {
			out = append(out, all...)
		}
	}
	if n.ifS != nil {
		if len(n.ifS.validate(v, loc)) == 0 {
			if n.thenS != nil {
				out = append(out, n.thenS.validate(v, loc)...)
			}
		} else if n.elseS != nil {
			out = append(out, n.elseS.validate(v, loc)...)
		}
	}
	return out
}

func (n *Schema) object(obj map[string]any, loc []string) []Leaf {
	var out []Leaf
	if len(n.required) > 0 {
		var missing []string
		for _, r := range n.required {
			if _, ok := obj[r]; !ok {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			l := leaf(loc, "missing property "+quote(missing[0]))
			if len(missing) > 1 {
				l.Reason = "missing properties " + joinQuoted(missing)
			}
			l.Missing = missing
			out = append(out, l)
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, byToken)
	var unknown []string
	for _, k := range keys {
		if p, ok := n.properties[k]; ok {
			out = append(out, p.validate(obj[k], append(slices.Clip(loc), k))...)
		} else if n.additional != nil && !*n.additional {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		out = append(out, Leaf{Loc: slices.Clone(loc), Reason: "additional properties " + joinQuoted(unknown) + " not allowed", Unknown: unknown})
	}
	return out
}

func (n *Schema) array(arr []any, loc []string) []Leaf {
	var out []Leaf
	if n.minItems != nil && len(arr) < *n.minItems {
		out = append(out, leaf(loc, fmt.Sprintf("minItems: got %s, want %s", grouped(len(arr)), grouped(*n.minItems))))
	}
	if n.maxItems != nil && len(arr) > *n.maxItems {
		out = append(out, leaf(loc, fmt.Sprintf("maxItems: got %s, want %s", grouped(len(arr)), grouped(*n.maxItems))))
	}
	if n.unique {
	dup:
		for i := 1; i < len(arr); i++ {
			for j := range i {
				if equal(arr[i], arr[j]) {
					out = append(out, leaf(loc, fmt.Sprintf("items at %s and %s are equal", grouped(j), grouped(i))))
					break dup
				}
			}
		}
	}
	if n.items != nil {
		for i, item := range arr {
			out = append(out, n.items.validate(item, append(slices.Clip(loc), strconv.Itoa(i)))...)
		}
	}
	return out
}

func (n *Schema) str(s string, loc []string) []Leaf {
	var out []Leaf
	length := utf8.RuneCountInString(s)
	if n.minLength != nil && length < *n.minLength {
		out = append(out, leaf(loc, fmt.Sprintf("minLength: got %s, want %s", grouped(length), grouped(*n.minLength))))
	}
	if n.maxLength != nil && length > *n.maxLength {
		out = append(out, leaf(loc, fmt.Sprintf("maxLength: got %s, want %s", grouped(length), grouped(*n.maxLength))))
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		out = append(out, leaf(loc, quote(s)+" does not match pattern "+quote(n.pattern.String())))
	}
	return out
}

func (n *Schema) number(num json.Number, loc []string) []Leaf {
	var out []Leaf
	r, _ := new(big.Rat).SetString(string(num)) // a JSON number always parses
	if n.minimum != nil && r.Cmp(n.minimum) < 0 {
		out = append(out, leaf(loc, "minimum: got "+float(r)+", want "+float(n.minimum)))
	}
	if n.maximum != nil && r.Cmp(n.maximum) > 0 {
		out = append(out, leaf(loc, "maximum: got "+float(r)+", want "+float(n.maximum)))
	}
	return out
}

func leaf(loc []string, reason string) Leaf { return Leaf{Loc: slices.Clone(loc), Reason: reason} }

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "invalid"
}

func isInteger(v any) bool {
	num, _ := v.(json.Number)
	r, ok := new(big.Rat).SetString(string(num))
	return ok && r.IsInt()
}

// equal is JSON equality: numbers by value (1 = 1.0), objects by members.
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !equal(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equal)
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, ok1 := new(big.Rat).SetString(string(a))
		rb, ok2 := new(big.Rat).SetString(string(b))
		return ok1 && ok2 && ra.Cmp(rb) == 0
	case nil:
		return b == nil
	case bool, string:
		return a == b
	}
	return false
}
