package rotation_test

import (
	"errors"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// Target references that would reach keyrotator's own secrets, or make a
// secret target write the secret into its key id's field, are refused by
// ParseInput, naming the field (issue 11, finding 3).
func TestHostileReferencesRefused(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct{ input, field string }{
		"connection climbing to a record":  {`{"user":"u","targets":[{"type":"auth0","name":"t","connection":"keyrotator/connections/../users/x","sesRegion":"us-east-1"}]}`, "targets[0].connection"},
		"connection ending in ..":          {`{"user":"u","targets":[{"type":"soracom","name":"s","connection":"keyrotator/connections/..","credentialPrefix":"p"}]}`, "targets[0].connection"},
		"connection through .":             {`{"user":"u","targets":[{"type":"soracom","name":"s","connection":"keyrotator/connections/./a","credentialPrefix":"p"}]}`, "targets[0].connection"},
		"connection with an empty part":    {`{"user":"u","targets":[{"type":"soracom","name":"s","connection":"keyrotator/connections/..","credentialPrefix":"p"}]}`, "targets[0].connection"},
		"keyIdField = secretField":         {`{"user":"u","targets":[{"type":"secret","name":"a","secretId":"app/x","keyIdField":"k","secretField":"k"}]}`, "targets[0].secretField"},
		"keyIdField = default secretField": {`{"user":"u","targets":[{"type":"secret","name":"a","secretId":"app/x","keyIdField":"secretAccessKey"}]}`, "targets[0].secretField"},
	} {
		_, err := inputschema.Parse([]byte(c.input))
		var inv *rotation.InvalidInput
		if !errors.As(err, &inv) || inv.Field != c.field {
			t.Errorf("%s: %v, want InvalidInput naming %s", name, err, c.field)
		}
	}
	for name, input := range map[string]string{
		"a dotted connection name": `{"user":"u","targets":[{"type":"soracom","name":"s","connection":"keyrotator/connections/soracom.prod","credentialPrefix":"p"}]}`,
		"custom fields":            `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"app/x","keyIdField":"id","secretField":"key"}]}`,
	} {
		if _, err := inputschema.Parse([]byte(input)); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
}
