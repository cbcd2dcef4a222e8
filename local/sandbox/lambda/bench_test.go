package lambda_test

import (
	"context"
	"encoding/base64"
	"regexp"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/local/sandbox"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
)

// BenchmarkWarmInvoke measures an invocation of a warm instance: through
// the SDK (HTTP, SigV4 and all), through the core's Internal (what Step
// Functions uses), and, as the baseline of the SDK path, an STS call that
// runs no function.
func BenchmarkWarmInvoke(b *testing.B) {
	sb, c := start(b,
		sblambda.FunctionConfig{Name: "echo", Path: echoPath},
		sblambda.FunctionConfig{Name: "empty", Path: emptyPath})
	ctx := context.Background()
	for _, fn := range []string{"empty", "echo"} {
		b.Run(fn+"/sdk", func(b *testing.B) {
			invoke(b, c, &lambda.InvokeInput{FunctionName: aws.String(fn)}) // warm up
			b.ResetTimer()
			for range b.N {
				out := invoke(b, c, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"value":1}`)})
				if out.FunctionError != nil {
					b.Fatalf("function error: %s", out.Payload)
				}
			}
		})
		b.Run(fn+"/internal", func(b *testing.B) {
			p := sandbox.Principal{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/sfn/exec", Type: "AssumedRole"}
			b.ResetTimer()
			for range b.N {
				res, err := sb.Server.Internal(ctx, "lambda", "Invoke", fn, p, []byte(`{"value":1}`))
				if err != nil || res.(*sandbox.Raw).Header.Get("X-Amz-Function-Error") != "" {
					b.Fatalf("Internal: %v %+v", err, res)
				}
			}
		})
	}
	b.Run("baseline/sts-sdk", func(b *testing.B) {
		s := sts.NewFromConfig(sb.Config(b))
		for range b.N {
			if _, err := s.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

// BenchmarkColdStart measures invocations that each start a new process;
// init-ms is Lambda's Init Duration: process start to the runtime's first
// poll of /runtime/invocation/next.
func BenchmarkColdStart(b *testing.B) {
	sb, c := start(b,
		sblambda.FunctionConfig{Name: "echo", Path: echoPath},
		sblambda.FunctionConfig{Name: "empty", Path: emptyPath})
	for _, fn := range []string{"empty", "echo"} {
		b.Run(fn, func(b *testing.B) {
			var initMS float64
			for range b.N {
				b.StopTimer()
				if err := sb.Lambda.StopInstances(fn); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				out := invoke(b, c, &lambda.InvokeInput{FunctionName: aws.String(fn), LogType: types.LogTypeTail})
				tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
				m := initDuration.FindSubmatch(tail)
				if m == nil {
					b.Fatalf("no Init Duration in:\n%s", tail)
				}
				v, _ := strconv.ParseFloat(string(m[1]), 64)
				initMS += v
			}
			b.ReportMetric(initMS/float64(b.N), "init-ms")
		})
	}
}
