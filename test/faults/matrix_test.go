package faults

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// -faults.all runs the whole matrix (make faults); without it the test
// runs the CI sample (make test).
var (
	all  = flag.Bool("faults.all", false, "run the whole fault matrix, not the CI sample")
	list = flag.Bool("faults.list", false, "list the matrix's cases (and which are sampled)")
)

// Kinds of fault, per call or per Lambda invocation.
const (
	Before = "before" // the call is refused before its side effect: AccessDenied, which nobody may retry
	After  = "after"  // the side effect happens, the answer is lost: a 500 (the SDKs retry it)
	Crash  = "crash"  // the Lambda invocation's process dies after its work
)

// Key names a call stably although Map branches run side by side.
type Key struct {
	State, Target, Service, Action string
	Ordinal                        int
}

func (k Key) String() string {
	t := k.Target
	if t == "" {
		t = "-"
	}
	return fmt.Sprintf("%s/%s/%s:%s#%d", k.State, t, k.Service, k.Action, k.Ordinal)
}

// Case is one run of the matrix.
type Case struct {
	Key  Key
	Kind string
}

func (c Case) String() string { return c.Key.String() + "/" + c.Kind }

// fault is the rule that makes the case's call misbehave, and only it.
func (c Case) fault() sandbox.Fault {
	item := c.Key.Target
	if item == "" {
		item = "-"
	}
	f := sandbox.Fault{Service: c.Key.Service, Action: c.Key.Action, State: c.Key.State, Item: item, Ordinal: c.Key.Ordinal, Times: 1}
	switch c.Kind {
	case Before:
		// Not a transient error (keyrotator retries those, and an
		// InternalFailure before the side effect only tests that retry):
		// the run must fail, say so truly, and a re-run must finish.
		f.Status, f.Code, f.Message = 403, "AccessDenied", "injected: refused before its side effect"
	case After:
		f.Status, f.Code, f.Message, f.After = 500, "InternalFailure", "injected: the answer was lost after the side effect", true
	case Crash:
		f.Crash = true
	}
	return f
}

func keyOf(c sandbox.CallRecord) Key {
	return Key{State: c.Origin.State, Target: c.Origin.Item, Service: c.Service, Action: c.Action, Ordinal: c.Ordinal}
}

// matrix is every case the clean run's calls make: each call a function
// made (it has an invocation), before and after; each Lambda invocation
// Step Functions made, crash. Sorted by key, a stable order.
func matrix(calls []sandbox.CallRecord) []Case {
	var cases []Case
	for _, c := range calls {
		switch {
		case c.Origin.Invocation != "":
			cases = append(cases, Case{keyOf(c), Before}, Case{keyOf(c), After})
		case c.Service == "lambda" && c.Action == "Invoke":
			cases = append(cases, Case{keyOf(c), Crash})
		}
	}
	slices.SortFunc(cases, func(a, b Case) int { return cmp.Compare(a.String(), b.String()) })
	return slices.CompactFunc(cases, func(a, b Case) bool { return a.String() == b.String() })
}

// sampleEvery: the CI sample is, of each kind, every sampleEvery-th case of
// a stable order (by a hash of the case, so the sample spreads over states
// and targets rather than following the alphabet); ~8 cases of ~4 s keep
// it within 40 s of make test.
const sampleEvery = 20

func sample(cases []Case) []Case {
	h := func(c Case) uint32 { f := fnv.New32a(); f.Write([]byte(c.String())); return f.Sum32() }
	var out []Case
	for _, kind := range []string{Before, After, Crash} {
		var of []Case
		for _, c := range cases {
			if c.Kind == kind {
				of = append(of, c)
			}
		}
		slices.SortFunc(of, func(a, b Case) int { return cmp.Or(cmp.Compare(h(a), h(b)), cmp.Compare(a.String(), b.String())) })
		for i, c := range of {
			if i%sampleEvery == 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

// outcome is what one case came to.
type outcome struct {
	Case     string
	Status   string // the faulted run's
	Fired    bool   // the fault hit its call
	Broken   []string
	Passed   bool   // every invariant held, the leak canary's included
	ReRun    string // the clean re-run's status ("" if the faulted run succeeded)
	Duration time.Duration
}

func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	// The clean run's world lives only as long as its subtest: its
	// consumers (about 200 calls a second) and its leak canary end before
	// the cases start, not with the whole matrix.
	var calls []sandbox.CallRecord
	if !t.Run("clean", func(t *testing.T) {
		w := newWorld(t)
		clean := w.rotate()
		if clean.status != "SUCCEEDED" {
			t.Fatalf("the clean run ended %s %s: %s (states %v)", clean.status, clean.err, clean.cause, clean.states)
		}
		calls = w.calls(clean.arn)
	}) {
		t.FailNow()
	}
	for _, c := range calls {
		if c.Ordinal == 0 {
			t.Errorf("call %s %s of %s has no ordinal", c.Service, c.Action, c.Origin.State)
		}
	}
	// Every state a function ran in made calls the log attributes to it,
	// and every target's own API calls come from its state.
	byState := map[string]int{}
	for _, c := range calls {
		byState[c.Origin.State+"/"+c.Origin.Item+"/"+c.Service]++
	}
	for _, want := range []string{"UpdateSecret/app/secretsmanager", "UpdateAuth0/prod/auth0", "UpdateSoracom/iot/soracom", "CreateKey//iam", "Distribute//lambda"} {
		if byState[want] == 0 && !strings.HasPrefix(want, "Distribute") {
			t.Errorf("no call attributed to %s; attributed: %v", want, byState)
		}
	}
	cases := matrix(calls)
	invocations := 0
	for _, c := range cases {
		if c.Kind == Crash {
			invocations++
		}
	}
	t.Logf("clean run: %d calls by keyrotator's functions, %d Lambda invocations; %.1fs", (len(cases)-invocations)/2, invocations, time.Since(start).Seconds())
	run := sample(cases)
	if *list {
		for _, c := range cases {
			t.Logf("case %s sampled=%v", c, slices.Contains(run, c))
		}
	}
	if *all {
		run = cases
	}
	t.Logf("running %d of %d cases (%s)", len(run), len(cases), map[bool]string{true: "the whole matrix", false: "the CI sample"}[*all])

	// Each case has a world of its own, so the cases run side by side; the
	// group ends when every case has, its cleanups included.
	results := make([]outcome, len(run))
	t.Run("cases", func(t *testing.T) {
		for i, c := range run {
			// "/" in a subtest's name separates levels of -run: "|" keeps a case one level.
			t.Run(strings.ReplaceAll(c.String(), "/", "|"), func(t *testing.T) {
				t.Parallel()
				// Registered first, so it runs last: after the leak canary's cleanup.
				t.Cleanup(func() { results[i].Case, results[i].Passed = c.String(), !t.Failed() })
				results[i] = runCase(t, c)
				for _, b := range results[i].Broken {
					t.Errorf("%s: %s", c, b)
				}
			})
		}
	})
	held, reran := 0, 0
	var failed []string
	for _, o := range results {
		if o.Passed {
			held++
		} else {
			first := "the leak canary (see the case's log)"
			if len(o.Broken) > 0 {
				first = o.Broken[0]
			}
			failed = append(failed, fmt.Sprintf("  %s (ran %s, re-run %s): %s", o.Case, o.Status, cmp.Or(o.ReRun, "-"), first))
		}
		if o.ReRun == "" || o.ReRun == "SUCCEEDED" {
			reran++
		}
	}
	t.Logf("fault matrix: %d calls × 2 + %d invocations × 1 = %d cases; ran %d: %d hold every invariant, %d re-run clean; %.1fs",
		(len(cases)-invocations)/2, invocations, len(cases), len(results), held, reran, time.Since(start).Seconds())
	if len(failed) > 0 {
		t.Logf("cases that broke an invariant:\n%s", strings.Join(failed, "\n"))
	}
}

// runCase runs the rotation with the case's fault in a fresh world, checks
// the invariants, then re-runs it with the fault cleared.
func runCase(t *testing.T, c Case) outcome {
	start := time.Now()
	w := newWorld(t)
	f, err := w.sb.Server.Faults().Add(c.fault())
	if err != nil {
		t.Fatal(err)
	}
	r := w.rotate()
	o := outcome{Case: c.String(), Status: r.status}
	for _, rule := range w.sb.Server.Faults().List() {
		if rule["rule"].(sandbox.Fault).ID == f.ID {
			o.Fired = rule["fired"].(int) > 0
		}
	}
	w.sb.Server.Faults().Clear()
	if !o.Fired {
		o.Broken = append(o.Broken, fmt.Sprintf("the fault never fired (the run ended %s, states %v)", r.status, r.states))
	}
	t.Logf("faulted run: %s %s (%s)", r.status, r.err, strings.Join(r.states, " → "))
	o.Broken = append(o.Broken, w.check(r)...)
	if r.status != "SUCCEEDED" {
		re := w.rotate()
		o.ReRun = re.status
		if re.status != "SUCCEEDED" {
			o.Broken = append(o.Broken, fmt.Sprintf("re-run with the fault cleared: ended %s %s: %s (states %v)", re.status, re.err, cut(re.cause), re.states))
		} else {
			for _, b := range w.check(re) {
				o.Broken = append(o.Broken, "after the re-run: "+b)
			}
		}
	}
	o.Duration = time.Since(start)
	return o
}

// check is the invariants after a run r, each broken one said with what was seen.
func (w *W) check(r run) []string {
	var broken []string
	ks := w.keys()
	held, current := w.recordKeys()
	// At most two keys, none unaccounted for: each is the old key or a key
	// the record holds.
	if len(ks) > 2 {
		broken = append(broken, fmt.Sprintf("at most two keys: the user has %d: %v", len(ks), ks))
	}
	var newKeys []string
	for id := range ks {
		switch {
		case id == w.old.AccessKeyID:
		case held[id]:
			newKeys = append(newKeys, id)
		default:
			broken = append(broken, fmt.Sprintf("no key unaccounted for: %s (%s) is neither the old key nor held by the record", id, ks[id]))
		}
	}
	// Both keys active unless the rotation completed: it succeeded, or it
	// failed only after DeleteOldKey (cleaning up the targets, or telling
	// of it), when the new key alone must be left, active.
	_, oldLeft := ks[w.old.AccessKeyID]
	completed := r.status == "SUCCEEDED" || (!oldLeft && slices.Contains(r.states, "CleanupTargets"))
	if completed {
		if len(ks) != 1 || len(newKeys) != 1 || ks[newKeys[0]] != "Active" {
			broken = append(broken, fmt.Sprintf("a completed rotation leaves the new key alone, active: keys %v, record holds %v", ks, held))
		}
	} else {
		// I2: the old key is deactivated only once every target holds the
		// new key and verification found it unused (DeactivateOldKey, then
		// WaitGrace); until then both stay active.
		deactivated := slices.Contains(r.states, "WaitGrace")
		for id, st := range ks {
			if st != "Active" && (id != w.old.AccessKeyID || !deactivated) {
				broken = append(broken, fmt.Sprintf("both keys active unless the rotation completed: %s is %s after a run that ended %s", id, st, r.status))
			}
		}
		if !oldLeft {
			broken = append(broken, fmt.Sprintf("the old key is gone after a run that ended %s: keys %v", r.status, ks))
		}
	}
	// Every target works with the key it holds, and holds one of the user's active keys.
	holds := w.holds()
	for target, problem := range w.works(holds) {
		inactive := false
		for _, k := range strings.Split(holds[target], "+") { // a partial SORACOM repoint holds both
			inactive = inactive || ks[k] != "Active"
		}
		if inactive {
			broken = append(broken, fmt.Sprintf("target %s holds %q, not an active key of the user (%v)", target, holds[target], ks))
		} else if problem != "" {
			broken = append(broken, fmt.Sprintf("target %s does not work with the key it holds: %s", target, problem))
		}
	}
	// The alert's "what has changed" is true.
	kind := "failure"
	if r.status == "SUCCEEDED" {
		kind = "success"
	}
	a, ok := w.alert(r.arn, kind)
	switch {
	case !ok && kind == "failure": // I4: every failure ends in an alert
		return append(broken, fmt.Sprintf("no %s alert for a run that ended %s", kind, r.status))
	case !ok:
		return broken // a success notice that could not be sent: the run is done all the same
	}
	for _, claim := range a.Changed {
		if why := w.falseClaim(claim, ks, holds, current); why != "" {
			broken = append(broken, fmt.Sprintf("the alert's \"what has changed\" says %q: %s", claim, why))
		}
	}
	for _, th := range a.Targets {
		if th.KeyID != "" && holds[th.Target] != th.KeyID {
			broken = append(broken, fmt.Sprintf("the alert says target %s holds %s (%s); it holds %s", th.Target, th.KeyID, th.Status, holds[th.Target]))
		}
	}
	return broken
}

// falseClaim says why one line of an alert's "what has changed" is false
// of the world ("" if it is true, or not a claim about the world).
func (w *W) falseClaim(claim string, ks, holds map[string]string, current string) string {
	var id, target, status string
	switch {
	case strings.HasPrefix(claim, "nothing: no key was created"):
		if len(ks) != 1 || ks[w.old.AccessKeyID] == "" {
			return fmt.Sprintf("the user's keys are %v (old %s)", ks, w.old.AccessKeyID)
		}
		for t, h := range holds {
			if h != w.old.AccessKeyID {
				return fmt.Sprintf("target %s holds %s, not the old key", t, h)
			}
		}
	case scan(claim, claimNewKey, &id):
		if ks[id] == "" {
			return fmt.Sprintf("the user's keys are %v", ks)
		}
	case scan(claim, claimTarget, &target, &id):
		if holds[target] != id {
			return fmt.Sprintf("it holds %s", holds[target])
		}
	case scan(claim, claimOldActive, &id):
		if ks[id] != "Active" {
			return fmt.Sprintf("it is %q (keys %v)", ks[id], ks)
		}
	case scan(claim, claimOld, &id, &status):
		got := ks[id]
		if got == "" {
			got = "Deleted"
		}
		if !strings.EqualFold(status, got) {
			return fmt.Sprintf("it is %s (keys %v)", got, ks)
		}
	case strings.HasPrefix(claim, "the new key is AWSCURRENT"):
		if current == "" || current == w.old.AccessKeyID {
			return fmt.Sprintf("the record's AWSCURRENT holds %q", current)
		}
	}
	return ""
}

var (
	claimNewKey    = regexp.MustCompile(`^new key (\S+) exists`)
	claimTarget    = regexp.MustCompile(`^target (\S+) holds the new key (\S+)`)
	claimOldActive = regexp.MustCompile(`^old key (\S+) is still active`)
	claimOld       = regexp.MustCompile(`^old key (\S+): (\S+)`)
)

// scan matches claim against re, filling into with its groups.
func scan(claim string, re *regexp.Regexp, into ...*string) bool {
	m := re.FindStringSubmatch(claim)
	if m == nil {
		return false
	}
	for i, p := range into {
		*p = strings.TrimRight(m[i+1], ",.")
	}
	return true
}

// alert is the execution's last alert of a kind (its JSON block).
func (w *W) alert(arn, kind string) (steps.Alert, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var msgs []struct{ Subject, Message string }
		w.sb.AdminCall(w.t, "GET", "/sns/messages", nil, &msgs)
		for i := len(msgs) - 1; i >= 0; i-- {
			_, js, ok := strings.Cut(msgs[i].Message, steps.JSONMarker)
			var a steps.Alert
			if ok && json.Unmarshal([]byte(js), &a) == nil && a.Execution == arn && a.Kind == kind {
				return a, true
			}
		}
		if time.Now().After(deadline) {
			return steps.Alert{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
