package rotation_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// maxQuote bounds what a refusal may say: it names a field and why, and
// never echoes a long piece of the input back.
const maxQuote = 512

// Every input is either refused with an *InvalidInput that names a field
// or a whole-input reason, briefly, or accepted and then accepted again,
// identically, when re-encoded. Seeds: testdata/fuzz/FuzzParseInput
// (issue 11's cases and the malformed inputs of functions/steps'
// TestValidateRefusesMalformedInput, once test/e2e's).
func FuzzParseInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := inputschema.Parse(raw)
		if err != nil {
			var ii *rotation.InvalidInput
			if !errors.As(err, &ii) {
				t.Fatalf("refused with %T %v, want *InvalidInput", err, err)
			}
			if ii.Field == "" && ii.Reason == "" {
				t.Fatalf("refused naming nothing: %v", err)
			}
			if len(err.Error()) > maxQuote {
				t.Fatalf("refusal of %d bytes quotes the input back: %.200q…", len(err.Error()), err.Error())
			}
			return
		}
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("re-encoding an accepted input: %v", err)
		}
		in2, err := inputschema.Parse(again)
		if err != nil {
			t.Fatalf("accepted %q, but its re-encoding %q is refused: %v", raw, again, err)
		}
		if !reflect.DeepEqual(in, in2) {
			t.Fatalf("accepted %q as %+v, its re-encoding as %+v", raw, in, in2)
		}
	})
}

// An input longer than Step Functions takes as an execution's input
// (262,144 bytes in UTF-8) is refused, naming its size, whatever it holds:
// the CLI checks the file before it calls AWS, as Validate checks what it
// gets. At the limit, it is accepted.
func TestParseInputRefusesOverMaxInputBytes(t *testing.T) {
	t.Parallel()
	valid := `{"user":"u","targets":[{"type":"secret","name":"app","secretId":"app/u"}]}`
	pad := func(n int) []byte { return []byte(valid[:len(valid)-1] + strings.Repeat(" ", n-len(valid)) + "}") }
	if _, err := inputschema.Parse(pad(rotation.MaxInputBytes)); err != nil {
		t.Errorf("%d bytes: %v, want accepted", rotation.MaxInputBytes, err)
	}
	_, err := inputschema.Parse(pad(rotation.MaxInputBytes + 1))
	var ii *rotation.InvalidInput
	if !errors.As(err, &ii) || !strings.Contains(ii.Reason, "262,145 bytes") || !strings.Contains(ii.Reason, "262,144") {
		t.Errorf("%d bytes: %v, want InvalidInput naming its size and the limit", rotation.MaxInputBytes+1, err)
	}
}
