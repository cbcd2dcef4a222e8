// Package cli is the keyrotator operator CLI: start a rotation, watch it,
// see every managed user's keys and targets, approve or reject a run that
// waits for a person, and check a deployed stack against its config
// (doctor). It talks to Step Functions, IAM, Secrets Manager and STS (doctor
// also to Lambda, SNS, KMS, CloudWatch and EventBridge Scheduler) through
// the standard SDK configuration (AWS_ENDPOINT_URL and
// friends), so the same binary works against AWS and the sandbox. Each
// command is a thin cobra layer over a function that takes the SDK calls it
// makes as a small interface.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Exit codes: part of the CLI's contract with scripts (docs/cli.md).
const (
	ExitOK         = 0 // done; for watch and start --wait, the execution succeeded
	ExitError      = 1 // an error talking to AWS, or an unexpected one
	ExitUsage      = 2 // bad usage or invalid input: the message names the flag or field
	ExitRunFailed  = 3 // the execution ended FAILED, TIMED_OUT or ABORTED
	ExitNotPending = 4 // approve/reject: no approval is pending on that execution
	ExitRefused    = 5 // approve/reject: the approval endpoint refused the caller (ApproverRefused)
)

const exitCodesHelp = `Exit codes:
  0  ok (watch, start --wait: the execution succeeded)
  1  an error talking to AWS, or an unexpected one
  2  usage or invalid input (the message names the flag or field)
  3  the execution ended FAILED, TIMED_OUT or ABORTED
  4  approve/reject: nothing to approve or reject
  5  approve/reject: you may not answer this run (not an approver, or its requester)
  6  audit: an uncovered key is within --warn-days of its IAM.3 deadline
  7  audit: an uncovered key is past its IAM.3 deadline`

// exitError is an error with the exit code it means and, for bad input,
// the field it is about. Quiet ones have already been reported in full (a
// failed run's report) and only set the code.
type exitError struct {
	code  int
	kind  string // usage, invalid input, aws, not pending, run failed
	field string
	err   error
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// MinPoll is the shortest --poll: watch reads the execution's history
// every poll, and Step Functions throttles GetExecutionHistory.
const MinPoll = 100 * time.Millisecond

func usageErr(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &exitError{code: ExitUsage, kind: "usage", field: field, err: errors.New(msg)}
}

func awsErr(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: ExitError, kind: "aws", err: err}
}

// app is one invocation: where output goes, the global flags, and the SDK
// configuration, loaded on first use (so --help and bad input need none).
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	awsOpts        []func(*config.LoadOptions) error

	json         bool
	stateMachine string
	prefix       string
	region       string
	profile      string
	poll         time.Duration

	requestURLFlag, approvalURLFlag string
	httpClient                      *http.Client // the endpoints' (nil: http.DefaultClient)

	clock *serverClock
	cfg   *aws.Config
}

// Run runs the CLI with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunEnv(ctx, args, stdout, stderr, Env{})
}

// Env is what one invocation reads from outside its arguments. The zero
// Env is the process's: the command's. Tests that run many invocations at
// once, each against its own sandbox, pass their own.
type Env struct {
	// Getenv reads KEYROTATOR_STATE_MACHINE; nil is os.Getenv.
	Getenv func(string) string
	// AWS are SDK loading options applied before --region and --profile
	// (e.g. a sandbox's region, endpoint and key, with no shared files).
	AWS []func(*config.LoadOptions) error
}

// RunEnv is Run with env in place of the process's environment.
func RunEnv(ctx context.Context, args []string, stdout, stderr io.Writer, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	a := &app{stdout: stdout, stderr: stderr, getenv: env.Getenv, awsOpts: env.AWS, clock: &serverClock{now: time.Now}}
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Not from a command's own code: cobra refused the flags or arguments.
		ee = &exitError{code: ExitUsage, kind: "usage", err: err}
	}
	if !ee.quiet {
		a.reportError(ee)
	}
	return ee.code
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyrotator",
		Short: "Start, watch, inspect and approve keyrotator's access-key rotations",
		Long: `keyrotator drives the keyrotator state machine: it starts a rotation of an
IAM user's access key, follows it state by state, shows every managed user's
keys and which key each target holds, approves or rejects a run that waits
for a person, checks a deployed stack against its config (doctor: exit
0 green, 1 findings, 2 could not check), and lists every IAM user key of the
account against its Security Hub IAM.3 deadline (audit).

It uses the standard AWS SDK configuration (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL…), so it works against AWS and against the local sandbox
(make sandbox prints the export lines). The state machine is --state-machine,
else $KEYROTATOR_STATE_MACHINE, else the one named by the stack prefix
(--prefix, else $KEYROTATOR_PREFIX, else "keyrotator"), which also names
the rotation records (<prefix>/users/<user>).

Output is for people; --json prints one JSON document on stdout instead
(errors too). A secret access key is never printed.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, kind: "usage", err: err}
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&a.json, "json", false, "print one JSON document on stdout (for scripts)")
	pf.StringVar(&a.stateMachine, "state-machine", "", "state machine ARN or name (default $KEYROTATOR_STATE_MACHINE, else the stack prefix)")
	pf.StringVar(&a.prefix, "prefix", "", "the stack prefix: the state machine's name and the records' keyrotator/users/ (default $KEYROTATOR_PREFIX, else \"keyrotator\")")
	pf.StringVar(&a.region, "region", "", "AWS region (default: the SDK's, e.g. $AWS_REGION)")
	pf.StringVar(&a.profile, "profile", "", "AWS shared config profile (default: the SDK's, e.g. $AWS_PROFILE)")
	pf.DurationVar(&a.poll, "poll", time.Second, "how often watch reads the execution's history")
	pf.StringVar(&a.requestURLFlag, "request-url", "", "the request endpoint's function URL (start, for a run that needs approval; default $"+RequestURLEnv+", else <prefix>-requestrun's URL)")
	pf.StringVar(&a.approvalURLFlag, "approval-url", "", "the approval endpoint's function URL (approve, reject; default $"+ApprovalURLEnv+", else <prefix>-answerapproval's URL)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if p := a.names().Prefix; p != "" {
			if err := rotation.CheckPrefix(p); err != nil {
				return usageErr("--prefix", "%v", err)
			}
		}
		if a.poll < MinPoll {
			return usageErr("--poll", "is %s: at least %s (each poll reads the history; 0s read it 61 times a second)", a.poll, MinPoll)
		}
		return nil
	}
	root.AddCommand(a.startCmd(), a.watchCmd(), a.statusCmd(), a.approveCmd(true), a.approveCmd(false), a.doctorCmd(), a.auditCmd())
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// runE adapts a command's function: errors it does not classify are AWS's
// or unexpected (exit 1); cobra's own are usage (exit 2).
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return awsErr(err)
		}
		return nil
	}
}

// config loads the SDK configuration once, with the server-clock
// middleware on every client.
func (a *app) config(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	opts := slices.Clone(a.awsOpts)
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	cfg.APIOptions = append(cfg.APIOptions, a.clock.addMiddleware)
	a.cfg = &cfg
	return cfg, nil
}

// clients are the SDK clients a command uses.
type clients struct {
	sfn *sfn.Client
	iam *iam.Client
	sm  *secretsmanager.Client
	sts *sts.Client
}

func (a *app) clients(ctx context.Context) (clients, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return clients{}, err
	}
	return clients{sfn: sfn.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg)}, nil
}

// reportError prints an error: as a JSON document on stdout with --json,
// else a line on stderr.
func (a *app) reportError(e *exitError) {
	if a.json {
		kind := e.kind
		if kind == "" {
			kind = "error"
		}
		writeJSON(a.stdout, map[string]any{"error": errorDoc{Code: e.code, Kind: kind, Field: e.field, Message: e.err.Error()}})
		return
	}
	fmt.Fprintln(a.stderr, "keyrotator:", e.err)
	if e.code == ExitUsage && e.kind == "usage" && e.field == "" {
		fmt.Fprintln(a.stderr, "run 'keyrotator --help' for usage")
	}
}

// errorDoc is --json's error document: {"error": {...}}.
type errorDoc struct {
	Code    int    `json:"code"`
	Kind    string `json:"kind"`            // usage, invalid input, aws, not pending
	Field   string `json:"field,omitempty"` // the input field or flag at fault
	Message string `json:"message"`
}
