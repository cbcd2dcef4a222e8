package iam_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// BenchmarkIAMCallsThroughSDK measures whole SDK round trips (sign, send,
// verify SigV4, answer, parse): the goal is ≥ 2,000 calls/s on one core
// (`make bench` runs it with -cpu 1), so the sandbox never dominates a test.
func BenchmarkIAMCallsThroughSDK(b *testing.B) {
	sb := sandboxtest.Start(b, fullsandbox.Options{})
	c := iam.NewFromConfig(sb.Config(b))
	ctx := context.Background()
	sb.User(b, "bench", 2)
	in := &iam.ListAccessKeysInput{UserName: aws.String("bench")}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.ListAccessKeys(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
