// Package e2e runs keyrotator end to end the way it runs in AWS: the real
// statemachine/rotation.asl.json, interpreted by aws-local-stepfunctions,
// invoking the real Lambda binaries, which call the sandbox's AWS through
// the real SDK. Every test ends with a check of invariant I1 over every byte
// the run produced.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/iampolicy/referee"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// lambdas holds <function>/bootstrap for every task, built once per run.
var lambdas string

// root is the repository, from this package.
var root = filepath.Join("..", "..")

// suiteDecisions are the distinct IAM decisions of every test's enforcing
// sandbox: after the tests, put to iam-simulate, which must decide each the
// same (the sandbox's evaluator against one nobody here wrote, over the
// whole suite's calls).
var suiteDecisions recorded

// e2eParallel is how many of this package's tests run at once unless
// -test.parallel says otherwise: an e2e test mostly waits (on its Lambda
// processes, the Node interpreter running its execution, scaled waits), so
// on the 2-core machine three side by side keep the cores busier than the
// core-count default, and this package is make test's long pole.
const e2eParallel = "3"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", e2eParallel); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	code := pipelinetest.Main(m, root, func(dist string) { lambdas = dist })
	if code == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		n, denied, disagree, err := suiteDecisions.compare(ctx)
		cancel()
		switch {
		case errors.Is(err, referee.ErrMissing):
			fmt.Fprintln(os.Stderr, "the suite's IAM decisions were not put to iam-simulate:", err)
		case err != nil:
			fmt.Fprintln(os.Stderr, "the suite's IAM decisions:", err)
			code = 1
		case len(disagree) > 0:
			for _, d := range disagree {
				fmt.Fprintln(os.Stderr, d)
			}
			code = 1
		default:
			fmt.Printf("the suite's %d distinct IAM decisions (%d denials): iam-simulate decided each the same (%.1f s)\n", n, denied, time.Since(start).Seconds())
		}
	}
	os.Exit(code)
}

// waitScale makes a 7-day wait last 60 ms: the sandbox clock still moves 7 days.
const waitScale = 1e-7

// H is one test's sandbox with keyrotator deployed in it.
type H struct {
	t   testing.TB
	sb  *sandboxtest.Sandbox
	dep pipeline.Deployment
	sfn *sfn.Client
	sm  *secretsmanager.Client
	out *printed // everything the test itself printed
	// secrets, beyond the sandbox's access keys, that must appear nowhere (I1):
	// e.g. an Auth0 application's client secret.
	secrets []string
}

// printed is what a test printed, from its subtests too.
type printed struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// For is h for a parallel subtest t: the same sandbox and deployment, its
// failures and lines reported on t, what it prints kept for h's I1 check
// (a secret it adds to h.secrets is not: add those on h).
func (h *H) For(t testing.TB) *H {
	sub := *h
	sub.t = t
	return &sub
}

// Start deploys keyrotator into a fresh sandbox, without its schedules and
// alarms (pipeline.HarnessSkips); I1 is checked when the test ends.
func Start(t testing.TB) *H {
	t.Helper()
	return startIn(t, fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true}, pipelinetest.Deploy{AnyUser: true})
}

// StartDeploy is Start deploying what d says: the schedules or alarms
// (d.Skip), a changed template (d.Edit); under IAM enforcement, the golden
// template widened to any user (pipelinetest.Deploy.AnyUser).
func StartDeploy(t testing.TB, d pipelinetest.Deploy) *H {
	t.Helper()
	d.AnyUser = true
	return startIn(t, fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true}, d)
}

// startWith is Start with the sandbox's options: the golden template
// widened to any user (pipelinetest.Deploy.AnyUser), as every test
// rotates users of its own.
func startWith(t testing.TB, opts fullsandbox.Options) *H {
	t.Helper()
	return startIn(t, opts, pipelinetest.Deploy{AnyUser: true})
}

// startExact is startWith with the golden template exactly as synthesized:
// the grants name the golden config's users, secrets and connections.
func startExact(t testing.TB, opts fullsandbox.Options) *H {
	t.Helper()
	return startIn(t, opts, pipelinetest.Deploy{})
}

// startIn is StartDeploy in a sandbox made with opts.
func startIn(t testing.TB, opts fullsandbox.Options, d pipelinetest.Deploy) *H {
	t.Helper()
	if opts.EnforceIAM {
		own := opts.RecordIAM
		opts.RecordIAM = func(d authz.Decision) {
			suiteDecisions.add(d)
			if own != nil {
				own(d)
			}
		}
	}
	sb, dep := pipelinetest.StartDeploy(t, opts, root, lambdas, d)
	cfg := sb.Config(t)
	h := &H{t: t, sb: sb, dep: dep, sfn: sfn.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), out: &printed{}}
	t.Cleanup(h.checkNoSecretAnywhere)
	t.Cleanup(h.checkEveryCallNamesItsResources)
	return h
}

// Logf prints for the test, and keeps what it printed for the I1 check.
func (h *H) Logf(format string, args ...any) {
	h.t.Helper()
	line := fmt.Sprintf(format, args...)
	h.out.mu.Lock()
	h.out.buf.WriteString(line + "\n")
	h.out.mu.Unlock()
	h.t.Log(line)
}

// Result is an ended execution with its history.
type Result struct {
	ARN     string
	Status  types.ExecutionStatus
	Error   string
	Cause   string
	Output  string
	History []types.HistoryEvent
}

// StartExecution begins an execution without waiting. A run that needs
// approval goes through the request endpoint (RequestRun), signed as the
// test's identity, as keyrotator start sends it: Validate refuses one
// started otherwise (StartUnsigned is that).
func (h *H) StartExecution(input any) string {
	h.t.Helper()
	if needsApproval(input) {
		return h.RequestRun(input)
	}
	return h.StartUnsigned(input)
}

// StartUnsigned begins an execution with StartExecution itself, the input
// as given.
func (h *H) StartUnsigned(input any) string {
	h.t.Helper()
	b, err := json.Marshal(input)
	if err != nil {
		h.t.Fatal(err)
	}
	if s, ok := input.(string); ok {
		b = []byte(s) // raw (possibly malformed) input
	}
	out, err := h.sfn.StartExecution(context.Background(), &sfn.StartExecutionInput{StateMachineArn: aws.String(h.dep.StateMachineARN), Input: aws.String(string(b))})
	if err != nil {
		h.t.Fatalf("StartExecution: %v", err)
	}
	return aws.ToString(out.ExecutionArn)
}

// Wait waits for an execution to end and reads its history.
func (h *H) Wait(arn string) *Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		d, err := h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			h.t.Fatalf("DescribeExecution: %v", err)
		}
		if d.Status != types.ExecutionStatusRunning {
			r := &Result{ARN: arn, Status: d.Status, Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), Output: aws.ToString(d.Output)}
			p := sfn.NewGetExecutionHistoryPaginator(h.sfn, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					h.t.Fatalf("GetExecutionHistory: %v", err)
				}
				r.History = append(r.History, page.Events...)
			}
			h.Logf("execution %s ended %s %s; states: %s", arn[strings.LastIndex(arn, ":")+1:], r.Status, r.Error, strings.Join(r.Visited(), " → "))
			for _, e := range r.History {
				if d := e.LambdaFunctionFailedEventDetails; d != nil {
					h.Logf("  task failed: %s: %s", aws.ToString(d.Error), aws.ToString(d.Cause))
				}
				if d := e.TaskFailedEventDetails; d != nil {
					h.Logf("  task failed: %s: %s", aws.ToString(d.Error), aws.ToString(d.Cause))
				}
			}
			return r
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("execution %s still running after 2 minutes", arn)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Run starts an execution and waits for it.
func (h *H) Run(input any) *Result {
	h.t.Helper()
	return h.Wait(h.StartExecution(input))
}

// Visited lists the states entered, in order (Map iterations included).
func (r *Result) Visited() []string {
	var names []string
	for _, e := range r.History {
		if d := e.StateEnteredEventDetails; d != nil {
			names = append(names, aws.ToString(d.Name))
		}
	}
	return names
}

// StateOutput decodes the output of the last exit from state into v.
func (r *Result) StateOutput(t *testing.T, state string, v any) {
	t.Helper()
	for i := len(r.History) - 1; i >= 0; i-- {
		if d := r.History[i].StateExitedEventDetails; d != nil && aws.ToString(d.Name) == state {
			if err := json.Unmarshal([]byte(aws.ToString(d.Output)), v); err != nil {
				t.Fatalf("output of %s: %v", state, err)
			}
			return
		}
	}
	t.Fatalf("state %s never exited; visited %v", state, r.Visited())
}

// functionName is the sandbox's name of task's function: the task's
// (pipeline.Deploy names functions by task) unless the template names it,
// as it names the endpoints (<prefix>-answerapproval).
func (h *H) functionName(task tasks.Task) string {
	if arn, ok := h.dep.Functions[task.Function()]; ok {
		return arn[strings.LastIndex(arn, ":")+1:]
	}
	return task.Function()
}

// admin reads an admin endpoint's raw bytes.
func (h *H) admin(path string) []byte {
	h.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, h.sb.URL+"/_sandbox"+path, nil) // also from Cleanup
	if err != nil {
		h.t.Fatalf("admin %s: %v", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK { // 410 for the call log: it evicted what was asked for
		h.t.Errorf("admin %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func (p *printed) bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

// checkEveryCallNamesItsResources: every authenticated call the run made is
// recorded with the resources IAM authorizes it on (sandbox.ResourceNamer),
// none of them empty, except the one action IAM does not authorize
// (sts:GetCallerIdentity): what IAM enforcement evaluates, and what the
// unused-grant check compares with each role's grants.
func (h *H) checkEveryCallNamesItsResources() {
	var calls []sandbox.CallRecord
	if err := json.Unmarshal(h.admin("/calls"), &calls); err != nil {
		h.t.Errorf("call log: %v", err)
		return
	}
	for _, c := range calls {
		if c.Principal == "" || c.Service == "sts" && c.Action == "GetCallerIdentity" {
			continue // refused before authentication, or authorized by no one
		}
		if len(c.ResourceARNs) == 0 || slices.Contains(c.ResourceARNs, "") {
			h.t.Errorf("call %d %s:%s by %s names resources %q", c.Seq, c.Service, c.Action, c.Principal, c.ResourceARNs)
		}
	}
}

// checkNoSecretAnywhere is invariant I1: no secret access key the sandbox
// ever issued appears in any execution's history, any Lambda's logs, any SNS
// message, the call log, CloudTrail, or what the test printed.
func (h *H) checkNoSecretAnywhere() {
	t := h.t
	sources := map[string][]byte{
		"the test's output": h.out.bytes(),
		"the call log":      h.admin("/calls"),
		"SNS messages":      h.admin("/sns/messages"),
		"CloudTrail events": h.admin("/cloudtrail/events"),
		"executions":        h.admin("/states/executions"),
	}
	ctx := context.Background()
	execs, err := h.sfn.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.dep.StateMachineARN), MaxResults: 1000})
	if err != nil {
		t.Errorf("I1 check: list executions: %v", err)
		return
	}
	for _, e := range execs.Executions {
		sources["history of "+aws.ToString(e.Name)] = h.admin("/states/executions/" + aws.ToString(e.ExecutionArn) + "/history")
		d, err := h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: e.ExecutionArn})
		if err == nil {
			b, _ := json.Marshal(d)
			sources["description of "+aws.ToString(e.Name)] = b
		}
	}
	for _, task := range tasks.Every() {
		sources["logs of "+task.Function()] = h.admin("/lambda/functions/" + h.functionName(task) + "/logs")
	}
	sources["Auth0 tenants"] = h.admin("/auth0/tenants")
	sources["SORACOM operators"] = h.admin("/soracom/operators")
	// The leak canary: every secret the world holds, in every encoding and
	// as pieces (pipelinetest.Start runs it over the sandbox's outputs too).
	all := h.sb.Secrets()
	for _, s := range h.secrets {
		all = append(all, leak.Secret{Kind: "a secret the test made", Value: s})
	}
	leak.Check(t, all, sources, sandboxtest.KindIAM)
}
