// Package lambdautil is the handler boundary every keyrotator Lambda shares:
// the one log line per invocation (task, outcome, ids; never a secret) and
// every error named (Name): aws-lambda-go reports a returned error's type
// name as the errorType Step Functions matches in Retry and Catch, so what
// leaves a Lambda is always one of rotation.ErrorNames, unwrapped.
package lambdautil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Logger is the JSON logger Lambda's JSON log format expects.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// AWSConfig is the SDK configuration a Lambda runs with, built once per
// cold start from its environment (Env).
func AWSConfig() aws.Config { return Env(os.Getenv).Config() }

// Env is what Lambda's environment says of the SDK configuration: the
// region (AWS_REGION), the execution role's credentials
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and the
// standard endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>,
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), so one binary talks to AWS or to
// the sandbox. getenv is os.Getenv in a Lambda.
//
// It reads those variables as config.LoadDefaultConfig does (the test holds
// the two to the same clients) and nothing else: LoadDefaultConfig's shared
// files, SSO, web identity, process and IMDS credential providers never
// apply in a Lambda, and importing package config linked them (and their
// clients' endpoint tables, initialised at every cold start) into every
// binary.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
type Env func(string) string

// Config is the aws.Config of the environment.
func (e Env) Config() aws.Config {
	region := e("AWS_REGION")
	if region == "" {
		region = e("AWS_DEFAULT_REGION")
	}
	cfg := aws.Config{
		Region:        region,
		ConfigSources: []any{e}, // each client's AWS_ENDPOINT_URL_<SERVICE>, through GetServiceBaseEndpoint
		Logger:        logging.NewStandardLogger(os.Stderr),
	}
	if id, secret := e("AWS_ACCESS_KEY_ID"), e("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, e("AWS_SESSION_TOKEN")))
	}
	if u := e("AWS_ENDPOINT_URL"); u != "" && !e.ignoreEndpoints() {
		cfg.BaseEndpoint = aws.String(u)
	}
	return cfg
}

// GetServiceBaseEndpoint is AWS_ENDPOINT_URL_<SERVICE> for the client of
// sdkID (its SDK id upper-cased, spaces as underscores: "Secrets Manager"
// → AWS_ENDPOINT_URL_SECRETS_MANAGER). Each client asks its ConfigSources.
func (e Env) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	if e.ignoreEndpoints() {
		return "", false, nil
	}
	u := e("AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_"))
	return u, u != "", nil
}

// ignoreEndpoints is AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true.
func (e Env) ignoreEndpoints() bool {
	return strings.EqualFold(e("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true")
}

// Start runs task's handler; describe picks the ids worth logging from the
// event and the result. Every error the handler returns, an event that does
// not decode and a panic leave the Lambda named (Name).
func Start[In, Out any](task string, run func(context.Context, In) (Out, error), describe func(In, Out) []any) {
	log := Logger()
	lambda.Start(Handler(log, task, run, describe))
}

// Handler is what Start runs: the event decoded, run called, its error
// named and the outcome logged once.
func Handler[In, Out any](log *slog.Logger, task string, run func(context.Context, In) (Out, error), describe func(In, Out) []any) func(context.Context, json.RawMessage) (Out, error) {
	return func(ctx context.Context, raw json.RawMessage) (out Out, err error) {
		start := time.Now()
		var in In
		attrs := []any{"task", task}
		defer func() {
			if p := recover(); p != nil {
				err = &rotation.Internal{Reason: fmt.Sprintf("%s: panic: %v", task, p)}
				attrs = append(attrs, "stack", string(debug.Stack()))
			}
			attrs = append(attrs, "ms", time.Since(start).Milliseconds())
			if lc, ok := lambdacontext.FromContext(ctx); ok {
				attrs = append(attrs, "requestId", lc.AwsRequestID)
			}
			if describe != nil {
				attrs = append(attrs, describe(in, out)...)
			}
			if err != nil {
				err = Name(err)
				log.Error("task failed", append(attrs, "errorType", ErrorType(err), "err", err.Error())...)
				return
			}
			log.Info("task done", attrs...)
		}()
		if derr := json.Unmarshal(raw, &in); derr != nil {
			return out, &rotation.Internal{Reason: fmt.Sprintf("%s: decode the event: %v", task, derr)}
		}
		return run(ctx, in)
	}
}

// Name is err as the state machine sees it, always one of
// rotation.ErrorNames:
//   - a named keyrotator error anywhere in the chain (fmt.Errorf %w,
//     errors.Join), the first found, unwrapped;
//   - context cancellation or deadline: Retryable;
//   - AWS refusing the call for want of permission: AccessDenied, with the
//     service, operation and resource;
//   - what the SDK's retryer counts as transient (throttling, 5xx, network,
//     timeouts): Retryable;
//   - anything else: Internal, keeping the error's text.
func Name(err error) error {
	if err == nil {
		return nil
	}
	if n := firstNamed(err); n != nil {
		return n
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &rotation.Retryable{Reason: err.Error()}
	}
	if d, ok := awserr.Denied(err); ok {
		return d
	}
	if awserr.Transient(err) {
		return &rotation.Retryable{Reason: err.Error()}
	}
	return &rotation.Internal{Reason: err.Error()}
}

// firstNamed walks err's tree depth first, as errors.As does, and returns
// the first keyrotator named error in it.
func firstNamed(err error) error {
	if err == nil {
		return nil
	}
	switch err.(type) { //nolint:errorlint // this is the tree walk itself: one node at a time, as errors.As does
	case *rotation.InvalidInput, *rotation.UserNotFound, *rotation.KeyLimitReached, *rotation.RotationInProgress,
		*rotation.TargetFailed, *rotation.OldKeyStillInUse, *rotation.ApprovalRejected, *rotation.Retryable,
		*rotation.AccessDenied, *rotation.Internal, *rotation.OrphanUnconfirmed, *rotation.RequestUnsigned, *rotation.RequestForged,
		*rotation.ApprovalForged, *rotation.MemberAccessDenied:
		return err
	}
	switch u := err.(type) { //nolint:errorlint // the walk unwraps each node itself
	case interface{ Unwrap() error }:
		return firstNamed(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if n := firstNamed(e); n != nil {
				return n
			}
		}
	}
	return nil
}

// ErrorType is the errorType Step Functions will see for err.
func ErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
