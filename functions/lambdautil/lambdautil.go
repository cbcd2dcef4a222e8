// Package lambdautil is the handler boundary every keyrotator Lambda shares:
// the one log line per invocation (task, outcome, ids; never a secret) and
// the named errors passed through unwrapped, so Step Functions matches their
// type names in Retry and Catch.
package lambdautil

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
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
// event and the result.
func Start[In, Out any](task string, run func(context.Context, In) (Out, error), describe func(In, Out) []any) {
	log := Logger()
	lambda.Start(func(ctx context.Context, in In) (Out, error) {
		start := time.Now()
		out, err := run(ctx, in)
		attrs := []any{"task", task, "ms", time.Since(start).Milliseconds()}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			attrs = append(attrs, "requestId", lc.AwsRequestID)
		}
		if describe != nil {
			attrs = append(attrs, describe(in, out)...)
		}
		if err != nil {
			log.Error("task failed", append(attrs, "errorType", ErrorType(err), "err", err.Error())...)
			return out, err
		}
		log.Info("task done", attrs...)
		return out, nil
	})
}

// ErrorType is the errorType Step Functions will see for err.
func ErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
