package contract

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/local/pipeline"
)

// The Lambdas the sandbox deploys and the benchmarks measure are built as
// `make build` builds the deployed ones: the Makefile's GO_LAMBDA_FLAGS
// and local/pipeline's GoBuildFlags are one list.
func TestLambdaBuildFlagsAreTheMakefiles(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GO_LAMBDA_FLAGS := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no GO_LAMBDA_FLAGS := line in the Makefile")
	}
	if got, want := shellWords(string(m[1])), pipeline.GoBuildFlags(); !slices.Equal(got, want) {
		t.Errorf("the Makefile's GO_LAMBDA_FLAGS %q, pipeline.GoBuildFlags %q", got, want)
	}
}

// shellWords splits s as the shell would words with double quotes only.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, w.String())
				w.Reset()
			}
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// Each Lambda links what its task uses (issue 12): none imports the SDK's
// config package (lambdautil.Env reads Lambda's environment; config would
// link SSO, STS and IMDS credential providers), and none imports the JSON
// Schema library (0.65 MB, and 4 ms of init at every cold start: it
// compiles every draft's meta-schema in its package init): Validate checks
// input with rotation/inputschema/subset, held to the library by
// inputschema's differential test and fuzz target.
func TestLambdasLinkOnlyWhatTheirTaskUses(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-tags", "lambda.norpc", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./cmd/...")
	cmd.Dir = filepath.Join("..", "..", "functions")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const (
		config = "github.com/aws/aws-sdk-go-v2/config"
		schema = "github.com/santhosh-tekuri/jsonschema/v6"
	)
	n := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		n++
		task := filepath.Base(f[0])
		deps := f[1:]
		if slices.Contains(deps, config) {
			t.Errorf("functions/cmd/%s links %s: build the SDK config with lambdautil.AWSConfig", task, config)
		}
		if slices.Contains(deps, schema) {
			t.Errorf("functions/cmd/%s links the JSON Schema library %s: check input with rotation/inputschema/subset", task, schema)
		}
	}
	if n == 0 {
		t.Fatal("go list found no functions/cmd/...")
	}
}
