// Command keyrotator-sandbox runs the local AWS that keyrotator is tested
// and demonstrated against: IAM, STS, Secrets Manager, CloudTrail, SNS, SES,
// Lambda (running the real bootstrap binaries) and Step Functions (running
// the real state machine file), on one loopback port.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keyrotator-sandbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keyrotator-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		host      = fs.String("host", "127.0.0.1", "address to listen on (keep it on loopback)")
		port      = fs.Int("port", 4566, "port for every AWS service (0: any free port)")
		region    = fs.String("region", "us-east-1", "the sandbox's region")
		state     = fs.String("state", "", "keep state in this file across restarts (default: in memory)")
		waitScale = fs.Float64("wait-scale", 1e-5, "real time a Step Functions Wait takes, per unit of time it stands for")
		// The work a Retry waits for (a throttled Lambda's busy instances,
		// CloudTrail's 2 requests a second) runs in real time.
		retryScale = fs.Float64("retry-scale", 0.1, "real time a Step Functions Retry pause takes, per unit of time it stands for")
		// A person answers an approval by hand: 72 hours last 4 minutes.
		callbackScale = fs.Float64("callback-scale", 1e-3, "real time a callback Task's timeout (an approval waiting for keyrotator approve) takes, per unit of time it stands for")
		verbose       = fs.Bool("v", false, "log every service's debug lines")
		deploy        = fs.String("deploy", "", "deploy keyrotator's template with its functions from this folder of <task>/bootstrap (e.g. bin/lambda)")
		template      = fs.String("template", pipeline.DefaultTemplate, "with --deploy: the CloudFormation template (the CDK app's synth)")
		lambdaConc    = fs.Int("lambda-concurrency", lambda.DefaultMaxConcurrency, "instances each deployed function may run at once (its reserved concurrency); more overlapping calls get TooManyRequestsException")
		iamLag        = fs.Duration("iam-lag", iam.DefaultLag, "sandbox time before GetAccessKeyLastUsed shows a use of a key (IAM documents up to about 4h; 0: at once)")
		enforceIAM    = fs.Bool("enforce-iam", false, "decide every call as IAM does, by the deployed template's policies (the admin identity keeps full access)")
		// Issue 15: member accounts, each with the member stack deployed.
		members     = fs.String("member-accounts", "", "comma-separated 12-digit account ids to hold beside the sandbox's own, each with the member stack (keyrotator-member) deployed as StackSets would; the deployed template's tasks may assume only the member roles of the accounts its config names")
		memberExtID = fs.String("member-external-id", "", "with --member-accounts: the member stacks' ExternalId (default: the deployed template's MEMBER_EXTERNAL_ID)")
		memberTmpl  = fs.String("member-template", pipeline.MemberTemplate, "with --member-accounts: the member stack's CloudFormation template (the CDK app's KeyRotatorMember synth)")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: keyrotator-sandbox [flags]\n\nStarts the local AWS and prints the export lines a shell needs to reach it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *lambdaConc < 1 {
		return fmt.Errorf("--lambda-concurrency %d: want at least 1", *lambdaConc)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	w, err := fullsandbox.New(fullsandbox.Options{
		Options:   sandbox.Options{Region: *region, StateFile: *state, Logger: log},
		WaitScale: *waitScale, RetryScale: *retryScale, CallbackScale: *callbackScale, IAMLag: sandboxLag(*iamLag),
		LambdaConcurrency: *lambdaConc, EnforceIAM: *enforceIAM,
	})
	if err != nil {
		return err
	}
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	w.Server.SetURL("http://" + l.Addr().String())
	var dep pipeline.Deployment
	if *deploy != "" {
		if dep, err = pipeline.Deploy(ctx, w, pipeline.Options{Dist: *deploy, Template: *template}); err != nil {
			_ = w.Server.Close()
			return err
		}
	}
	memberLines, err := deployMembers(ctx, w, *members, *memberExtID, *template, *memberTmpl)
	if err != nil {
		_ = w.Server.Close()
		return err
	}
	for _, kv := range w.Env() {
		fmt.Fprintf(stdout, "export %s\n", kv)
	}
	for _, line := range memberLines {
		fmt.Fprintln(stdout, line)
	}
	if dep.StateMachineARN != "" {
		fmt.Fprintf(stdout, "export KEYROTATOR_STATE_MACHINE=%s\nexport KEYROTATOR_ALERT_TOPIC=%s\n", dep.StateMachineARN, dep.AlertTopicARN)
		fmt.Fprintln(stdout, "# start a rotation by hand: aws stepfunctions start-execution --state-machine-arn $KEYROTATOR_STATE_MACHINE --input file://rotation.json")
	}
	fmt.Fprintf(stdout, "# keyrotator sandbox: %v on %s (Ctrl-C to stop)\n", w.Server.Services(), l.Addr())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("sandbox started", "addr", l.Addr().String(), "services", w.Server.Services(), "state", *state)
	if err := w.Server.Serve(ctx, l); err != nil {
		return err
	}
	log.Info("sandbox stopped")
	return nil
}

// sandboxLag is the --iam-lag flag as fullsandbox.Options.IAMLag, where 0 means the default.
func sandboxLag(d time.Duration) time.Duration {
	if d <= 0 {
		return fullsandbox.NoIAMLag
	}
	return d
}

// deployMembers adds each account of list (comma-separated) to the sandbox
// and deploys the member stack (memberTemplate) into it as its
// administrator, trusting the sandbox's own account's keyrotator task
// roles with externalID (default: the MEMBER_EXTERNAL_ID of template's
// functions). It returns the comment lines that say how to reach each
// account as its administrator.
func deployMembers(ctx context.Context, w *fullsandbox.Sandbox, list, externalID, template, memberTemplate string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	if externalID == "" {
		id, err := templateExternalID(template)
		if err != nil {
			return nil, fmt.Errorf("--member-accounts: %w; give --member-external-id", err)
		}
		externalID = id
	}
	var lines []string
	for _, acct := range strings.Split(list, ",") {
		acct = strings.TrimSpace(acct)
		admin, err := w.AddAccount(acct)
		if err != nil {
			return nil, fmt.Errorf("--member-accounts: %w", err)
		}
		if _, err := pipeline.DeployStack(ctx, w, pipeline.StackOptions{
			Template: memberTemplate, StackName: "keyrotator-member", Account: acct,
			Parameters: map[string]string{"MainAccountId": w.Server.Account(), "ExternalId": externalID, "TrustedRoleNames": pipeline.StackName + "-*"},
		}); err != nil {
			return nil, fmt.Errorf("--member-accounts: %w", err)
		}
		line := fmt.Sprintf("# member account %s: keyrotator-member deployed (external id %s); as its administrator: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s",
			acct, externalID, admin.AccessKeyID, admin.Secret)
		if admin.SessionToken != "" {
			line += " AWS_SESSION_TOKEN=" + admin.SessionToken
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// templateExternalID is the MEMBER_EXTERNAL_ID the template gives its
// functions (one value: infra sets the config's member.externalId on each
// task that reaches members).
func templateExternalID(template string) (string, error) {
	b, err := os.ReadFile(template)
	if err != nil {
		return "", fmt.Errorf("read %s for the member external id: %w", template, err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				Environment struct{ Variables map[string]any }
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", template, err)
	}
	for _, r := range doc.Resources {
		if id, ok := r.Properties.Environment.Variables["MEMBER_EXTERNAL_ID"].(string); ok && r.Type == "AWS::Lambda::Function" && id != "" {
			return id, nil
		}
	}
	return "", fmt.Errorf("%s names no member external id (its config has no member account)", template)
}
