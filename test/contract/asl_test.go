// Package contract checks statemachine/rotation.asl.json against the code
// that runs it: the error names the Lambdas return, the tasks of
// functions/tasks that infra and the sandbox deploy, and the States
// Language itself.
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
	"github.com/keyrotator/keyrotator/functions/tasks"
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

var placeholderRE = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`)

// Every ${Placeholder} has a value when deployed (the alert topic's, or a
// task's of functions/tasks, which infra and the sandbox's pipeline both
// substitute), and every task's placeholder is used.
func TestSubstitutionsMatchTheTasks(t *testing.T) {
	t.Parallel()
	_, raw := load(t)
	used := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(raw, -1) {
		used[m[1]] = true
	}
	provided := map[string]bool{"AlertTopicArn": true}
	for _, task := range tasks.All {
		provided[task.Placeholder()] = true
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
		t.Fatalf("placeholders no task of functions/tasks provides: %v; tasks whose placeholder is never used: %v", missing, unused)
	}
}

// A state's name leads to its code: every Lambda Task state runs the task
// that declares it in functions/tasks, and every state a task declares runs
// it, so the Task's name, the function's folder and the step are one hop
// apart.
func TestEveryTaskStateIsDeclaredByItsTask(t *testing.T) {
	byPlaceholder := map[string]tasks.Task{}
	declared := map[string]string{} // state → the task declaring it
	for _, task := range tasks.All {
		if _, dup := byPlaceholder[task.Placeholder()]; dup {
			t.Errorf("two tasks named %s", task.Name)
		}
		byPlaceholder[task.Placeholder()] = task
		for _, s := range task.States {
			if other, dup := declared[s]; dup {
				t.Errorf("state %s is declared by %s and %s", s, other, task.Name)
			}
			declared[s] = task.Name
		}
	}
	seen := map[string]bool{}
	for _, s := range taskStates(t) {
		p := s.placeholder()
		if p == "" {
			if s.runsLambda() {
				t.Errorf("state %s runs a Lambda, but not through a ${…FunctionArn} placeholder", s.Name)
			}
			continue
		}
		task, ok := byPlaceholder[p]
		if !ok {
			t.Errorf("state %s runs ${%s}, which no task of functions/tasks is", s.Name, p)
			continue
		}
		if !slices.Contains(task.States, s.Name) {
			t.Errorf("state %s runs task %s, whose States %v leave it out", s.Name, task.Name, task.States)
		}
		seen[s.Name] = true
	}
	for s, task := range declared {
		if !seen[s] {
			t.Errorf("task %s declares state %s, which is no Task state running it", task, s)
		}
	}
}

// Every task has its functions/cmd/<function> and every folder there is a
// task: the Makefile builds what it finds there, infra and the sandbox
// deploy what functions/tasks lists. And each main logs under its own name.
func TestEveryTaskHasItsCommand(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join("..", "..", "functions", "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := map[string]bool{}
	for _, d := range dirs {
		if d.IsDir() {
			cmds[d.Name()] = true
		}
	}
	for _, task := range tasks.Every() { // issue 14: endpoints have commands too
		fn := task.Function()
		if !cmds[fn] {
			t.Errorf("task %s has no functions/cmd/%s", task.Name, fn)
			continue
		}
		delete(cmds, fn)
		src, err := os.ReadFile(filepath.Join("..", "..", "functions", "cmd", fn, "main.go"))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(src), "lambdautil.Start(\""+fn+"\"") {
			t.Errorf("functions/cmd/%s/main.go does not start as %q (lambdautil.Start's task, in its logs)", fn, fn)
		}
	}
	for c := range cmds {
		t.Errorf("functions/cmd/%s is no task of functions/tasks: infra and the sandbox would not deploy it", c)
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
