package auth0_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/targets/auth0"
)

// A connection's clientSecret, once read, prints as redacted however it is
// printed (I1).
func TestConnectionNeverPrintsItsSecret(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-client-secret-0123456789"
	var c auth0.Connection
	if err := json.Unmarshal([]byte(`{"domain":"d","clientId":"cid","clientSecret":"`+canary+`"}`), &c); err != nil || c.ClientSecret.Reveal() != canary {
		t.Fatalf("decode: %v", err)
	}
	b, _ := json.Marshal(c)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %q %x", c, c, c, c, c, c), string(b)} {
		if strings.Contains(out, canary) || strings.Contains(out, fmt.Sprintf("%x", canary)) {
			t.Errorf("the connection prints its secret: %s", out)
		}
	}
}
