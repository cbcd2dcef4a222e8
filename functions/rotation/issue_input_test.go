package rotation_test

import (
	"errors"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// "issue" (docs/design.md, Issuance) is a boolean a person sets; a
// schedule's input never issues. Both schema checks (the library's and the
// Validate Lambda's subset) agree.
func TestIssueInput(t *testing.T) {
	t.Parallel()
	const targets = `"targets":[{"type":"secret","name":"a","secretId":"s"}]`
	for _, tt := range []struct {
		raw       string
		issue     bool
		wantField string // "" accepted
	}{
		{raw: `{"user":"u",` + targets + `}`},
		{raw: `{"user":"u","issue":true,` + targets + `}`, issue: true},
		{raw: `{"user":"u","issue":false,"trigger":"schedule",` + targets + `}`},
		{raw: `{"user":"u","issue":true,"trigger":"schedule",` + targets + `}`, wantField: "issue"},
		{raw: `{"user":"u","issue":"yes",` + targets + `}`, wantField: "issue"},
	} {
		for name, check := range map[string]rotation.SchemaCheck{"inputschema": nil, "subset": subset.Check} {
			var in rotation.Input
			var err error
			if check == nil {
				in, err = inputschema.Parse([]byte(tt.raw))
			} else {
				in, err = rotation.ParseInput([]byte(tt.raw), check)
			}
			var ii *rotation.InvalidInput
			switch {
			case tt.wantField == "" && (err != nil || in.Issue != tt.issue):
				t.Errorf("%s %s: %+v, %v; want issue %v", name, tt.raw, in.Issue, err, tt.issue)
			case tt.wantField != "" && (!errors.As(err, &ii) || ii.Field != tt.wantField):
				t.Errorf("%s %s: %v; want InvalidInput on %s", name, tt.raw, err, tt.wantField)
			}
		}
	}
}
