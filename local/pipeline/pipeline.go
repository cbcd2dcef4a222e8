// Package pipeline deploys keyrotator into a sandbox the way the CDK app
// deploys it into AWS: the alert topic, one Lambda per task from its real
// bootstrap binary, and statemachine/rotation.asl.json with the same
// DefinitionSubstitutions. The demo and the end-to-end tests both use it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/world"
)

// Task is one Task state's function: the ASL placeholder names its ARN.
type Task struct {
	Placeholder string        // in rotation.asl.json: ${<Placeholder>}
	Function    string        // dist/<Function>/bootstrap, and the function's name
	Timeout     time.Duration // the Lambda timeout
}

// Tasks are every function the state machine runs. The CDK app deploys the
// same list; a contract test checks it against the ASL file.
var Tasks = []Task{
	{"ValidateFunctionArn", "validate", 30 * time.Second},
	{"CreateKeyFunctionArn", "createkey", 60 * time.Second}, // waits for IAM to propagate the new key
	{"UpdateSecretFunctionArn", "updatesecret", 30 * time.Second},
	{"UpdateAuth0FunctionArn", "updateauth0", 60 * time.Second},      // waits out Auth0's rate limit
	{"UpdateSoracomFunctionArn", "updatesoracom", 300 * time.Second}, // waits out SORACOM's per-minute rate limit; pages of groups
	{"PromoteFunctionArn", "promote", 30 * time.Second},
	{"VerifyOldKeyUnusedFunctionArn", "verifyoldkeyunused", 60 * time.Second},
	{"DeactivateOldKeyFunctionArn", "deactivateoldkey", 30 * time.Second},
	{"DeleteOldKeyFunctionArn", "deleteoldkey", 30 * time.Second},
	{"CleanupTargetsFunctionArn", "cleanuptargets", 30 * time.Second},
	{"NotifyFunctionArn", "notify", 30 * time.Second},
}

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
func Deploy(ctx context.Context, w *world.World, opts Options) (Deployment, error) {
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
	for _, t := range Tasks {
		path := filepath.Join(opts.Dist, t.Function, "bootstrap")
		if _, err := os.Stat(path); err != nil {
			return Deployment{}, fmt.Errorf("function %s: %w (run make build first)", t.Function, err)
		}
		err := fns.Register(lambda.FunctionConfig{
			Name: t.Function, Path: path, Timeout: t.Timeout, MemoryMB: 256,
			Role: "keyrotator-" + t.Function, MaxConcurrency: w.LambdaConcurrency,
			// Auth0's rate limit (a 1-second window) is waited out for up to
			// 3 s here, not 20: the sandbox's storms end sooner.
			Env: map[string]string{"ALERT_TOPIC_ARN": d.AlertTopicARN, "AUTH0_MAX_RATE_WAIT": "3s", "SORACOM_MAX_RATE_WAIT": "3s"},
		})
		if err != nil {
			return Deployment{}, fmt.Errorf("register function %s: %w", t.Function, err)
		}
		arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", srv.Region(), srv.Account(), t.Function)
		d.Functions[t.Function] = arn
		subs[t.Placeholder] = arn
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

// Build compiles every functions/cmd/<task> as outDir/<task>/bootstrap for
// this machine, with the flags `make build` uses: what Deploy's Dist wants.
// functionsDir is the functions module.
func Build(ctx context.Context, functionsDir, outDir string) error {
	bin := filepath.Join(outDir, ".bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", bin+string(filepath.Separator), "./cmd/...")
	cmd.Dir = functionsDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the Lambdas in %s: %w\n%s", functionsDir, err, out)
	}
	defer os.RemoveAll(bin)
	for _, t := range Tasks {
		if err := os.MkdirAll(filepath.Join(outDir, t.Function), 0o755); err != nil {
			return fmt.Errorf("build function %s: %w", t.Function, err)
		}
		if err := os.Rename(filepath.Join(bin, t.Function), filepath.Join(outDir, t.Function, "bootstrap")); err != nil {
			return fmt.Errorf("build function %s: %w", t.Function, err)
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
