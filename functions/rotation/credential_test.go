package rotation_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// I1: no ordinary way of printing a credential shows its secret.
func TestCredentialNeverShowsItsSecret(t *testing.T) {
	t.Parallel()
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
	c := rotation.NewCredential("AKIAEXAMPLE", secret)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "cred", c, "nested", struct{ C rotation.Credential }{c})
	js, _ := json.Marshal(map[string]any{"c": c})
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c),
		"slog": logged.String(), "json": string(js),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "AKIAEXAMPLE") {
			t.Errorf("%s lost the key id: %s", name, out)
		}
	}
	if c.Secret() != secret || !c.Valid() {
		t.Fatal("the secret must still be there for the call that needs it")
	}
}

func TestTokenIsStablePerExecutionAndStep(t *testing.T) {
	t.Parallel()
	a := rotation.Token("arn:exec:1", "key")
	if a != rotation.Token("arn:exec:1", "key") {
		t.Fatal("same execution and step must give the same token")
	}
	if a == rotation.Token("arn:exec:1", "claim") || a == rotation.Token("arn:exec:2", "key") {
		t.Fatal("another execution or step must give another token")
	}
	if len(a) != 36 {
		t.Fatalf("token %q is not UUID-shaped", a)
	}
}
