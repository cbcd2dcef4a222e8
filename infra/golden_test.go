package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/template.golden.json from the synthesized stack, and testdata/config.golden.json from testConfig")

// assetHash is what changes with every build of the Lambdas: not a change
// to what we deploy's shape, so the golden file leaves it out.
var assetHash = regexp.MustCompile(`[0-9a-f]{64}(\.zip)?`)

// Every change to what we deploy shows up in review as a diff of this file.
// Beside it, testdata/config.golden.json is the config it was synthesized
// from (testConfig), for tests outside this module that deploy the golden
// template and need to know what the config says (test/e2e's schedule test).
func TestGoldenTemplate(t *testing.T) {
	golden(t, filepath.Join("testdata", "config.golden.json"), []byte(testConfig+"\n"))
	_, tmpl, _ := synth(t)
	b, err := json.MarshalIndent(tmpl.ToJSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := assetHash.ReplaceAll(b, []byte("<asset-hash>"))
	golden(t, filepath.Join("testdata", "template.golden.json"), append(got, '\n'))
}

// golden checks got against the file at path, or writes it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it: go test ./infra -run TestGoldenTemplate -update)", err)
	}
	if !bytes.Equal(got, want) {
		tmp := filepath.Join(t.TempDir(), filepath.Base(path))
		_ = os.WriteFile(tmp, got, 0o644)
		t.Fatalf("%s is not what the test made (diff it against %s; if the change is meant, rerun with -update)", path, tmp)
	}
}
