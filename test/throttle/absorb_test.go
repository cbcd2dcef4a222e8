// Package throttle holds keyrotator's AWS callers to the sandbox's real
// rate limits (local/sandbox ratelimit.go): every adapter a Lambda makes a
// rate-limited call through (IAM through iamkeys, CloudTrail through
// trail, StartExecution through executions) absorbs a throttle with the
// SDK's jittered retries, built as the Lambdas build their clients
// (lambdautil.Env); and a throttle the SDK gave up on leaves the Lambda
// named Retryable, which every Task state's Retry takes with full jitter
// (test/contract's retry_test checks the ASL).
package throttle

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/lambdautil"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// lambdaConfig is the SDK configuration a keyrotator Lambda builds from
// its environment (lambdautil.Env): the same retryer, nothing added.
func lambdaConfig(t *testing.T, sb *sandboxtest.Sandbox) aws.Config {
	t.Helper()
	env := map[string]string{}
	for _, kv := range sb.Env() {
		for i := range len(kv) {
			if kv[i] == '=' {
				env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return lambdautil.Env(func(k string) string { return env[k] }).Config()
}

// Bursts beyond each bucket are absorbed: the SDK's own jittered retries
// first (3 attempts), then the state's Retry on Retryable (stateRetry):
// every call of 8 side by side succeeds though the bucket holds 3 and
// refills 2 a second, and the sandbox counted throttles (so there was
// something to absorb).
func TestCallersAbsorbThrottles(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	sb.Server.SetRateLimits([]sandbox.RateLimit{
		{Service: "iam", Burst: 3, Rate: 2},
		{Service: "cloudtrail", Action: "LookupEvents", Burst: 2, Rate: 2},
	})
	sb.User(t, "throttled-user", 1)
	cfg := lambdaConfig(t, sb)
	keys := iamkeys.New(iam.NewFromConfig(cfg))
	ctx := context.Background()
	calls := map[string]func() error{
		"iam ListAccessKeys": func() error { _, err := keys.List(ctx, "throttled-user"); return err },
		// Each caller its own Trail, as each Lambda instance has its own
		// pacing: together they outrun CloudTrail's 2 a second.
		"cloudtrail LookupEvents": func() error {
			_, err := trail.New(cloudtrail.NewFromConfig(cfg)).UsesSince(ctx, "AKIAIOSFODNN7EXAMPLE", time.Now().Add(-time.Hour), time.Now())
			return err
		},
	}
	for api, call := range calls {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = stateRetry(call) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("%s: 8 calls side by side: %v", api, err)
		}
		if sb.Server.RateLimited()[api] == 0 {
			t.Errorf("%s: no call was throttled: the test absorbed nothing", api)
		}
	}
}

// stateRetry runs call as a Task state does with its Retryable retrier
// (statemachine/rotation.asl.json: 2 s doubling, 4 attempts, full jitter),
// its pauses a quarter as long: the Lambda's error named (lambdautil.Name),
// retried while it is Retryable.
func stateRetry(call func() error) error {
	var err error
	for attempt := range 4 {
		if err = lambdautil.Name(call()); err == nil {
			return nil
		}
		if _, ok := errors.AsType[*rotation.Retryable](err); !ok {
			return err
		}
		ceiling := time.Duration(float64(2*time.Second<<attempt) * 0.25)
		time.Sleep(rand.N(ceiling)) // FULL jitter: uniform in [0, ceiling)
	}
	return err
}

// A throttle the SDK's retries did not outlast leaves the adapter, and so
// the Lambda (lambdautil.Name), as Retryable: the state's Retry, with full
// jitter, tries again later. Never AccessDenied or Internal, which fail the
// run.
func TestAThrottleOutlastingTheSDKIsRetryable(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	// Empty buckets that do not refill within the SDK's retries.
	sb.Server.SetRateLimits([]sandbox.RateLimit{
		{Service: "iam", Burst: 1, Rate: 0.01},
		{Service: "cloudtrail", Action: "LookupEvents", Burst: 1, Rate: 0.01},
		{Service: "states", Action: "StartExecution", Burst: 1, Rate: 0.01},
	})
	cfg := lambdaConfig(t, sb)
	cfg.RetryMaxAttempts = 2 // the SDK's retries, shortened: the verdict is the same after 3
	ctx := context.Background()
	keys := iamkeys.New(iam.NewFromConfig(cfg))
	tr := trail.New(cloudtrail.NewFromConfig(cfg))
	start := executions.NewStarter(sfn.NewFromConfig(cfg), "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator")
	calls := map[string]func() error{
		"iam ListAccessKeys": func() error { _, err := keys.List(ctx, "nobody"); return err },
		"cloudtrail LookupEvents": func() error {
			_, err := tr.UsesSince(ctx, "AKIAIOSFODNN7EXAMPLE", time.Now().Add(-time.Hour), time.Now())
			return err
		},
		"states StartExecution": func() error { _, err := start.Start(ctx, "n", []byte(`{}`)); return err },
	}
	for api, call := range calls {
		_ = call() // takes the one token
		err := lambdautil.Name(call())
		if _, ok := errors.AsType[*rotation.Retryable](err); !ok {
			t.Errorf("%s throttled: the Lambda returns %T %v, want Retryable", api, err, err)
		}
	}
}
