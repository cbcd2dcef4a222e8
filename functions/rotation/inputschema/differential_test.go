package inputschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// corpora are the inputs the differential test and the fuzz target start
// from: rotation's FuzzParseInput seeds (issue 11's hostile inputs and the
// step tier's malformed ones, from functions/steps'
// TestValidateRefusesMalformedInput) and test/fuzz's FuzzPreflight seeds.
var corpora = []string{
	filepath.Join("..", "testdata", "fuzz", "FuzzParseInput"),
	filepath.Join("..", "..", "..", "test", "fuzz", "testdata", "fuzz", "FuzzPreflight"),
}

// seeds reads every corpus file ("go test fuzz v1" and one []byte).
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range corpora {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s/%s: %v", dir, f.Name(), err)
			}
			out[filepath.Base(dir)+"/"+f.Name()] = []byte(s)
		}
	}
	if len(out) < 50 {
		t.Fatalf("%d seeds: the corpora moved?", len(out))
	}
	return out
}

// libraryLeaves is what the library says of raw, as subset's leaves.
func libraryLeaves(t testing.TB, raw []byte) ([]subset.Leaf, error) {
	t.Helper()
	sch, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &rotation.InvalidInput{Reason: "not valid JSON: " + rotation.PlainJSONError(err)}
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("the library: %v", err)
	}
	return leavesOf(ve), nil
}

// same fails t unless subset and the library agree on raw: refuse or
// accept alike, every complaint alike (place, words, in order), and
// Check's refusal (field and reason) alike.
func same(t testing.TB, raw []byte) {
	t.Helper()
	want, wantErr := libraryLeaves(t, raw)
	got, gotErr := subset.Validate(raw)
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("%q: subset's error %v, the library's %v", raw, gotErr, wantErr)
	}
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("%q:\nsubset's complaints  %+v\nthe library's        %+v", raw, got, want)
	}
	gotCheck, wantCheck := subset.Check(raw), Check(raw)
	if !reflect.DeepEqual(gotCheck, wantCheck) {
		t.Fatalf("%q: subset.Check %v, the library's Check %v", raw, gotCheck, wantCheck)
	}
	// The same through ParseInput, as the Lambda and the CLI call them.
	_, gotParse := rotation.ParseInput(raw, subset.Check)
	_, wantParse := Parse(raw)
	if !reflect.DeepEqual(gotParse, wantParse) {
		t.Fatalf("%q: ParseInput with subset %v, with the library %v", raw, gotParse, wantParse)
	}
}

// norm makes an empty list and nil one (neither side's business).
func norm(l []subset.Leaf) []subset.Leaf {
	if len(l) == 0 {
		return nil
	}
	for i := range l {
		if len(l[i].Loc) == 0 {
			l[i].Loc = nil
		}
	}
	return l
}

// mutants are raw's variations: each member (at any depth) removed, or
// replaced by values of every JSON type and at the schema's bounds, and
// an unknown member added to each object.
func mutants(raw []byte) [][]byte {
	if len(raw) > 4096 || bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) > 40 {
		return nil // a huge or deep seed: itself only
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return nil
	}
	values := []any{nil, true, false, json.Number("0"), json.Number("-1"), json.Number("1"), json.Number("1.5"),
		json.Number("7.0"), json.Number("1e2"), json.Number("91"), json.Number("366"), json.Number("721"), json.Number("1e400"),
		json.Number("-1e400"), json.Number("123456789"), json.Number("0.000001"), "", "x", "keyrotator/x", "a/b", "..", strings.Repeat("é", 65),
		"keyrotator/connections/a", "us-east-1", "auth0", "soracom", "secret", "newCredential", "inPlace", "manual",
		[]any{}, []any{"a", "a"}, []any{"a", json.Number("1"), json.Number("1.0")}, map[string]any{}, map[string]any{"type": "secret"}}
	var out [][]byte
	var walk func(v any, replace func(any), remove func())
	emit := func() {
		if b, err := json.Marshal(doc); err == nil {
			out = append(out, b)
		}
	}
	walk = func(v any, replace func(any), remove func()) {
		if replace != nil {
			for _, r := range values {
				replace(r)
				emit()
			}
			replace(v)
		}
		if remove != nil {
			remove()
			emit()
			replace(v)
		}
		switch x := v.(type) {
		case map[string]any:
			x["secretID"] = "s"
			emit()
			delete(x, "secretID")
			for _, k := range slices.Sorted(mapsKeys(x)) {
				walk(x[k], func(n any) { x[k] = n }, func() { delete(x, k) })
			}
		case []any:
			for i := range x {
				walk(x[i], func(n any) { x[i] = n }, nil)
			}
		}
	}
	walk(doc, nil, nil)
	return out
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The Lambda's check (subset) and the library refuse and accept the same
// inputs, with the same complaints: every corpus seed and its mutants.
func TestSubsetMatchesTheLibrary(t *testing.T) {
	t.Parallel()
	n := 0
	for name, raw := range seeds(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			same(t, raw)
			for _, m := range mutants(raw) {
				same(t, m)
			}
		})
		n += 1 + len(mutants(raw)) // the count is logged: mutants are cheap
	}
	t.Logf("%d inputs", n)
}

// subset compiles the real schema: a keyword it does not implement would
// fail here (and every Check after).
func TestSubsetCompilesTheSchema(t *testing.T) {
	t.Parallel()
	if _, err := subset.Compile(rotation.InputSchemaJSON()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","patternProperties":{"x":true}}`,
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","format":"email"}`,
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","additionalProperties":{"type":"string"}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema"}`,
	} {
		if _, err := subset.Compile([]byte(bad)); err == nil {
			t.Errorf("%s compiled: a keyword subset does not implement must fail", bad)
		}
	}
}

// FuzzSubsetMatchesTheLibrary runs both checks on every input and fails
// on any difference: accept or refuse, the field, the words.
func FuzzSubsetMatchesTheLibrary(f *testing.F) {
	for _, raw := range seeds(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > rotation.MaxInputBytes {
			return
		}
		same(t, raw)
	})
}
