package rotation_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
)

// Issue 15: a rotation names its account; both schema checks take 12
// digits and refuse anything else, naming the field.
func TestInputAccount(t *testing.T) {
	t.Parallel()
	base := `{"user":"app","targets":[{"type":"secret","name":"a","secretId":"s"}]%s}`
	for _, c := range []struct {
		extra   string
		want    string // the parsed account; "" with refused
		refused bool
	}{
		{"", "", false},
		{`,"account":"222233334444"`, "222233334444", false},
		{`,"account":"22223333444"`, "", true},   // 11 digits
		{`,"account":"2222333344445"`, "", true}, // 13
		{`,"account":"22223333444a"`, "", true},
		{`,"account":"222233334444/x"`, "", true},
		{`,"account":""`, "", true},
		{`,"account":222233334444`, "", true}, // a number, not a string
	} {
		raw := []byte(strings.Replace(base, "%s", c.extra, 1))
		for name, check := range map[string]rotation.SchemaCheck{"library": inputschema.Check, "subset": subset.Check} {
			in, err := rotation.ParseInput(raw, check)
			if c.refused {
				var ii *rotation.InvalidInput
				if !errors.As(err, &ii) || ii.Field != "account" {
					t.Errorf("%s %s: %v, want InvalidInput on account", name, c.extra, err)
				}
				continue
			}
			if err != nil || in.Account != c.want {
				t.Errorf("%s %s: %q %v", name, c.extra, in.Account, err)
			}
		}
	}
	in := rotation.Input{Account: "111122223333"}
	if got := in.MemberAccount("111122223333"); got != "" {
		t.Errorf("the stack's own account named: member %q, want none", got)
	}
	if got := in.MemberAccount("999988887777"); got != "111122223333" {
		t.Errorf("member %q", got)
	}
	if got := (rotation.Input{}).MemberAccount("999988887777"); got != "" {
		t.Errorf("no account: member %q", got)
	}
}

// A member's user's record and lock carry the account; the stack's own
// users' do not. A user of the own account named like an account id, or
// like <account>-<user>, never shares a record with a member's user.
func TestRecordNamesAcrossAccounts(t *testing.T) {
	t.Parallel()
	n := rotation.Names{Prefix: "kr"}
	for _, c := range []struct{ account, user, record string }{
		{"", "app", "kr/users/app"},
		{"222233334444", "app", "kr/users/222233334444/app"},
		{"", "222233334444", "kr/users/222233334444"},         // an own user named like an account id
		{"", "222233334444-app", "kr/users/222233334444-app"}, // or like a member's key with a dash
		{"222233334444", "222233334444", "kr/users/222233334444/222233334444"},
	} {
		if got := n.RecordOf(c.account, c.user); got != c.record {
			t.Errorf("RecordOf(%q, %q) = %q, want %q", c.account, c.user, got, c.record)
		}
		a, u, ok := n.UserOfRecord(c.record)
		if !ok || a != c.account || u != c.user {
			t.Errorf("UserOfRecord(%q) = %q %q %v", c.record, a, u, ok)
		}
		p := rotation.Plan{Account: c.account, User: c.user}
		if n.Record(p.UserKey()) != c.record {
			t.Errorf("plan %+v: record %q", p, n.Record(p.UserKey()))
		}
	}
	seen := map[string]string{}
	for _, a := range []string{"", "222233334444", "333344445555"} {
		for _, u := range []string{"app", "222233334444", "333344445555", "app.x", "a@b"} {
			r := n.RecordOf(a, u)
			if prev, dup := seen[r]; dup {
				t.Errorf("%q/%q and %s share record %s", a, u, prev, r)
			}
			seen[r] = a + "/" + u
		}
	}
	for _, bad := range []string{"kr/users/", "kr/users/2222/app", "kr/users/222233334444/", "kr/users/222233334444/a/b", "kr/connections/x", "other/users/app"} {
		if a, u, ok := n.UserOfRecord(bad); ok {
			t.Errorf("UserOfRecord(%q) = %q %q, want not a record", bad, a, u)
		}
	}
	if got := (rotation.Plan{Account: "222233334444", User: "app"}).Who(); got != "app (account 222233334444)" {
		t.Errorf("Who %q", got)
	}
}

// A member's execution name leads with the account, stays within Step
// Functions' 80 characters of A-Za-z0-9-_ however long the user, and is
// accepted by CheckExecutionName.
func TestMemberExecutionNames(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	rnd := func() *bytes.Reader { return bytes.NewReader([]byte{1, 2, 3, 4}) }
	for _, c := range []struct{ account, user, want string }{
		{"", "app", "app-20260301T030000Z-01020304"},
		{"222233334444", "app", "222233334444-app-20260301T030000Z-01020304"},
		{"222233334444", "a+b=c,d.e@f", "222233334444-a-b-c-d-e-f-20260301T030000Z-01020304"},
		{"222233334444", strings.Repeat("u", 64), "222233334444-" + strings.Repeat("u", 41) + "-20260301T030000Z-01020304"},
		{"not-an-account", "app", "app-20260301T030000Z-01020304"},
	} {
		got := rotation.NewAccountExecutionName(c.account, c.user, at, rnd())
		if got != c.want {
			t.Errorf("NewAccountExecutionName(%q, %q) = %q, want %q", c.account, c.user, got, c.want)
		}
		if len(got) > 80 {
			t.Errorf("%q is %d characters", got, len(got))
		}
		if err := rotation.CheckExecutionName(got); err != nil {
			t.Errorf("%q: %v", got, err)
		}
	}
	if rotation.NewExecutionName("app", at, rnd()) != rotation.NewAccountExecutionName("", "app", at, rnd()) {
		t.Error("NewExecutionName is not the own account's")
	}
}
