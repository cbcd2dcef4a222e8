// Package contract checks statemachine/rotation.asl.json against the code
// that runs it: the error names the Lambdas return, the functions the
// pipeline deploys, and the States Language itself.
package contract

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/infra/rotator"
	"github.com/keyrotator/keyrotator/local/pipeline"
)

var aslPath = filepath.Join("..", "..", "statemachine", "rotation.asl.json")

type machine struct {
	StartAt string           `json:"StartAt"`
	States  map[string]state `json:"States"`
}

type state struct {
	Type    string                           `json:"Type"`
	Next    string                           `json:"Next"`
	Default string                           `json:"Default"`
	Choices []struct{ Next string }          `json:"Choices"`
	Retry   []struct{ ErrorEquals []string } `json:"Retry"`
	Catch   []struct {
		ErrorEquals []string
		Next        string
	} `json:"Catch"`
	ItemProcessor *machine `json:"ItemProcessor"`
}

func load(t *testing.T) (machine, string) {
	t.Helper()
	b, err := os.ReadFile(aslPath)
	if err != nil {
		t.Fatal(err)
	}
	var m machine
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not JSON: %v", aslPath, err)
	}
	return m, string(b)
}

// walk visits every state, nested ones included.
func walk(m machine, visit func(name string, s state)) {
	for name, s := range m.States {
		visit(name, s)
		if s.ItemProcessor != nil {
			walk(*s.ItemProcessor, visit)
		}
	}
}

// Lambda's own errors that Step Functions reports for a task, beside ours.
var lambdaErrors = []string{
	"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
	"Lambda.TooManyRequestsException", "Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError",
}

func TestErrorNamesAreOurs(t *testing.T) {
	t.Parallel()
	m, _ := load(t)
	known := append(slices.Clone(rotation.ErrorNames), lambdaErrors...)
	walk(m, func(name string, s state) {
		var names []string
		for _, r := range s.Retry {
			names = append(names, r.ErrorEquals...)
		}
		for _, c := range s.Catch {
			names = append(names, c.ErrorEquals...)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "States.") && !slices.Contains(known, n) {
				t.Errorf("state %s matches %q: neither States.* nor an error a task returns", name, n)
			}
		}
	})
}

func TestEveryStateIsReachable(t *testing.T) {
	t.Parallel()
	m, _ := load(t)
	var check func(m machine, where string)
	check = func(m machine, where string) {
		seen := map[string]bool{}
		var visit func(string)
		visit = func(n string) {
			if n == "" || seen[n] {
				return
			}
			s, ok := m.States[n]
			if !ok {
				t.Errorf("%s: a transition goes to %q, which is no state", where, n)
				return
			}
			seen[n] = true
			visit(s.Next)
			visit(s.Default)
			for _, c := range s.Choices {
				visit(c.Next)
			}
			for _, c := range s.Catch {
				visit(c.Next)
			}
			if s.ItemProcessor != nil {
				check(*s.ItemProcessor, where+" > "+n)
			}
		}
		visit(m.StartAt)
		for n := range m.States {
			if !seen[n] {
				t.Errorf("%s: state %s is unreachable", where, n)
			}
		}
	}
	check(m, "top level")
}

// Every ${Placeholder} has a value when deployed, and every value is used.
func TestSubstitutionsMatchTheDeployedFunctions(t *testing.T) {
	t.Parallel()
	_, raw := load(t)
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`).FindAllStringSubmatch(raw, -1) {
		used[m[1]] = true
	}
	provided := map[string]bool{"AlertTopicArn": true}
	for _, task := range pipeline.Tasks {
		provided[task.Placeholder] = true
	}
	var missing, unused []string
	for p := range used {
		if !provided[p] {
			missing = append(missing, p)
		}
	}
	for p := range provided {
		if !used[p] {
			unused = append(unused, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(unused)
	if len(missing) > 0 || len(unused) > 0 {
		t.Fatalf("placeholders without a value: %v; values never used: %v", missing, unused)
	}
}

// The States Language validator the interpreter itself uses accepts the file.
func TestASLValidator(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	node := filepath.Join(root, "node_modules", ".bin", "node")
	validator := filepath.Join(root, "node_modules", "asl-validator", "dist", "bin", "asl-validator.js")
	if _, err := os.Stat(node); err != nil {
		t.Skipf("Node tools not installed (run make deps): %v", err)
	}
	if _, err := os.Stat(validator); err != nil {
		matches, _ := filepath.Glob(filepath.Join(root, "node_modules", "asl-validator", "*", "*asl-validator*"))
		if len(matches) == 0 {
			t.Skipf("asl-validator not found under node_modules: %v", err)
		}
		validator = matches[0]
	}
	out, err := exec.CommandContext(t.Context(), node, validator, "--json-path", aslPath).CombinedOutput()
	if err != nil {
		t.Fatalf("asl-validator: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "is valid") {
		t.Fatalf("asl-validator said: %s", out)
	}
}

// The CDK app deploys the same functions, under the same placeholders, as
// the sandbox's pipeline does.
func TestCDKAndSandboxDeployTheSameTasks(t *testing.T) {
	t.Parallel()
	if len(rotator.Tasks) != len(pipeline.Tasks) {
		t.Fatalf("CDK deploys %d tasks, the sandbox %d", len(rotator.Tasks), len(pipeline.Tasks))
	}
	for i, c := range rotator.Tasks {
		s := pipeline.Tasks[i]
		if c.Placeholder != s.Placeholder || c.Function != s.Function || c.TimeoutSec != s.Timeout.Seconds() {
			t.Errorf("task %d: CDK %+v, sandbox %+v", i, c, s)
		}
	}
}
