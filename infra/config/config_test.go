package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/infra/config"
)

const good = `{"rotations":[
 {"name":"auth0-ses","schedule":"cron(0 3 1 */2 ? *)","timeZone":"Asia/Tokyo","alertEmails":["oncall@example.com"],
  "input":{"user":"auth0-ses-sender","targets":[{"type":"secret","name":"app","secretId":"app/aws-access-key"}],"waitDays":7,"graceDays":1,"minKeyAgeDays":80}},
 {"name":"funnel","schedule":"rate(30 days)","timeZone":"UTC","alertEmails":["oncall@example.com","iot@example.com"],
  "input":{"user":"soracom-funnel","targets":[{"type":"soracom","name":"funnel","connection":"keyrotator/connections/soracom","credentialPrefix":"aws-funnel"}]}}]}`

func TestParseGood(t *testing.T) {
	c, err := config.Parse([]byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := strings.Join(c.Users(), ","); got != "auth0-ses-sender,soracom-funnel" {
		t.Errorf("users %s", got)
	}
	if got := strings.Join(c.AlertEmails(), ","); got != "oncall@example.com,iot@example.com" {
		t.Errorf("emails %s", got)
	}
	if got := c.Connections(); len(got) != 1 || got[0] != "keyrotator/connections/soracom" {
		t.Errorf("connections %v", got)
	}
	if in := c.Rotations[0].ScheduleInput(); !strings.Contains(in, `"trigger":"schedule"`) || !strings.Contains(in, `"requestedBy":"schedule auth0-ses"`) {
		t.Errorf("schedule input %s", in)
	}
	// funnel: defaults 7 days × 3 attempts + 1 grace + 1 spare = 23 days.
	if d := c.LongestRun(); d != 23*24*time.Hour {
		t.Errorf("longest run %v", d)
	}
}

// Bad config fails with a message naming the entry and the field.
func TestParseNamesTheEntryAndField(t *testing.T) {
	entry := func(fields string) string {
		return `{"rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}},` +
			`{` + fields + `}]}`
	}
	base := `"name":"second","schedule":"rate(30 days)","timeZone":"UTC","alertEmails":["a@b.co"]`
	in := `"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}]}`
	tests := []struct{ name, doc, says string }{
		{"empty", `{}`, "rotations: at least one"},
		{"unknown field", `{"rotation":[]}`, "unknown field"},
		{"bad name", entry(`"name":"no spaces","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],` + in), "rotations[1] (no spaces): name"},
		{"duplicate name", entry(`"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],` + in), "rotations[1] (ok): name"},
		{"bad schedule", entry(`"name":"second","schedule":"every day","timeZone":"UTC","alertEmails":["a@b.co"],` + in), "rotations[1] (second): schedule"},
		{"cron with five fields", entry(`"name":"second","schedule":"cron(0 3 * * *)","timeZone":"UTC","alertEmails":["a@b.co"],` + in), "schedule"},
		{"no time zone", entry(`"name":"second","schedule":"rate(1 day)","alertEmails":["a@b.co"],` + in), "rotations[1] (second): timeZone: required"},
		{"bad time zone", entry(`"name":"second","schedule":"rate(1 day)","timeZone":"Tokyo/Mars","alertEmails":["a@b.co"],` + in), "timeZone"},
		{"no alert emails", entry(`"name":"second","schedule":"rate(1 day)","timeZone":"UTC",` + in), "alertEmails: at least one"},
		{"bad email", entry(`"name":"second","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["oncall"],` + in), "alertEmails[0]"},
		{"no input", entry(base), "rotations[1] (second): input: required"},
		{"input field wrong", entry(base + `,"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}],"waitDays":-3}`), "rotations[1] (second): input.waitDays"},
		{"input target wrong", entry(base + `,"input":{"user":"u2","targets":[{"type":"ftp","name":"a"}]}`), "input.targets[0].type"},
		{"dry-run schedule", entry(base + `,"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}],"dryRun":true}`), "input.dryRun"},
		{"runbook over http", `{"runbookUrl":"http://wiki/runbook","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}}]}`, "runbookUrl: want an https URL"},
		{"runbook with a fragment", `{"runbookUrl":"https://wiki/runbook#x","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}}]}`, "without a #fragment"},
		{"same user twice", entry(base + `,"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}`), "input.user"},
		{"bad prefix", `{"prefix":"1kr","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}}]}`, "prefix"},
		{"prefix with a slash", `{"prefix":"a/b","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"s"}]}}]}`, "prefix"},
		{"connection of another stack", `{"prefix":"kr2","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"auth0","name":"a","connection":"keyrotator/connections/a","sesRegion":"us-east-1"}]}}]}`, "input.targets[0].connection"},
		{"default stack, connection of another", entry(base + `,"input":{"user":"u2","targets":[{"type":"auth0","name":"a","connection":"kr2/connections/a","sesRegion":"us-east-1"}]}`), "not under this stack's keyrotator/connections/"},
		// Issue 14: who may approve is part of the config check.
		{"approval without approvers", entry(base + `,"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}],"requireApproval":true}`), "input.approvers: requireApproval is true but approvers is empty: who may approve?"},
		{"approver is root", entry(base + `,"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}],"requireApproval":true,"approvers":["arn:aws:iam::111122223333:root"]}`), "input.approvers[0]"},
		{"more approvals than approvers", entry(base + `,"input":{"user":"u2","targets":[{"type":"secret","name":"a","secretId":"s"}],"requireApproval":true,"approvers":["arn:aws:iam::111122223333:user/a"],"minApprovals":2}`), "input.minApprovals"},
		{"secret under the stack prefix", `{"prefix":"kr2","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],"input":{"user":"u1","targets":[{"type":"secret","name":"a","secretId":"kr2/users/u1"}]}}]}`, "input.targets[0].secretId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want it to say %q", err, tt.says)
			}
		})
	}
}

// The example the README points people to is itself a valid config.
func TestExampleConfig(t *testing.T) {
	if _, err := config.Load("../../keyrotator.config.example.json"); err != nil {
		t.Fatal(err)
	}
}

// The stack prefix names every fixed name; users keep their paths, secrets
// their keys.
func TestPrefixPathsAndKeys(t *testing.T) {
	c, err := config.Parse([]byte(`{"prefix":"kr2","rotations":[{"name":"ok","schedule":"rate(1 day)","timeZone":"UTC","alertEmails":["a@b.co"],
	 "input":{"user":"u1","userPath":"/svc/","targets":[{"type":"secret","name":"a","secretId":"s","kmsKeyId":"arn:aws:kms:us-east-1:111122223333:alias/k"},{"type":"soracom","name":"f","connection":"kr2/connections/soracom","credentialPrefix":"p"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix() != "kr2" || c.Names().Record("u1") != "kr2/users/u1" || c.Names().StateMachine() != "kr2" {
		t.Errorf("prefix %q, record %q", c.Prefix(), c.Names().Record("u1"))
	}
	if u := c.IAMUsers(); len(u) != 1 || u[0] != (config.User{Name: "u1", Path: "/svc/"}) {
		t.Errorf("users %v", u)
	}
	if s := c.AppSecrets(); len(s) != 1 || s[0] != (config.AppSecret{ID: "s", KMSKeyID: "arn:aws:kms:us-east-1:111122223333:alias/k"}) {
		t.Errorf("app secrets %v", s)
	}
	d, err := config.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d.Prefix() != "keyrotator" || d.IAMUsers()[0].Path != "/" {
		t.Errorf("defaults: prefix %q, path %q", d.Prefix(), d.IAMUsers()[0].Path)
	}
}
