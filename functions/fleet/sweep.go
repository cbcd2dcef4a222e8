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

// User is an IAM user as the directory lists it.
type User struct {
	Name string
	Path string
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

// Locks says whether a rotation of user holds its lock (the record's
// AWSPENDING stage: secretsmanager:DescribeSecret, no value read).
type Locks interface {
	Locked(ctx context.Context, user string) (bool, error)
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
	Users  Directory
	Locks  Locks
	Start  StartFunc
	Schema rotation.SchemaCheck
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
}

// candidate is one rotation the sweep may start.
type candidate struct {
	user     User
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
	due, unfit, err := s.discover(ctx, cfg, fired, &rep)
	if err != nil {
		return rep, err
	}
	rep.Due = len(due)
	slices.SortStableFunc(due, func(a, b candidate) int { return cmp.Compare(a.offset, b.offset) })
	spread(ctx, due, cfg.Window())
	retryable, permanent, err := s.startAll(ctx, due, fired, &rep)
	if err != nil {
		return rep, err
	}
	switch {
	case len(permanent) > 0 || unfit > 0:
		return rep, &rotation.Internal{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started (%s)", len(rep.Failed), rep.Due, strings.Join(first(rep.Failed, 10), "; "))}
	case len(retryable) > 0:
		return rep, &rotation.Retryable{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started yet (%s): a retry starts them", len(retryable), rep.Due, strings.Join(first(retryable, 10), "; "))}
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
					why := c.user.Name + ": " + kind(err)
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
// template's tagged users in its scope (a user claimed twice keeps the
// configured entry), each checked as it is found (due). unfit counts the
// users a template's input cannot be made for. Any read that fails (after
// its retries) fails the sweep before it starts anything.
func (s *Sweep) discover(ctx context.Context, cfg Config, fired time.Time, rep *Report) (due []candidate, unfit int, err error) {
	var mu sync.Mutex
	var firstErr error
	check := func(c candidate) {
		ok, err := s.due(ctx, c, fired, rep, &mu)
		mu.Lock()
		defer mu.Unlock()
		rep.Candidates++
		switch {
		case err != nil:
			firstErr = cmp.Or(firstErr, err)
		case ok:
			c.offset = Offset(fired, c.user.Name, cfg.Window())
			due = append(due, c)
		}
	}
	claimed := map[string]bool{}
	var entries []candidate
	for _, e := range cfg.Rotations {
		in, err := rotation.ParseInput(e.Input, s.Schema)
		if err != nil {
			return nil, 0, &rotation.Internal{Reason: fmt.Sprintf("sweep: rotation %s: %v", e.Name, err)}
		}
		claimed[in.User] = true
		entries = append(entries, candidate{user: User{Name: in.User, Path: in.Path()}, schedule: "sweep." + e.Name, input: e.Input, minAge: in.MinKeyAgeDays})
	}
	each(entries, check)
	templates := map[string]Template{}
	var paths []string // each path once: templates may share one
	for _, t := range cfg.Templates {
		templates[t.Name] = t
		if !slices.Contains(paths, t.UserPath) {
			paths = append(paths, t.UserPath)
		}
	}
	for _, p := range paths {
		var users []User
		if err := s.retry(ctx, func() (err error) { users, err = s.Users.Users(ctx, p); return err }); err != nil {
			return nil, 0, err
		}
		each(users, func(u User) {
			var tags map[string]string
			if err := s.retry(ctx, func() (err error) { tags, err = s.Users.Tags(ctx, u.Name); return err }); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
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
			case t.UserPath != p:
				mu.Unlock()
				return // listed for another template's path: its own path's listing decides
			case !strings.HasPrefix(u.Path, t.UserPath):
				// The listing is by path prefix already; IAM's answer is
				// checked all the same: the grants cover only the path.
				rep.OutOfScope = append(rep.OutOfScope, u.Name)
				mu.Unlock()
				return
			case claimed[u.Name]:
				rep.Conflicts = append(rep.Conflicts, u.Name)
				mu.Unlock()
				return
			}
			claimed[u.Name] = true
			mu.Unlock()
			in, err := t.InputFor(u, s.Schema)
			if err != nil {
				mu.Lock()
				rep.Failed = append(rep.Failed, u.Name+": "+kind(err))
				unfit++
				mu.Unlock()
				return
			}
			parsed, _ := rotation.ParseInput(in, s.Schema)
			check(candidate{user: u, schedule: "sweep." + t.Name, input: in, minAge: parsed.MinKeyAgeDays})
		})
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	slices.Sort(rep.Conflicts)
	slices.Sort(rep.OutOfScope)
	return due, unfit, nil
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
	err := s.retry(ctx, func() (err error) { keys, err = s.Users.Keys(ctx, c.user.Name); return err })
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
	err = s.retry(ctx, func() (err error) { locked, err = s.Locks.Locked(ctx, c.user.Name); return err })
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

// Offset is where in the window a user's start falls: uniform over the
// window, drawn from the firing and the user (a hash, not a random
// source), so a retried sweep puts every start where the first attempt
// did, and one firing's starts spread evenly.
func Offset(fired time.Time, user string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(fired.UTC().Format(time.RFC3339) + "\x00" + user))
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(window))
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
