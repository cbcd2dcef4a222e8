package rotation_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// maxQuote bounds what a refusal may say: it names a field and why, and
// never echoes a long piece of the input back.
const maxQuote = 512

// Every input is either refused with an *InvalidInput that names a field
// or a whole-input reason, briefly, or accepted and then accepted again,
// identically, when re-encoded. Seeds: testdata/fuzz/FuzzParseInput
// (issue 11's cases and test/e2e's TestMalformedInputRefused's).
func FuzzParseInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := rotation.ParseInput(raw)
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
		in2, err := rotation.ParseInput(again)
		if err != nil {
			t.Fatalf("accepted %q, but its re-encoding %q is refused: %v", raw, again, err)
		}
		if !reflect.DeepEqual(in, in2) {
			t.Fatalf("accepted %q as %+v, its re-encoding as %+v", raw, in, in2)
		}
	})
}
