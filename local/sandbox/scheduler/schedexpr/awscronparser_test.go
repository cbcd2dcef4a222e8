package schedexpr_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/scheduler/schedexpr"
)

// TestAgainstAWSCronParser checks Next against the times the npm package
// aws-cron-parser 1.1.12 computed for the same expressions and starts
// (testdata/aws-cron-parser.mjs says how the file was made): an
// independent implementation of AWS's cron, in UTC.
func TestAgainstAWSCronParser(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("testdata", "aws-cron-parser.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Expr  string   `json:"expr"`
		Start string   `json:"start"`
		Next  []string `json:"next"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	// Where the package is wrong: a day the month lacks rolls over into the
	// next month as JavaScript's Date rolls it (Feb 29 of 2027 is read as
	// Mar 1, the 31st of February as Mar 3); AWS runs such a schedule only
	// in months that have the day.
	rollsOver := map[string]bool{"30 2 29 2 ? *": true, "45 23 31 * ? *": true}
	for _, c := range cases {
		if rollsOver[c.Expr] {
			continue
		}
		e, err := schedexpr.Parse("cron("+c.Expr+")", "UTC")
		if err != nil {
			t.Errorf("Parse %q: %v", c.Expr, err)
			continue
		}
		at, _ := time.Parse(time.RFC3339, c.Start)
		for i, want := range c.Next {
			got, ok := e.Next(time.Time{}, at)
			w, _ := time.Parse(time.RFC3339, want)
			if !ok || !got.Equal(w) {
				t.Errorf("cron(%s) from %s, #%d: %v %v, aws-cron-parser says %s", c.Expr, c.Start, i+1, got, ok, want)
				break
			}
			at = got
		}
	}
}
