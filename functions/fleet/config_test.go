package fleet_test

import (
	"testing"

	"github.com/keyrotator/keyrotator/functions/fleet"
)

// Template.Covers is the one rule the sweep and the audit apply to say
// whether a template rotates a user: its tag, its path, its account. The
// sweep's tests (TestSweepStartsEveryDueRotationOnce,
// TestSweepReachesMemberAccounts) and the audit's
// (TestFleetTemplateUsersAreTheSweeps) hold each caller to it; this
// holds the rule to every edge on its own.
func TestTemplateCovers(t *testing.T) {
	t.Parallel()
	const (
		own = "111122223333" // the stack's own account
		b   = "222233334444" // member accounts
		c   = "333344445555"
		d   = "444455556666" // named by no template
	)
	app := fleet.Template{Name: "app", UserPath: "/fleet/"}                                   // no accounts: the own one
	members := fleet.Template{Name: "members", UserPath: "/fleet/", Accounts: []string{b, c}} // members only
	mixed := fleet.Template{Name: "mixed", UserPath: "/fleet/", Accounts: []string{own, b}}   // the own account by id, and a member
	root := fleet.Template{Name: "root", UserPath: "/"}
	tag := func(v string) map[string]string { return map[string]string{fleet.TagKey: v} }
	cases := []struct {
		name         string
		t            fleet.Template
		own, account string
		path         string
		tags         map[string]string
		want         bool
	}{
		// the path: IAM's prefix, a UserPath ending in "/"
		{"at the path", app, own, "", "/fleet/", tag("app"), true},
		{"under the path", app, own, "", "/fleet/team/a/", tag("app"), true},
		{"a sibling path sharing the prefix's letters", app, own, "", "/fleetx/", tag("app"), false},
		{"the path without its slash", app, own, "", "/fleet", tag("app"), false},
		{"above the path", app, own, "", "/", tag("app"), false},
		{"another path", app, own, "", "/other/fleet/", tag("app"), false},
		{"a path not known", app, own, "", "", tag("app"), false},
		{"root covers /", root, own, "", "/", tag("root"), true},
		{"root covers any path", root, own, "", "/a/b/", tag("root"), true},
		{"root, a path not known", root, own, "", "", tag("root"), false},
		// the tag: keyrotator:rotation names the template, exactly
		{"untagged", app, own, "", "/fleet/", nil, false},
		{"other tags only", app, own, "", "/fleet/", map[string]string{"keyrotator:owner": "app", "app": "app"}, false},
		{"an empty tag", app, own, "", "/fleet/", tag(""), false},
		{"another template's tag", app, own, "", "/fleet/", tag("members"), false},
		{"a tag naming no template", app, own, "", "/fleet/", tag("nope"), false},
		{"the name in another case", app, own, "", "/fleet/", tag("App"), false},
		{"the name with a space", app, own, "", "/fleet/", tag("app "), false},
		// the account: no accounts is the own account's, "" or its id
		{"default: the own account as \"\"", app, own, "", "/fleet/", tag("app"), true},
		{"default: the own account by id", app, own, own, "/fleet/", tag("app"), true},
		{"default: the own account not known, \"\"", app, "", "", "/fleet/", tag("app"), true},
		{"default: a member account", app, own, b, "/fleet/", tag("app"), false},
		{"default: a member account, the own not known", app, "", b, "/fleet/", tag("app"), false},
		// listed accounts: those, and the own one only when listed
		{"listed: first", members, own, b, "/fleet/", tag("members"), true},
		{"listed: second", members, own, c, "/fleet/", tag("members"), true},
		{"listed: an account not listed", members, own, d, "/fleet/", tag("members"), false},
		{"listed: the own account as \"\", not listed", members, own, "", "/fleet/", tag("members"), false},
		{"listed: the own account by id, not listed", members, own, own, "/fleet/", tag("members"), false},
		{"listed: a listed account, outside the path", members, own, b, "/other/", tag("members"), false},
		{"listed: a listed account, another template's tag", members, own, b, "/fleet/", tag("app"), false},
		{"own listed by id: the own account as \"\"", mixed, own, "", "/fleet/", tag("mixed"), true},
		{"own listed by id: the own account by id", mixed, own, own, "/fleet/", tag("mixed"), true},
		{"own listed by id: the member", mixed, own, b, "/fleet/", tag("mixed"), true},
		{"own listed by id: an account not listed", mixed, own, c, "/fleet/", tag("mixed"), false},
		// the audit of an account whose home it does not know passes the
		// account as its own: a template naming none covers it
		{"audit without a home: default", app, b, b, "/fleet/", tag("app"), true},
		{"audit without a home: listed", members, c, c, "/fleet/", tag("members"), true},
		{"audit without a home: not listed", members, d, d, "/fleet/", tag("members"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.t.Covers(tc.own, tc.account, tc.path, tc.tags); got != tc.want {
				t.Errorf("template %s (path %s, accounts %v), own %q: Covers(account %q, path %q, tags %v) = %v, want %v",
					tc.t.Name, tc.t.UserPath, tc.t.Accounts, tc.own, tc.account, tc.path, tc.tags, got, tc.want)
			}
		})
	}
}
