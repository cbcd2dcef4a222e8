package fleet

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// User is an IAM user as the directory lists it, and the account it is
// in ("" for the stack's own: the sweep sets it, the directory does not).
type User struct {
	Name    string
	Path    string
	Account string
}

// Key is one of a user's access keys.
type Key struct {
	ID      string
	Active  bool
	Created time.Time
}

// Directory is what the sweep reads of IAM (package iamusers): the users
// under a path (iam:ListUsers), a user's tags (iam:ListUserTags) and keys
// (iam:ListAccessKeys).
type Directory interface {
	Users(ctx context.Context, pathPrefix string) ([]User, error)
	Tags(ctx context.Context, user string) (map[string]string, error)
	Keys(ctx context.Context, user string) ([]Key, error)
}

// Locks says whether a rotation of account's user holds its lock (the
// record Names.RecordOf(account, user), in the keyrotator account: its
// AWSPENDING stage, secretsmanager:DescribeSecret, no value read).
type Locks interface {
	Locked(ctx context.Context, account, user string) (bool, error)
}

// Members reaches member accounts (issue 15): the stack's own account's
// id (a template may name it: its users are the own Directory's), and a
// member account's Directory, through its member role with the sweep's
// session policy (member.Provider, tasks.Sweep). A role that cannot be
// assumed is *rotation.MemberAccessDenied.
type Members interface {
	Own(ctx context.Context) (string, error)
	Directory(ctx context.Context, account string) (Directory, error)
}

// ConfigSource reads the fleet config (the <prefix>/fleet secret).
type ConfigSource interface {
	Config(ctx context.Context) ([]byte, error)
}

// StartFunc starts one rotation as a schedule's run named schedule, fired
// at fired, with input, and answers the execution's name: requestrun's
// code (steps.RequestRun.Scheduled), which signs it "schedule <schedule>"
// and names the execution after the schedule, the firing and the user, so
// a retried sweep starts no second run (an existing name is no error).
type StartFunc func(ctx context.Context, schedule string, fired time.Time, input []byte) (execution string, err error)

// Sweep starts every due rotation of the fleet.
type Sweep struct {
	Config ConfigSource
	// Users is the stack's own account's directory.
	Users Directory
	// Members are the member accounts' directories (a template's
	// accounts, a configured entry's account). nil: a config that names
	// an account fails the sweep (Internal).
	Members Members
	Locks   Locks
	Start   StartFunc
	Schema  rotation.SchemaCheck
	// Sleep waits d (a start's offset, a retry's pause); a test's returns
	// at once. nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// StartAttempts is how often a call (a start, a listing) is tried when
	// it fails Retryable (a throttle the SDK's own retries did not
	// outlast), with full-jitter pauses of 1 s doubling; 0 is 6.
	StartAttempts int
	// Now is the run's time when the event has none; nil: time.Now.
	Now func() time.Time
	// Rand draws the retry pauses' jitter; nil: math/rand/v2's.
	Rand func(n int64) int64
}

// Event is the schedule's invocation: {"scheduledTime": "<aws.scheduler.scheduled-time>"}.
type Event struct {
	ScheduledTime string `json:"scheduledTime,omitempty"`
}

// Report is what one sweep did, in counts and ids (the log line; never an
// input, a tag's value or a secret).
type Report struct {
	Fired      time.Time `json:"fired"`
	Candidates int       `json:"candidates"`
	Due        int       `json:"due"`
	Started    int       `json:"started"`
	// AlreadyStarted are due rotations this firing had started before (an
	// earlier attempt of this invocation): not started twice.
	AlreadyStarted int `json:"alreadyStarted"`
	Locked         int `json:"locked"` // a run holds the user's lock
	NotDue         int `json:"notDue"` // its key is younger than minKeyAgeDays
	NoActiveKey    int `json:"noActiveKey"`
	// Conflicts are users claimed twice (a configured entry and a tag):
	// the first claim (the configured entry) is the one started.
	Conflicts []string `json:"conflicts,omitempty"`
	// OutOfScope are users tagged for a template whose path does not cover
	// them: never started.
	OutOfScope []string `json:"outOfScope,omitempty"`
	// UnknownTemplate counts users under a template's path whose tag names
	// no template (the value is not repeated: it is the tag's word).
	UnknownTemplate int `json:"unknownTemplate"`
	// Failed are the users whose rotation could not be started, each with why.
	Failed []string `json:"failed,omitempty"`
	// Unreachable are the member accounts whose member role could not be
	// assumed ("<account>: MemberAccessDenied"): none of their rotations
	// was started; every other account's were.
	Unreachable []string `json:"unreachable,omitempty"`
}

// candidate is one rotation the sweep may start.
type candidate struct {
	user     User   // its Account is "" for the stack's own
	schedule string // the schedule name the run is signed as: sweep.<entry or template>
	input    []byte
	minAge   int
	offset   time.Duration
}

// Run is the Lambda's handler: every due rotation started, at its offset
// within the window. A start that failed leaves the run Retryable (a
// retry of the invocation starts what is left: a started one's name is
// taken) or Internal (an input the schema refuses, which a retry cannot
// mend), after every other start was made.
func (s *Sweep) Run(ctx context.Context, ev Event) (Report, error) {
	fired, err := s.fired(ev)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Fired: fired}
	var raw []byte
	err = s.retry(ctx, func() (err error) { raw, err = s.Config.Config(ctx); return err })
	if err != nil {
		return rep, err
	}
	cfg, err := Parse(raw, s.Schema)
	if err != nil {
		return rep, &rotation.Internal{Reason: "sweep: " + err.Error()}
	}
	due, unfit, denied, err := s.discover(ctx, cfg, fired, &rep)
	if err != nil {
		return rep, err
	}
	rep.Due = len(due)
	users := make([]User, len(due))
	for i, c := range due {
		users[i] = c.user
	}
	for i, o := range Offsets(fired, cfg.Window(), users) {
		due[i].offset = o
	}
	slices.SortStableFunc(due, func(a, b candidate) int { return cmp.Compare(a.offset, b.offset) })
	spread(ctx, due, cfg.Window())
	retryable, permanent, err := s.startAll(ctx, due, fired, &rep)
	if err != nil {
		return rep, err
	}
	// An unreachable member account is as a start that failed Retryable:
	// every other account's rotations were started, and a retry (once
	// the member stack is there) starts its own.
	unreachable := ""
	if len(denied) > 0 {
		unreachable = fmt.Sprintf("; %d member accounts unreachable (%s), the first: %v", len(denied), strings.Join(first(rep.Unreachable, 10), "; "), denied[0])
	}
	switch {
	case len(permanent) > 0 || unfit > 0:
		return rep, &rotation.Internal{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started (%s)%s", len(rep.Failed), rep.Due, strings.Join(first(rep.Failed, 10), "; "), unreachable)}
	case len(retryable) > 0 || len(denied) > 0:
		return rep, &rotation.Retryable{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started yet (%s)%s: a retry starts them", len(retryable), rep.Due, strings.Join(first(retryable, 10), "; "), unreachable)}
	}
	return rep, nil
}

// Starters is how many starts run side by side: a start (a KMS MAC and a
// StartExecution) that takes longer than the gap between two offsets must
// not hold back the ones after it.
const Starters = 8

// tail is the time a sweep keeps after its window, before the Lambda's
// deadline, for the last starts and their retries.
const tail = 60 * time.Second

// spread fits the offsets into the time the invocation has left: the
// window, or less when listing the fleet took so long that the window
// would run past the Lambda's deadline (less its tail). Still in order.
func spread(ctx context.Context, due []candidate, window time.Duration) {
	dl, ok := ctx.Deadline()
	if !ok || window <= 0 {
		return
	}
	left := time.Until(dl) - tail
	if left >= window {
		return
	}
	for i := range due {
		due[i].offset = time.Duration(float64(due[i].offset) * max(float64(left), 0) / float64(window))
	}
}

// startAll starts each due rotation at its offset (from now), Starters at
// a time, and sorts the failures: Retryable ones (a retry of the
// invocation starts them) and the rest.
func (s *Sweep) startAll(ctx context.Context, due []candidate, fired time.Time, rep *Report) (retryable, permanent []string, err error) {
	var mu sync.Mutex
	jobs := make(chan candidate)
	var wg sync.WaitGroup
	for range min(Starters, len(due)) {
		wg.Go(func() {
			for c := range jobs {
				_, err := s.start(ctx, c, fired)
				var taken *NameTaken
				mu.Lock()
				switch {
				case err == nil:
					rep.Started++
				case errors.As(err, &taken):
					rep.AlreadyStarted++
				default:
					why := rotation.UserIn(c.user.Account, c.user.Name) + ": " + kind(err)
					rep.Failed = append(rep.Failed, why)
					if _, ok := errors.AsType[*rotation.Retryable](err); ok {
						retryable = append(retryable, why)
					} else {
						permanent = append(permanent, why)
					}
				}
				mu.Unlock()
			}
		})
	}
	begin := time.Now()
	for _, c := range due {
		if wait := c.offset - time.Since(begin); wait > 0 {
			if err = s.sleep(ctx, wait); err != nil {
				err = &rotation.Retryable{Reason: "sweep: " + err.Error()}
				break
			}
		}
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	return retryable, permanent, err
}

// NameTaken is a start whose execution exists already: this firing
// started it before (StartFunc's contract).
type NameTaken struct{ Name string }

func (e *NameTaken) Error() string { return "execution " + e.Name + " exists already" }

func first(s []string, n int) []string { return s[:min(len(s), n)] }

func (s *Sweep) fired(ev Event) (time.Time, error) {
	if ev.ScheduledTime == "" {
		if s.Now != nil {
			return s.Now().UTC().Truncate(time.Second), nil
		}
		return time.Now().UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, ev.ScheduledTime)
	if err != nil {
		return time.Time{}, &rotation.InvalidInput{Field: "scheduledTime", Reason: "not an RFC 3339 time (the schedule's input says <aws.scheduler.scheduled-time>)"}
	}
	return t.UTC().Truncate(time.Second), nil
}

// Listers is how many users the sweep reads side by side: IAM's buckets
// (per action) bound it, and the tags of one user and the keys of another
// come out of different ones.
const Listers = 8

// discover finds the due rotations: the configured entries, then each
// template's tagged users in its scope (its path, in each of its
// accounts; a user claimed twice keeps the configured entry), each
// checked as it is found (due). unfit counts the users a template's input
// cannot be made for. A member account whose role cannot be assumed
// (*rotation.MemberAccessDenied, in denied) is skipped and named in
// rep.Unreachable; any other read that fails (after its retries) fails
// the sweep before it starts anything.
func (s *Sweep) discover(ctx context.Context, cfg Config, fired time.Time, rep *Report) (due []candidate, unfit int, denied []*rotation.MemberAccessDenied, err error) {
	var mu sync.Mutex
	var firstErr error
	// failed files a read's failure: an unreachable account once, the
	// rest as the sweep's error. Under mu.
	failed := func(account string, err error) {
		if d, ok := errors.AsType[*rotation.MemberAccessDenied](err); ok && account != "" {
			if !slices.ContainsFunc(denied, func(o *rotation.MemberAccessDenied) bool { return o.Account == account }) {
				denied = append(denied, d)
				rep.Unreachable = append(rep.Unreachable, account+": MemberAccessDenied")
			}
			return
		}
		firstErr = cmp.Or(firstErr, err)
	}
	check := func(c candidate) {
		ok, err := s.due(ctx, c, fired, rep, &mu)
		mu.Lock()
		defer mu.Unlock()
		rep.Candidates++
		switch {
		case err != nil:
			failed(c.user.Account, err)
		case ok:
			due = append(due, c)
		}
	}
	accounts, own, err := s.accounts(ctx, cfg)
	if err != nil {
		return nil, 0, nil, err
	}
	claimed := map[string]bool{} // by rotation.UserKey
	var entries []candidate
	for _, e := range cfg.Rotations {
		in, err := rotation.ParseInput(e.Input, s.Schema)
		if err != nil {
			return nil, 0, nil, &rotation.Internal{Reason: fmt.Sprintf("sweep: rotation %s: %v", e.Name, err)}
		}
		acct := accounts[in.Account]
		claimed[rotation.UserKey(acct, in.User)] = true
		entries = append(entries, candidate{user: User{Name: in.User, Path: in.Path(), Account: acct}, schedule: "sweep." + e.Name, input: e.Input, minAge: in.MinKeyAgeDays})
	}
	each(entries, check)
	templates := map[string]Template{}
	type scope struct{ account, path string }
	var scopes []scope // each account's path once: templates may share one
	for _, t := range cfg.Templates {
		templates[t.Name] = t
		for _, a := range t.AccountsOrOwn() {
			if sc := (scope{accounts[a], t.UserPath}); !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	// Each scope side by side: an account's IAM buckets are its own, so
	// five accounts listed one after another took five times as long as
	// one (1,000 users: 40 s of the window's lead) for no bucket's sake.
	var scoped sync.WaitGroup
	for _, sc := range scopes {
		scoped.Go(func() {
			mu.Lock()
			skip := slices.ContainsFunc(denied, func(d *rotation.MemberAccessDenied) bool { return d.Account == sc.account })
			mu.Unlock()
			if skip {
				return
			}
			var dir Directory
			var users []User
			err := s.retry(ctx, func() (err error) { dir, err = s.directory(ctx, sc.account); return err })
			if err == nil {
				err = s.retry(ctx, func() (err error) { users, err = dir.Users(ctx, sc.path); return err })
			}
			if err != nil {
				mu.Lock()
				failed(sc.account, err)
				mu.Unlock()
				return
			}
			each(users, func(u User) {
				u.Account = sc.account
				who := rotation.UserIn(u.Account, u.Name)
				var tags map[string]string
				if err := s.retry(ctx, func() (err error) { tags, err = dir.Tags(ctx, u.Name); return err }); err != nil {
					mu.Lock()
					failed(u.Account, err)
					mu.Unlock()
					return
				}
				name, tagged := tags[TagKey]
				if !tagged {
					return
				}
				t, known := templates[name]
				mu.Lock()
				switch {
				case !known:
					rep.UnknownTemplate++
					mu.Unlock()
					return
				case t.UserPath != sc.path:
					mu.Unlock()
					return // listed for another template's path: its own path's listing decides
				case !t.Covers(own, u.Account, u.Path, tags):
					// The listing is by path prefix already; IAM's answer is
					// checked all the same: the grants cover only the path.
					// A template that does not name the user's account never
					// rotates there, whatever the tag says. (The audit asks
					// the same Covers whether a user is the sweep's.)
					rep.OutOfScope = append(rep.OutOfScope, who)
					mu.Unlock()
					return
				case claimed[rotation.UserKey(u.Account, u.Name)]:
					rep.Conflicts = append(rep.Conflicts, who)
					mu.Unlock()
					return
				}
				claimed[rotation.UserKey(u.Account, u.Name)] = true
				mu.Unlock()
				in, err := t.InputFor(u, s.Schema)
				if err != nil {
					mu.Lock()
					rep.Failed = append(rep.Failed, who+": "+kind(err))
					unfit++
					mu.Unlock()
					return
				}
				parsed, _ := rotation.ParseInput(in, s.Schema)
				check(candidate{user: u, schedule: "sweep." + t.Name, input: in, minAge: parsed.MinKeyAgeDays})
			})
		})
	}
	scoped.Wait()
	if firstErr != nil {
		return nil, 0, nil, firstErr
	}
	if len(denied) > 0 {
		// Its users found before the refusal are not started either: the
		// account's rotations wait for its role, all together.
		due = slices.DeleteFunc(due, func(c candidate) bool {
			return slices.ContainsFunc(denied, func(d *rotation.MemberAccessDenied) bool { return d.Account == c.user.Account })
		})
	}
	// Scopes are listed side by side: the order found is not the order told.
	slices.Sort(rep.Conflicts)
	slices.Sort(rep.OutOfScope)
	slices.Sort(rep.Unreachable)
	slices.Sort(rep.Failed)
	slices.SortFunc(denied, func(a, b *rotation.MemberAccessDenied) int { return cmp.Compare(a.Account, b.Account) })
	return due, unfit, denied, nil
}

// accounts maps each account the config names (a template's, an
// entry's input's) to the one form the sweep uses for it: "" for the
// stack's own (named or not: its users are the own Directory's, its
// records Names.Record(user), as Input.MemberAccount), else its id; and
// the own account's id. The own account is asked of Members only when
// the config names an account: else own is "", and every user the sweep
// lists is the own account's ("").
func (s *Sweep) accounts(ctx context.Context, cfg Config) (map[string]string, string, error) {
	out := map[string]string{"": ""}
	var named []string
	for _, t := range cfg.Templates {
		named = append(named, t.Accounts...)
	}
	for _, e := range cfg.Rotations {
		if in, err := rotation.ParseInput(e.Input, s.Schema); err == nil && in.Account != "" {
			named = append(named, in.Account)
		}
	}
	if len(named) == 0 {
		return out, "", nil
	}
	if s.Members == nil {
		return nil, "", &rotation.Internal{Reason: "sweep: the fleet config names member accounts, and the sweep is deployed without the member settings (the config's \"member\")"}
	}
	var own string
	if err := s.retry(ctx, func() (err error) { own, err = s.Members.Own(ctx); return err }); err != nil {
		return nil, "", fmt.Errorf("sweep: the stack's own account: %w", err)
	}
	for _, a := range named {
		out[a] = a
		if a == own {
			out[a] = ""
		}
	}
	return out, own, nil
}

// directory is account's Directory: the own one for "", else the member's.
func (s *Sweep) directory(ctx context.Context, account string) (Directory, error) {
	if account == "" {
		return s.Users, nil
	}
	return s.Members.Directory(ctx, account)
}

// each runs fn over items, Listers at a time, and waits for all.
func each[T any](items []T, fn func(T)) {
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(Listers, len(items)) {
		wg.Go(func() {
			for it := range work {
				fn(it)
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
}

// due says whether c's rotation should start now: its user has an active
// key at least minKeyAgeDays old at fired, and no run holds its lock.
// Validate would skip a younger key; the sweep does not start it at all.
func (s *Sweep) due(ctx context.Context, c candidate, fired time.Time, rep *Report, mu *sync.Mutex) (bool, error) {
	var keys []Key
	err := s.retry(ctx, func() error {
		dir, err := s.directory(ctx, c.user.Account)
		if err != nil {
			return err
		}
		keys, err = dir.Keys(ctx, c.user.Name)
		return err
	})
	if err != nil {
		return false, err
	}
	var oldest time.Time
	for _, k := range keys {
		if k.Active && (oldest.IsZero() || k.Created.Before(oldest)) {
			oldest = k.Created
		}
	}
	if oldest.IsZero() {
		mu.Lock()
		rep.NoActiveKey++ // an issue is asked for by a person, never by a schedule
		mu.Unlock()
		return false, nil
	}
	if fired.Sub(oldest) < time.Duration(c.minAge)*24*time.Hour {
		mu.Lock()
		rep.NotDue++
		mu.Unlock()
		return false, nil
	}
	var locked bool
	err = s.retry(ctx, func() (err error) { locked, err = s.Locks.Locked(ctx, c.user.Account, c.user.Name); return err })
	if err != nil {
		return false, err
	}
	if locked {
		mu.Lock()
		rep.Locked++
		mu.Unlock()
		return false, nil
	}
	return true, nil
}

// start starts c (retried as every call is: retry).
func (s *Sweep) start(ctx context.Context, c candidate, fired time.Time) (string, error) {
	var name string
	err := s.retry(ctx, func() (err error) { name, err = s.Start(ctx, c.schedule, fired, c.input); return err })
	return name, err
}

// retry runs call until it succeeds or fails other than Retryable (a
// throttle the SDK's own three attempts did not outlast: the sweep's IAM
// listing runs a thousand calls one after another into IAM's buckets),
// with full jitter: each pause uniform in [0, 1 s × 2^n), capped at 20 s,
// StartAttempts attempts.
func (s *Sweep) retry(ctx context.Context, call func() error) error {
	attempts := cmp.Or(s.StartAttempts, 6)
	var err error
	for n := range attempts {
		if err = call(); err == nil {
			return nil
		}
		if _, ok := errors.AsType[*rotation.Retryable](err); !ok || n == attempts-1 {
			return err
		}
		ceiling := min(time.Second<<n, 20*time.Second)
		if serr := s.sleep(ctx, time.Duration(s.rand(int64(ceiling)))); serr != nil {
			return err
		}
	}
	return err
}

func (s *Sweep) rand(n int64) int64 {
	if s.Rand != nil {
		return s.Rand(n)
	}
	return rand.Int64N(n)
}

func (s *Sweep) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Offsets places each of one firing's starts in the window. An account's
// starts are spaced evenly over it — the window cut into as many slots as
// the account has starts, one start in each — because each account has
// buckets of its own (CloudTrail's LookupEvents, 2 a second; IAM's), and
// starts drawn independently at random bunch: 200 starts over 120 s left
// some seconds with four lookups due and a bucket serving two, so runs
// queued on throttles while the window's average was within the rate.
// Which slot a user takes, and where in it, comes from a hash of the
// firing and the user (not a random source): a retried sweep puts every
// start it still has to make where the first attempt put it when the
// account's starts are the same, and in a slot of the same window when
// some were made.
func Offsets(fired time.Time, window time.Duration, users []User) []time.Duration {
	out := make([]time.Duration, len(users))
	if window <= 0 {
		return out
	}
	type drawn struct {
		i    int
		hash uint64
	}
	byAccount := map[string][]drawn{}
	for i, u := range users {
		sum := sha256.Sum256([]byte(fired.UTC().Format(time.RFC3339) + "\x00" + rotation.UserKey(u.Account, u.Name)))
		byAccount[u.Account] = append(byAccount[u.Account], drawn{i, binary.BigEndian.Uint64(sum[:8])})
	}
	for _, ds := range byAccount {
		slices.SortFunc(ds, func(a, b drawn) int { return cmp.Compare(a.hash, b.hash) })
		slot := float64(window) / float64(len(ds))
		for rank, d := range ds {
			// Where in its slot: the hash's low bits, a fraction of 1.
			frac := float64(d.hash&(1<<32-1)) / (1 << 32)
			out[d.i] = time.Duration((float64(rank) + frac) * slot)
		}
	}
	return out
}

// kind names a start's failure for the report: the named error's type
// (and an input's field), never its message.
func kind(err error) string {
	if ii, ok := errors.AsType[*rotation.InvalidInput](err); ok {
		if ii.Field != "" {
			return "InvalidInput (" + ii.Field + ")"
		}
		return "InvalidInput"
	}
	if _, ok := errors.AsType[*rotation.Retryable](err); ok {
		return "Retryable"
	}
	if _, ok := errors.AsType[*rotation.AccessDenied](err); ok {
		return "AccessDenied"
	}
	return "Internal"
}
