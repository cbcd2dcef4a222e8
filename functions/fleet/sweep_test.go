package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

var fired = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// world is the fakes of one sweep: IAM's users, tags and keys, the
// locks, the config and the starts, every call recorded, and a fault
// that fails one call by its ordinal.
type world struct {
	mu     sync.Mutex
	users  []fleet.User                 // as IAM lists them (under any path)
	tags   map[string]map[string]string // by rotation.UserKey(account, user)
	age    map[string]int               // days of the user's active key; -1: no active key
	locked map[string]bool

	// Issue 15, multi-account: the member accounts' users (the own
	// account's are users), the accounts whose member role refuses the
	// assume, and the member directories handed out (as member.Clients
	// keeps them).
	members  map[string][]fleet.User
	refusing map[string]bool
	dirs     map[string]bool
	config   string
	calls    []string
	failCall string // the call to fail, once (each call's name is unique in a run); "": none
	failErr  error  // what it fails with
	started  map[string]int
	inputs   map[string]map[string]any
	sched    map[string]string
	names    map[string]bool // executions that exist (a retried firing)
	// together, when set, holds each listing until this many are under
	// way at once (or a second has passed: then apart is counted).
	together *sync.WaitGroup
	apart    int
}

func (w *world) call(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, name)
	if w.failCall == name {
		w.failCall = ""
		return w.failErr
	}
	return nil
}

func (w *world) Config(context.Context) ([]byte, error) {
	if err := w.call("config"); err != nil {
		return nil, err
	}
	return []byte(w.config), nil
}

// own is the stack's own account's id (the fakes' Members.Own).
const own = "111111111111"

// Two member accounts: b is reachable, c's member role refuses the sweep.
const (
	acctB = "222222222222"
	acctC = "333333333333"
)

// Own is Members.Own.
func (w *world) Own(context.Context) (string, error) {
	if err := w.call("own"); err != nil {
		return "", err
	}
	return own, nil
}

// Directory is Members.Directory: a member account's IAM, through its
// role (assumed once, as member.Clients keeps a session).
func (w *world) Directory(_ context.Context, account string) (fleet.Directory, error) {
	w.mu.Lock()
	made := w.dirs[account]
	w.mu.Unlock()
	if made {
		return dir{w, account}, nil
	}
	if err := w.call("assume " + account); err != nil {
		return nil, err
	}
	if w.refusing[account] {
		return nil, &rotation.MemberAccessDenied{Account: account, Role: "arn:aws:iam::" + account + ":role/keyrotator-member", Task: "sweep", Reason: "not authorized to perform: sts:AssumeRole"}
	}
	w.mu.Lock()
	w.dirs[account] = true
	w.mu.Unlock()
	return dir{w, account}, nil
}

// dir is one account's Directory: "" the own (the world itself).
type dir struct {
	w       *world
	account string
}

func (d dir) Users(ctx context.Context, prefix string) ([]fleet.User, error) {
	return d.w.list(d.account, prefix)
}
func (d dir) Tags(_ context.Context, user string) (map[string]string, error) {
	return d.w.tagsOf(d.account, user)
}
func (d dir) Keys(_ context.Context, user string) ([]fleet.Key, error) {
	return d.w.keysOf(d.account, user)
}

// at names a call made in account ("" the own: the name alone).
func at(account, what string) string {
	if account == "" {
		return what
	}
	return account + " " + what
}

func (w *world) Users(_ context.Context, prefix string) ([]fleet.User, error) {
	return w.list("", prefix)
}

func (w *world) list(account, prefix string) ([]fleet.User, error) {
	if err := w.call(at(account, "users "+prefix)); err != nil {
		return nil, err
	}
	if w.together != nil {
		w.together.Done()
		all := make(chan struct{})
		go func() { w.together.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(time.Second):
			w.mu.Lock()
			w.apart++
			w.mu.Unlock()
		}
	}
	users := w.users
	if account != "" {
		users = w.members[account]
	}
	var out []fleet.User
	for _, u := range users {
		if strings.HasPrefix(u.Path, prefix) || u.Name == "liar" { // "liar": IAM's answer out of scope
			out = append(out, u)
		}
	}
	return out, nil
}

func (w *world) Tags(_ context.Context, user string) (map[string]string, error) {
	return w.tagsOf("", user)
}

func (w *world) tagsOf(account, user string) (map[string]string, error) {
	if err := w.call(at(account, "tags "+user)); err != nil {
		return nil, err
	}
	return w.tags[rotation.UserKey(account, user)], nil
}

func (w *world) Keys(_ context.Context, user string) ([]fleet.Key, error) {
	return w.keysOf("", user)
}

func (w *world) keysOf(account, user string) ([]fleet.Key, error) {
	if err := w.call(at(account, "keys "+user)); err != nil {
		return nil, err
	}
	d := w.age[rotation.UserKey(account, user)]
	if d < 0 {
		return []fleet.Key{{ID: "AKIAINACTIVE", Active: false, Created: fired.AddDate(0, 0, -200)}}, nil
	}
	return []fleet.Key{{ID: "AKIA" + user, Active: true, Created: fired.AddDate(0, 0, -d)}}, nil
}

// Locked is the lock of account's user: its record, in the keyrotator
// account, by rotation.Names.RecordOf(account, user).
func (w *world) Locked(_ context.Context, account, user string) (bool, error) {
	record := rotation.Names{}.RecordOf(account, user)
	if err := w.call("locked " + record); err != nil {
		return false, err
	}
	return w.locked[rotation.UserKey(account, user)], nil
}

func (w *world) start(_ context.Context, schedule string, at time.Time, input []byte) (string, error) {
	var in map[string]any
	_ = json.Unmarshal(input, &in)
	user, _ := in["user"].(string)
	account, _ := in["account"].(string)
	if err := w.call("start " + rotation.UserIn(account, user)); err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	key := rotation.UserKey(account, user)
	name := strings.ReplaceAll(key, "/", "-") + "-" + at.Format("20060102T150405Z")
	if w.names[name] {
		return "", &fleet.NameTaken{Name: name}
	}
	w.names[name] = true
	w.started[key]++
	w.inputs[key] = in
	w.sched[key] = schedule
	return name, nil
}

func newWorld() *world {
	tmpl := `{"targets": [{"type": "secret", "name": "app", "secretId": "fleet/{user}/aws-key"}], "minKeyAgeDays": 80}`
	entry := `{"user": "configured", "targets": [{"type": "secret", "name": "app", "secretId": "app/configured"}], "trigger": "schedule"}`
	cfg := fmt.Sprintf(`{"windowSeconds": 600, "templates": [{"name": "app", "userPath": "/fleet/", "input": %s}, {"name": "admins", "userPath": "/fleet/admins/", "input": %s}], "rotations": [{"name": "configured-key", "input": %s}]}`, tmpl, tmpl, entry)
	return &world{
		users: []fleet.User{
			{Name: "due", Path: "/fleet/"}, {Name: "young", Path: "/fleet/"}, {Name: "other-template", Path: "/fleet/"}, {Name: "untagged", Path: "/fleet/"},
			{Name: "busy", Path: "/fleet/"}, {Name: "keyless", Path: "/fleet/"}, {Name: "configured", Path: "/fleet/"}, {Name: "deep", Path: "/fleet/team/"},
			{Name: "outside", Path: "/other/"}, {Name: "liar", Path: "/other/"},
			{Name: "climber", Path: "/fleet/"}, // tagged for a template of a deeper path: outside its scope
		},
		tags: map[string]map[string]string{
			"due": {fleet.TagKey: "app"}, "young": {fleet.TagKey: "app"}, "other-template": {fleet.TagKey: "nope\x1b[31m AKIAIOSFODNN7EXAMPLE"},
			"busy": {fleet.TagKey: "app"}, "keyless": {fleet.TagKey: "app"}, "configured": {fleet.TagKey: "app"}, "deep": {fleet.TagKey: "app"},
			"outside": {fleet.TagKey: "app"}, "liar": {fleet.TagKey: "app"}, "climber": {fleet.TagKey: "admins"},
		},
		age:     map[string]int{"climber": 95, "due": 95, "young": 10, "busy": 95, "keyless": -1, "configured": 120, "deep": 85, "outside": 95, "liar": 95},
		locked:  map[string]bool{"busy": true},
		config:  cfg,
		started: map[string]int{}, inputs: map[string]map[string]any{}, sched: map[string]string{}, names: map[string]bool{},
		dirs: map[string]bool{},
	}
}

// newMultiWorld is newWorld with two member accounts (issue 15): a
// template "members" for B and C under /fleet/ (the own account's
// template "app" shares the path), a configured entry in B, and in B a
// due user, a young one, a locked one, a user of the same name as the own
// account's "due", and one tagged "app" (which covers only the own
// account). C's member role refuses the sweep unless reachable.
func newMultiWorld() *world {
	w := newWorld()
	tmpl := `{"targets": [{"type": "secret", "name": "app", "secretId": "fleet/{user}/aws-key"}], "minKeyAgeDays": 80}`
	entry := `{"account": "` + acctB + `", "user": "m-configured", "targets": [{"type": "secret", "name": "app", "secretId": "app/m-configured"}], "trigger": "schedule"}`
	var cfg map[string]any
	_ = json.Unmarshal([]byte(w.config), &cfg)
	var t, e any
	_ = json.Unmarshal([]byte(`{"name": "members", "userPath": "/fleet/", "accounts": ["`+acctB+`", "`+acctC+`"], "input": `+tmpl+`}`), &t)
	_ = json.Unmarshal([]byte(`{"name": "member-key", "input": `+entry+`}`), &e)
	cfg["templates"] = append(cfg["templates"].([]any), t)
	cfg["rotations"] = append(cfg["rotations"].([]any), e)
	b, _ := json.Marshal(cfg)
	w.config = string(b)
	w.members = map[string][]fleet.User{
		acctB: {{Name: "m-due", Path: "/fleet/"}, {Name: "m-young", Path: "/fleet/"}, {Name: "m-busy", Path: "/fleet/"},
			{Name: "due", Path: "/fleet/x/"}, {Name: "m-app", Path: "/fleet/"}, {Name: "m-configured", Path: "/fleet/"}},
		acctC: {{Name: "c-due", Path: "/fleet/"}},
	}
	for u, tag := range map[string]string{"m-due": "members", "m-young": "members", "m-busy": "members", "due": "members", "m-app": "app"} {
		w.tags[rotation.UserKey(acctB, u)] = map[string]string{fleet.TagKey: tag}
	}
	w.tags[rotation.UserKey(acctC, "c-due")] = map[string]string{fleet.TagKey: "members"}
	for u, d := range map[string]int{"m-due": 95, "m-young": 10, "m-busy": 95, "due": 90, "m-app": 95, "m-configured": 100} {
		w.age[rotation.UserKey(acctB, u)] = d
	}
	w.age[rotation.UserKey(acctC, "c-due")] = 95
	w.locked[rotation.UserKey(acctB, "m-busy")] = true
	w.refusing = map[string]bool{acctC: true}
	return w
}

func (w *world) sweep(sleeps *[]time.Duration) *fleet.Sweep {
	return &fleet.Sweep{
		Config: w, Users: w, Members: w, Locks: w, Start: w.start, Schema: subset.Check,
		Sleep: func(_ context.Context, d time.Duration) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if sleeps != nil {
				*sleeps = append(*sleeps, d)
			}
			return nil
		},
		Rand: func(n int64) int64 { return n / 2 },
	}
}

func TestSweepStartsEveryDueRotationOnce(t *testing.T) {
	t.Parallel()
	w := newWorld()
	var sleeps []time.Duration
	rep, err := w.sweep(&sleeps).Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"configured": 1, "due": 1, "deep": 1}
	if fmt.Sprint(w.started) != fmt.Sprint(want) {
		t.Fatalf("started %v, want %v", w.started, want)
	}
	// A template's input for its user: the user, its path, {user} replaced.
	in := w.inputs["deep"]
	if in["user"] != "deep" || in["userPath"] != "/fleet/team/" || in["targets"].([]any)[0].(map[string]any)["secretId"] != "fleet/deep/aws-key" {
		t.Errorf("deep's input: %v", in)
	}
	if w.sched["due"] != "sweep.app" || w.sched["configured"] != "sweep.configured-key" {
		t.Errorf("signed as %v", w.sched)
	}
	if rep.Due != 3 || rep.Started != 3 || rep.NotDue != 1 || rep.Locked != 1 || rep.NoActiveKey != 1 || rep.UnknownTemplate != 1 ||
		!slices.Equal(rep.Conflicts, []string{"configured"}) || !slices.Equal(rep.OutOfScope, []string{"liar"}) {
		t.Errorf("report %+v", rep)
	}
	// Staggered within the window: each start waits for its offset (no
	// real time passes here, so each wait is its offset), in order, all
	// within 600 s.
	if len(sleeps) == 0 || !slices.IsSorted(sleeps) || sleeps[len(sleeps)-1] >= 600*time.Second {
		t.Errorf("waits %v: want starts at rising offsets within 600 s", sleeps)
	}
	// The report is counts and user names: no tag value reaches it.
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), "AKIA") || strings.Contains(string(b), "nope") || strings.Contains(string(b), "\x1b") {
		t.Errorf("report repeats a tag's value: %s", b)
	}
}

// A retried firing (Lambda retries an async invocation that failed)
// starts no second run: the names of the first attempt exist.
// Each account (and path) is listed side by side with the others: an
// account's IAM buckets are its own, and listing 5 accounts' 1,000 users
// one account after another made the fleet's first start wait 40 s.
func TestSweepListsEveryScopeAtOnce(t *testing.T) {
	t.Parallel()
	w := newMultiWorld()
	w.refusing = nil
	// The own account's two template paths, B's and C's.
	w.together = &sync.WaitGroup{}
	w.together.Add(4)
	rep, err := w.sweep(nil).Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if w.apart > 0 {
		t.Errorf("%d of 4 listings waited a second for the others: the scopes were listed one after another", w.apart)
	}
	if rep.Started != 7 || w.started[rotation.UserKey(acctC, "c-due")] != 1 || w.started[rotation.UserKey(acctB, "m-due")] != 1 {
		t.Errorf("started %d: %v", rep.Started, w.started)
	}
}

func TestASweepRetriedStartsNoSecondRun(t *testing.T) {
	t.Parallel()
	w := newWorld()
	ev := fleet.Event{ScheduledTime: fired.Format(time.RFC3339)}
	if _, err := w.sweep(nil).Run(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	rep, err := w.sweep(nil).Run(context.Background(), ev)
	if err != nil || rep.AlreadyStarted != 3 || rep.Started != 0 {
		t.Fatalf("again: %v %+v", err, rep)
	}
	startedOnceEach(t, w.started)
}

// StartExecution's throttle, past the SDK's retries, is retried with full
// jitter until it passes.
func TestSweepRetriesAThrottledStart(t *testing.T) {
	t.Parallel()
	w := newWorld()
	throttles := 0
	s := w.sweep(nil)
	start := s.Start
	s.Start = func(ctx context.Context, schedule string, at time.Time, input []byte) (string, error) {
		w.mu.Lock()
		if throttles < 4 && strings.Contains(string(input), `"due"`) {
			throttles++
			w.mu.Unlock()
			return "", &rotation.Retryable{Reason: "states StartExecution: ThrottlingException"}
		}
		w.mu.Unlock()
		return start(ctx, schedule, at, input)
	}
	var pauses []time.Duration
	s.Sleep = func(_ context.Context, d time.Duration) error {
		w.mu.Lock()
		pauses = append(pauses, d)
		w.mu.Unlock()
		return nil
	}
	rep, err := s.Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if err != nil || rep.Started != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
	// Rand answers half the ceiling: 0.5 s, 1 s, 2 s, 4 s among the offsets.
	for _, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		if !slices.Contains(pauses, want) {
			t.Errorf("pauses %v: want a jittered %v", pauses, want)
		}
	}
}

// One clean run, then one run per call with that call failing: a
// throttle is absorbed (the call retried with jitter), a denial leaves the
// sweep AccessDenied (or, for a start, Internal naming the user), never a
// panic, never a user started twice, never a user outside the config's
// scope started; and a retry after the failure finishes the job.
func TestSweepWithEachCallFailing(t *testing.T) {
	t.Parallel()
	worlds := map[string]func() *world{
		"own": newWorld,
		// Issue 15: every member account reachable, so that each of its
		// calls (the assume, the listing, a user's tags and keys, the
		// lock by RecordOf) fails in turn.
		"members": func() *world { w := newMultiWorld(); w.refusing = nil; return w },
	}
	for wname, newWorld := range worlds {
		t.Run(wname, func(t *testing.T) {
			t.Parallel()
			eachCallFailing(t, newWorld)
		})
	}
}

func eachCallFailing(t *testing.T, newWorld func() *world) {
	clean := newWorld()
	if _, err := clean.sweep(nil).Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	faults := map[string]error{
		"throttle": &rotation.Retryable{Reason: "ThrottlingException"},
		"denied":   &rotation.AccessDenied{},
	}
	for i, call := range clean.calls {
		for fname, ferr := range faults {
			t.Run(fmt.Sprintf("%02d-%s-%s", i+1, call, fname), func(t *testing.T) {
				t.Parallel()
				w := newWorld()
				w.failCall, w.failErr = call, ferr
				ev := fleet.Event{ScheduledTime: fired.Format(time.RFC3339)}
				_, err := w.sweep(nil).Run(context.Background(), ev)
				retryable := errors.As(err, new(*rotation.Retryable))
				switch {
				case fname == "throttle" && err != nil: // retried in the sweep itself
					t.Fatalf("%s throttled once: %v (retryable %v), want it absorbed", call, err, retryable)
				case fname == "denied" && strings.HasPrefix(call, "start "):
					if _, ok := errors.AsType[*rotation.Internal](err); !ok || !strings.Contains(err.Error(), strings.TrimPrefix(call, "start ")+": AccessDenied") {
						t.Fatalf("%s denied: %T %v, want Internal naming the user", call, err, err)
					}
				case fname == "denied" && !errors.As(err, new(*rotation.AccessDenied)):
					t.Fatalf("%s denied: %T %v, want AccessDenied", call, err, err)
				}
				w.failCall = ""
				if _, err := w.sweep(nil).Run(context.Background(), ev); err != nil {
					t.Fatalf("the retry: %v", err)
				}
				if fmt.Sprint(w.started) != fmt.Sprint(clean.started) {
					t.Fatalf("after a retry: started %v, want %v", w.started, clean.started)
				}
			})
		}
	}
}

func TestParseRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	in := `{"targets": [{"type": "secret", "name": "app", "secretId": "fleet/{user}"}]}`
	tests := map[string]string{
		"window":        `{"windowSeconds": 900}`,
		"name":          `{"templates": [{"name": "sweep.x", "userPath": "/", "input": ` + in + `}]}`,
		"long name":     `{"templates": [{"name": "` + strings.Repeat("a", 33) + `", "userPath": "/", "input": ` + in + `}]}`,
		"twice":         `{"templates": [{"name": "a", "userPath": "/", "input": ` + in + `}, {"name": "a", "userPath": "/", "input": ` + in + `}]}`,
		"path":          `{"templates": [{"name": "a", "userPath": "fleet", "input": ` + in + `}]}`,
		"user in input": `{"templates": [{"name": "a", "userPath": "/", "input": {"user": "x", "targets": []}}]}`,
		"bad input":     `{"templates": [{"name": "a", "userPath": "/", "input": {"targets": [{"type": "nope"}]}}]}`,
		"unknown field": `{"windowSecs": 1}`,
		// Issue 15: a template's accounts.
		"account":          `{"templates": [{"name": "a", "userPath": "/", "accounts": ["12345"], "input": ` + in + `}]}`,
		"account twice":    `{"templates": [{"name": "a", "userPath": "/", "accounts": ["222222222222", "222222222222"], "input": ` + in + `}]}`,
		"account in input": `{"templates": [{"name": "a", "userPath": "/", "accounts": ["222222222222"], "input": {"account": "222222222222", "targets": [{"type": "secret", "name": "app", "secretId": "fleet/{user}"}]}}]}`,
	}
	for name, raw := range tests {
		if _, err := fleet.Parse([]byte(raw), subset.Check); err == nil {
			t.Errorf("%s: %s accepted", name, raw)
		}
	}
	if _, err := fleet.Parse([]byte(`{"windowSeconds": 840, "templates": [{"name": "a", "userPath": "/fleet/", "input": `+in+`}, {"name": "b", "userPath": "/fleet/", "accounts": ["222222222222"], "input": `+in+`}]}`), subset.Check); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

// The offsets spread each account's starts evenly over the window — one
// in each of as many equal slots as the account has starts, so no second
// of it asks an account's buckets for more than its share — and are the
// same on every attempt of that firing.
func TestOffsetsSpreadEachAccountOverTheWindow(t *testing.T) {
	t.Parallel()
	const window = 120 * time.Second
	accounts := []string{"", "510000000001", "520000000002", "530000000003", "540000000004"}
	counts := []int{1, 7, 200, 333, 459}
	var users []fleet.User
	for a, acct := range accounts {
		for i := range counts[a] {
			// The same names in every account: told apart by the account.
			users = append(users, fleet.User{Account: acct, Name: fmt.Sprintf("user-%d", i)})
		}
	}
	got := fleet.Offsets(fired, window, users)
	if again := fleet.Offsets(fired, window, users); !slices.Equal(got, again) {
		t.Fatal("a second attempt of the firing placed the starts elsewhere")
	}
	if other := fleet.Offsets(fired.Add(24*time.Hour), window, users); slices.Equal(got, other) {
		t.Error("the next day's firing placed every start where this one did")
	}
	for a, acct := range accounts {
		var own []time.Duration
		for i, u := range users {
			if u.Account == acct {
				own = append(own, got[i])
			}
		}
		slices.Sort(own)
		slot := window / time.Duration(counts[a])
		for i, o := range own {
			if o < time.Duration(i)*slot-time.Millisecond || o >= time.Duration(i+1)*slot+time.Millisecond || o >= window {
				t.Fatalf("account %q: its start %d of %d at %v, outside its slot [%v, %v)", acct, i, len(own), o, time.Duration(i)*slot, time.Duration(i+1)*slot)
			}
		}
	}
	if o := fleet.Offsets(fired, 0, users); slices.ContainsFunc(o, func(d time.Duration) bool { return d != 0 }) {
		t.Error("no window: every start at once, want offsets 0")
	}
}

// A throttle that lasts outlasts the sweep's retries: the sweep ends
// Retryable, starting nothing it could not check, and Lambda's retry of
// the invocation (or the next firing) tries again.
func TestALastingThrottleLeavesTheSweepRetryable(t *testing.T) {
	t.Parallel()
	w := newWorld()
	s := w.sweep(nil)
	s.Locks = lockedOut{}
	_, err := s.Run(context.Background(), fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if _, ok := errors.AsType[*rotation.Retryable](err); !ok {
		t.Fatalf("%T %v, want Retryable", err, err)
	}
	if len(w.started) != 0 {
		t.Fatalf("started %v while the locks could not be read", w.started)
	}
}

type lockedOut struct{}

func (lockedOut) Locked(context.Context, string, string) (bool, error) {
	return false, &rotation.Retryable{Reason: "secretsmanager DescribeSecret: ThrottlingException"}
}

// A window that would run past the Lambda's deadline (the listing took
// long) is squeezed into the time left before the sweep's tail: every start
// is made in time, in the same order.
func TestTheWindowFitsTheTimeLeft(t *testing.T) {
	t.Parallel()
	w := newWorld()
	var sleeps []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second) // 10 s before the 60 s tail
	defer cancel()
	rep, err := w.sweep(&sleeps).Run(ctx, fleet.Event{ScheduledTime: fired.Format(time.RFC3339)})
	if err != nil || rep.Started != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
	if len(sleeps) == 0 || !slices.IsSorted(sleeps) || sleeps[len(sleeps)-1] > 10*time.Second {
		t.Fatalf("waits %v: want them within the 10 s left, in order", sleeps)
	}
}

// startedOnceEach fails t for a user the sweeps started other than once.
func startedOnceEach(t *testing.T, started map[string]int) {
	t.Helper()
	for u, n := range started {
		if n != 1 {
			t.Errorf("%s started %d times", u, n)
		}
	}
}
