package rotation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// A kind's check runs after its defaults, and its refusal names the
// target's field under the target's path.
func TestKindCheckNamesTheTargetsField(t *testing.T) {
	_, err := inputschema.Parse([]byte(`{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s"},{"type":"secret","name":"b","secretId":"t","keyIdField":"secretAccessKey"}]}`))
	var ii *rotation.InvalidInput
	if !errors.As(err, &ii) || ii.Field != "targets[1].secretField" || !strings.Contains(ii.Reason, "same field as keyIdField") {
		t.Fatalf("err = %#v, want targets[1].secretField refused as the same field as keyIdField", err)
	}
}
