// Package pipeline deploys keyrotator into a sandbox the way the CDK app
// deploys it into AWS: the alert topic, one Lambda per task of
// functions/tasks from its real bootstrap binary, and
// statemachine/rotation.asl.json with the same DefinitionSubstitutions.
// The demo and the end-to-end tests both use it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
)

// Names of what Deploy makes.
const (
	StateMachineName = "keyrotator"
	AlertTopicName   = "keyrotator-alerts"
)

// Options say where the built pipeline is.
type Options struct {
	Dist string // folder with <function>/bootstrap for this machine
	ASL  string // statemachine/rotation.asl.json
}

// Deployment is what Deploy made.
type Deployment struct {
	StateMachineARN string
	AlertTopicARN   string
	Functions       map[string]string // name → ARN
}

// Deploy puts keyrotator into w.
func Deploy(ctx context.Context, w *fullsandbox.Sandbox, opts Options) (Deployment, error) {
	srv := w.Server
	d := Deployment{
		AlertTopicARN: fmt.Sprintf("arn:aws:sns:%s:%s:%s", srv.Region(), srv.Account(), AlertTopicName),
		Functions:     map[string]string{},
	}
	form := url.Values{"Action": {"CreateTopic"}, "Name": {AlertTopicName}}
	deployer := w.Admin.Principal
	if _, err := srv.Internal(ctx, "sns", "CreateTopic", "", deployer, []byte(form.Encode())); err != nil {
		return Deployment{}, fmt.Errorf("create alert topic: %w", err)
	}

	fns, ok := serviceAs[*lambda.Service](srv, "lambda")
	if !ok {
		return Deployment{}, errors.New("the sandbox has no Lambda service")
	}
	subs := map[string]string{"AlertTopicArn": d.AlertTopicARN}
	for _, t := range tasks.All {
		fn := t.Function()
		path := filepath.Join(opts.Dist, fn, "bootstrap")
		if _, err := os.Stat(path); err != nil {
			return Deployment{}, fmt.Errorf("function %s: %w (run make build first)", fn, err)
		}
		err := fns.Register(lambda.FunctionConfig{
			Name: fn, Path: path, Timeout: t.Timeout, MemoryMB: 256,
			Role: "keyrotator-" + fn, MaxConcurrency: w.LambdaConcurrency,
			// Auth0's rate limit (a 1-second window) is waited out for up to
			// 3 s here, not 20: the sandbox's storms end sooner.
			Env: map[string]string{"ALERT_TOPIC_ARN": d.AlertTopicARN, "AUTH0_MAX_RATE_WAIT": "3s", "SORACOM_MAX_RATE_WAIT": "3s"},
		})
		if err != nil {
			return Deployment{}, fmt.Errorf("register function %s: %w", fn, err)
		}
		arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", srv.Region(), srv.Account(), fn)
		d.Functions[fn] = arn
		subs[t.Placeholder()] = arn
	}

	states, ok := serviceAs[stateMachines](srv, "states")
	if !ok {
		return Deployment{}, errors.New("the sandbox has no Step Functions service")
	}
	if l, ok := states.(itemLabeller); ok {
		// A Map iteration's Task input is {"data": {"target": {"name": …}}}:
		// the call log attributes each call to (state, target).
		l.LabelItems("data", "target", "name")
	}
	arn, err := states.RegisterFile(ctx, StateMachineName, opts.ASL, subs, "")
	if err != nil {
		return Deployment{}, fmt.Errorf("register state machine: %w", err)
	}
	d.StateMachineARN = arn
	return d, nil
}

// GoBuildFlags are the go build flags of a task's Lambda: the Makefile's
// GO_LAMBDA_FLAGS (test/contract holds the two equal; the Makefile says why
// each is there).
func GoBuildFlags() []string {
	return []string{"-trimpath", "-tags", "lambda.norpc,nethttpomithttp2", "-gcflags", "github.com/aws/...=-l", "-ldflags", "-s -w"}
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
	for _, t := range tasks.All {
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

type stateMachines interface {
	RegisterFile(ctx context.Context, name, path string, subs map[string]string, role string) (string, error)
}

func serviceAs[T any](srv *sandbox.Server, name string) (T, bool) {
	var zero T
	svc, ok := srv.Service(name)
	if !ok {
		return zero, false
	}
	t, ok := svc.(T)
	return t, ok
}
