package audit

import (
	"testing"

	"github.com/keyrotator/keyrotator/functions/fleet"
)

// sweptBy asks fleet.Template.Covers (the sweep's rule, tested edge by
// edge beside it) with the audit's accounts: each row's account id, and
// Options.Home as the own account, or the row's account when the audit
// knows no home. This holds that wiring, across accounts (the sandbox
// test TestFleetTemplateUsersAreTheSweeps audits the own account only).
func TestSweptByAcrossAccounts(t *testing.T) {
	t.Parallel()
	const home, b, c = "111122223333", "222233334444", "333344445555"
	ts := []Template{
		{Name: "app", Path: "/fleet/", Schedule: "cron(0 9 * * ? *)", Enabled: true},
		{Name: "members", Path: "/fleet/", Accounts: []string{b}, Schedule: "cron(0 9 * * ? *)", Enabled: true},
	}
	tag := func(v string) map[string]string { return map[string]string{fleet.TagKey: v} }
	for _, tc := range []struct {
		name, home, account, tag string
		want                     string // the rotation; "" none
	}{
		{"app in home", home, home, "app", "sweep.app"},
		{"app in a member", home, b, "app", ""},
		{"app, no home: any account", "", c, "app", "sweep.app"},
		{"members in b", home, b, "members", "sweep.members"},
		{"members in c", home, c, "members", ""},
		{"members in home", home, home, "members", ""},
		{"members, no home: b", "", b, "members", "sweep.members"},
		{"members, no home: c", "", c, "members", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := sweptBy(ts, tc.home, tc.account, reportUser{Name: "u", Path: "/fleet/team/"}, tag(tc.tag))
			got := ""
			if m != nil {
				got = m.Rotation
				if m.Account != tc.account || m.User != "u" || !m.Enabled || m.Schedule != ts[0].Schedule {
					t.Errorf("swept as %+v", m)
				}
			}
			if got != tc.want {
				t.Errorf("home %q, account %s, tag %s: swept by %q, want %q", tc.home, tc.account, tc.tag, got, tc.want)
			}
		})
	}
}
