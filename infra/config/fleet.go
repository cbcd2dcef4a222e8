package config

// --- Issue 15: fleet scale, the sweep (sweep helper). ---

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// SweepSchedule as a rotation's schedule: no schedule of its own, the
// sweep starts it when it is due.
const SweepSchedule = "sweep"

// Fleet is the config's "fleet": when the sweep runs, how widely it
// spreads its starts, and the templates users opt into by tag
// (keyrotator:rotation = <template>). Infra keeps the templates, and the
// entries whose schedule is "sweep", in the fleet config secret
// (<prefix>/fleet), which the sweep reads at each run: not in the
// function's environment (4 KB for all its variables), and not one
// schedule each (500 resources a stack).
type Fleet struct {
	Schedule      string           `json:"schedule"` // cron(…) or rate(…), as a rotation's
	TimeZone      string           `json:"timeZone"`
	WindowSeconds int              `json:"windowSeconds"`
	Templates     []fleet.Template `json:"templates,omitempty"`

	parsed []rotation.Input // each template's input for a stand-in user
}

// templateUser is the stand-in user a template's input is checked with;
// the grants put "*" where its "{user}" lands (AppSecrets).
const templateUser = "KEYROTATOR-TEMPLATE-USER"

// parseFleet checks the fleet (its schedule and time zone as a
// rotation's, each template's name, path, accounts and input, and each
// template's schedule against the IAM.3 deadline) and that no template's
// path covers a configured user in one of its accounts (who would be
// claimed twice).
func (c *Config) parseFleet(now time.Time) error {
	f := c.Fleet
	if f == nil {
		return nil
	}
	if !cronPattern.MatchString(f.Schedule) && !ratePattern.MatchString(f.Schedule) {
		return fmt.Errorf("fleet: schedule: want cron(…) or rate(…); got %q", f.Schedule)
	}
	if _, err := time.LoadLocation(f.TimeZone); err != nil || f.TimeZone == "" {
		return fmt.Errorf("fleet: timeZone: %q is not an IANA time zone", f.TimeZone)
	}
	if f.WindowSeconds < 0 || time.Duration(f.WindowSeconds)*time.Second > fleet.MaxWindow {
		return fmt.Errorf("fleet: windowSeconds %d: want 0 to %d (the sweep spends the window inside one Lambda run)", f.WindowSeconds, int(fleet.MaxWindow.Seconds()))
	}
	f.parsed = nil
	for i, t := range f.Templates {
		where := fmt.Sprintf("fleet.templates[%d]", i)
		if err := fleet.CheckTemplateName(t.Name); err != nil {
			return fmt.Errorf("%s: name: %w", where, err)
		}
		if slices.ContainsFunc(f.Templates[:i], func(o fleet.Template) bool { return o.Name == t.Name }) {
			return fmt.Errorf("%s: name %q is used twice", where, t.Name)
		}
		if t.UserPath == "" || t.UserPath == "/" {
			// The grants of every task reach user<userPath>*: "/" would be
			// every user of the account.
			return fmt.Errorf("%s (%s): userPath: a template needs a path of its own (/fleet/ …): its users' grants are user<userPath>*", where, t.Name)
		}
		// Issue 15: a template's member accounts are reached through the
		// member role, as a member rotation's.
		if err := fleet.CheckAccounts(t.Accounts); err != nil {
			return fmt.Errorf("%s (%s): %w", where, t.Name, err)
		}
		if len(t.Accounts) > 0 && c.Member == nil {
			return fmt.Errorf("%s (%s): accounts: %s are member accounts: the config needs \"member\": {\"externalId\": …} (the member stack's ExternalId) for the sweep and the tasks to assume their role", where, t.Name, strings.Join(t.Accounts, ", "))
		}
		// The stand-in user in the template's first account: a member
		// template's input names its account (its secrets by name are the
		// member's, reached through its role: AppSecrets).
		raw, err := t.InputFor(fleet.User{Name: templateUser, Path: t.UserPath, Account: t.AccountsOrOwn()[0]}, inputschema.Check)
		if err != nil {
			return fmt.Errorf("%s (%s): input: %w", where, t.Name, err)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m["trigger"] = "schedule"
		raw, _ = json.Marshal(m)
		in, err := inputschema.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s (%s): input: %w", where, t.Name, err)
		}
		if in.DryRun || in.Issue {
			return fmt.Errorf("%s (%s): input: a template rotates: no dryRun, no issue", where, t.Name)
		}
		for j, tg := range in.Targets {
			if tg.Connection != "" && !strings.HasPrefix(tg.Connection, c.Names().ConnectionPrefix()) {
				return fmt.Errorf("%s (%s): input.targets[%d].connection: %q is not under this stack's %s", where, t.Name, j, tg.Connection, c.Names().ConnectionPrefix())
			}
			if tg.Type == rotation.TargetSecret && strings.HasPrefix(tg.SecretID, c.Prefix()+"/") {
				return fmt.Errorf("%s (%s): input.targets[%d].secretId: %q is under %s/, keyrotator's own secrets", where, t.Name, j, tg.SecretID, c.Prefix())
			}
		}
		for _, r := range c.Rotations {
			if slices.Contains(t.AccountsOrOwn(), r.parsed.Account) && strings.HasPrefix(r.parsed.Path(), t.UserPath) {
				return fmt.Errorf("%s (%s): userPath %s covers %s, which a rotation entry rotates: one rotation per user", where, t.Name, t.UserPath, rotation.UserIn(r.parsed.Account, r.parsed.User))
			}
		}
		warning, err := checkDeadline(Rotation{Name: t.Name, Schedule: f.Schedule, TimeZone: f.TimeZone}, in, now)
		if err != nil {
			return fmt.Errorf("%s (%s): the sweep's schedule: %w", where, t.Name, err)
		}
		if warning != "" {
			c.Warnings = append(c.Warnings, where+": "+warning)
		}
		f.parsed = append(f.parsed, in)
	}
	return nil
}

// inputs are the rotation entries' inputs and the fleet templates' (for
// a stand-in user): every place a task may be sent to.
func (c Config) inputs() []rotation.Input {
	var out []rotation.Input
	for _, r := range c.Rotations {
		out = append(out, r.parsed)
	}
	if c.Fleet != nil {
		out = append(out, c.Fleet.parsed...)
	}
	return out
}

// UserPaths are the paths of the fleet templates that cover the stack's
// own account (they name no accounts): every task may act on
// user<path>* (the users a tag opts in are not known at synth). A member
// template's users are reached through the member role, never granted in
// the keyrotator account.
func (c Config) UserPaths() []string {
	var out []string
	if c.Fleet != nil {
		for _, t := range c.Fleet.Templates {
			if len(t.Accounts) == 0 && !slices.Contains(out, t.UserPath) {
				out = append(out, t.UserPath)
			}
		}
	}
	return out
}

// TemplateAccounts are the member accounts the fleet templates name.
func (c Config) TemplateAccounts() []string {
	var out []string
	if c.Fleet != nil {
		for _, t := range c.Fleet.Templates {
			for _, a := range t.Accounts {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// FleetSecret is what the fleet config secret holds: the window, the
// templates and the entries whose schedule is "sweep" (their schedule
// inputs). What the sweep reads at each run (fleet.Parse).
func (c Config) FleetSecret() string {
	if c.Fleet == nil {
		return ""
	}
	fc := fleet.Config{WindowSeconds: c.Fleet.WindowSeconds, Templates: c.Fleet.Templates}
	for _, r := range c.Rotations {
		if r.Schedule == SweepSchedule && r.IsEnabled() {
			fc.Rotations = append(fc.Rotations, fleet.Entry{Name: r.Name, Input: json.RawMessage(r.ScheduleInput())})
		}
	}
	b, err := json.Marshal(fc)
	if err != nil {
		panic(err) // strings and raw JSON that parsed
	}
	return string(b)
}

// --- end of issue 15 (sweep). ---
