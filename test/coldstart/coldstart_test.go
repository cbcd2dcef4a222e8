// Package coldstart measures each task's Lambda from process start to its
// first request for an invocation, side by side with a reference Go Lambda
// (functions/internal/coldref: config.LoadDefaultConfig, four SDK clients,
// lambda.Start), both built for this machine with the flags `make build`
// uses, against a fake Runtime API on loopback. `make bench` runs it.
package coldstart

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/pipeline"
)

// dist, if set, holds the bootstraps to measure (<task>/bootstrap and
// coldref/bootstrap), built elsewhere: another commit's, for a before and
// after (`go test -bench ColdStart ./coldstart/ -args -coldstart.dist DIR`).
var dist = flag.String("coldstart.dist", "", "measure the bootstraps in this folder instead of building them")

// runtimeAPI is a fake Lambda Runtime API: it reports when the first
// GET /2018-06-01/runtime/invocation/next arrives and holds it, as Lambda
// does while no event waits, until the process is stopped.
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-next
type runtimeAPI struct {
	addr string
	next chan time.Time
}

func startRuntimeAPI(b *testing.B) *runtimeAPI {
	ln, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	api := &runtimeAPI{addr: ln.Addr().String(), next: make(chan time.Time, 1)}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		if r.Method != http.MethodGet || r.URL.Path != "/2018-06-01/runtime/invocation/next" {
			http.Error(w, "the benchmark answers only /next", http.StatusNotFound)
			return
		}
		select {
		case api.next <- at:
		default:
		}
		<-r.Context().Done() // held until the process goes
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return api
}

// env is a Lambda's environment on provided.al2023, as the sandbox's Lambda
// sets it (local/sandbox/lambda): nothing is called before the first poll,
// so the endpoint and the credentials go unused.
func (api *runtimeAPI) env(home, name string) []string {
	return []string{
		"HOME=" + home, // no shared config or credentials file, as in Lambda
		"AWS_LAMBDA_RUNTIME_API=" + api.addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=ASIACOLDSTARTBENCH00",
		"AWS_SECRET_ACCESS_KEY=benchmark-only",
		"AWS_SESSION_TOKEN=benchmark-only",
		"AWS_ENDPOINT_URL=http://127.0.0.1:1",
		"KEYROTATOR_ROTATIONS=[]", // the weekly audit's: the config's rotations, as infra sets it
	}
}

// coldStart starts path and returns the time to its first poll.
func (api *runtimeAPI) coldStart(ctx context.Context, path string, env []string) (time.Duration, error) {
	select { // a late poll of the run before
	case <-api.next:
	default:
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan string, 1)
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	go func() {
		if err := cmd.Wait(); err != nil {
			exited <- err.Error()
			return
		}
		exited <- "exit status 0"
	}()
	select {
	case at := <-api.next:
		return at.Sub(start), nil
	case how := <-exited:
		reaped = true
		return 0, fmt.Errorf("%s exited before its first poll: %s", filepath.Base(filepath.Dir(path)), how)
	case <-time.After(10 * time.Second):
		return 0, errors.New("no poll within 10 s")
	}
}

// build puts every task's bootstrap and the reference's in a temporary
// folder: the tasks as the sandbox's pipeline builds them (pipeline.Build,
// `make build`'s flags), the reference with the same flags.
func build(b *testing.B) (dir, ref string) {
	if *dist != "" {
		return *dist, filepath.Join(*dist, "coldref", "bootstrap")
	}
	dir = b.TempDir()
	functions, err := filepath.Abs(filepath.Join("..", "..", "functions"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pipeline.Build(b.Context(), functions, dir); err != nil {
		b.Fatal(err)
	}
	ref = filepath.Join(dir, "coldref", "bootstrap")
	args := append(append([]string{"build"}, pipeline.GoBuildFlags()...), "-o", ref, "./internal/coldref")
	cmd := exec.CommandContext(b.Context(), "go", args...)
	cmd.Dir = functions
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the reference: %v\n%s", err, out)
	}
	return dir, ref
}

// BenchmarkColdStart starts each task's Lambda and the reference one after
// the other, b.N times each, and reports the medians and the task's
// median over the reference's (the goal, issue 12: at most 1.2).
func BenchmarkColdStart(b *testing.B) {
	dir, ref := build(b)
	api := startRuntimeAPI(b)
	home := b.TempDir()
	for _, t := range tasks.Every() { // the state tasks, the endpoints, the weekly audit
		fn := t.Function()
		path := filepath.Join(dir, fn, "bootstrap")
		b.Run(fn, func(b *testing.B) {
			var ours, refs []time.Duration
			for b.Loop() {
				for _, c := range []struct {
					path, name string
					into       *[]time.Duration
				}{{ref, "coldref", &refs}, {path, fn, &ours}} {
					d, err := api.coldStart(b.Context(), c.path, api.env(home, c.name))
					if err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
					*c.into = append(*c.into, d)
				}
			}
			m, r := median(ours), median(refs)
			b.ReportMetric(ms(m), "ms-median")
			b.ReportMetric(ms(r), "ref-ms-median")
			b.ReportMetric(float64(m)/float64(r), "x-ref")
			b.ReportMetric(0, "ns/op") // the loop's time is two cold starts and their teardown: the medians say it
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
