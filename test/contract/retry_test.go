package contract

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// lambdaService are the errors Step Functions reports when Lambda itself
// failed to run a function (throttled, a service fault): AWS's Step
// Functions guide says to retry them on every Lambda Task.
var lambdaService = []string{
	"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
}

// minLambdaRetryWait is how long, at the most, a Lambda Task must keep
// retrying Lambda's throttling: 200 rotations started at once against 10
// instances of CreateKey (about 10 s each in AWS: it waits for IAM to
// propagate the new key) need 200 s to get through, with margin.
const minLambdaRetryWait = 300.0

type retrier struct {
	ErrorEquals     []string
	IntervalSeconds *float64
	MaxAttempts     *int
	BackoffRate     *float64
	MaxDelaySeconds *float64
	JitterStrategy  string
}

// maxWait is the longest the retrier waits in all, by the States Language
// defaults (1 s, 3 attempts, rate 2) where a field is left out.
func (r retrier) maxWait() float64 {
	interval, attempts, rate := 1.0, 3, 2.0
	if r.IntervalSeconds != nil {
		interval = *r.IntervalSeconds
	}
	if r.MaxAttempts != nil {
		attempts = *r.MaxAttempts
	}
	if r.BackoffRate != nil {
		rate = *r.BackoffRate
	}
	total := 0.0
	for k := range attempts {
		d := interval * math.Pow(rate, float64(k))
		if r.MaxDelaySeconds != nil {
			d = min(d, *r.MaxDelaySeconds)
		}
		total += d
	}
	return total
}

type taskState struct {
	Name         string
	Resource     string
	FunctionName string // Parameters.FunctionName of a lambda:invoke integration
	Retry        []retrier
	Catch        []struct{ ErrorEquals []string }
}

// taskStates lists every Task state, those inside Map iterators too.
func taskStates(t *testing.T) []taskState {
	t.Helper()
	b, err := os.ReadFile(aslPath)
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Type          string          `json:"Type"`
		Resource      string          `json:"Resource"`
		Parameters    json.RawMessage `json:"Parameters"`
		Retry         json.RawMessage `json:"Retry"`
		Catch         json.RawMessage `json:"Catch"`
		ItemProcessor *struct {
			States map[string]json.RawMessage `json:"States"`
		} `json:"ItemProcessor"`
	}
	var top struct {
		States map[string]json.RawMessage `json:"States"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var out []taskState
	var visit func(map[string]json.RawMessage)
	visit = func(states map[string]json.RawMessage) {
		for name, raw := range states {
			var n node
			if err := json.Unmarshal(raw, &n); err != nil {
				t.Fatalf("state %s: %v", name, err)
			}
			if n.ItemProcessor != nil {
				visit(n.ItemProcessor.States)
			}
			if n.Type != "Task" {
				continue
			}
			ts := taskState{Name: name, Resource: n.Resource}
			var params struct {
				FunctionName string `json:"FunctionName"`
			}
			if len(n.Parameters) > 0 && json.Unmarshal(n.Parameters, &params) == nil {
				ts.FunctionName = params.FunctionName
			}
			if len(n.Retry) > 0 {
				if err := json.Unmarshal(n.Retry, &ts.Retry); err != nil {
					t.Fatalf("state %s Retry: %v", name, err)
				}
			}
			if len(n.Catch) > 0 {
				if err := json.Unmarshal(n.Catch, &ts.Catch); err != nil {
					t.Fatalf("state %s Catch: %v", name, err)
				}
			}
			out = append(out, ts)
		}
	}
	visit(top.States)
	slices.SortFunc(out, func(a, b taskState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// placeholder is the ${…FunctionArn} the state runs, as its Resource or, in
// the lambda:invoke integration, its FunctionName; "" for none.
func (s taskState) placeholder() string {
	for _, v := range []string{s.Resource, s.FunctionName} {
		if m := placeholderRE.FindStringSubmatch(v); m != nil && strings.HasSuffix(m[1], "FunctionArn") {
			return m[1]
		}
	}
	return ""
}

// runsLambda: a ${...FunctionArn} placeholder or the lambda:invoke integration.
func (s taskState) runsLambda() bool {
	return strings.HasSuffix(s.Resource, "FunctionArn}") || strings.HasPrefix(s.Resource, "arn:aws:states:::lambda:invoke")
}

// Finding 6: every Lambda Task retries Lambda's throttling and service
// errors in a retrier of their own, with full jitter (so a burst of
// throttled executions does not retry in lock-step), long enough for a
// burst of rotations to get through.
func TestEveryLambdaTaskRetriesLambdaErrorsWithJitter(t *testing.T) {
	t.Parallel()
	var lambdaTasks int
	for _, s := range taskStates(t) {
		if !s.runsLambda() {
			continue
		}
		lambdaTasks++
		var found *retrier
		for i, r := range s.Retry {
			if slices.ContainsFunc(lambdaService, func(e string) bool { return slices.Contains(r.ErrorEquals, e) }) {
				if found != nil {
					t.Errorf("%s: Lambda's errors are split over two retriers", s.Name)
				}
				found = &s.Retry[i]
			}
		}
		if found == nil {
			t.Errorf("%s: no retrier for %v", s.Name, lambdaService)
			continue
		}
		for _, e := range lambdaService {
			if !slices.Contains(found.ErrorEquals, e) {
				t.Errorf("%s: the Lambda retrier leaves out %s", s.Name, e)
			}
		}
		if extra := slices.DeleteFunc(slices.Clone(found.ErrorEquals), func(e string) bool { return slices.Contains(lambdaService, e) }); len(extra) > 0 {
			t.Errorf("%s: the Lambda retrier also matches %v: their attempts would share one budget", s.Name, extra)
		}
		if found.JitterStrategy != "FULL" {
			t.Errorf("%s: the Lambda retrier's JitterStrategy is %q, want FULL", s.Name, found.JitterStrategy)
		}
		if w := found.maxWait(); w < minLambdaRetryWait {
			t.Errorf("%s: the Lambda retrier waits at most %.0f s in all, want ≥ %.0f s", s.Name, w, minLambdaRetryWait)
		}
		if found.MaxDelaySeconds == nil || *found.MaxDelaySeconds > 120 {
			t.Errorf("%s: the Lambda retrier needs a MaxDelaySeconds of at most 120 s, so late attempts still come often", s.Name)
		}
	}
	// Validate, Plan×3, TakeLock, Approve, CreateKey, Update×3, Promote,
	// VerifyOldKeyUnused, AlertStillInUse, DeactivateOldKey, DeleteOldKey,
	// CleanupTargets, NotifySuccess, NotifyFailure; VerifyApproval (issue 14).
	if lambdaTasks != 19 {
		t.Errorf("found %d Lambda Task states, want 19: did the walk miss a Map's iterator?", lambdaTasks)
	}
}

// sharedRateLimits are the Task states whose work calls an API with a rate
// limit every rotation in flight shares (per account, or per SORACOM
// operator), so a fleet's rotations throttle one another there: their
// Retryable retrier must keep trying, with full jitter, as long as the
// Lambda one does. VerifyOldKeyUnused: CloudTrail's LookupEvents answers 2
// calls a second per account and Region; 200 rotations' lookups take 100 s
// at best, and in BenchmarkFleet 2 of 200 rotations failed Retryable there
// on the 4-attempt retrier (up to 30 s).
var sharedRateLimits = map[string]string{
	"VerifyOldKeyUnused": "CloudTrail LookupEvents, 2 a second per account and Region",
}

func TestRateLimitedStatesRetryLongEnoughForAFleet(t *testing.T) {
	t.Parallel()
	seen := 0
	for _, s := range taskStates(t) {
		why, ok := sharedRateLimits[s.Name]
		if !ok {
			continue
		}
		seen++
		var found *retrier
		for i, r := range s.Retry {
			if slices.Contains(r.ErrorEquals, "Retryable") {
				found = &s.Retry[i]
			}
		}
		switch {
		case found == nil:
			t.Errorf("%s does not retry Retryable (%s)", s.Name, why)
		case found.JitterStrategy != "FULL":
			t.Errorf("%s: the Retryable retrier's JitterStrategy is %q, want FULL (%s)", s.Name, found.JitterStrategy, why)
		case found.maxWait() < minLambdaRetryWait:
			t.Errorf("%s: the Retryable retrier waits at most %.0f s in all, want ≥ %.0f s (%s)", s.Name, found.maxWait(), minLambdaRetryWait, why)
		case found.MaxDelaySeconds == nil || *found.MaxDelaySeconds > 120:
			t.Errorf("%s: the Retryable retrier needs a MaxDelaySeconds of at most 120 s, so late attempts still come often", s.Name)
		}
	}
	if seen != len(sharedRateLimits) {
		t.Errorf("found %d of the %d rate-limited states %v", seen, len(sharedRateLimits), sharedRateLimits)
	}
}

// Finding 4: only transient errors are retried. AccessDenied (a missing
// grant) and Internal (a bug) fail at once, and go to the alert.
// OrphanUnconfirmed is transient by nature: CloudTrail's event history
// shows a CreateAccessKey event within minutes.
func TestOnlyTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	transient := append([]string{"Retryable", "OrphanUnconfirmed", "Sandbox.Timedout", "Runtime.ExitError", "Lambda.Unknown"}, lambdaService...)
	for _, s := range taskStates(t) {
		for _, r := range s.Retry {
			for _, e := range r.ErrorEquals {
				if !slices.Contains(transient, e) {
					t.Errorf("%s retries %s, which is not transient", s.Name, e)
				}
			}
		}
		if !s.runsLambda() {
			continue
		}
		retried := slices.ContainsFunc(s.Retry, func(r retrier) bool { return slices.Contains(r.ErrorEquals, "Retryable") })
		if !retried {
			t.Errorf("%s does not retry Retryable", s.Name)
		}
	}
	// MemberAccessDenied (issue 15): a member role that cannot be assumed
	// fails the same way until the member stack or the config changes.
	for _, must := range []string{"AccessDenied", "Internal", "Retryable", "MemberAccessDenied"} {
		if !slices.Contains(rotation.ErrorNames, must) {
			t.Errorf("rotation.ErrorNames lacks %s", must)
		}
	}
}

// Finding 4: an error reaches NotifyFailure named only if every Lambda goes
// through lambdautil.Start, the boundary that names every error it returns
// (its tests check that each output's type is in rotation.ErrorNames). A
// function calling aws-lambda-go's lambda.Start itself would bypass it.
func TestEveryFunctionStartsThroughTheErrorBoundary(t *testing.T) {
	t.Parallel()
	mains, err := filepath.Glob(filepath.Join("..", "..", "functions", "cmd", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no functions/cmd/*/main.go: %v", err)
	}
	for _, p := range mains {
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		usesBoundary := false
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/aws/aws-lambda-go/lambda" {
				t.Errorf("%s imports aws-lambda-go/lambda: start it with lambdautil.Start, which names its errors", p)
			}
			usesBoundary = usesBoundary || path == "github.com/keyrotator/keyrotator/functions/lambdautil"
		}
		src, _ := os.ReadFile(p)
		if !usesBoundary || !strings.Contains(string(src), "lambdautil.Start(") {
			t.Errorf("%s does not start through lambdautil.Start", p)
		}
	}
}

// Finding 4: every error a Task ends with reaches the alert. Each Task state
// that can fail a rotation catches States.ALL to NotifyFailure, itself or
// through the Map it runs in; the notify Tasks catch to their own ends.
func TestEveryTaskFailureReachesTheAlert(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(aslPath)
	if err != nil {
		t.Fatal(err)
	}
	type st struct {
		Type  string `json:"Type"`
		Catch []struct {
			ErrorEquals []string
			Next        string
		} `json:"Catch"`
		ItemProcessor *struct {
			States map[string]json.RawMessage `json:"States"`
		} `json:"ItemProcessor"`
	}
	catchesAll := func(s st) string {
		for _, c := range s.Catch {
			if slices.Contains(c.ErrorEquals, "States.ALL") {
				return c.Next
			}
		}
		return ""
	}
	var top struct {
		States map[string]json.RawMessage `json:"States"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	ownEnd := map[string]string{"NotifyFailure": "NotifyFailureRaw", "NotifySuccess": "Succeeded", "NotifyFailureRaw": ""}
	var visit func(states map[string]json.RawMessage, via string)
	visit = func(states map[string]json.RawMessage, via string) {
		for name, raw := range states {
			var s st
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			next := catchesAll(s)
			if s.ItemProcessor != nil {
				if next != "NotifyFailure" {
					t.Errorf("Map %s does not catch States.ALL to NotifyFailure (%q)", name, next)
				}
				visit(s.ItemProcessor.States, name)
				continue
			}
			if s.Type != "Task" {
				continue
			}
			want, special := ownEnd[name]
			switch {
			case special && next != want:
				t.Errorf("%s catches States.ALL to %q, want %q", name, next, want)
			case !special && via == "" && next != "NotifyFailure":
				t.Errorf("%s catches States.ALL to %q, want NotifyFailure", name, next)
			case via != "" && next != "":
				t.Errorf("%s in Map %s catches itself (to %s): let the Map's catch record which state failed", name, via, next)
			}
		}
	}
	visit(top.States, "")
}
