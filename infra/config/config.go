// Package config reads keyrotator's deployment config: one file naming each
// rotation (the IAM user, its targets, the schedule with its time zone, the
// waits, who hears about failures). A bad entry fails synth with a message
// that names the entry and the field; each schedule's input is checked
// against the same JSON Schema as a manual run's.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// Config is the whole file.
type Config struct {
	// Rotations are the users whose keys keyrotator rotates.
	Rotations []Rotation `json:"rotations"`
	// RunbookURL is where docs/runbook.md is published (your fork's page,
	// a wiki): every alert links its section, RunbookURL#<section>. Empty:
	// the alerts name docs/runbook.md.
	RunbookURL string `json:"runbookUrl,omitempty"`
	// StackPrefix namespaces every fixed name of the stack: the state
	// machine (<prefix>), the records (<prefix>/users/*), the connection
	// secrets (<prefix>/connections/*). Two stacks in one account and region
	// need two prefixes. Empty: keyrotator.
	StackPrefix string `json:"prefix,omitempty"`

	// OwnerTopics are the SNS topics a user's keyrotator:owner tag may name
	// for its rotation's alerts to go to too (issue 15): the Notify role may
	// publish to exactly these. A tag naming another topic is shown in the
	// alert, not sent there.
	OwnerTopics []string `json:"ownerTopics,omitempty"`
	// Member is how the tasks reach a member account's users (issue 15):
	// the member role's name and the external id the member stack trusts.
	// Required when a rotation names an account.
	Member *Member `json:"member,omitempty"`
	// Fleet is the sweep (issue 15, fleet scale; fleet.go): one schedule
	// that starts every due rotation of the fleet. Nil: no sweep.
	Fleet *Fleet `json:"fleet,omitempty"`
	// Warnings are what Parse found worth saying but not refusing (the
	// IAM.3 deadline a rotation makes only if its first check passes):
	// synth prints them.
	Warnings []string `json:"-"`
}

// Member is the member accounts' side, as the member stack (KeyRotatorMember)
// is deployed there: its role's name and its ExternalId parameter.
type Member struct {
	// RoleName is the member role's name; "" is keyrotator-member
	// (infra/member.DefaultRoleName).
	RoleName string `json:"roleName,omitempty"`
	// ExternalID is what the tasks pass as sts:ExternalId: the member
	// stack's ExternalId (2-1224 of letters, digits and +=,.@:/-_).
	ExternalID string `json:"externalId"`
}

// DefaultMemberRoleName is the member role's name when the config names
// none: the member stack's (infra/member.DefaultRoleName).
const DefaultMemberRoleName = rotation.DefaultMemberRoleName

var (
	roleNamePattern   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`) // 2-1224 of them: checked apart (Go caps a repeat at 1000)
)

// MemberRoleName is the member role's name.
func (c Config) MemberRoleName() string {
	if c.Member == nil || c.Member.RoleName == "" {
		return DefaultMemberRoleName
	}
	return c.Member.RoleName
}

// MemberAccounts are the accounts the rotations and the fleet templates
// name, each once, sorted: the tasks that reach members (and the sweep)
// may assume exactly these accounts' member roles. (The config cannot
// tell the stack's own account from a member's: leave account out for
// the stack's own users.)
func (c Config) MemberAccounts() []string {
	var out []string
	for _, r := range c.Rotations {
		if a := r.parsed.Account; a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, a := range c.TemplateAccounts() {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// Prefix is the stack prefix, the default when the config names none.
func (c Config) Prefix() string { return c.Names().StateMachine() }

// Names are the stack's fixed names under its prefix.
func (c Config) Names() rotation.Names { return rotation.Names{Prefix: c.StackPrefix} }

// Rotation is one scheduled rotation.
type Rotation struct {
	Name     string `json:"name"`     // unique, names the schedule
	Schedule string `json:"schedule"` // cron(…) or rate(…), EventBridge Scheduler syntax
	TimeZone string `json:"timeZone"` // IANA, e.g. Asia/Tokyo
	// Input is the execution input the schedule sends, exactly as a manual
	// run takes it (user, targets, waitDays, graceDays, minKeyAgeDays…);
	// "trigger": "schedule" is added.
	Input       json.RawMessage `json:"input"`
	AlertEmails []string        `json:"alertEmails"`
	Enabled     *bool           `json:"enabled,omitempty"` // default true

	parsed rotation.Input
}

// Parsed is the rotation's input as Validate will read it, defaults applied.
func (r Rotation) Parsed() rotation.Input { return r.parsed }

// ScheduleInput is what the schedule sends: the input with trigger=schedule
// and, unless the config says otherwise, who asked: the schedule, by name.
func (r Rotation) ScheduleInput() string {
	var m map[string]any
	_ = json.Unmarshal(r.Input, &m)
	m["trigger"] = "schedule"
	if _, ok := m["requestedBy"]; !ok {
		m["requestedBy"] = "schedule " + r.Name
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// ScheduledTimeAttribute is EventBridge Scheduler's context attribute for
// a firing's time, replaced in the target's input when it invokes
// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
const ScheduledTimeAttribute = "<aws.scheduler.scheduled-time>"

// RequestInput is what the schedule sends the request endpoint
// (requestrun): its name, the firing's time and ScheduleInput. requestrun
// signs the run as "schedule <name>" (steps.ScheduleEvent).
func (r Rotation) RequestInput() string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the attribute's <>, as Scheduler looks for it
	_ = enc.Encode(struct {
		Schedule      string          `json:"schedule"`
		ScheduledTime string          `json:"scheduledTime"`
		Input         json.RawMessage `json:"input"`
	}{r.Name, ScheduledTimeAttribute, json.RawMessage(r.ScheduleInput())})
	return strings.TrimSuffix(b.String(), "\n")
}

// IsEnabled says whether the schedule runs.
func (r Rotation) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// LongestWait is the longest the state machine can run for this rotation:
// the approval wait, every verification wait and the grace period, with a
// day to spare.
func (r Rotation) LongestWait() time.Duration {
	in := r.parsed
	d := time.Duration(in.WaitDays*in.VerifyAttempts+in.GraceDays+1) * 24 * time.Hour
	if in.RequireApproval {
		d += time.Duration(in.ApprovalTimeoutHours) * time.Hour
	}
	return d
}

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	cronPattern  = regexp.MustCompile(`^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$`)
	ratePattern  = regexp.MustCompile(`^rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)$`)
	emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// Load reads and checks the config file.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse checks a config document; schedules are held to the IAM.3
// deadline over the year from now.
func Parse(b []byte) (Config, error) { return ParseAt(b, time.Now()) }

// ParseAt is Parse with the year of schedule runs starting at now.
func ParseAt(b []byte, now time.Time) (Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("not a keyrotator config: %w", err)
	}
	if len(c.Rotations) == 0 {
		return Config{}, errors.New("rotations: at least one rotation is needed")
	}
	if c.RunbookURL != "" {
		if u, err := url.Parse(c.RunbookURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" {
			return Config{}, fmt.Errorf("runbookUrl: want an https URL without a #fragment (the alerts add #<section>); got %q", c.RunbookURL)
		}
	}
	if c.StackPrefix != "" {
		if err := rotation.CheckPrefix(c.StackPrefix); err != nil {
			return Config{}, fmt.Errorf("prefix: %w", err)
		}
	}
	for i, topic := range c.OwnerTopics {
		if o, err := audit.ParseOwner(topic); err != nil || o.TopicARN == "" {
			return Config{}, fmt.Errorf("ownerTopics[%d]: want an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>); got %q", i, topic)
		}
		if slices.Contains(c.OwnerTopics[:i], topic) {
			return Config{}, fmt.Errorf("ownerTopics[%d]: %q is listed twice", i, topic)
		}
	}
	if m := c.Member; m != nil {
		if m.RoleName != "" && !roleNamePattern.MatchString(m.RoleName) {
			return Config{}, fmt.Errorf("member.roleName: want an IAM role name (1-64 of letters, digits and +=,.@_-); got %q", m.RoleName)
		}
		if n := len(m.ExternalID); n < 2 || n > 1224 || !externalIDPattern.MatchString(m.ExternalID) {
			return Config{}, fmt.Errorf("member.externalId: want 2-1224 of letters, digits and +=,.@:/-_ (STS's ExternalId, the member stack's ExternalId parameter); got %q", m.ExternalID)
		}
	}
	var names, users []string
	for i := range c.Rotations {
		r := &c.Rotations[i]
		where := fmt.Sprintf("rotations[%d]", i)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		fail := func(field, format string, args ...any) error {
			return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
		}
		switch {
		case !namePattern.MatchString(r.Name):
			return Config{}, fail("name", "want 1–64 letters, digits, - or _, starting with a letter or digit; got %q", r.Name)
		case slices.Contains(names, r.Name):
			return Config{}, fail("name", "%q is used twice", r.Name)
		case r.Schedule == SweepSchedule && c.Fleet == nil:
			return Config{}, fail("schedule", "%q: the sweep starts this rotation, and the config has no \"fleet\"", r.Schedule)
		case r.Schedule != SweepSchedule && !cronPattern.MatchString(r.Schedule) && !ratePattern.MatchString(r.Schedule):
			return Config{}, fail("schedule", "want cron(min hour day-of-month month day-of-week year) or rate(N days|hours|minutes); got %q", r.Schedule)
		}
		if r.Schedule == SweepSchedule && r.TimeZone == "" {
			r.TimeZone = c.Fleet.TimeZone // the sweep's
		}
		if r.TimeZone == "" {
			return Config{}, fail("timeZone", "required (IANA name, e.g. Asia/Tokyo or UTC)")
		}
		if _, err := time.LoadLocation(r.TimeZone); err != nil {
			return Config{}, fail("timeZone", "%q is not an IANA time zone", r.TimeZone)
		}
		if len(r.AlertEmails) == 0 {
			return Config{}, fail("alertEmails", "at least one address: on-call must hear about failures")
		}
		for j, e := range r.AlertEmails {
			if !emailPattern.MatchString(e) {
				return Config{}, fail(fmt.Sprintf("alertEmails[%d]", j), "%q is not an e-mail address", e)
			}
		}
		if len(r.Input) == 0 {
			return Config{}, fail("input", "required: the execution input the schedule sends")
		}
		in, err := inputschema.Parse([]byte(r.ScheduleInputRaw()))
		var inv *rotation.InvalidInput
		if errors.As(err, &inv) {
			field := "input"
			if inv.Field != "" {
				field += "." + inv.Field
			}
			return Config{}, fail(field, "%s", inv.Reason)
		}
		if err != nil {
			return Config{}, fail("input", "%v", err)
		}
		if in.DryRun {
			return Config{}, fail("input.dryRun", "a schedule that never rotates is not a rotation")
		}
		if in.Account != "" && c.Member == nil {
			return Config{}, fail("input.account", "account %s is a member account: the config needs \"member\": {\"externalId\": …} (the member stack's ExternalId) for the tasks to assume its role", in.Account)
		}
		if slices.Contains(users, rotation.UserKey(in.Account, in.User)) {
			return Config{}, fail("input.user", "IAM user %q is rotated by another entry too: one rotation per user", rotation.UserIn(in.Account, in.User))
		}
		for j, t := range in.Targets {
			// The schema cannot know the prefix: a connection is the stack's
			// own, and an application secret never is.
			if t.Connection != "" && !strings.HasPrefix(t.Connection, c.Names().ConnectionPrefix()) {
				return Config{}, fail(fmt.Sprintf("input.targets[%d].connection", j), "%q is not under this stack's %s", t.Connection, c.Names().ConnectionPrefix())
			}
			if t.Type == rotation.TargetSecret && strings.HasPrefix(t.SecretID, c.Prefix()+"/") {
				return Config{}, fail(fmt.Sprintf("input.targets[%d].secretId", j), "%q is under %s/, keyrotator's own secrets", t.SecretID, c.Prefix())
			}
		}
		r.parsed = in
		names, users = append(names, r.Name), append(users, rotation.UserKey(in.Account, in.User))

		// IAM.3 deadline (issue 15): refused when even the earliest
		// deactivation misses it, a warning when only the latest does.
		if r.IsEnabled() {
			checked := *r
			if r.Schedule == SweepSchedule { // held to the sweep's schedule
				checked.Schedule, checked.TimeZone = c.Fleet.Schedule, c.Fleet.TimeZone
			}
			warning, err := checkDeadline(checked, in, now)
			if err != nil {
				return Config{}, fail("schedule", "%v", err)
			}
			if warning != "" {
				c.Warnings = append(c.Warnings, where+": "+warning)
			}
		}
	}
	if err := c.parseFleet(now); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ScheduleInputRaw is ScheduleInput, or the raw input when it is not an
// object (so the schema, not this package, says what is wrong with it).
func (r Rotation) ScheduleInputRaw() string {
	var m map[string]any
	if json.Unmarshal(r.Input, &m) != nil || m == nil {
		return string(r.Input)
	}
	return r.ScheduleInput()
}

// Users are the IAM users of the stack's own account's rotations: what the
// functions may touch with their own roles. A member account's users are
// reached through its member role (MemberAccounts), never granted here.
func (c Config) Users() []string {
	var u []string
	for _, r := range c.Rotations {
		if r.parsed.Account == "" {
			u = append(u, r.parsed.User)
		}
	}
	return u
}

// AlertEmails is every address, once.
func (c Config) AlertEmails() []string {
	var out []string
	for _, r := range c.Rotations {
		for _, e := range r.AlertEmails {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Connections are the target connection secrets the config names, of
// targets of the given types (every type if none is given).
func (c Config) Connections(types ...string) []string {
	var out []string
	for _, in := range c.inputs() {
		for _, t := range in.Targets {
			if len(types) > 0 && !slices.Contains(types, t.Type) {
				continue
			}
			if t.Connection != "" && !slices.Contains(out, t.Connection) {
				out = append(out, t.Connection)
			}
		}
	}
	return out
}

// User is an IAM user the config rotates: its name (what IAM calls take)
// and its path (what its ARN holds).
type User struct{ Name, Path string }

// IAMUsers are the users of the stack's own account's rotations (Users),
// with their paths, by name.
func (c Config) IAMUsers() []User {
	var u []User
	for _, r := range c.Rotations {
		if r.parsed.Account == "" {
			u = append(u, User{Name: r.parsed.User, Path: r.parsed.Path()})
		}
	}
	slices.SortFunc(u, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return u
}

// AppSecret is an application secret of a secret target: its id (name,
// full or partial ARN) and the customer managed key it is encrypted with
// ("" for aws/secretsmanager).
type AppSecret struct{ ID, KMSKeyID string }

// AppSecrets are the application secrets of secret targets that the
// functions reach with their own roles, each once: every own-account
// rotation's, and a member rotation's that names an ARN of another account
// than its member's (the stack's own, or else refused at the Preflight). A
// member rotation's secret named by name or by an ARN of its member
// account is the member's, reached through its member role.
func (c Config) AppSecrets() []AppSecret {
	var out []AppSecret
	for _, in := range c.inputs() {
		for _, t := range in.Targets {
			s := AppSecret{ID: strings.ReplaceAll(t.SecretID, templateUser, "*"), KMSKeyID: t.KMSKeyID} // a template's, for any of its users
			if acct, isARN := rotation.SecretAccount(t.SecretID); in.Account != "" && (!isARN || acct == in.Account) {
				continue
			}
			if t.Type == rotation.TargetSecret && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// LongestRun is the longest any rotation can take: the state machine's timeout.
func (c Config) LongestRun() time.Duration {
	var d time.Duration
	for _, r := range c.Rotations {
		d = max(d, r.LongestWait())
	}
	if c.Fleet != nil {
		for _, t := range c.Fleet.parsed {
			d = max(d, Rotation{parsed: t}.LongestWait())
		}
	}
	return d
}
