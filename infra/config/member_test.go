package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/infra/config"
)

// memberConfig has a rotation of "app" in the stack's own account and one
// of "app" in each of two member accounts: one user name, three users.
func memberConfig(member string) string {
	rot := func(name, account, secret string) string {
		acct := ""
		if account != "" {
			acct = `"account":"` + account + `",`
		}
		return `{"name":"` + name + `","schedule":"cron(0 3 1 */2 ? *)","timeZone":"UTC","alertEmails":["oncall@example.com"],
  "input":{"user":"app",` + acct + `"targets":[{"type":"secret","name":"s","secretId":"` + secret + `"}],"minKeyAgeDays":50}}`
	}
	return `{` + member + `"rotations":[` + strings.Join([]string{
		rot("own", "", "app/own"),
		rot("b", "222233334444", "app/b"),
		rot("c", "333344445555", "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/in-main"),
		rot("c2", "333344445555", "arn:aws:secretsmanager:us-east-1:333344445555:secret:app/in-c"),
	}, ",") + `]}`
}

// Issue 15: member settings and the accounts rotations name.
func TestMemberConfig(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(strings.Replace(memberConfig(`"member":{"externalId":"kr-ext"},`), `"name":"c2"`, `"name":"c2x"`, 1)))
	if err == nil || !strings.Contains(err.Error(), "one rotation per user") || !strings.Contains(err.Error(), "app (account 333344445555)") {
		t.Fatalf("one user rotated twice in one member account: %v", err)
	}
	one := strings.Replace(memberConfig(`"member":{"externalId":"kr-ext"},`), `"user":"app","account":"333344445555","targets":[{"type":"secret","name":"s","secretId":"arn:aws:secretsmanager:us-east-1:333344445555`, `"user":"app2","account":"333344445555","targets":[{"type":"secret","name":"s","secretId":"arn:aws:secretsmanager:us-east-1:333344445555`, 1)
	c, err = config.Parse([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MemberAccounts(); !slices.Equal(got, []string{"222233334444", "333344445555"}) {
		t.Errorf("member accounts %v", got)
	}
	if c.MemberRoleName() != "keyrotator-member" || c.Member.ExternalID != "kr-ext" {
		t.Errorf("member %+v", c.Member)
	}
	// The keyrotator account's grants: its own user only; the secrets of
	// its own rotation, and the member rotation's that names an ARN of
	// another account than its member's. The member's own secrets are not.
	if got := c.Users(); !slices.Equal(got, []string{"app"}) || len(c.IAMUsers()) != 1 {
		t.Errorf("own users %v %v", got, c.IAMUsers())
	}
	var secrets []string
	for _, s := range c.AppSecrets() {
		secrets = append(secrets, s.ID)
	}
	if !slices.Equal(secrets, []string{"app/own", "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/in-main"}) {
		t.Errorf("own-account app secrets %v", secrets)
	}
	for _, bad := range []struct{ member, want string }{
		{``, "input.account: account 222233334444 is a member account: the config needs \"member\""},
		{`"member":{},`, "member.externalId"},
		{`"member":{"externalId":"x"},`, "member.externalId"},
		{`"member":{"externalId":"has space"},`, "member.externalId"},
		{`"member":{"externalId":"` + strings.Repeat("x", 1225) + `"},`, "member.externalId"},
		{`"member":{"externalId":"kr-ext","roleName":"a/b"},`, "member.roleName"},
		{`"member":{"externalId":"kr-ext","roleName":"` + strings.Repeat("r", 65) + `"},`, "member.roleName"},
		{`"member":{"externalId":"kr-ext","extra":1},`, "unknown field"},
	} {
		if _, err := config.Parse([]byte(memberConfig(bad.member))); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want …%s", bad.member, err, bad.want)
		}
	}
	long := strings.Replace(one, `"member":{"externalId":"kr-ext"}`, `"member":{"externalId":"`+strings.Repeat("x", 1224)+`","roleName":"kr-member"}`, 1)
	if c, err = config.Parse([]byte(long)); err != nil || c.MemberRoleName() != "kr-member" {
		t.Errorf("a 1,224-character external id and a role name: %v", err)
	}
}
