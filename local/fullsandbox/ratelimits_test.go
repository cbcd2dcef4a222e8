package fullsandbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Each limit answers as AWS throttles that service, in a shape the SDK's
// own retryer counts as a throttle (so it backs off and retries), and is
// recorded in the call log and the server's counters.
func TestRateLimitsAnswerAsAWSThrottles(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	// Small buckets, the defaults' shape: the test needs no thousand calls.
	sb.Server.SetRateLimits([]sandbox.RateLimit{
		{Service: "iam", Burst: 3, Rate: 1},
		{Service: "cloudtrail", Action: "LookupEvents", Burst: 2, Rate: 2},
		{Service: "states", Action: "StartExecution", Burst: 2, Rate: 1},
	})
	once := func(o *retry.StandardOptions) { o.MaxAttempts = 1 }
	cfg := sb.Config(t)
	cfg.Retryer = func() aws.Retryer { return retry.NewStandard(once) }
	ctx := context.Background()
	iamc, ct, sf := iam.NewFromConfig(cfg), cloudtrail.NewFromConfig(cfg), sfn.NewFromConfig(cfg)
	machine := "arn:aws:states:us-east-1:111122223333:stateMachine:none"
	tests := []struct {
		api    string
		call   func() error
		code   string
		status int
	}{
		// https://repost.aws/knowledge-center/iam-sts-throttling-error: "Throttling: Rate exceeded, status code: 400".
		{"iam ListUsers", func() error { _, err := iamc.ListUsers(ctx, &iam.ListUsersInput{}); return err }, "Throttling", 400},
		// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/CommonErrors.html
		{"cloudtrail LookupEvents", func() error { _, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); return err }, "ThrottlingException", 400},
		// https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html
		{"states StartExecution", func() error {
			_, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine)})
			return err
		}, "ThrottlingException", 400},
	}
	for _, tc := range tests {
		var throttled error
		for range 6 {
			if err := tc.call(); isThrottle(err) {
				throttled = err
				break
			}
		}
		if throttled == nil {
			t.Fatalf("%s: 6 quick calls, none throttled", tc.api)
		}
		var api smithy.APIError
		var re interface{ HTTPStatusCode() int }
		if !errors.As(throttled, &api) || api.ErrorCode() != tc.code || !errors.As(throttled, &re) || re.HTTPStatusCode() != tc.status {
			t.Errorf("%s throttled with %v, want %s (%d)", tc.api, throttled, tc.code, tc.status)
		}
		if got := sb.Server.RateLimited()[tc.api]; got < 1 {
			t.Errorf("%s: the server counted %d throttles", tc.api, got)
		}
	}
	limited := 0
	for _, c := range sb.Calls(t, 0) {
		if c.RateLimited {
			limited++
			if c.Status != 400 || (c.Error != "Throttling" && c.Error != "ThrottlingException") {
				t.Errorf("call log: a rate-limited call recorded as %d %s", c.Status, c.Error)
			}
		}
	}
	if limited < len(tests) {
		t.Errorf("call log: %d rate-limited calls, want at least %d", limited, len(tests))
	}

	// The SDK's default retryer (3 attempts, jittered backoff) absorbs a
	// throttle once the bucket refills: 5 calls against a bucket of 3
	// refilled at 1 a second all succeed.
	patient := iam.NewFromConfig(sb.Config(t), func(o *iam.Options) { o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), 2*time.Second) })
	time.Sleep(3 * time.Second) // full again
	before := sb.Server.RateLimited()["iam GetUser"]
	for i := range 5 {
		if _, err := patient.GetUser(ctx, &iam.GetUserInput{}); err != nil {
			t.Fatalf("GetUser %d with the SDK's retryer: %v", i, err)
		}
	}
	if sb.Server.RateLimited()["iam GetUser"] == before {
		t.Error("5 calls against a bucket of 3 were never throttled: the retryer absorbed nothing")
	}
}

// isThrottle is the SDK's own verdict: what its retryer backs off for.
func isThrottle(err error) bool {
	return err != nil && retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// The buckets are per account (and region): one account's calls emptying
// its bucket leave another's untouched, so a busy member account cannot
// starve the others.
func TestRateLimitsArePerAccountAndRegion(t *testing.T) {
	t.Parallel()
	const member = "444455556666"
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	admin, err := sb.AddAccount(member)
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.SetRateLimits([]sandbox.RateLimit{{Service: "cloudtrail", Action: "LookupEvents", Burst: 2, Rate: 0.1}})
	once := func(o *cloudtrail.Options) { o.RetryMaxAttempts = 1 }
	ctx := context.Background()
	own := cloudtrail.NewFromConfig(sb.Config(t), once)
	for range 3 {
		_, err = own.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
	}
	if !isThrottle(err) {
		t.Fatalf("3 quick lookups in the own account: %v, want a throttle", err)
	}
	other := cloudtrail.NewFromConfig(sb.ConfigAs(t, admin.AccessKeyID, admin.Secret, ""), once)
	if _, err := other.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatalf("the member account, while the own one is throttled: %v", err)
	}
	west := cloudtrail.NewFromConfig(sb.Config(t), once, func(o *cloudtrail.Options) { o.Region = "us-west-2" })
	if _, err := west.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatalf("another region of the own account: %v", err)
	}
}

// Every sandbox enforces AWS's figures unless told otherwise, and
// NoRateLimits turns them off.
func TestDefaultRateLimits(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	got := map[string]sandbox.RateLimit{}
	for _, r := range sb.Server.RateLimits() {
		got[r.Service+" "+r.Action] = r
	}
	for api, want := range map[string][2]float64{
		"cloudtrail LookupEvents": {2, 2},      // 2 a second per account and region
		"states StartExecution":   {1300, 300}, // us-east-1's bucket and refill
	} {
		if r := got[api]; r.Burst != want[0] || r.Rate != want[1] || r.Source == "" {
			t.Errorf("%s: %+v, want burst %v, rate %v and a source", api, r, want[0], want[1])
		}
	}
	off := sandboxtest.Start(t, fullsandbox.Options{Options: sandbox.Options{RateLimits: sandbox.NoRateLimits}})
	c := cloudtrail.NewFromConfig(off.Config(t), func(o *cloudtrail.Options) { o.RetryMaxAttempts = 1 })
	for i := range 10 {
		if _, err := c.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); err != nil {
			t.Fatalf("lookup %d with NoRateLimits: %v", i, err)
		}
	}
	if n := len(off.Server.RateLimited()); n != 0 {
		t.Fatalf("NoRateLimits counted throttles: %v", off.Server.RateLimited())
	}
}
