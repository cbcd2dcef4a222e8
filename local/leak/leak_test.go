package leak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"sort"
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

// naiveScan is Scan as it was first written: every needle searched for in
// every source. Scan must find exactly what it finds.
func naiveScan(secrets []Secret, sources map[string][]byte) []Finding {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, s := range secrets {
		if len(s.Value) < MinLen {
			continue
		}
		ns := needles(s.Value, !s.Whole)
		for _, name := range names {
			for _, n := range ns {
				if len(n.b) > 0 && bytes.Contains(sources[name], n.b) {
					out = append(out, Finding{Source: name, Kind: s.Kind, Encoding: n.encoding})
					break
				}
			}
		}
	}
	return out
}

// Scan reads each source once through an index of the needles: it finds
// what searching for each needle in each source finds, in the same order,
// with the same encoding named.
func TestScanFindsWhatANeedleByNeedleSearchFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+="
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	findings := 0
	for round := range 50 {
		var secrets []Secret
		for i := range 1 + rng.IntN(12) {
			v := word(5 + rng.IntN(50)) // some shorter than MinLen, some than Window
			secrets = append(secrets, Secret{Kind: fmt.Sprintf("kind %d", i%3), Value: v, Whole: rng.IntN(3) == 0})
		}
		sources := map[string][]byte{}
		for i := range 1 + rng.IntN(6) {
			var b bytes.Buffer
			for range rng.IntN(40) {
				switch s := secrets[rng.IntN(len(secrets))].Value; rng.IntN(6) {
				case 0:
					b.WriteString(s)
				case 1:
					b.WriteString(base64.StdEncoding.EncodeToString([]byte(s)))
				case 2:
					b.WriteString(hex.EncodeToString([]byte(s)))
				case 3:
					b.WriteString(url.QueryEscape(s))
				case 4:
					if len(s) > Window {
						at := rng.IntN(len(s) - Window + 1)
						b.WriteString(s[at : at+Window-rng.IntN(2)]) // a window, or one byte short of one
					}
				default:
					b.WriteString(word(rng.IntN(80)))
				}
				b.WriteString(word(rng.IntN(5)))
			}
			sources[fmt.Sprintf("source %d", i)] = b.Bytes()
		}
		got, want := Scan(secrets, sources), naiveScan(secrets, sources)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: Scan found %v, a needle-by-needle search %v", round, got, want)
		}
		findings += len(got)
	}
	if findings < 100 {
		t.Fatalf("only %d findings in 50 rounds: the comparison proves little", findings)
	}
}
