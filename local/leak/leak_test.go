package leak

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// fakeTB records failures instead of failing the real test.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" // 40 characters, with / and +

func TestCheckFindsEachEncoding(t *testing.T) {
	js, _ := json.Marshal(map[string]string{"v": secret})
	cases := []struct {
		name, haystack string
	}{
		{"raw in a log line", `{"level":"INFO","msg":"got ` + secret + `"}`},
		{"JSON-escaped in history", string(js)},
		{"base64 in an alert", "payload=" + base64.StdEncoding.EncodeToString([]byte(secret))},
		{"base64url", base64.RawURLEncoding.EncodeToString([]byte(secret))},
		{"hex", hex.EncodeToString([]byte(secret))},
		{"URL-encoded", "https://x/?s=" + url.QueryEscape(secret)},
		{"a 20-character window", "…" + secret[10:30] + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeTB{}
			Check(f, []Secret{{Kind: "IAM secret access key", Value: secret}}, map[string][]byte{"SNS message": []byte(c.haystack)})
			if len(f.errs) != 1 || !strings.Contains(f.errs[0], "SNS message") {
				t.Fatalf("canary did not fail once naming the source: %q", f.errs)
			}
			if strings.Contains(f.errs[0], secret[10:30]) {
				t.Fatalf("the canary's own message carries the secret: %q", f.errs[0])
			}
		})
	}
}

func TestCheckPassesCleanOutput(t *testing.T) {
	f := &fakeTB{}
	Check(f, []Secret{{Kind: "IAM secret access key", Value: secret}}, map[string][]byte{"log": []byte("key AKIAEXAMPLE rotated; " + secret[:Window-1])}, "IAM secret access key")
	if len(f.errs) != 0 {
		t.Fatalf("clean output failed: %q", f.errs)
	}
}

func TestCheckCannotPassVacuously(t *testing.T) {
	cases := []struct {
		name    string
		secrets []Secret
		sources map[string][]byte
		kinds   []string
		want    string
	}{
		{"no secrets", nil, map[string][]byte{"log": []byte("x")}, nil, "no secrets"},
		{"nothing searched", []Secret{{Kind: "k", Value: secret}}, map[string][]byte{"log": nil}, nil, "nothing to search"},
		{"a kind missing", []Secret{{Kind: "IAM secret access key", Value: secret}}, map[string][]byte{"log": []byte("x")}, []string{"Auth0 client secret"}, "Auth0 client secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeTB{}
			Check(f, c.secrets, c.sources, c.kinds...)
			if len(f.errs) == 0 || !strings.Contains(strings.Join(f.errs, "\n"), c.want) {
				t.Fatalf("want a failure saying %q, got %q", c.want, f.errs)
			}
		})
	}
}
