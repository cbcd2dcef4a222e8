package config_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
	"github.com/keyrotator/keyrotator/infra/config"
)

// withFleet is good with a sweep entry and fleet f (a JSON object).
func withFleet(entrySchedule, f string) string {
	return `{"rotations":[
 {"name":"swept","schedule":"` + entrySchedule + `","timeZone":"UTC","alertEmails":["oncall@example.com"],
  "input":{"user":"swept-user","targets":[{"type":"secret","name":"app","secretId":"app/swept"}],"minKeyAgeDays":60}}]` +
		map[bool]string{true: "", false: `, "fleet": ` + f}[f == ""] + `}`
}

const goodFleet = `{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","windowSeconds":600,"templates":[
 {"name":"app-fleet","userPath":"/fleet/","input":{"targets":[{"type":"secret","name":"app","secretId":"fleet/{user}/aws-key"}],"minKeyAgeDays":60}}]}`

func TestFleetConfig(t *testing.T) {
	t.Parallel()
	c, err := config.ParseAt([]byte(withFleet("sweep", goodFleet)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	// The fleet secret is what the sweep reads: it parses as the sweep
	// parses it, holding the template and the entry whose schedule is sweep.
	fc, err := fleet.Parse([]byte(c.FleetSecret()), inputschema.Check)
	if err != nil {
		t.Fatalf("the sweep refuses the fleet secret: %v\n%s", err, c.FleetSecret())
	}
	if fc.WindowSeconds != 600 || len(fc.Templates) != 1 || len(fc.Rotations) != 1 || fc.Rotations[0].Name != "swept" {
		t.Errorf("fleet secret %+v", fc)
	}
	var entry map[string]any
	_ = json.Unmarshal(fc.Rotations[0].Input, &entry)
	if entry["trigger"] != "schedule" || entry["user"] != "swept-user" {
		t.Errorf("the entry's input %v", entry)
	}
	// The grants reach the template's users by path and its targets by
	// pattern: the users a tag opts in are known only at run time.
	if got := c.UserPaths(); len(got) != 1 || got[0] != "/fleet/" {
		t.Errorf("user paths %v", got)
	}
	found := false
	for _, s := range c.AppSecrets() {
		found = found || s.ID == "fleet/*/aws-key"
	}
	if !found {
		t.Errorf("app secrets %v: want the template's fleet/*/aws-key", c.AppSecrets())
	}
}

func TestFleetConfigRefusals(t *testing.T) {
	t.Parallel()
	tmpl := func(name, path, input string) string {
		return `{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","windowSeconds":60,"templates":[{"name":"` + name + `","userPath":"` + path + `","input":` + input + `}]}`
	}
	in := `{"targets":[{"type":"secret","name":"app","secretId":"fleet/{user}/k"}],"minKeyAgeDays":60}`
	tests := map[string]struct{ config, want string }{
		"sweep without a fleet": {withFleet("sweep", ""), `no "fleet"`},
		"a path of /":           {withFleet("cron(0 3 * * ? *)", tmpl("all", "/", in)), "a path of its own"},
		"a bad name":            {withFleet("cron(0 3 * * ? *)", tmpl("a.b", "/fleet/", in)), "template name"},
		"a user in the input":   {withFleet("cron(0 3 * * ? *)", tmpl("a", "/fleet/", `{"user":"x","targets":[]}`)), "names no user"},
		"a dry run":             {withFleet("cron(0 3 * * ? *)", tmpl("a", "/fleet/", `{"targets":[{"type":"secret","name":"app","secretId":"fleet/{user}/k"}],"dryRun":true}`)), "no dryRun"},
		"keyrotator's own":      {withFleet("cron(0 3 * * ? *)", tmpl("a", "/fleet/", `{"targets":[{"type":"secret","name":"app","secretId":"keyrotator/users/{user}"}]}`)), "secretId"},
		"the deadline":          {withFleet("cron(0 3 * * ? *)", `{"schedule":"rate(90 days)","timeZone":"UTC","templates":[{"name":"a","userPath":"/fleet/","input":`+in+`}]}`), "IAM.3"},
		"a window too long":     {withFleet("cron(0 3 * * ? *)", `{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","windowSeconds":900}`), "windowSeconds"},
	}
	for name, tc := range tests {
		_, err := config.ParseAt([]byte(tc.config), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	// A template whose path covers a configured user would claim it twice.
	cover := `{"rotations":[{"name":"x","schedule":"cron(0 3 1 * ? *)","timeZone":"UTC","alertEmails":["o@example.com"],
  "input":{"user":"fleet-user","userPath":"/fleet/team/","targets":[{"type":"secret","name":"app","secretId":"app/x"}],"minKeyAgeDays":20}}],
 "fleet":` + tmpl("a", "/fleet/", in) + `}`
	if _, err := config.Parse([]byte(cover)); err == nil || !strings.Contains(err.Error(), "one rotation per user") {
		t.Errorf("a template covering a configured user: %v", err)
	}
}

// Issue 15, multi-account: a template's accounts are member accounts (the
// config needs "member"; 12 digits each, once); the sweep and the tasks
// may assume their member roles (MemberAccounts); their users and their
// secrets by name are the member's, never granted in the keyrotator
// account (UserPaths, AppSecrets); a template that covers a configured
// member user in its account claims it twice.
func TestFleetMemberAccounts(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fleetWith := func(accounts string) string {
		return `{"schedule":"cron(0 9 * * ? *)","timeZone":"UTC","windowSeconds":60,"templates":[
 {"name":"own","userPath":"/fleet/","input":{"targets":[{"type":"secret","name":"app","secretId":"fleet/{user}/k"}],"minKeyAgeDays":60}},
 {"name":"members","userPath":"/team/","accounts":` + accounts + `,"input":{"targets":[{"type":"secret","name":"app","secretId":"member/{user}/k"}],"minKeyAgeDays":60}}]}`
	}
	member := `{"member":{"externalId":"kr-ext"},`
	good := strings.Replace(withFleet("sweep", fleetWith(`["444455556666","222233334444"]`)), `{`, member, 1)
	c, err := config.ParseAt([]byte(good), at)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MemberAccounts(); !slices.Equal(got, []string{"222233334444", "444455556666"}) {
		t.Errorf("member accounts %v: want the template's", got)
	}
	if got := c.UserPaths(); !slices.Equal(got, []string{"/fleet/"}) {
		t.Errorf("user paths %v: want the own account's template's only", got)
	}
	for _, s := range c.AppSecrets() {
		if strings.HasPrefix(s.ID, "member/") {
			t.Errorf("app secrets %v: a member template's secret by name is the member's", c.AppSecrets())
		}
	}
	fc, err := fleet.Parse([]byte(c.FleetSecret()), inputschema.Check)
	if err != nil || len(fc.Templates) != 2 || !slices.Equal(fc.Templates[1].Accounts, []string{"444455556666", "222233334444"}) {
		t.Errorf("the fleet secret: %v %+v", err, fc)
	}
	for name, tc := range map[string]struct{ config, want string }{
		"no member":                       {withFleet("sweep", fleetWith(`["222233334444"]`)), `needs "member"`},
		"not an id":                       {strings.Replace(withFleet("sweep", fleetWith(`["2222"]`)), `{`, member, 1), "12 digits"},
		"twice":                           {strings.Replace(withFleet("sweep", fleetWith(`["222233334444","222233334444"]`)), `{`, member, 1), "listed twice"},
		"account input":                   {strings.Replace(good, `"input":{"targets":[{"type":"secret","name":"app","secretId":"member/`, `"input":{"account":"222233334444","targets":[{"type":"secret","name":"app","secretId":"member/`, 1), "names no account"},
		"covers a configured member user": {strings.Replace(good, `"input":{"user":"swept-user",`, `"input":{"user":"swept-user","account":"444455556666","userPath":"/team/a/",`, 1), "swept-user (account 444455556666)"},
	} {
		if _, err := config.ParseAt([]byte(tc.config), at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	// The same path in another account than the configured user's is no claim.
	other := strings.Replace(good, `"input":{"user":"swept-user",`, `"input":{"user":"swept-user","account":"777788889999","userPath":"/team/a/",`, 1)
	if _, err := config.ParseAt([]byte(other), at); err != nil {
		t.Errorf("a configured user of another account under the template's path: %v", err)
	}
}
