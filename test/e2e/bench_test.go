package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// BenchmarkRotation is one whole rotation (one secret target, waits
// shortened): what it costs in AWS API calls and state transitions.
func BenchmarkRotation(b *testing.B) {
	h := Start(b)
	var calls, transitions int
	i := 0
	for b.Loop() {
		i++
		f := h.seed("bench-"+strconv.Itoa(i), 95)
		seq := h.sb.Server.Calls().Last()
		r := h.Run(f.input(nil))
		if r.Status != types.ExecutionStatusSucceeded {
			b.Fatalf("rotation %s: %s", r.Status, r.Error)
		}
		for _, c := range h.sb.Calls(b, seq) {
			// What keyrotator's functions asked of AWS, not the test's own set-up.
			if c.Service != "states" && c.Service != "lambda" && c.Principal != h.sb.Admin.Principal.ARN {
				calls++
			}
		}
		transitions += len(r.Visited())
	}
	b.ReportMetric(float64(calls)/float64(b.N), "aws-calls/rotation")
	b.ReportMetric(float64(transitions)/float64(b.N), "transitions/rotation")
}

var initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

// BenchmarkColdStart starts each task's Lambda cold (process start to its
// first Runtime API poll), beside an empty aws-lambda-go binary and the
// seeds' Python + boto3 handler; it reports each binary's size too.
func BenchmarkColdStart(b *testing.B) {
	sb := sandboxtest.Start(b, fullsandbox.Options{})
	fns, _ := sb.Server.Service("lambda")
	svc := fns.(*sblambda.Service)
	type candidate struct{ name, path string }
	var cands []candidate
	for _, t := range tasks.All {
		cands = append(cands, candidate{t.Function(), filepath.Join(lambdas, t.Function(), "bootstrap")})
	}
	empty := filepath.Join(b.TempDir(), "empty", "bootstrap")
	if out, err := exec.CommandContext(b.Context(), "go", "build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", empty, "../../local/sandbox/lambda/testdata/emptyfn").CombinedOutput(); err != nil {
		b.Fatalf("build empty function: %v\n%s", err, out)
	}
	cands = append(cands, candidate{"empty-aws-lambda-go", empty})
	if exec.CommandContext(b.Context(), "python3", "-c", "import boto3").Run() == nil {
		cands = append(cands, candidate{"python-boto3", filepath.Join("testdata", "pyboto3", "bootstrap")})
	}
	c := lambda.NewFromConfig(sb.Config(b))
	for _, cd := range cands {
		path, _ := filepath.Abs(cd.path)
		if err := svc.Register(sblambda.FunctionConfig{Name: cd.name, Path: path, Timeout: 30e9}); err != nil {
			b.Fatal(err)
		}
		b.Run(cd.name, func(b *testing.B) {
			var initMS float64
			inits := 0
			for b.Loop() {
				b.StopTimer()
				if err := svc.StopInstances(cd.name); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(cd.name), Payload: []byte(`{}`), LogType: lambdatypes.LogTypeTail})
				if err != nil {
					b.Fatal(err)
				}
				tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
				if m := initDuration.FindSubmatch(tail); m != nil {
					v, _ := strconv.ParseFloat(string(m[1]), 64)
					initMS += v
					inits++
				}
			}
			if inits > 0 {
				b.ReportMetric(initMS/float64(inits), "init-ms")
			}
			if st, err := os.Stat(path); err == nil && cd.name != "python-boto3" {
				b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
			}
		})
	}
}

// BenchmarkFleet starts 200 rotations at once, one user each, against the
// sandbox's default Lambda concurrency, and waits for all: every one must
// succeed. It reports the wall time, keyrotator's AWS calls and the
// throttles absorbed (Lambda's TooManyRequests, AWS throttling answers).
// Consumers are not run: the users' keys are only rotated.
func BenchmarkFleet(b *testing.B) {
	const fleet = 200
	for b.Loop() {
		b.StopTimer()
		h := startWith(b, fullsandbox.Options{WaitScale: waitScale, RetryScale: retryScale}) // retries wait as they would against real Lambda work
		fs := make([]fixture, fleet)
		for i := range fs {
			fs[i] = h.seed("fleet-"+strconv.Itoa(i), 95)
		}
		seq := h.sb.Server.Calls().Last()
		b.StartTimer()
		start := time.Now()
		arns := make([]string, fleet)
		for i, f := range fs {
			arns[i] = h.StartExecution(f.input(nil))
		}
		failed := 0
		for _, arn := range arns {
			if r := h.Wait(arn); r.Status != types.ExecutionStatusSucceeded {
				failed++
				b.Errorf("rotation %s: %s %s", arn, r.Status, r.Error)
			}
		}
		wall := time.Since(start)
		b.StopTimer()
		calls, throttles := 0, 0
		for _, c := range h.sb.Calls(b, seq) {
			if c.Status == 429 || strings.Contains(c.Error, "Throttl") || strings.Contains(c.Error, "TooManyRequests") {
				throttles++
			}
			if c.Service != "states" && c.Service != "lambda" && c.Principal != h.sb.Admin.Principal.ARN {
				calls++
			}
		}
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(calls), "aws-calls")
		b.ReportMetric(float64(throttles), "throttles")
		b.ReportMetric(float64(failed), "failed")
		b.Logf("fleet of %d: %v wall, %d AWS calls, %d throttles absorbed, %d failed", fleet, wall.Round(time.Millisecond), calls, throttles, failed)
		b.StartTimer() // b.Loop must be called with the timer running
	}
}
