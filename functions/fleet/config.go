// Package fleet is the sweep (issue 15, fleet scale): one scheduled run
// that starts every due rotation of a fleet, staggered within a window,
// instead of one EventBridge schedule per rotation (which stops at
// CloudFormation's 500 resources a stack). Its rotations are the
// configured entries the config gives the sweep (schedule "sweep") and
// the users tagged keyrotator:rotation = <template> under a template's
// path. It serves no state: the Sweep Lambda (functions/cmd/sweep) runs
// it, and each rotation it starts is signed as a schedule's run by
// requestrun's code (steps.RequestRun.Scheduled), so Validate verifies it
// as any other.
package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// TagKey is the IAM user tag that opts a user into a template's rotation:
// its value is the template's name.
const TagKey = "keyrotator:rotation"

// UserPlaceholder in a template input's strings is the user's name (a
// secret target's secretId, "fleet/{user}/aws-key"): each user's key goes
// to a place of its own.
const UserPlaceholder = "{user}"

// MaxWindow is the longest stagger window: the sweep Lambda's timeout is
// Lambda's 900 s, and the listing and the last starts need the rest.
const MaxWindow = 840 * time.Second

// Config is what the sweep reads at each run (the fleet config secret,
// <prefix>/fleet, which infra writes from the deployment config's "fleet").
type Config struct {
	// WindowSeconds spreads the starts of one sweep over this many
	// seconds (each account's starts one to a slot of it: Offsets): at most MaxWindow.
	WindowSeconds int `json:"windowSeconds"`
	// Templates are rotations a user opts into by tag.
	Templates []Template `json:"templates,omitempty"`
	// Rotations are configured entries the sweep starts when due (their
	// config says schedule "sweep": no schedule of their own).
	Rotations []Entry `json:"rotations,omitempty"`
}

// Template is a rotation input for every user tagged with its name under
// its path: the input without "user" (the sweep sets it, and userPath),
// "{user}" in its strings replaced by the user's name.
type Template struct {
	Name string `json:"name"`
	// UserPath is the template's scope: only users whose IAM path starts
	// with it are rotated by it, whatever their tag says (the grants are
	// on user<UserPath>*). "/" and "/x/…/".
	UserPath string `json:"userPath"`
	// Accounts are the member accounts (12-digit ids) whose users under
	// UserPath the template covers, each listed through its member role
	// (the sweep's own session policy, tasks.Sweep); absent: the stack's
	// own account only.
	Accounts []string        `json:"accounts,omitempty"`
	Input    json.RawMessage `json:"input"`
}

// AccountsOrOwn are the accounts t covers: its Accounts, or "" (the
// stack's own) when it names none.
func (t Template) AccountsOrOwn() []string {
	if len(t.Accounts) == 0 {
		return []string{""}
	}
	return t.Accounts
}

// Covers says whether t is the rotation of the user at path in account
// tagged tags, the one rule the sweep and the audit (package audit) both
// apply: the user's keyrotator:rotation tag names t, its IAM path starts
// with t's UserPath (IAM's own prefix, as the grants on
// user<UserPath>* read it: a UserPath ends in "/", so /fleet/ does not
// reach /fleetx/), and its account is one of t's Accounts or, when t
// names none, the stack's own. own is the stack's own account id; an
// account of "" or own (in the user's account or in t's Accounts) is the
// stack's own, so the sweep's "" for the own account and an id naming it
// are one account. An IAM path is never "": "" (a path not known) is
// covered by no template.
func (t Template) Covers(own, account, path string, tags map[string]string) bool {
	if tag, ok := tags[TagKey]; !ok || tag != t.Name || path == "" || !strings.HasPrefix(path, t.UserPath) {
		return false
	}
	isOwn := func(a string) bool { return a == "" || a == own }
	if len(t.Accounts) == 0 {
		return isOwn(account)
	}
	return slices.ContainsFunc(t.Accounts, func(a string) bool { return a == account || isOwn(a) && isOwn(account) })
}

// CheckAccounts says whether accounts may be a template's: 12-digit ids,
// each once.
func CheckAccounts(accounts []string) error {
	for i, a := range accounts {
		if !rotation.IsAccountID(a) {
			return fmt.Errorf("accounts[%d]: %q is not an AWS account id (12 digits)", i, clip(a))
		}
		if slices.Contains(accounts[:i], a) {
			return fmt.Errorf("accounts[%d]: %s is listed twice", i, a)
		}
	}
	return nil
}

// Entry is a configured rotation the sweep starts: its name (the
// config's) and its schedule input.
type Entry struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

var (
	templateName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`) })
	userPath     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/([\x21-\x7E]{0,510}/)?$`) })
)

// CheckTemplateName says whether name may name a template: 1-32 of
// A-Za-z0-9 _ -, starting with a letter or digit (so "sweep.<name>", the
// schedule name its runs are signed as, stays within 64).
func CheckTemplateName(name string) error {
	if !templateName().MatchString(name) {
		return fmt.Errorf("template name %q: want 1-32 of A-Za-z0-9 _ -, starting with a letter or digit", clip(name))
	}
	return nil
}

// Parse reads and checks a fleet config: each template's name, path and
// input (held to the input schema with a stand-in user), each entry's
// input, and no name twice.
func Parse(raw []byte, check rotation.SchemaCheck) (Config, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("fleet config: %s", rotation.PlainJSONError(err))
	}
	if c.WindowSeconds < 0 || time.Duration(c.WindowSeconds)*time.Second > MaxWindow {
		return Config{}, fmt.Errorf("fleet config: windowSeconds %d: want 0 to %d", c.WindowSeconds, int(MaxWindow.Seconds()))
	}
	seen := map[string]bool{}
	for i, t := range c.Templates {
		if err := CheckTemplateName(t.Name); err != nil {
			return Config{}, fmt.Errorf("fleet config: templates[%d]: %w", i, err)
		}
		if seen["t:"+t.Name] {
			return Config{}, fmt.Errorf("fleet config: templates[%d]: %q is used twice", i, t.Name)
		}
		seen["t:"+t.Name] = true
		if !userPath().MatchString(t.UserPath) {
			return Config{}, fmt.Errorf("fleet config: templates[%d] (%s): userPath %q: want / or /path/ (IAM's path rules)", i, t.Name, clip(t.UserPath))
		}
		if err := CheckAccounts(t.Accounts); err != nil {
			return Config{}, fmt.Errorf("fleet config: templates[%d] (%s): %w", i, t.Name, err)
		}
		if _, err := t.InputFor(User{Name: "fleet-check", Path: t.UserPath, Account: t.AccountsOrOwn()[0]}, check); err != nil {
			return Config{}, fmt.Errorf("fleet config: templates[%d] (%s): %w", i, t.Name, err)
		}
	}
	for i, e := range c.Rotations {
		if seen["r:"+e.Name] {
			return Config{}, fmt.Errorf("fleet config: rotations[%d]: %q is used twice", i, e.Name)
		}
		seen["r:"+e.Name] = true
		if _, err := rotation.ParseInput(e.Input, check); err != nil {
			return Config{}, fmt.Errorf("fleet config: rotations[%d] (%s): %w", i, e.Name, err)
		}
	}
	return c, nil
}

// Window is the stagger window.
func (c Config) Window() time.Duration { return time.Duration(c.WindowSeconds) * time.Second }

// InputFor is the template's input for user u: "user" and "userPath" set,
// "account" for a member account's user, every "{user}" in its strings
// replaced by u's name, held to the schema.
func (t Template) InputFor(u User, check rotation.SchemaCheck) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(t.Input, &m); err != nil || m == nil {
		return nil, &rotation.InvalidInput{Field: "input", Reason: "a template's input is a JSON object"}
	}
	if _, ok := m["user"]; ok {
		return nil, &rotation.InvalidInput{Field: "user", Reason: "a template names no user: the sweep sets it from the tagged users"}
	}
	if _, ok := m["account"]; ok {
		return nil, &rotation.InvalidInput{Field: "account", Reason: "a template names no account in its input: its \"accounts\" say which it covers"}
	}
	m = substitute(m, u.Name).(map[string]any)
	m["user"] = u.Name
	if u.Account != "" {
		m["account"] = u.Account
	}
	if u.Path != "" && u.Path != "/" {
		m["userPath"] = u.Path
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("template %s: encode the input: %w", t.Name, err)
	}
	if _, err := rotation.ParseInput(b, check); err != nil {
		return nil, err
	}
	return b, nil
}

// substitute replaces UserPlaceholder in every string of v.
func substitute(v any, user string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, UserPlaceholder, user)
	case map[string]any:
		for k, e := range x {
			x[k] = substitute(e, user)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = substitute(e, user)
		}
		return x
	}
	return v
}

// clip is s for a message: at most 64 bytes of printable ASCII, the rest
// dropped. What a config or a tag holds is shown only this way.
func clip(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}
