// Package inputschema holds a rotation's input to its JSON Schema
// (functions/rotation/input.schema.json) with the santhosh-tekuri/jsonschema
// library. It is a package of its own so that only the CLI and infra link
// that library: imported, it costs a binary 0.65 MB and its cold start
// about 4 ms, the library compiling every JSON Schema draft's meta-schema
// in its init. The Lambdas check input with package subset (a validator of
// the keywords the schema uses), held to this one by a differential test
// and a fuzz target: same refusals, same field, same words.
package inputschema

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
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
			return subset.Refusal(leavesOf(ve))
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

// leavesOf reads the library's error tree as subset's leaves: depth first,
// causes in order, except that the complaints about an object's members,
// which the library makes in Go's map order (a different one each run),
// are taken in subset.ByLocation's order. An additionalProperties
// complaint names its fields sorted, for the same reason.
func leavesOf(ve *jsonschema.ValidationError) []subset.Leaf {
	p := message.NewPrinter(language.English)
	var out []subset.Leaf
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			l := subset.Leaf{Loc: slices.Clone(e.InstanceLocation)}
			k := e.ErrorKind
			switch x := k.(type) {
			case *kind.Required:
				l.Missing = slices.Clone(x.Missing)
			case *kind.AdditionalProperties:
				l.Unknown = slices.Sorted(slices.Values(x.Properties))
				k = &kind.AdditionalProperties{Properties: l.Unknown}
			}
			l.Reason = k.LocalizedString(p)
			out = append(out, l)
			return
		}
		for _, c := range membersSorted(e) {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// membersSorted is e's causes with each run of complaints about values
// beneath e's (an object's members, an array's items) sorted by location;
// the sort is stable, and a complaint about e's own value ends a run.
func membersSorted(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	causes := slices.Clone(e.Causes)
	deeper := func(c *jsonschema.ValidationError) bool {
		return len(c.InstanceLocation) > len(e.InstanceLocation)
	}
	for i := 0; i < len(causes); {
		if !deeper(causes[i]) {
			i++
			continue
		}
		j := i
		for j < len(causes) && deeper(causes[j]) {
			j++
		}
		slices.SortStableFunc(causes[i:j], func(a, b *jsonschema.ValidationError) int {
			return subset.ByLocation(a.InstanceLocation, b.InstanceLocation)
		})
		i = j
	}
	return causes
}
