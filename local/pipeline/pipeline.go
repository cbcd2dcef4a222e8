// Package pipeline deploys keyrotator into a sandbox the way CloudFormation
// deploys it into AWS: the template the CDK app synthesizes (by default the
// checked-in infra/testdata/template.golden.json, kept in step with synth
// by the infra tests) is deployed by local/sandbox/cfn, each resource by the
// sandbox service that owns its type, each function from this machine's
// build of the task its metadata names. The demo and the end-to-end tests
// both use it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
)

// DefaultTemplate is the checked-in synth of the infra tests' config,
// relative to the repository root.
const DefaultTemplate = "infra/testdata/template.golden.json"

// StackName is the stack Deploy makes unless told otherwise.
const StackName = "keyrotator"

// HarnessSkips are the resource types the tests' and the demo's deploys
// leave out (Options.Skip): the schedules would start the golden config's
// rotations on every clock jump a shortened Wait makes, in every sandbox,
// and the alarms would publish into the alert topic whose messages the
// tests read. Both are deployed and run by the tests of their own
// (local/pipeline's TestDeployGoldenTemplate deploys everything;
// local/sandbox/scheduler and cloudwatch run them); keyrotator-sandbox
// deploys everything unless told otherwise.
var HarnessSkips = []string{"AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm"}

// Options say what to deploy and where the built functions are.
type Options struct {
	Dist     string // folder with <task>/bootstrap for this machine
	Template string // the CloudFormation template (JSON); "" is DefaultTemplate
	// StackName is the stack's name (AWS::StackName); "" is StackName.
	StackName string
	// Parameters are the template's parameter values, beyond its defaults.
	Parameters map[string]string
	// Skip lists resource types to record and skip instead of refusing
	// (cfn.Options.Skip); nil refuses every type no service provisions.
	Skip []string
}

// Deployment is what Deploy made.
type Deployment struct {
	StateMachineARN string
	AlertTopicARN   string
	Functions       map[string]string // task function name ("createkey") → ARN
	Stack           *cfn.Stack        // every resource, the outputs
}

// Deploy deploys the template into w as the sandbox's admin, with every
// registered service that provisions resources (cfn.Provisioner).
func Deploy(ctx context.Context, w *fullsandbox.Sandbox, opts Options) (Deployment, error) {
	srv := w.Server
	if opts.Template == "" {
		opts.Template = DefaultTemplate
	}
	tpl, err := cfn.ParseFile(opts.Template)
	if err != nil {
		return Deployment{}, err
	}
	fns, ok := serviceAs[*lambda.Service](srv, "lambda")
	if !ok {
		return Deployment{}, errors.New("the sandbox has no Lambda service")
	}
	fns.SetDeploySettings(lambda.DeploySettings{
		Dist: opts.Dist, MaxConcurrency: w.LambdaConcurrency,
		// The tests, fault rules and the admin API address a function by
		// its task, where CloudFormation would name it
		// <stack>-<logicalId>-<random>.
		NameByTask: true,
		// Auth0's rate limit (a 1-second window) is waited out for up to
		// 3 s here, not 20: the sandbox's storms end sooner.
		Env: map[string]string{"AUTH0_MAX_RATE_WAIT": "3s", "SORACOM_MAX_RATE_WAIT": "3s"},
	})
	if states, ok := serviceAs[itemLabeller](srv, "states"); ok {
		// A Map iteration's Task input is {"data": {"target": {"name": …}}}:
		// the call log attributes each call to (state, target).
		states.LabelItems("data", "target", "name")
	}
	if opts.StackName == "" {
		opts.StackName = StackName
	}
	// A stack deployed before (a sandbox restarted with --state) is updated.
	prev, _ := w.Stacks.Get(opts.StackName)
	stack, err := cfn.Deploy(ctx, tpl, cfn.Options{
		StackName: opts.StackName, Parameters: opts.Parameters, Skip: opts.Skip, Previous: prev,
		// The sandbox deploys in its own region and account, as a stack
		// is deployed in the region of the call: the template's pseudo
		// parameters take them (a template that hard-codes another
		// region in an ARN keeps it, as it would in AWS).
		Region: srv.Region(), Account: srv.Account(), Partition: "aws",
		Provisioners: Provisioners(srv), Caller: w.Admin.Principal, Logger: srv.Logger(),
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("deploy %s: %w", opts.Template, err)
	}
	w.Stacks.Put(stack)
	srv.MarkDirty()
	return deployment(stack)
}

// Provisioners are the registered services that provision resource types,
// in registration order: a service joins by implementing cfn.Provisioner.
func Provisioners(srv *sandbox.Server) []cfn.Provisioner {
	var out []cfn.Provisioner
	for _, name := range srv.Services() {
		svc, ok := srv.Service(name)
		if !ok {
			continue
		}
		if p, ok := svc.(cfn.Provisioner); ok {
			out = append(out, p)
		}
	}
	return out
}

// deployment reads what callers use from the stack: the state machine
// (the StateMachineArn output), the alert topic and the functions by task.
func deployment(stack *cfn.Stack) (Deployment, error) {
	d := Deployment{Functions: map[string]string{}, Stack: stack}
	d.StateMachineARN = stack.Outputs["StateMachineArn"]
	if d.StateMachineARN == "" {
		machines := stack.OfType("AWS::StepFunctions::StateMachine")
		if len(machines) != 1 {
			return Deployment{}, fmt.Errorf("the stack has %d state machines and no StateMachineArn output", len(machines))
		}
		d.StateMachineARN = stack.Resources[machines[0]].Ref
	}
	topics := stack.OfType("AWS::SNS::Topic")
	if len(topics) != 1 {
		return Deployment{}, fmt.Errorf("the stack has %d SNS topics, want the one alert topic", len(topics))
	}
	d.AlertTopicARN = stack.Resources[topics[0]].Ref
	for _, id := range stack.OfType("AWS::Lambda::Function") {
		res := stack.Resources[id]
		task, _ := res.Metadata[lambda.TaskMetadata].(string)
		d.Functions[task] = res.Attrs["Arn"]
	}
	for _, t := range tasks.Every() {
		if _, ok := d.Functions[t.Function()]; !ok {
			return Deployment{}, fmt.Errorf("the stack has no function for task %s", t.Function())
		}
	}
	return d, nil
}

// GoBuildFlags are the go build flags of a task's Lambda: the Makefile's
// GO_LAMBDA_FLAGS (test/contract holds the two equal; the Makefile says why
// each is there).
func GoBuildFlags() []string {
	return []string{"-trimpath", "-tags", "lambda.norpc,nethttpomithttp2", "-gcflags", "github.com/aws/...=-l", "-gcflags", "github.com/keyrotator/...=-l", "-ldflags", "-s -w"}
}

// Build compiles every functions/cmd/<task> as outDir/<task>/bootstrap for
// this machine, with the flags `make build` uses: what Deploy's Dist wants.
// functionsDir is the functions module.
func Build(ctx context.Context, functionsDir, outDir string) error {
	bin := filepath.Join(outDir, ".bin")
	args := append(append([]string{"build"}, GoBuildFlags()...), "-o", bin+string(filepath.Separator), "./cmd/...")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = functionsDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the Lambdas in %s: %w\n%s", functionsDir, err, out)
	}
	defer os.RemoveAll(bin)
	for _, t := range tasks.Every() {
		fn := t.Function()
		if err := os.MkdirAll(filepath.Join(outDir, fn), 0o755); err != nil {
			return fmt.Errorf("build function %s: %w", fn, err)
		}
		if err := os.Rename(filepath.Join(bin, fn), filepath.Join(outDir, fn, "bootstrap")); err != nil {
			return fmt.Errorf("build function %s: %w", fn, err)
		}
	}
	return nil
}

type itemLabeller interface{ LabelItems(path ...string) }

func serviceAs[T any](srv *sandbox.Server, name string) (T, bool) {
	var zero T
	svc, ok := srv.Service(name)
	if !ok {
		return zero, false
	}
	t, ok := svc.(T)
	return t, ok
}
