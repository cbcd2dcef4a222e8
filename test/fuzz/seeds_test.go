package fuzz

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/steps"
)

// seedOutcomes is what each hand-written seed must come to: "" accepted
// (with that many receipts after the colon), else the named error and a
// piece of its message. FuzzPreflight checks only the properties (named,
// no write, no leak); this pins the hostile cases of issue 11 to the
// refusal they must get, so a seed that starts passing fails here.
var seedOutcomes = map[string]string{
	"accepted-secret":               "ok:1",
	"accepted-secret-by-arn":        "ok:1",
	"accepted-three-targets":        "ok:3",
	"accepted-dry-run":              "ok:3",
	"waitDays-float":                "ok:1",
	"record-by-arn-secretAccessKey": "TargetFailed:keyrotator's own",
	"record-by-partial-arn":         "TargetFailed:keyrotator's own",
	"record-by-arn-own-user":        "TargetFailed:keyrotator's own",
	"own-record-by-arn-upper":       "TargetFailed:keyrotator's own",
	"connection-clientSecret":       "TargetFailed:keyrotator's own",
	"connection-clientId":           "TargetFailed:keyrotator's own",
	"own-connection-by-arn-secret":  "TargetFailed:keyrotator's own",
	"own-secret-by-name":            "InvalidInput:targets[0].secretId",
	"unicode-escaped-prefix":        "InvalidInput:targets[0].secretId",
	"keyIdField-eq-secretField":     "InvalidInput:targets[1].secretField",
	"connection-traversal":          "InvalidInput:targets[1].connection",
	"soracom-connection-traversal":  "InvalidInput:targets[1].connection",
	"missing-secret":                "TargetFailed:does not exist",
	"non-json-secret":               "TargetFailed:not a JSON object",
	"missing-connection":            `TargetFailed:target "a"`,
	"missing-soracom-connection":    `TargetFailed:target "o"`,
	"auth0-conn-is-soracom":         `TargetFailed:target "a"`,
	"case-own-prefix":               "TargetFailed:does not exist",
	"dot-slash-own":                 "TargetFailed:does not exist",
	"unicode-homoglyph-prefix":      "TargetFailed:does not exist",
	"unicode-fullwidth-slash":       "TargetFailed:does not exist",
	"victim-key-in-app":             "TargetFailed:neither the key being rotated",
	"victim-key-as-keyid":           "TargetFailed:not an access key id",
	"unknown-user":                  "UserNotFound:nobody",
	"unknown-field":                 `InvalidInput:did you mean "secretId"`,
	"duplicate-user":                "InvalidInput:user: is given twice",
	"duplicate-secretId":            "InvalidInput:targets[0].secretId: is given twice",
	"deep-33":                       "InvalidInput:deeper than 32",
	"deep-5000":                     "InvalidInput:deeper than 32",
	"deep-objects":                  "InvalidInput:deeper than 32",
	"null":                          "InvalidInput:got null, want object",
	"empty-array":                   "InvalidInput:got array, want object",
	"string":                        "InvalidInput:got string, want object",
	"number":                        "InvalidInput:got number, want object",
	"empty":                         "InvalidInput:not valid JSON",
	"not-json":                      "InvalidInput:not valid JSON",
	"trailing-garbage":              "InvalidInput:not valid JSON",
	"bom":                           "InvalidInput:not valid JSON",
	"null-targets":                  "InvalidInput:targets",
	"huge-user":                     "InvalidInput:user:",
	"huge-secretId":                 "InvalidInput:targets[0].secretId: maxLength",
	"huge-reason":                   "InvalidInput:262,144 (256 KiB)",
	"unicode-rtl-user":              "InvalidInput:user:",
	"unicode-nul":                   "InvalidInput:user:",
	"invalid-utf8":                  "InvalidInput:user:",
	"lone-surrogate":                "InvalidInput:targets[0].name",
}

// readSeed decodes a corpus file of one []byte.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

func TestPreflightSeedOutcomes(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for name, want := range seedOutcomes {
		raw := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzPreflight", name))
		var ev steps.ValidateInput
		ev.Now = fx.sb.Server.Clock().Now()
		ev.Data.Execution = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:seed"
		ev.Data.Input = json.RawMessage(fx.expand(raw))
		_, receipts, err := steps.Preflight(context.Background(), fx.v, fx.targets, ev)
		kind, piece, _ := strings.Cut(want, ":")
		switch {
		case kind == "ok":
			if err != nil || strconv.Itoa(len(receipts)) != piece {
				t.Errorf("%s: %d receipts, %v; want accepted with %s", name, len(receipts), err, piece)
			}
		case err == nil:
			t.Errorf("%s: accepted, want %s", name, want)
		case !strings.HasSuffix(strings.TrimPrefix(typeName(err), "*"), kind) || !strings.Contains(err.Error(), piece):
			t.Errorf("%s: %s %.300s; want %s", name, typeName(err), err, want)
		}
	}
}

func typeName(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(reflectName(err), "*"), "rotation.")
}

// The write check is not vacuous: the lock Validate takes after the
// preflight (TakeLock, the first write of a run) shows in it.
func TestWritesAreSeen(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	var ev steps.ValidateInput
	ev.Kind, ev.Now = "lock", fx.sb.Server.Clock().Now()
	ev.Data.Execution = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:lock"
	ev.Data.Input = json.RawMessage(fx.expand(readSeed(t, filepath.Join("testdata", "fuzz", "FuzzPreflight", "accepted-secret"))))
	seq := fx.sb.Server.Calls().Last()
	if _, err := fx.v.Run(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(fx.writes(t, seq)) == 0 {
		t.Error("taking the lock wrote nothing the fuzzer sees")
	}
}
