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
	cands, err := s.candidates(ctx, cfg, &rep)
	if err != nil {
		return rep, err
	}
	rep.Candidates = len(cands)
	var due []candidate
	for _, c := range cands {
		ok, err := s.due(ctx, c, fired, &rep)
		if err != nil {
			return rep, err
		}
		if ok {
			c.offset = Offset(fired, c.user.Name, cfg.Window())
			due = append(due, c)
		}
	}
	rep.Due = len(due)
	slices.SortStableFunc(due, func(a, b candidate) int { return cmp.Compare(a.offset, b.offset) })
	var retryable, permanent []string
	begin := time.Now()
	for _, c := range due {
		if wait := c.offset - time.Since(begin); wait > 0 {
			if err := s.sleep(ctx, wait); err != nil {
				return rep, &rotation.Retryable{Reason: "sweep: " + err.Error()}
			}
		}
		_, err := s.start(ctx, c, fired)
		var taken *NameTaken
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
	}
	switch {
	case len(permanent) > 0:
		return rep, &rotation.Internal{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started (%s)", len(rep.Failed), rep.Due, strings.Join(first(rep.Failed, 10), "; "))}
	case len(retryable) > 0:
		return rep, &rotation.Retryable{Reason: fmt.Sprintf("sweep: %d of %d due rotations could not be started yet (%s): a retry starts them", len(retryable), rep.Due, strings.Join(first(retryable, 10), "; "))}
	}
	return rep, nil
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

// candidates are the configured entries, then each template's tagged
// users in its scope; a user claimed twice keeps its first claim.
func (s *Sweep) candidates(ctx context.Context, cfg Config, rep *Report) ([]candidate, error) {
	var out []candidate
	claimed := map[string]bool{}
	for _, e := range cfg.Rotations {
		in, err := rotation.ParseInput(e.Input, s.Schema)
		if err != nil {
			return nil, &rotation.Internal{Reason: fmt.Sprintf("sweep: rotation %s: %v", e.Name, err)}
		}
		claimed[in.User] = true
		out = append(out, candidate{user: User{Name: in.User, Path: in.Path()}, schedule: "sweep." + e.Name, input: e.Input, minAge: in.MinKeyAgeDays})
	}
	templates := map[string]Template{}
	for _, t := range cfg.Templates {
		templates[t.Name] = t
	}
	// Each path once: templates may share one.
	var paths []string
	for _, t := range cfg.Templates {
		if !slices.Contains(paths, t.UserPath) {
			paths = append(paths, t.UserPath)
		}
	}
	for _, p := range paths {
		var users []User
		err := s.retry(ctx, func() (err error) { users, err = s.Users.Users(ctx, p); return err })
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			var tags map[string]string
			err := s.retry(ctx, func() (err error) { tags, err = s.Users.Tags(ctx, u.Name); return err })
			if err != nil {
				return nil, err
			}
			name, tagged := tags[TagKey]
			if !tagged {
				continue
			}
			t, ok := templates[name]
			switch {
			case !ok:
				rep.UnknownTemplate++
				continue
			case t.UserPath != p:
				continue // listed for another template's path: its own path's listing decides
			case !strings.HasPrefix(u.Path, t.UserPath):
				// The listing is by path prefix already; IAM's answer is
				// checked all the same: the grants cover only the path.
				rep.OutOfScope = append(rep.OutOfScope, u.Name)
				continue
			case claimed[u.Name]:
				rep.Conflicts = append(rep.Conflicts, u.Name)
				continue
			}
			in, err := t.InputFor(u, s.Schema)
			if err != nil {
				rep.Failed = append(rep.Failed, u.Name+": "+kind(err))
				continue
			}
			parsed, _ := rotation.ParseInput(in, s.Schema)
			claimed[u.Name] = true
			out = append(out, candidate{user: u, schedule: "sweep." + t.Name, input: in, minAge: parsed.MinKeyAgeDays})
		}
	}
	return out, nil
}

// due says whether c's rotation should start now: its user has an active
// key at least minKeyAgeDays old at fired, and no run holds its lock.
// Validate would skip a younger key; the sweep does not start it at all.
func (s *Sweep) due(ctx context.Context, c candidate, fired time.Time, rep *Report) (bool, error) {
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
		rep.NoActiveKey++ // an issue is asked for by a person, never by a schedule
		return false, nil
	}
	if fired.Sub(oldest) < time.Duration(c.minAge)*24*time.Hour {
		rep.NotDue++
		return false, nil
	}
	var locked bool
	err = s.retry(ctx, func() (err error) { locked, err = s.Locks.Locked(ctx, c.user.Name); return err })
	if err != nil {
		return false, err
	}
	if locked {
		rep.Locked++
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
