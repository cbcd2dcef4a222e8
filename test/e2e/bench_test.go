package e2e

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/consumer"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsts "github.com/keyrotator/keyrotator/local/sandbox/sts"
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

// fleetUsers is how many users BenchmarkFleet rotates (issue 15: 1,000).
var fleetUsers = flag.Int("fleet.users", 1000, "BenchmarkFleet: users of the fleet, spread evenly over its 5 accounts, all due in the same minute")

// BenchmarkFleet is issue 15's fleet: -fleet.users users (1,000) spread
// evenly over 5 member accounts (fleetAccounts, each with the member
// stack; the same user names in each, as names are unique only within an
// account), under the golden fleet template's path, tagged for it, whose
// accounts the fleet config names; all due in the same minute, each with a
// sparse consumer (one call a minute: it reads its key from its secret in
// its own account and calls STS), started by one sweep that lists every
// account through its member role, whose window is the rate-limit floor's
// estimate, against the sandbox's real-time rate limits (AWS's figures,
// each bucket per account) and its default Lambda concurrency. Every
// rotation must succeed and no consumer call fail. It reports the wall
// time (the sweep's start to the last rotation's end) beside the
// rate-limit floor — the time the tightest limit alone imposes on the
// calls the run made: for each bucket (account, region, API), the calls it
// served beyond its burst over its refill rate — and their ratio (goal
// ≤ 1.5), the throttles absorbed per API, and the calls and state
// transitions per rotation; and per account its rotations, its CloudTrail
// lookups, its throttles and its own floor.
func BenchmarkFleet(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		benchFleet(b, *fleetUsers, fleetAccounts)
		b.StartTimer() // b.Loop must be called with the timer running
	}
}

func benchFleet(b *testing.B, n int, accounts []string) {
	// Retry pauses as long as AWS's (RetryScale 1): the Lambda retrier's
	// 423 s is what absorbs a fleet's TooManyRequests, and the sandbox's
	// Lambda work is never faster than AWS's. At 0.1 (42 s), 215 and then
	// 758 of 1,000 failed Lambda.TooManyRequestsException at Validate and
	// TakeLock on the shared 2-core machine.
	w := startFleet(b, fullsandbox.Options{WaitScale: waitScale, RetryScale: 1}, accounts)
	h := w.H
	// Each rotation's shortened Waits move the one sandbox clock: a fleet
	// moves it years ahead in minutes, and CloudTrail would drop its events
	// at 90 days before the leak canary (which searches every one) saw them.
	ct, _ := h.sb.Server.Service("cloudtrail")
	ct.(*cloudtrail.Service).KeepAll()
	// And the member sessions (15 minutes, renewed by their SDK on the real
	// clock) would end milliseconds after they were assumed, as another
	// rotation's Wait moves the clock on: they last while the sandbox runs,
	// as the functions' own role sessions do.
	st, _ := h.sb.Server.Service("sts")
	st.(*sbsts.Service).KeepSessions()
	fns, _ := h.sb.Server.Service("lambda")
	fns.(*sblambda.Service).KeepLogs(40 * n) // and Lambda its logs' lines, past its 5,000 a function
	h.sb.Server.Calls().Grow(400 * n)        // and the call log its calls, past its 100,000
	// Set-up is not the measure: seed with the limits off. With k
	// accounts, user i is fleet-<i/k> of account i%k: each account holds
	// a k-th of the fleet, and every account the same names.
	h.sb.Server.SetRateLimits(sandbox.NoRateLimits)
	type member struct{ account, user string }
	users := make([]member, n)
	perAccount := map[string]int{}
	for i := range users {
		users[i] = member{accounts[i%len(accounts)], fmt.Sprintf("fleet-%04d", i/len(accounts))}
		perAccount[users[i].account]++
		h.seedFleetUserIn(b, users[i].account, users[i].user, "/fleet/", goldenTemplate, 95)
	}
	h.sb.Server.SetRateLimits(nil) // AWS's figures from here on
	limits := h.sb.Server.RateLimits()
	// The window: the floor's estimate (one LookupEvents per rotation,
	// VerifyOldKeyUnused's, in the user's account, whose bucket serves 2
	// a second: the most users any one account holds, over that rate),
	// with a fifth to spare: starts that come exactly as fast as the
	// tightest bucket serves queue without bound (and each queued run is
	// a Node.js interpreter in the sandbox).
	most := (n + len(accounts) - 1) / len(accounts)
	window := min(most*6/5/cloudtrailRate(limits), int(fleet.MaxWindow.Seconds()))
	h.setFleetWindow(b, window)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	apps := make([]*consumer.App, n)
	for i, u := range users {
		apps[i] = consumer.New(w.admin[u.account], "fleet/"+u.user+"/aws-key", time.Minute, true).HoldClock(h.sb.Server.Clock().Hold)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Minute / time.Duration(n)) // one call a minute each, spread
			apps[i].Run(ctx)
		})
	}
	tally := newFleetTally(h, limits)
	seq := h.sb.Server.Calls().Last()
	tally.follow(ctx, seq)

	start := time.Now()
	rep, ferr := h.invokeSweep(b)
	if ferr != "" || rep.Started != n || len(rep.Unreachable) != 0 {
		b.Fatalf("the sweep: %s %+v", ferr, rep)
	}
	failed, transitions := 0, 0
	succeeded := map[string]int{}
	// Each execution's line would fill the benchmark's output, which Go
	// cuts at 10 lines: the report's lines below are its first.
	quiet := h.For(unlogged{b})
	for _, e := range h.sweptExecutions(b) {
		r := quiet.Wait(aws.ToString(e.ExecutionArn))
		transitions += len(r.Visited())
		if r.Status != types.ExecutionStatusSucceeded {
			failed++
			b.Errorf("rotation %s: %s %s: %s", aws.ToString(e.Name), r.Status, r.Error, r.Cause)
			continue
		}
		for _, a := range accounts {
			if strings.HasPrefix(aws.ToString(e.Name), a+"-") { // a member's user's run is named <account>-<user>-…
				succeeded[a]++
			}
		}
	}
	wall := time.Since(start)
	stop()
	wg.Wait()
	tally.stop()
	for i, a := range apps {
		if st := a.Stats(); st.Failed > 0 {
			b.Errorf("consumer of %s in %s: %d calls failed: %s", users[i].user, users[i].account, st.Failed, st.LastError)
		}
	}
	floors := tally.floors()
	floor, tightest := time.Duration(0), "none"
	for a, f := range floors {
		if f.d > floor {
			floor, tightest = f.d, a+" "+f.what
		}
	}
	b.ReportMetric(float64(len(accounts)), "accounts")
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(wall.Seconds()/floor.Seconds(), "wall/floor")
	b.ReportMetric(float64(tally.keyrotatorCalls)/float64(n), "aws-calls/rotation")
	b.ReportMetric(float64(transitions)/float64(n), "transitions/rotation")
	b.ReportMetric(float64(failed), "failed")
	throttled := h.sb.Server.RateLimited()
	for api, n := range throttled { // the throttles absorbed, per API
		b.ReportMetric(float64(n), "throttled-"+strings.ReplaceAll(api, " ", "-"))
	}
	b.ReportMetric(float64(tally.lambdaThrottles), "throttled-lambda-invoke")
	b.Logf("fleet of %d in %d accounts, window %d s: %v wall, floor %v (%s), %.2fx; %.1f AWS calls and %.1f state transitions a rotation; throttles absorbed %v, Lambda TooManyRequests %d; %d failed",
		n, len(accounts), window, wall.Round(time.Second), floor.Round(time.Second), tightest, wall.Seconds()/floor.Seconds(),
		float64(tally.keyrotatorCalls)/float64(n), float64(transitions)/float64(n), throttled, tally.lambdaThrottles, failed)
	// Per account: each rotation's VerifyOldKeyUnused looked up its key's
	// use in its user's account, through the member role, so each
	// account's CloudTrail bucket served at least its users' lookups: the
	// tally counts a member-role session's calls against the member
	// account (its ARN, arn:aws:sts::<member>:assumed-role/…, as the
	// sandbox's limiter charges them), none against the keyrotator
	// account's.
	own := h.sb.Server.Account()
	for _, a := range accounts {
		lookups := tally.servedIn(a, "cloudtrail", "LookupEvents")
		b.Logf("account %s: %d users, %d rotations succeeded, %d CloudTrail lookups, %d calls throttled, floor %v (%s)",
			a, perAccount[a], succeeded[a], lookups, tally.throttledIn(a), floors[a].d.Round(time.Second), floors[a].what)
		if lookups < perAccount[a] {
			b.Errorf("account %s: %d CloudTrail lookups counted for its %d users' rotations", a, lookups, perAccount[a])
		}
		if succeeded[a] != perAccount[a] && failed == 0 {
			b.Errorf("account %s: %d rotations named with it succeeded, want its %d users'", a, succeeded[a], perAccount[a])
		}
	}
	if n := tally.servedIn(own, "cloudtrail", "LookupEvents"); n > 0 {
		b.Errorf("%d CloudTrail lookups counted against the keyrotator account %s, which holds no user of the fleet", n, own)
	}
}

// unlogged is a test that logs nothing of what it is told to log; its
// failures still count.
type unlogged struct{ testing.TB }

func (unlogged) Log(...any)          {}
func (unlogged) Logf(string, ...any) {}

func cloudtrailRate(limits []sandbox.RateLimit) int {
	if l, ok := sandbox.LimitFor(limits, "cloudtrail", "LookupEvents"); ok {
		return max(int(l.Rate), 1)
	}
	return 2
}

// fleetTally reads the call log as the run goes (it keeps the newest
// 100,000 calls, fewer than a fleet makes) and counts what the floor and
// the report need.
type fleetTally struct {
	h      *H
	limits []sandbox.RateLimit
	done   chan struct{}
	mu     sync.Mutex
	served map[[4]string]int // account, region, service, action → calls served
	// throttled are the calls the rate limits answered, by the caller's
	// account.
	throttled map[string]int
	// keyrotatorCalls are the calls keyrotator's functions made (its
	// roles' sessions), Step Functions' and Lambda's own left out.
	keyrotatorCalls int
	lambdaThrottles int
}

func newFleetTally(h *H, limits []sandbox.RateLimit) *fleetTally {
	return &fleetTally{h: h, limits: limits, done: make(chan struct{}), served: map[[4]string]int{}, throttled: map[string]int{}}
}

func (f *fleetTally) follow(ctx context.Context, seq int64) {
	go func() {
		defer close(f.done)
		for {
			calls, err := f.h.sb.Server.Calls().Since(seq)
			if err != nil {
				f.h.t.Errorf("the call log: %v", err)
				return
			}
			f.mu.Lock()
			for _, c := range calls {
				seq = c.Seq
				if c.Service == "lambda" && c.Error == "TooManyRequestsException" {
					f.lambdaThrottles++
				}
				switch {
				case c.RateLimited:
					f.throttled[accountOf(c.Principal)]++
				case c.Principal != "":
					f.served[[4]string{accountOf(c.Principal), c.Region, c.Service, c.Action}]++
				}
				if strings.Contains(c.Principal, ":assumed-role/") && c.Service != "states" && c.Service != "lambda" {
					f.keyrotatorCalls++
				}
			}
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				if len(calls) == 0 {
					return
				}
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

func (f *fleetTally) stop() { <-f.done }

// bucketFloor is the time one bucket's served calls take at its refill
// rate, beyond the burst it starts with, and what bucket that is.
type bucketFloor struct {
	d    time.Duration
	what string
}

// floors are, for each account, its longest bucketFloor: the run's floor
// is the longest of them.
func (f *fleetTally) floors() map[string]bucketFloor {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bucketFloor{}
	for k, n := range f.served {
		l, ok := sandbox.LimitFor(f.limits, k[2], k[3])
		if !ok || l.Rate <= 0 {
			continue
		}
		d := time.Duration(max(0, float64(n)-l.Burst) / l.Rate * float64(time.Second))
		if cur, ok := out[k[0]]; !ok || d > cur.d {
			out[k[0]] = bucketFloor{d, fmt.Sprintf("%s %s: %d calls at %g a second", k[2], k[3], n, l.Rate)}
		}
	}
	return out
}

// servedIn is how many calls of service's action account's buckets
// served, in every region.
func (f *fleetTally) servedIn(account, service, action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, c := range f.served {
		if k[0] == account && k[2] == service && k[3] == action {
			n += c
		}
	}
	return n
}

// throttledIn is how many of account's calls the rate limits answered.
func (f *fleetTally) throttledIn(account string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.throttled[account]
}

// accountOf is the account of a principal's ARN (arn:aws:sts::<account>:…).
func accountOf(arn string) string {
	p := strings.Split(arn, ":")
	if len(p) > 4 {
		return p[4]
	}
	return ""
}
