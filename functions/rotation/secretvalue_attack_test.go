package rotation_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// holder keeps secrets in unexported fields, as a careless struct would:
// fmt and slog's text handler print such fields by reflection, without
// calling their Format or String, because an unexported field's value
// cannot be passed to a method.
type holder struct {
	name string
	sv   rotation.SecretValue
	cred rotation.Credential
	ptr  *rotation.SecretValue
	list []rotation.SecretValue
	m    map[string]rotation.SecretValue
}

// TestSecretValueUnprintableInUnexportedFields: a SecretValue or a
// Credential held in an unexported field of any struct, slice or map prints
// no byte of the secret under any verb, through slog's text and JSON
// handlers, errors.Join, or a reflect.Value of the field.
func TestSecretValueUnprintableInUnexportedFields(t *testing.T) {
	t.Parallel()
	const canary = "Zq9/CANARY+wJalrXUtnFEMI/K7MDENGbPxRfiCY"
	sv := rotation.NewSecretValue(canary)
	h := holder{name: "x", sv: sv, cred: rotation.NewCredential("AKIAIOSFODNN7EXAMPLE", canary), ptr: &sv,
		list: []rotation.SecretValue{sv}, m: map[string]rotation.SecretValue{"k": sv}}
	forms := []string{canary, strconv.Quote(canary)[1 : len(canary)+1], hex.EncodeToString([]byte(canary)), strings.ToUpper(hex.EncodeToString([]byte(canary))), base64.StdEncoding.EncodeToString([]byte(canary))[:20], canary[:20]}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T", "%d", "%10.4s"} {
		for _, v := range []any{h, &h, []holder{h}, map[string]holder{"h": h}, struct{ h holder }{h}} {
			out = append(out, verb+": "+fmt.Sprintf(verb, v))
		}
	}
	out = append(out, fmt.Sprint(h), fmt.Sprintln(h), errors.Join(fmt.Errorf("wrap %+v", h), errors.New("b")).Error())
	out = append(out, fmt.Sprintf("%v", reflect.ValueOf(h).Field(1)), fmt.Sprintf("%+v", reflect.ValueOf(h.cred).Field(1)))
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("m", "h", h, "p", &h, slog.Any("g", slog.GroupValue(slog.Any("h", h))))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "h", h, "p", &h)
	//lint:ignore SA9005 the canary hides in unexported fields on purpose: json.Marshal of such a holder must print nothing of it
	b, _ := json.Marshal(h) //nolint:staticcheck // SA9005, as above
	out = append(out, text.String(), js.String(), string(b))
	for _, o := range out {
		for _, f := range forms {
			if strings.Contains(o, f) {
				t.Errorf("prints the secret (%q): %s", f, o)
				break
			}
		}
	}
	if h.sv.Reveal() != canary || h.cred.Secret() != canary || !h.sv.Equal(rotation.NewSecretValue(canary)) || h.sv.Empty() || !(rotation.SecretValue{}).Empty() || (rotation.SecretValue{}).Reveal() != "" {
		t.Error("Reveal, Equal or Empty changed")
	}
}
