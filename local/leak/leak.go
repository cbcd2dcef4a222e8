// Package leak is the leak canary (invariant I1): given every secret a
// world holds and every byte it emitted, it reports each place a secret, an
// encoding of it, or a long enough piece of it shows up — naming the kind,
// the place and the encoding, never the value.
package leak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"sort"
	"testing"
)

// Window is the length of the pieces of a secret searched for on their own:
// a 20-character window of a 40-character secret is a leak.
const Window = 20

// Secret is one value the world holds and nothing may emit.
type Secret struct {
	Kind  string // "an IAM secret access key", "a Secrets Manager value", …
	Value string
	// Whole: search for the value and its encodings only, not its pieces —
	// a structured value (a JSON object) whose pieces hold names and ids
	// outputs may carry; its secret leaves are Secrets of their own.
	Whole bool
}

// MinLen is the shortest value searched for: a shorter one would match
// ordinary text (a fixture's "csecret"); fixtures make secrets longer.
const MinLen = 12

// Finding is one leak: where, of what kind, in which encoding.
type Finding struct {
	Source   string
	Kind     string
	Encoding string
}

type needle struct {
	encoding string
	b        []byte
}

// needles is what a secret looks like in the encodings an output may carry.
func needles(v string, pieces bool) []needle {
	js, _ := json.Marshal(v)
	ns := []needle{
		{"raw", []byte(v)},
		{"JSON-escaped", js[1 : len(js)-1]},
		{"base64", []byte(base64.StdEncoding.EncodeToString([]byte(v)))},
		{"base64url", []byte(base64.RawURLEncoding.EncodeToString([]byte(v)))},
		{"hex", []byte(hex.EncodeToString([]byte(v)))},
		{"URL-encoded", []byte(url.QueryEscape(v))},
		{"URL path-encoded", []byte(url.PathEscape(v))},
	}
	// base64 of the value has padding and line breaks that depend on what is
	// around it; its unpadded body is what must not appear.
	ns[2].b = bytes.TrimRight(ns[2].b, "=")
	if pieces && len(v) > Window {
		for i := 0; i+Window <= len(v); i++ {
			ns = append(ns, needle{"a " + itoa(Window) + "-character piece", []byte(v[i : i+Window])})
		}
	}
	return ns
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

// Scan reports every finding of any secret in any source, at most one per
// secret and source (the first of the secret's encodings, in needles'
// order, that the source holds). Values shorter than MinLen are not
// searched for.
//
// It reads each source once, whatever the number of secrets: every needle
// is indexed by its first k bytes (k the shortest needle's length), and
// each k-byte window of a source is looked up. A fleet of 200 rotations
// holds about 1,200 secrets (some 33,000 needles) and emits hundreds of
// megabytes; a search per needle and source took over 13 minutes there.
func Scan(secrets []Secret, sources map[string][]byte) []Finding {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	type ref struct{ secret, needle int }
	all := make([][]needle, len(secrets))
	k := 0
	for i, s := range secrets {
		if len(s.Value) < MinLen {
			continue
		}
		all[i] = needles(s.Value, !s.Whole)
		for _, n := range all[i] {
			if len(n.b) > 0 && (k == 0 || len(n.b) < k) {
				k = len(n.b)
			}
		}
	}
	if k == 0 {
		return nil
	}
	index := map[string][]ref{}
	for i, ns := range all {
		for j, n := range ns {
			if len(n.b) > 0 {
				index[string(n.b[:k])] = append(index[string(n.b[:k])], ref{i, j})
			}
		}
	}
	// found[source][ref]: the needle appears in the source.
	found := make([]map[ref]bool, len(names))
	for si, name := range names {
		src := sources[name]
		f := map[ref]bool{}
		for p := 0; p+k <= len(src); p++ {
			refs, ok := index[string(src[p:p+k])]
			if !ok {
				continue
			}
			for _, r := range refs {
				if !f[r] && bytes.HasPrefix(src[p:], all[r.secret][r.needle].b) {
					f[r] = true
				}
			}
		}
		found[si] = f
	}
	var out []Finding
	for i, s := range secrets {
		for si, name := range names {
			for j, n := range all[i] {
				if found[si][ref{i, j}] {
					out = append(out, Finding{Source: name, Kind: s.Kind, Encoding: n.encoding})
					break // one finding per secret and source is enough to act on
				}
			}
		}
	}
	return out
}

// Check fails t for every finding, and also when it would pass vacuously:
// no secrets, a kind the caller says is present with no secret of it, or
// nothing to search.
func Check(t testing.TB, secrets []Secret, sources map[string][]byte, kinds ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, s := range secrets {
		if len(s.Value) >= MinLen {
			have[s.Kind] = true
		}
	}
	if len(have) == 0 {
		t.Errorf("leak canary: no secrets to search for")
	}
	for _, k := range kinds {
		if !have[k] {
			t.Errorf("leak canary: the world holds %s but none was searched for", k)
		}
	}
	scanned := 0
	for _, b := range sources {
		scanned += len(b)
	}
	if scanned == 0 {
		t.Errorf("leak canary: nothing to search")
	}
	for _, f := range Scan(secrets, sources) {
		t.Errorf("I1 violated: %s (%s) appears in %s", f.Kind, f.Encoding, f.Source)
	}
}

// Kinds lists the distinct kinds among secrets, sorted.
func Kinds(secrets []Secret) []string {
	seen := map[string]bool{}
	for _, s := range secrets {
		seen[s.Kind] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
