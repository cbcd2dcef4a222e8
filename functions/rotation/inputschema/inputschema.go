// Package inputschema holds a rotation's input to its JSON Schema
// (functions/rotation/input.schema.json) with the santhosh-tekuri/jsonschema
// library. It is a package of its own so that only what parses input
// (the Validate Lambda, the CLI, infra) links that library: imported, it
// costs a binary 0.65 MB and its cold start about 4 ms, the library
// compiling every JSON Schema draft's meta-schema in its init.
package inputschema

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Parse validates raw against the schema and decodes it with defaults
// applied (rotation.ParseInput with Check). Every refusal is an
// *rotation.InvalidInput naming the field.
func Parse(raw []byte) (rotation.Input, error) { return rotation.ParseInput(raw, Check) }

// Check holds raw to the schema (a rotation.SchemaCheck): nil if it
// conforms, an *rotation.InvalidInput naming the field if not.
func Check(raw []byte) error {
	sch, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &rotation.InvalidInput{Reason: "not valid JSON: " + rotation.PlainJSONError(err)}
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return invalidFrom(ve)
		}
		return &rotation.InvalidInput{Reason: err.Error()}
	}
	return nil
}

// schema is the compiled input schema, compiled on first use (a Lambda that
// never parses input never compiles it).
var schema struct {
	once     sync.Once
	compiled *jsonschema.Schema
	err      error
}

func compiled() (*jsonschema.Schema, error) {
	schema.once.Do(func() { schema.compiled, schema.err = compile() })
	return schema.compiled, schema.err
}

func compile() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rotation.InputSchemaJSON()))
	if err != nil {
		return nil, fmt.Errorf("rotation: input schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://keyrotator.dev/schema/rotation-input.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("rotation: input schema: %w", err)
	}
	return c.Compile(url)
}

// invalidFrom turns the schema's deepest complaint into one sentence that
// names the field, e.g. "targets[1].type: value must be one of …".
func invalidFrom(ve *jsonschema.ValidationError) *rotation.InvalidInput {
	if ii := unknownField(ve); ii != nil {
		return ii
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	field := fieldPath(leaf.InstanceLocation)
	reason := leaf.ErrorKind.LocalizedString(message.NewPrinter(language.English))
	// "missing property 'x'" and "additional properties 'y' not allowed"
	// are about a child: name the child.
	if strings.HasPrefix(reason, "missing property") || strings.HasPrefix(reason, "missing properties") {
		if name := quoted(reason); name != "" {
			field = rotation.JoinField(field, name)
			reason = "is required"
		}
	} else if strings.HasPrefix(reason, "additional propert") {
		if name := quoted(reason); name != "" {
			field = rotation.JoinField(field, name)
			reason = "is not a known field"
		}
	}
	return &rotation.InvalidInput{Field: field, Reason: reason}
}

// unknownField reports an unknown field before anything else the schema
// says: a misspelt "secretID" also leaves "secretId" missing, and the
// unknown one is the mistake. It suggests the missing field at the same
// place that is closest to it, if one is close.
func unknownField(ve *jsonschema.ValidationError) *rotation.InvalidInput {
	var extra *jsonschema.ValidationError
	var names []string
	missing := map[string][]string{} // instance location → missing fields
	for stack := []*jsonschema.ValidationError{ve}; len(stack) > 0; {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for i := len(e.Causes) - 1; i >= 0; i-- {
			stack = append(stack, e.Causes[i])
		}
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			if extra == nil && len(k.Properties) > 0 {
				extra, names = e, k.Properties
			}
		case *kind.Required:
			loc := strings.Join(e.InstanceLocation, "/")
			missing[loc] = append(missing[loc], k.Missing...)
		}
	}
	if extra == nil {
		return nil
	}
	name := names[0]
	reason := "is not a known field"
	best, bestDist := "", 3 // suggest only within two edits
	for _, m := range missing[strings.Join(extra.InstanceLocation, "/")] {
		if d := editDistance(strings.ToLower(name), strings.ToLower(m)); d < bestDist {
			best, bestDist = m, d
		}
	}
	if best != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return &rotation.InvalidInput{Field: rotation.JoinField(fieldPath(extra.InstanceLocation), name), Reason: reason}
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

func fieldPath(loc []string) string {
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

// quoted returns the first 'name' in a schema message.
func quoted(s string) string {
	i := strings.IndexByte(s, '\'')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(s[i+1:], '\'')
	if j < 0 {
		return ""
	}
	return s[i+1 : i+1+j]
}
