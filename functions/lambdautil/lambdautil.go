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
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Logger is the JSON logger Lambda's JSON log format expects.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// AWSConfig loads the SDK configuration once per cold start; the endpoint
// comes from the standard environment, so one binary talks to AWS or to the
// sandbox.
func AWSConfig() aws.Config {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		Logger().Error("load AWS config", "err", err)
		os.Exit(1)
	}
	return cfg
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
		*rotation.AccessDenied, *rotation.Internal, *rotation.OrphanUnconfirmed:
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
