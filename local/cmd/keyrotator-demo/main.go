// Command keyrotator-demo runs one rotation end to end on the sandbox: a
// demo IAM user whose 95-day-old key an application reads from a Secrets
// Manager secret and keeps using, an Auth0 tenant sends mail with and two
// SORACOM groups push data with; the real state machine and the real
// Lambdas, waits shortened. It prints each state as it is entered and left,
// then a before/after report, and ends with one line that says how it went.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go/logging"

	"github.com/keyrotator/keyrotator/cli/watch"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/local/consumer"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stdout, "rotation failed:", err)
		os.Exit(1)
	}
}

const (
	demoUser   = "demo-app-sender"
	demoSecret = "demo/app/aws-access-key"
	demoTenant = "demo-tenant"
	demoFunnel = "demo-funnel"
	// The credential the source post made by hand, holding the old key.
	demoCredential = "demo-funnel-20260901"
)

func run(ctx context.Context, args []string, out io.Writer) error {
	start := time.Now()
	fs := flag.NewFlagSet("keyrotator-demo", flag.ContinueOnError)
	dist := fs.String("dist", "bin/lambda", "folder with <function>/bootstrap built for this machine")
	template := fs.String("template", pipeline.DefaultTemplate, "the CloudFormation template to deploy (the CDK app's synth)")
	scale := fs.Float64("wait-scale", 2e-6, "real time per unit of a Wait state's time (2e-6: 7 days in 1.2 s)")
	envFile := fs.String("env-file", "", "write the export lines another shell needs to reach this sandbox (and KEYROTATOR_EXECUTION once started) to this file, e.g. for keyrotator watch")
	linger := fs.Duration("linger", 0, "keep the sandbox up this long after the report (with --env-file: for a watcher to read the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	w, err := fullsandbox.New(fullsandbox.Options{WaitScale: *scale, Options: sandbox.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	w.Server.SetURL("http://" + l.Addr().String())
	srvCtx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Server.Serve(srvCtx, l) }()
	defer func() { stopServer(); <-served }()
	defer time.Sleep(*linger) // runs first: the sandbox stays up for a watcher

	dep, err := pipeline.Deploy(ctx, w, pipeline.Options{Dist: *dist, Template: *template, Skip: pipeline.HarnessSkips})
	if err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(w.Server.Region()), config.WithBaseEndpoint(w.Server.URL()), config.WithLogger(logging.Nop{}),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(w.Admin.AccessKeyID, w.Admin.Secret, "")))
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}

	// The world before: a user whose one key is 95 days old, kept in the
	// application's secret, and an application that keeps using it.
	old, err := seed(ctx, w, cfg)
	if err != nil {
		return err
	}
	oldKey := old.AccessKeyID
	app := consumer.New(cfg, demoSecret, 20*time.Millisecond, true)
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	appDone := make(chan struct{})
	go func() { defer close(appDone); app.Run(appCtx) }()
	fmt.Fprintf(out, "sandbox up at %s; user %s has key %s (95 days old), used by the app through secret %s\n\n",
		w.Server.URL(), demoUser, oldKey, demoSecret)

	tenant, err := seedAuth0(ctx, w, cfg, old)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Auth0 tenant %s (at %s) sends its mail through SES with the same key\n", demoTenant, tenant)
	op, err := seedSoracom(ctx, w, cfg, old)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "SORACOM operator %s: 2 SIM groups push data into AWS IoT (Funnel) and Lambda (Funk) with it, through credential %s\n\n", op.ID(), demoCredential)
	input, _ := json.Marshal(map[string]any{
		"user": demoUser, "waitDays": 7, "graceDays": 1,
		"targets": []map[string]string{
			{"type": "secret", "name": "app", "secretId": demoSecret},
			{"type": "auth0", "name": demoTenant, "connection": "keyrotator/connections/" + demoTenant, "sesRegion": "ap-northeast-1"},
			{"type": "soracom", "name": demoFunnel, "connection": "keyrotator/connections/" + demoFunnel, "credentialPrefix": "demo-funnel"},
		},
	})
	sf := sfn.NewFromConfig(cfg)
	started, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(dep.StateMachineARN), Input: aws.String(string(input)), Name: aws.String("demo-" + time.Now().UTC().Format("20060102T150405"))})
	if err != nil {
		return fmt.Errorf("start execution: %w", err)
	}
	fmt.Fprintf(out, "execution %s\n", aws.ToString(started.ExecutionArn))
	if *envFile != "" {
		if err := writeEnv(*envFile, w, dep.StateMachineARN, aws.ToString(started.ExecutionArn)); err != nil {
			return err
		}
	}
	ended, err := watch.Follow(ctx, sf, aws.ToString(started.ExecutionArn), 20*time.Millisecond, func(s watch.Step) {
		fmt.Fprintln(out, s)
	})
	time.Sleep(60 * time.Millisecond) // a few more app calls on the key it now holds
	stopApp()
	<-appDone
	if err != nil {
		return err
	}
	keys, err := watch.ListKeys(ctx, iamsdk.NewFromConfig(cfg), demoUser)
	if err != nil {
		return err
	}
	return report(out, w, op, watch.NewReport(ended, keys), app.Stats(), time.Since(start))
}

// writeEnv writes the shell lines that reach this sandbox as its admin,
// with the state machine and the execution, atomically (a watcher polls it).
func writeEnv(path string, w *fullsandbox.Sandbox, stateMachine, execution string) error {
	var b strings.Builder
	for _, kv := range append(w.Env(), "KEYROTATOR_STATE_MACHINE="+stateMachine, "KEYROTATOR_EXECUTION="+execution) {
		fmt.Fprintf(&b, "export %s\n", kv)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	return nil
}

// seedAuth0 is an Auth0 tenant whose SES provider sends with the old key,
// and its connection secret; it returns the tenant's domain.
func seedAuth0(ctx context.Context, w *fullsandbox.Sandbox, cfg aws.Config, old iam.AccessKey) (string, error) {
	clientSecret := sandbox.NewSecret()
	t, err := w.Auth0.AddTenant(auth0.TenantConfig{Name: demoTenant, ClientID: "demo-client", ClientSecret: clientSecret,
		Provider: &auth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@demo.example.com",
			Credentials: map[string]any{"accessKeyId": old.AccessKeyID, "secretAccessKey": old.SecretAccessKey, "region": "ap-northeast-1"}}})
	if err != nil {
		return "", fmt.Errorf("seed Auth0 tenant: %w", err)
	}
	conn, _ := json.Marshal(map[string]string{"domain": "http://" + t.Domain(), "clientId": "demo-client", "clientSecret": clientSecret})
	if err := createConnection(ctx, cfg, "keyrotator/connections/"+demoTenant, conn); err != nil {
		return "", fmt.Errorf("seed Auth0 connection: %w", err)
	}
	return t.Domain(), nil
}

// createConnection makes a connection secret tagged as the stack tags its
// connections (keyrotator:kind = connection, infra/rotator), so a `secret`
// target naming it is refused in the demo as in AWS.
func createConnection(ctx context.Context, cfg aws.Config, name string, value []byte) error {
	_, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(string(value)),
		Tags: []smtypes.Tag{{Key: aws.String(secret.Own), Value: aws.String("connection")}}})
	return err
}

// seedSoracom is a SORACOM operator with the old key in a credential, two
// SIM groups that push with it (Funnel to AWS IoT, Funk to Lambda, each
// storing credentialsId in one of SORACOM's two shapes), and the SAM user's
// connection secret.
func seedSoracom(ctx context.Context, w *fullsandbox.Sandbox, cfg aws.Config, old iam.AccessKey) (*soracom.Operator, error) {
	authKey := "secret-" + sandbox.NewSecret()
	op, err := w.Soracom.AddOperator(soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{{Name: "keyrotator", AuthKeyID: "keyId-demo", AuthKey: authKey,
		Permissions: []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"}}}})
	if err != nil {
		return nil, fmt.Errorf("seed SORACOM operator: %w", err)
	}
	if err := op.PutCredential(demoCredential, soracom.CredentialInput{Type: "aws-credentials", Description: "made by hand",
		Credentials: map[string]any{"accessKeyId": old.AccessKeyID, "secretAccessKey": old.SecretAccessKey}}); err != nil {
		return nil, fmt.Errorf("seed SORACOM credential: %w", err)
	}
	for _, g := range []soracom.GroupConfig{
		{Name: "sensors-tokyo", Configuration: map[string]map[string]any{"SoracomFunnel": {"enabled": true, "credentialsId": demoCredential, "contentType": "application/json",
			"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://demo.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}}}},
		{Name: "meters-osaka", Configuration: map[string]map[string]any{"SoracomFunk": {"enabled": true, "credentialsId": map[string]any{"$credentialsId": demoCredential},
			"destination": map[string]any{"provider": "aws", "service": "lambda", "resourceUrl": "arn:aws:lambda:ap-northeast-1:" + w.Server.Account() + ":function:meters"}}}},
	} {
		if _, err := op.AddGroup(g); err != nil {
			return nil, fmt.Errorf("seed SORACOM group: %w", err)
		}
	}
	conn, _ := json.Marshal(map[string]string{"authKeyId": "keyId-demo", "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	if err := createConnection(ctx, cfg, "keyrotator/connections/"+demoFunnel, conn); err != nil {
		return nil, fmt.Errorf("seed SORACOM connection: %w", err)
	}
	return op, nil
}

func seed(ctx context.Context, w *fullsandbox.Sandbox, cfg aws.Config) (iam.AccessKey, error) {
	if _, err := w.IAM.CreateUser(demoUser, "/", [][2]string{{"purpose", "keyrotator demo"}}); err != nil {
		return iam.AccessKey{}, fmt.Errorf("seed user: %w", err)
	}
	k, err := w.IAM.CreateAccessKey(demoUser)
	if err != nil {
		return iam.AccessKey{}, fmt.Errorf("seed key: %w", err)
	}
	w.IAM.Backdate(k.AccessKeyID, w.Server.Clock().Now().AddDate(0, 0, -95))
	value, _ := json.Marshal(map[string]string{"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey, "region": w.Server.Region()})
	_, err = secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(demoSecret), SecretString: aws.String(string(value))})
	if err != nil {
		return iam.AccessKey{}, fmt.Errorf("seed app secret: %w", err)
	}
	return k, nil
}

// report prints the run's report (the same as `keyrotator watch` ends
// with), then what each consumer saw; it fails if any of them broke.
func report(out io.Writer, w *fullsandbox.Sandbox, op *soracom.Operator, r watch.Report, app consumer.Stats, took time.Duration) error {
	r.Write(out)
	fmt.Fprintf(out, "app: %d calls succeeded, %d failed, keys used in turn: %v\n", app.OK, app.Failed, app.KeyIDs)
	var mail auth0.MailStats
	if t, ok := w.Auth0.Tenant(demoTenant); ok {
		mail = t.View().Mail
		fmt.Fprintf(out, "Auth0 tenant %s: %d mails sent through SES, %d failed, now sending with %s\n", demoTenant, mail.Sent, mail.Failed, mail.LastKeyID)
	}
	var pushErr []string
	for _, g := range op.Groups() {
		fmt.Fprintf(out, "SORACOM group %s: %d pushes, %d failed, now pushing with %s through %s\n", g.Name, g.Push.Sent, g.Push.Failed, g.Push.LastKeyID, g.Push.LastCredentialID)
		if g.Push.Failed > 0 || g.Push.LastKeyID != r.NewKeyID {
			pushErr = append(pushErr, fmt.Sprintf("group %s failed %d pushes and pushes with %s (last error: %s)", g.Name, g.Push.Failed, g.Push.LastKeyID, g.Push.LastError))
		}
	}
	var creds []string
	for _, c := range op.Credentials() {
		creds = append(creds, c.ID)
	}
	fmt.Fprintf(out, "SORACOM credentials: %v\n", creds)
	fmt.Fprintf(out, "took %s\n\n", took.Round(10*time.Millisecond))

	if err := r.Err(); err != nil {
		return err
	}
	switch {
	case r.Targets != 3:
		return fmt.Errorf("the run had %d targets, not the demo's 3", r.Targets)
	case app.Failed > 0:
		return fmt.Errorf("the app saw %d failed calls (last: %s)", app.Failed, app.LastError)
	case mail.Failed > 0 || mail.LastKeyID != r.NewKeyID:
		return fmt.Errorf("the Auth0 tenant failed %d mails and sends with %s (last error: %s)", mail.Failed, mail.LastKeyID, mail.LastError)
	case len(pushErr) > 0:
		return errors.New(strings.Join(pushErr, "; "))
	case slices.Contains(creds, demoCredential):
		return fmt.Errorf("the old SORACOM credential %s is still there", demoCredential)
	}
	fmt.Fprintln(out, r.Line())
	return nil
}
