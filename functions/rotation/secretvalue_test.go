package rotation_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// leaks reports whether out holds canary in any of the forms a printer
// might give it: raw, JSON-escaped, quoted, hex (both cases).
func leaks(out, canary string) bool {
	j, _ := json.Marshal(canary)
	for _, f := range []string{canary, string(j[1 : len(j)-1]), strconv.Quote(canary), hex.EncodeToString([]byte(canary)), strings.ToUpper(hex.EncodeToString([]byte(canary)))} {
		if strings.Contains(out, f) {
			return true
		}
	}
	return false
}

func TestSecretValueNeverPrints(t *testing.T) {
	t.Parallel()
	const canary = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYCANARY0001"
	sv := rotation.NewSecretValue(canary)
	cred := rotation.NewCredential("AKIAIOSFODNN7EXAMPLE", canary)
	type holder struct {
		Secret rotation.SecretValue
		Cred   rotation.Credential
		Ptr    *rotation.SecretValue
	}
	values := map[string]any{"value": sv, "pointer": &sv, "credential": cred, "credential pointer": &cred, "struct": holder{sv, cred, &sv}, "slice": []rotation.SecretValue{sv}, "map": map[string]rotation.SecretValue{"k": sv}}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%10.3s", "%T %v", "%d"} {
			if out := fmt.Sprintf(verb, v); leaks(out, canary) {
				t.Errorf("%s with %s: %s", name, verb, out)
			}
		}
		if b, err := json.Marshal(v); err != nil || leaks(string(b), canary) {
			t.Errorf("%s as JSON: %s %v", name, b, err)
		}
		if b, _ := xml.Marshal(holder{Secret: sv}); leaks(string(b), canary) {
			t.Errorf("%s as XML: %s", name, b)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v, slog.Any("any", v))
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		if leaks(buf.String(), canary) {
			t.Errorf("%s in slog: %s", name, buf.String())
		}
		if err := fmt.Errorf("wrapped %v: %w", v, fmt.Errorf("%+v", v)); leaks(err.Error(), canary) {
			t.Errorf("%s in an error: %s", name, err)
		}
	}
	if b, _ := sv.MarshalText(); leaks(string(b), canary) {
		t.Error("MarshalText leaks")
	}
	if sv.Reveal() != canary || cred.Secret() != canary {
		t.Error("Reveal must give the raw value")
	}
}

func TestShownKeyID(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"AKIAIOSFODNN7EXAMPLE":                     "AKIAIOSFODNN7EXAMPLE",
		"ASIAIOSFODNN7EXAMPLE":                     "ASIAIOSFODNN7EXAMPLE",
		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY": "",
		"AKIAIOSFODNN7EXAMPLEX":                    "",
		"AKIAiosfodnn7example":                     "",
		"AKIAOLD":                                  "",
		"":                                         "",
	} {
		if got := rotation.ShownKeyID(rotation.NewSecretValue(v)); got != want {
			t.Errorf("ShownKeyID(%d chars) = %q, want %q", len(v), got, want)
		}
	}
}
