package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The audit world: three accounts of one sandbox with IAM enforced — the
// keyrotator account A and two members, B and C, each with the member
// stack deployed and a read-only audit role of the organization's — and
// 40 users with keys of every age and status, of every kind of cover, read
// by `keyrotator audit` as a person (through the audit role) and as a
// keyrotator task role (through keyrotator-member).

const (
	// The members are the ids the sandbox's Organizations gives its first
	// two members, so that --organization lists these accounts; D is its
	// third, which the sandbox does not hold: an account without the role.
	acctB = "100000000001"
	acctC = "100000000002"
	acctD = "100000000003"

	auditRole    = "security-audit" // the organization's read-only audit role in every member
	auditExtID   = "kr-audit-5e1"
	memberExtID  = "kr-member-9c2"
	taskRoleName = "KeyRotator-AuditRole1A2B3C-XYZ" // a keyrotator task role, as the main stack names them
	usersTotal   = 40
)

// cover is what a world user's keys are covered by.
type cover int

const (
	coverManaged cover = iota
	coverDisabledRotation
	coverExempt
	coverExpiredExemption
	coverMalformedExemption
	coverNone
	covers
)

// worldAges are the first keys' ages in days. With T0 at noon and keys
// made at midnight, a key of age a is a days and 12 hours old: a whole
// days of age, 89-a whole days left to its 90-day deadline.
var worldAges = []int{3, 45, 60, 75, 76, 89, 90, 120, 400}

// wantRow is a key as the test expects the audit to show it, worked out
// from how the world was made, not from the audit's code.
type wantRow struct {
	account, user, key, status, created string
	age                                 int
	used                                []string // date, service, region; nil: never
	usedFrom                            string
	deadline                            string
	left                                int
	state, flag                         string
	rotation, next                      string
	until, reason                       string
	owner, problem                      string
}

// world is the three accounts: the rows the audit should show for them,
// the config naming the managed users, and how to call as whom.
type world struct {
	sb       *sandboxtest.Sandbox
	a        string // the keyrotator account (the sandbox's own)
	t0       time.Time
	rows     []wantRow
	config   string            // a rotations config: managed users in A, B and C
	notShown map[string]string // account → a user made after the report
	auditor  []func(*config.LoadOptions) error
	task     []func(*config.LoadOptions) error
}

// userAccount spreads the 40 users over the accounts in blocks, so that
// each account has every cover and most ages; names repeat across
// accounts (u00 in A, B and C are three users).
func userAccount(w *world, i int) (acct, name string) {
	switch {
	case i < 14:
		return w.a, fmt.Sprintf("u%02d", i)
	case i < 27:
		return acctB, fmt.Sprintf("u%02d", i-14)
	}
	return acctC, fmt.Sprintf("u%02d", i-27)
}

// Names and tag values a spreadsheet would read as a formula; IAM allows
// them (user names: letters, digits and +=,.@_-; tag values: also spaces
// and :/).
var hostile = map[int]struct{ name, reason, owner string }{
	8:  {reason: "=2+3 cmd"},              // A, exempt
	9:  {name: "=cmd,1+2@x"},              // A, expired exemption
	13: {owner: "-ops@example.com"},       // A
	21: {name: "@sum", owner: "+x@ex.io"}, // B
}

func newAuditWorld(t *testing.T) *world {
	t.Helper()
	sb := sandboxtest.Start(t, fullsandbox.Options{Options: sandbox.Options{Accounts: []string{acctB, acctC}}, EnforceIAM: true})
	w := &world{sb: sb, a: sb.Server.Account(), notShown: map[string]string{}}
	ctx := t.Context()
	allow := func(stmts ...string) []byte {
		return []byte(`{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`)
	}
	// The member stack in B (users under /service/ only for its writes)
	// and C; the audit's grant reaches every user either way.
	for acct, path := range map[string]string{acctB: "/service/", acctC: "/"} {
		if _, err := pipeline.DeployStack(ctx, sb.Sandbox, pipeline.StackOptions{
			Template: filepath.Join("..", pipeline.MemberTemplate), StackName: "keyrotator-member", Account: acct,
			Parameters: map[string]string{"MainAccountId": w.a, "ExternalId": memberExtID, "UserPath": path},
		}); err != nil {
			t.Fatalf("deploy the member stack into %s: %v", acct, err)
		}
	}
	// The organization's audit role in B and C: trusts the auditor of A,
	// with an external id; read-only on IAM, as SecurityAudit is.
	for _, acct := range []string{acctB, acctC} {
		m := sb.IAM.InAccount(acct)
		trust := allow(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + w.a + `:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"` + auditExtID + `"},"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::` + w.a + `:user/auditor"}}}`)
		if _, err := m.CreateRole(auditRole, "/", "the organization's audit role", trust, 3600); err != nil {
			t.Fatal(err)
		}
		if err := m.PutRolePolicy(auditRole, "read-only", allow(`{"Effect":"Allow","Action":["iam:GenerateCredentialReport","iam:Get*","iam:List*"],"Resource":"*"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The person: an IAM user of A who may read A's IAM and assume the
	// audit role anywhere; ListAccounts for --organization.
	a := sb.IAM
	if _, err := a.CreateUser("auditor", "/", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.PutUserPolicy("auditor", "audit", allow(
		`{"Effect":"Allow","Action":["iam:GenerateCredentialReport","iam:GetCredentialReport","organizations:ListAccounts"],"Resource":"*"}`,
		`{"Effect":"Allow","Action":["iam:ListAccessKeys","iam:ListUserTags","iam:GetAccessKeyLastUsed"],"Resource":"arn:aws:iam::`+w.a+`:user/*"}`,
		`{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/`+auditRole+`"}`)); err != nil {
		t.Fatal(err)
	}
	ak, err := a.CreateAccessKey("auditor")
	if err != nil {
		t.Fatal(err)
	}
	w.auditor = loadOptionsAs(sb, ak.AccessKeyID, ak.SecretAccessKey, "")
	// A keyrotator task role: may assume keyrotator-member anywhere.
	if _, err := a.CreateRole(taskRoleName, "/", "task", allow(`{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRolePolicy(taskRoleName, "member", allow(`{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/keyrotator-member"}`)); err != nil {
		t.Fatal(err)
	}
	tc := a.IssueRoleCredentials(taskRoleName, "audit")
	w.task = loadOptionsAs(sb, tc.AccessKeyID, tc.Secret, tc.SessionToken)

	clock := sb.Server.Clock()
	w.t0 = clock.Now().Truncate(24 * time.Hour).Add(36 * time.Hour) // noon tomorrow, ahead of every key made so far
	clock.Set(w.t0)
	buildUsers(t, w)
	return w
}

// loadOptionsAs are SDK loading options that reach sb with a key (as
// sandboxtest's LoadOptions do with the admin's).
func loadOptionsAs(sb *sandboxtest.Sandbox, id, secret, token string) []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithRegion(sb.Server.Region()),
		config.WithBaseEndpoint(sb.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
}

// builder is a session in acct allowed to set key status and make the
// credential report: a role session, whose use IAM does not record as a
// key's last use (the keys the audit lists stay as the world made them).
func builder(t *testing.T, w *world, acct string) *iam.Client {
	t.Helper()
	m := w.sb.IAM.InAccount(acct)
	if _, err := m.CreateRole("world-builder", "/", "test", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.PutRolePolicy("world-builder", "build", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:UpdateAccessKey","iam:GenerateCredentialReport"],"Resource":"*"}]}`)); err != nil {
		t.Fatal(err)
	}
	c := m.IssueRoleCredentials("world-builder", "build")
	return iam.NewFromConfig(w.sb.ConfigAs(t, c.AccessKeyID, c.Secret, c.SessionToken))
}

type rotationEntry struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	TimeZone string `json:"timeZone"`
	Enabled  bool   `json:"enabled"`
	Input    struct {
		User    string `json:"user"`
		Account string `json:"account,omitempty"`
	} `json:"input"`
}

// sheetSafe is a CSV cell as the test expects it: text that begins like a
// formula (= + - @) behind an apostrophe; the two day counts are numbers.
func sheetSafe(column, v string) string {
	if v != "" && column != "age_days" && column != "days_left" && strings.ContainsAny(v[:1], "=+-@") {
		return "'" + v
	}
	return v
}

func buildUsers(t *testing.T, w *world) {
	t.Helper()
	ctx := t.Context()
	t0, day := w.t0, 24*time.Hour
	builders := map[string]*iam.Client{}
	for _, acct := range []string{w.a, acctB, acctC} {
		builders[acct] = builder(t, w, acct)
	}
	var rots []rotationEntry
	next := t0.Truncate(day).Add(day + 3*time.Hour).Format(time.RFC3339) // cron(0 3 * * ? *) UTC after noon
	type second struct{ acct, user string }
	var seconds []second // users that get a key after the report
	for i := range usersTotal {
		acct, name := userAccount(w, i)
		h := hostile[i]
		if h.name != "" {
			name = h.name
		}
		m := w.sb.IAM.InAccount(acct)
		c := cover(i % int(covers))
		age := worldAges[i%len(worldAges)]
		tags := [][2]string{}
		var until, reason, problem, owner string
		switch c {
		case coverExempt:
			until, reason = t0.AddDate(0, 6, 0).Format(time.DateOnly), cmpOr2(h.reason, "vendor migration INC-"+strconv.Itoa(i))
			tags = append(tags, [2]string{audit.TagExempt, until + " " + reason})
		case coverExpiredExemption:
			until, reason = t0.AddDate(0, 0, -1).Format(time.DateOnly), "old migration"
			tags = append(tags, [2]string{audit.TagExempt, until + " " + reason})
		case coverMalformedExemption:
			tags = append(tags, [2]string{audit.TagExempt, "someday maybe"})
			problem = audit.TagExempt + `: want "<until yyyy-mm-dd> <reason>": the first word is not a date yyyy-mm-dd`
		}
		switch {
		case h.owner != "":
			owner = h.owner
			tags = append(tags, [2]string{audit.TagOwner, owner})
		case i%4 == 0:
			owner = "arn:aws:sns:ap-northeast-1:" + acct + ":team-" + name
			tags = append(tags, [2]string{audit.TagOwner, owner})
		case i%4 == 1:
			owner = strings.NewReplacer("=", "", ",", "", "@", "").Replace(name) + "+keys@example.com"
			tags = append(tags, [2]string{audit.TagOwner, owner})
		case i%4 == 2:
			tags = append(tags, [2]string{audit.TagOwner, "nobody"})
			problem = strings.TrimPrefix(problem+"; ", "; ") + audit.TagOwner + ": neither an SNS topic ARN nor an e-mail address"
		}
		path := "/"
		if acct == acctB && i%2 == 1 {
			path = "/service/" // inside the member stack's UserPath; the rest outside it
		}
		if _, err := m.CreateUser(name, path, tags); err != nil {
			t.Fatalf("user %d %s in %s: %v", i, name, acct, err)
		}
		k, err := m.CreateAccessKey(name)
		if err != nil {
			t.Fatal(err)
		}
		created := t0.Add(-time.Duration(age)*day - 12*time.Hour)
		m.Backdate(k.AccessKeyID, created)
		status := "Active"
		if i%5 == 4 {
			status = "Inactive"
			if _, err := builders[acct].UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(name), AccessKeyId: aws.String(k.AccessKeyID), Status: "Inactive"}); err != nil {
				t.Fatal(err)
			}
		}
		var used []string
		if i%3 != 0 {
			at := created.Add(day)
			svc := []string{"s3", "ses", "sts"}[i%3]
			m.MarkUsed(k.AccessKeyID, svc, "ap-northeast-1", at)
			used = []string{at.Format(time.RFC3339), svc, "ap-northeast-1"}
		}
		row := wantRow{account: acct, user: name, key: k.AccessKeyID, status: status, created: created.Format(time.RFC3339), age: age,
			used: used, usedFrom: audit.FromCredentialReport, deadline: created.AddDate(0, 0, 90).Format(time.DateOnly), left: 89 - age,
			until: until, reason: reason, owner: owner, problem: problem}
		switch c {
		case coverManaged, coverDisabledRotation:
			r := rotationEntry{Name: "rot-" + acct + "-" + name, Schedule: "cron(0 3 * * ? *)", TimeZone: "UTC", Enabled: c == coverManaged}
			r.Input.User = name
			switch {
			case acct != w.a:
				r.Input.Account = acct
			case i == 6:
				r.Input.Account = acct // the stack's own, named: the same as none
			}
			rots = append(rots, r)
			row.rotation = r.Name
			if c == coverManaged {
				row.next = next
			} else {
				row.rotation += " (disabled)"
			}
		}
		row.state = map[cover]string{coverManaged: "managed", coverDisabledRotation: "unmanaged", coverExempt: "exempt",
			coverExpiredExemption: "exemption-expired", coverMalformedExemption: "exemption-malformed", coverNone: "unmanaged"}[c]
		row.flag = wantFlag(row, DefaultWarnDays)
		w.rows = append(w.rows, row)
		if i%8 == 3 && status == "Active" {
			seconds = append(seconds, second{acct, name})
		}
	}
	// The keys the world did not make: each account's admin (seeded at the
	// start) and A's auditor; made ten and a half days ago, never used.
	infra := map[string][]string{w.a: {"sandbox-admin", "auditor"}, acctB: {"sandbox-admin"}, acctC: {"sandbox-admin"}}
	for acct, users := range infra {
		m := w.sb.IAM.InAccount(acct)
		for _, u := range users {
			views, ok := m.Keys(u)
			if !ok || len(views) != 1 || views[0].LastUsed != nil {
				t.Fatalf("%s in %s: keys %+v, want one never used", u, acct, views)
			}
			created := t0.Add(-10*day - 12*time.Hour)
			m.Backdate(views[0].AccessKeyID, created)
			w.rows = append(w.rows, wantRow{account: acct, user: u, key: views[0].AccessKeyID, status: "Active", created: created.Format(time.RFC3339), age: 10,
				usedFrom: audit.FromCredentialReport, deadline: created.AddDate(0, 0, 90).Format(time.DateOnly), left: 79, state: "unmanaged"})
		}
	}
	// The reports are made now; what follows is newer than them.
	for acct, c := range builders {
		if _, err := c.GenerateCredentialReport(ctx, &iam.GenerateCredentialReportInput{}); err != nil {
			t.Fatalf("credential report of %s: %v", acct, err)
		}
	}
	for _, s := range seconds {
		m := w.sb.IAM.InAccount(s.acct)
		k, err := m.CreateAccessKey(s.user)
		if err != nil {
			t.Fatal(err)
		}
		views, _ := m.Keys(s.user)
		created := views[len(views)-1].Created.UTC().Truncate(time.Second)
		first := w.rows[slices.IndexFunc(w.rows, func(r wantRow) bool { return r.account == s.acct && r.user == s.user })]
		row := first
		row.key, row.status, row.created, row.age, row.used, row.usedFrom = k.AccessKeyID, "Active", created.Format(time.RFC3339), 0, nil, audit.FromGetAccessKeyLastUsed
		row.deadline, row.left = created.AddDate(0, 0, 90).Format(time.DateOnly), 89
		row.flag = wantFlag(row, DefaultWarnDays)
		w.rows = append(w.rows, row)
	}
	for _, acct := range []string{w.a, acctB, acctC} {
		m := w.sb.IAM.InAccount(acct)
		if _, err := m.CreateUser("late", "/", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateAccessKey("late"); err != nil {
			t.Fatal(err)
		}
		w.notShown[acct] = "late"
	}
	b, _ := json.Marshal(map[string]any{"rotations": rots})
	w.config = filepath.Join(t.TempDir(), "keyrotator.config.json")
	if err := os.WriteFile(w.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(w.rows, func(a, b wantRow) int {
		return cmpOr(strings.Compare(a.account, b.account), strings.Compare(a.user, b.user), strings.Compare(a.created, b.created), strings.Compare(a.key, b.key))
	})
}

func cmpOr2(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpOr(c ...int) int {
	for _, x := range c {
		if x != 0 {
			return x
		}
	}
	return 0
}

// wantFlag is IAM.3's rule as the docs state it: an active key that no
// enabled rotation and no current exemption covers is overdue past its
// deadline, due within warn days of it.
func wantFlag(r wantRow, warn int) string {
	if r.status != "Active" || r.state == "managed" || r.state == "exempt" {
		return ""
	}
	switch {
	case r.left < 0:
		return "overdue"
	case r.left <= warn:
		return "due"
	}
	return ""
}

// wantExit is the exit the rows call for with a deadline of maxAge days
// and a warning of warn: the days left recomputed from each key's
// creation, the worst flag deciding.
func (w *world) wantExit(rows []wantRow, maxAge, warn int) int {
	now := w.t0.Add(time.Minute) // the runs' now: within minutes of T0, hours from any day boundary of a key
	code := ExitOK
	for _, r := range rows {
		created, _ := time.Parse(time.RFC3339, r.created)
		d := created.AddDate(0, 0, maxAge).Sub(now)
		left := int(d / (24 * time.Hour))
		if d < 0 && d%(24*time.Hour) != 0 {
			left--
		}
		r.left = left
		switch wantFlag(r, warn) {
		case "overdue":
			return ExitAuditOverdue
		case "due":
			code = ExitAuditDue
		}
	}
	return code
}

// csvFields is a wanted row as the CSV's fields (audit.Columns).
func (r wantRow) csvFields() []string {
	used := []string{"", "", ""}
	if r.used != nil {
		used = r.used
	}
	f := append(append([]string{r.account, r.user, r.key, r.status, r.created, strconv.Itoa(r.age)}, used...),
		r.usedFrom, r.deadline, strconv.Itoa(r.left), r.state, r.flag, r.rotation, r.next, r.until, r.reason, r.owner, r.problem)
	for i := range f {
		f[i] = sheetSafe(audit.Columns[i], f[i])
	}
	return f
}

func (w *world) in(accounts ...string) []wantRow {
	var out []wantRow
	for _, r := range w.rows {
		if slices.Contains(accounts, r.account) {
			out = append(out, r)
		}
	}
	return out
}

// run runs keyrotator audit as whom (the auditor's or the task's options).
func (w *world) run(t *testing.T, as []func(*config.LoadOptions) error, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunEnv(context.Background(), append([]string{"audit"}, args...), &out, &errOut, Env{AWS: as, Getenv: func(string) string { return "" }})
	for _, s := range w.sb.IAM.Secrets() {
		if strings.Contains(out.String(), s) || strings.Contains(errOut.String(), s) {
			t.Fatal("the audit printed a secret access key (I1)")
		}
	}
	return code, out.String(), errOut.String()
}

// checkCSV asserts every field of every wanted key, and that the CSV holds
// no other key.
func checkCSV(t *testing.T, out string, want []wantRow, notShown map[string]string) {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("--csv: %v\n%s", err, out)
	}
	if !slices.Equal(recs[0], audit.Columns) {
		t.Errorf("CSV header %v, want %v", recs[0], audit.Columns)
	}
	got := map[string][]string{}
	for _, r := range recs[1:] {
		got[r[2]] = r
		if u, ok := notShown[r[0]]; ok && r[1] == u {
			t.Errorf("%s of %s, made after the credential report, is in the audit: the report says which users have keys", u, r[0])
		}
	}
	for _, want := range want {
		g, ok := got[want.key]
		if !ok {
			t.Errorf("CSV: no line for %s/%s's key %s", want.account, want.user, want.key)
			continue
		}
		for i, f := range want.csvFields() {
			if g[i] != f {
				t.Errorf("CSV %s/%s %s: %s = %q, want %q", want.account, want.user, want.key, audit.Columns[i], g[i], f)
			}
		}
	}
	if len(recs)-1 != len(want) {
		t.Errorf("CSV has %d keys, want %d", len(recs)-1, len(want))
	}
}

// auditDoc is --json's document as docs/cli.md describes it.
type auditDoc struct {
	At                   time.Time
	MaxAgeDays, WarnDays int
	Accounts             []struct {
		ID                        string     `json:"id"`
		Name                      string     `json:"name"`
		Error                     string     `json:"error"`
		CredentialReportGenerated *time.Time `json:"credentialReportGenerated"`
		Keys                      int        `json:"keys"`
	} `json:"accounts"`
	Keys []struct {
		Account  string    `json:"account"`
		User     string    `json:"user"`
		KeyID    string    `json:"keyId"`
		Status   string    `json:"status"`
		Created  time.Time `json:"created"`
		AgeDays  int       `json:"ageDays"`
		LastUsed *struct {
			Date    time.Time `json:"date"`
			Service string    `json:"service"`
			Region  string    `json:"region"`
		} `json:"lastUsed"`
		LastUsedFrom string    `json:"lastUsedFrom"`
		Deadline     time.Time `json:"deadline"`
		DaysLeft     int       `json:"daysLeft"`
		State        string    `json:"state"`
		Flag         string    `json:"flag"`
		Rotation     *struct {
			Name     string     `json:"name"`
			Schedule string     `json:"schedule"`
			Enabled  bool       `json:"enabled"`
			NextRun  *time.Time `json:"nextRun"`
		} `json:"rotation"`
		Exemption *struct {
			Until, Reason, Problem string
			Expired                bool
		} `json:"exemption"`
		Owner        string `json:"owner"`
		OwnerProblem string `json:"ownerProblem"`
	} `json:"keys"`
	Summary struct {
		Keys, Due, Overdue int
		ByState            map[string]int `json:"byState"`
		AccountsNotRead    int            `json:"accountsNotRead"`
	} `json:"summary"`
}

func decodeAudit(t *testing.T, out string) auditDoc {
	t.Helper()
	var doc auditDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	return doc
}

// checkJSON asserts every field of every wanted key, exact (no CSV
// apostrophes), and the summary's counts.
func checkJSON(t *testing.T, doc auditDoc, want []wantRow) {
	t.Helper()
	byKey := map[string]int{}
	for i, k := range doc.Keys {
		byKey[k.KeyID] = i
	}
	if len(doc.Keys) != len(want) {
		t.Errorf("JSON has %d keys, want %d", len(doc.Keys), len(want))
	}
	due, overdue, byState := 0, 0, map[string]int{}
	for _, want := range want {
		byState[want.state]++
		switch want.flag {
		case "due":
			due++
		case "overdue":
			overdue++
		}
		i, ok := byKey[want.key]
		if !ok {
			t.Errorf("JSON: no %s", want.key)
			continue
		}
		k := doc.Keys[i]
		var used []string
		if k.LastUsed != nil {
			used = []string{k.LastUsed.Date.Format(time.RFC3339), k.LastUsed.Service, k.LastUsed.Region}
		}
		rot, next := "", ""
		if k.Rotation != nil {
			rot = k.Rotation.Name
			if !k.Rotation.Enabled {
				rot += " (disabled)"
			}
			if k.Rotation.NextRun != nil {
				next = k.Rotation.NextRun.Format(time.RFC3339)
			}
			if k.Rotation.Schedule != "cron(0 3 * * ? *)" {
				t.Errorf("JSON %s: schedule %q", want.key, k.Rotation.Schedule)
			}
		}
		until, reason, problem := "", "", []string{}
		if e := k.Exemption; e != nil {
			until, reason = e.Until, e.Reason
			if e.Problem != "" {
				problem = append(problem, audit.TagExempt+": "+e.Problem)
			}
			if e.Expired != (want.state == "exemption-expired") {
				t.Errorf("JSON %s: expired %v, state %s", want.key, e.Expired, want.state)
			}
		}
		if k.OwnerProblem != "" {
			problem = append(problem, audit.TagOwner+": "+k.OwnerProblem)
		}
		gotRow := wantRow{account: k.Account, user: k.User, key: k.KeyID, status: k.Status, created: k.Created.Format(time.RFC3339), age: k.AgeDays,
			used: used, usedFrom: k.LastUsedFrom, deadline: k.Deadline.Format(time.DateOnly), left: k.DaysLeft, state: k.State, flag: k.Flag,
			rotation: rot, next: next, until: until, reason: reason, owner: k.Owner, problem: strings.Join(problem, "; ")}
		if fmt.Sprintf("%#v", gotRow) != fmt.Sprintf("%#v", want) {
			t.Errorf("JSON %s:\n got  %+v\n want %+v", want.key, gotRow, want)
		}
	}
	s := doc.Summary
	if s.Keys != len(want) || s.Due != due || s.Overdue != overdue || !mapsEqual(s.ByState, byState) {
		t.Errorf("summary %+v, want %d keys, due %d, overdue %d, by state %v", s, len(want), due, overdue, byState)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkText asserts every wanted key's line, column by column as a person
// reads them.
func checkText(t *testing.T, out string, want []wantRow) {
	t.Helper()
	cols := regexp.MustCompile(`\s{2,}`)
	lines := map[string][]string{}
	for l := range strings.SplitSeq(out, "\n") {
		f := cols.Split(strings.TrimSpace(l), -1)
		if len(f) >= 9 && f[0] != "ACCOUNT" {
			lines[f[2]] = f
		}
	}
	for _, want := range want {
		used := "never"
		if want.used != nil {
			used = want.used[0][:10] + " " + want.used[1] + " " + want.used[2]
		}
		if want.usedFrom == audit.FromGetAccessKeyLastUsed {
			used += " *"
		}
		state := want.state
		if want.flag != "" {
			state += " " + strings.ToUpper(want.flag)
		}
		var detail []string
		switch {
		case want.next != "":
			n, _ := time.Parse(time.RFC3339, want.next)
			detail = append(detail, "rotation "+want.rotation+", next "+n.Format("2006-01-02 15:04Z"))
		case want.rotation != "":
			detail = append(detail, "rotation "+want.rotation)
		}
		switch want.state {
		case "exempt":
			detail = append(detail, fmt.Sprintf("exempt until %s (%s)", want.until, want.reason))
		case "exemption-expired":
			detail = append(detail, fmt.Sprintf("exemption expired %s (%s)", want.until, want.reason))
		case "exemption-malformed":
			detail = append(detail, `exempt tag malformed: want "<until yyyy-mm-dd> <reason>": the first word is not a date yyyy-mm-dd`)
		}
		if want.owner != "" {
			detail = append(detail, "owner "+want.owner)
		} else if strings.Contains(want.problem, audit.TagOwner) {
			detail = append(detail, "owner tag malformed: neither an SNS topic ARN nor an e-mail address")
		}
		wantLine := []string{want.account, want.user, want.key, want.status, fmt.Sprintf("%dd", want.age), used, want.deadline, fmt.Sprintf("%dd", want.left), state}
		if d := strings.Join(detail, "; "); d != "" {
			wantLine = append(wantLine, d)
		}
		if g := lines[want.key]; !slices.Equal(g, wantLine) {
			t.Errorf("text line of %s:\n got  %q\n want %q", want.key, g, wantLine)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("the table has %d key lines, want %d", len(lines), len(want))
	}
	for _, s := range []string{"credential report", "GetAccessKeyLastUsed", "ListAccessKeys", "ListUserTags", "IAM.3"} {
		if !strings.Contains(out, s) {
			t.Errorf("text does not say where figures come from (%q)", s)
		}
	}
}

// `keyrotator audit` over the three accounts: the report field by field as
// CSV, JSON and text, as a person through the organization's audit role
// and as a keyrotator task through keyrotator-member; the exit-code rule;
// accounts it cannot reach; --organization.
func TestAuditAccounts(t *testing.T) {
	t.Parallel()
	w := newAuditWorld(t)
	all := []string{w.a, acctB, acctC}
	person := []string{"--config", w.config, "--role-name", auditRole, "--external-id", auditExtID}

	// The world has what the rule needs: keys of each state and flag, in
	// member accounts too, and more than one key of an account's user.
	seen := map[string]bool{}
	for _, r := range w.rows {
		seen[r.state] = true
		seen[r.flag] = true
		if r.account != w.a {
			seen["member "+r.state] = true
		}
	}
	for _, s := range []string{"managed", "exempt", "exemption-expired", "exemption-malformed", "unmanaged", "due", "overdue", "member managed", "member exempt"} {
		if !seen[s] {
			t.Fatalf("the world has no %s key", s)
		}
	}
	if n := len(w.rows) - 4; n < usersTotal+3 {
		t.Fatalf("%d world keys, want the 40 users' and some second keys", n)
	}

	t.Run("CSV: every field of every key of the three accounts", func(t *testing.T) {
		code, out, errOut := w.run(t, w.auditor, append(person, "--csv")...)
		if code != ExitAuditOverdue {
			t.Errorf("exit %d, want %d (overdue keys); stderr %s", code, ExitAuditOverdue, errOut)
		}
		checkCSV(t, out, w.in(all...), w.notShown)
	})

	t.Run("JSON: the same, exact, with each account's report", func(t *testing.T) {
		code, out, _ := w.run(t, w.auditor, append(person, "--json")...)
		doc := decodeAudit(t, out)
		if code != ExitAuditOverdue {
			t.Errorf("exit %d, want %d", code, ExitAuditOverdue)
		}
		if len(doc.Accounts) != 3 || doc.MaxAgeDays != 90 || doc.WarnDays != DefaultWarnDays || doc.Summary.AccountsNotRead != 0 {
			t.Fatalf("accounts %+v, max %d, warn %d, not read %d", doc.Accounts, doc.MaxAgeDays, doc.WarnDays, doc.Summary.AccountsNotRead)
		}
		for i, acct := range all {
			a := doc.Accounts[i]
			if a.ID != acct || a.Error != "" || a.CredentialReportGenerated == nil || a.Keys != len(w.in(acct)) || a.CredentialReportGenerated.Sub(w.t0) > time.Minute {
				t.Errorf("account %d: %+v, want %s with %d keys and the report made at T0", i, a, acct, len(w.in(acct)))
			}
		}
		checkJSON(t, doc, w.in(all...))
	})

	t.Run("text: a line per key, its columns as a person reads them", func(t *testing.T) {
		code, out, _ := w.run(t, w.auditor, person...)
		if code != ExitAuditOverdue {
			t.Errorf("exit %d", code)
		}
		checkText(t, out, w.in(all...))
	})

	t.Run("a keyrotator task through keyrotator-member reads the members the same", func(t *testing.T) {
		code, out, errOut := w.run(t, w.task, "--config", w.config, "--accounts", acctB+","+acctC, "--role-name", "keyrotator-member", "--external-id", memberExtID, "--csv")
		if code != w.wantExit(w.in(acctB, acctC), 90, DefaultWarnDays) {
			t.Errorf("exit %d; stderr %s", code, errOut)
		}
		checkCSV(t, out, w.in(acctB, acctC), w.notShown)
	})

	t.Run("the exit-code rule", func(t *testing.T) {
		codes := map[int]bool{}
		for _, tc := range []struct{ maxAge, warn int }{{90, 14}, {90, 0}, {450, 14}, {450, 60}, {600, 14}, {1000, 14}} {
			args := append(slices.Clone(person), "--max-age", strconv.Itoa(tc.maxAge), "--warn-days", strconv.Itoa(tc.warn))
			want := w.wantExit(w.in(all...), tc.maxAge, tc.warn)
			codes[want] = true
			if code, out, errOut := w.run(t, w.auditor, args...); code != want {
				t.Errorf("--max-age %d --warn-days %d: exit %d, want %d\n%s%s", tc.maxAge, tc.warn, code, want, out, errOut)
			}
		}
		if !codes[ExitOK] || !codes[ExitAuditDue] || !codes[ExitAuditOverdue] {
			t.Errorf("the cases cover exits %v, want 0, 6 and 7", codes)
		}
	})

	t.Run("an account it cannot reach: in the report with its error, exit 1, the others read", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			args    []string
			failed  []string
			because []string
		}{
			{"no role in the account", append(slices.Clone(person), "--accounts", strings.Join(append(slices.Clone(all), acctD), ",")),
				[]string{acctD}, []string{"cannot assume role arn:aws:iam::" + acctD + ":role/" + auditRole, "AccessDenied", "the external id is wrong"}},
			{"a wrong external id", []string{"--config", w.config, "--role-name", auditRole, "--external-id", "kr-wrong"},
				[]string{acctB, acctC}, []string{"cannot assume role arn:aws:iam::", ":role/" + auditRole, "AccessDenied"}},
			{"no --role-name", []string{"--config", w.config},
				[]string{acctB, acctC}, []string{"not reachable", "--role-name"}},
			// Nothing read is near its deadline: the unread account alone says 1, not 0.
			{"all else fine", append(slices.Clone(person), "--max-age", "1000", "--accounts", w.a+","+acctD),
				[]string{acctD}, []string{"cannot assume role"}},
		} {
			code, out, errOut := w.run(t, w.auditor, append(tc.args, "--json")...)
			if code != ExitError {
				t.Errorf("%s: exit %d, want %d", tc.name, code, ExitError)
			}
			doc := decodeAudit(t, out)
			read := []string{}
			for _, a := range doc.Accounts {
				switch {
				case slices.Contains(tc.failed, a.ID):
					for _, s := range append(tc.because, "account "+a.ID) {
						if !strings.Contains(a.Error, s) {
							t.Errorf("%s: %s's error %q does not say %q", tc.name, a.ID, a.Error, s)
						}
					}
				case a.Error != "":
					t.Errorf("%s: %s not read: %s", tc.name, a.ID, a.Error)
				default:
					read = append(read, a.ID)
				}
			}
			if doc.Summary.AccountsNotRead != len(tc.failed) || errOut != "" {
				t.Errorf("%s: not read %d, want %d; stderr %q (JSON says it in the document)", tc.name, doc.Summary.AccountsNotRead, len(tc.failed), errOut)
			}
			if len(doc.Keys) != len(w.in(read...)) {
				t.Errorf("%s: %d keys of %v, want %d", tc.name, len(doc.Keys), read, len(w.in(read...)))
			}
			// As CSV, the unread account is said on stderr: the CSV has no place for it.
			code, out, errOut = w.run(t, w.auditor, append(tc.args, "--csv")...)
			if code != ExitError || !strings.Contains(errOut, "not read") || !strings.Contains(errOut, tc.failed[0]) {
				t.Errorf("%s --csv: exit %d, stderr %q", tc.name, code, errOut)
			}
			if slices.Contains(tc.args, "--max-age") {
				if n := strings.Count(out, "\n") - 1; n != len(w.in(read...)) {
					t.Errorf("%s --csv: %d keys, want %d", tc.name, n, len(w.in(read...)))
				}
				continue
			}
			checkCSV(t, out, w.in(read...), w.notShown)
		}
	})

	t.Run("--organization: every account ListAccounts lists", func(t *testing.T) {
		for _, n := range []string{"payments", "iot", "closed-project"} {
			if code := w.sb.AdminCall(t, "POST", "/organizations/accounts", map[string]string{"name": n, "email": n + "@example.com"}, nil); code != 201 {
				t.Fatalf("add account %s: %d", n, code)
			}
		}
		code, out, _ := w.run(t, w.auditor, append(person, "--organization", "--json")...)
		doc := decodeAudit(t, out)
		if code != ExitError {
			t.Errorf("exit %d, want %d: %s has no audit role", code, ExitError, acctD)
		}
		var ids []string
		for _, a := range doc.Accounts {
			ids = append(ids, a.ID)
			if (a.Error != "") != (a.ID == acctD) {
				t.Errorf("account %s: error %q", a.ID, a.Error)
			}
		}
		if !slices.Equal(ids, append(slices.Clone(all), acctD)) || doc.Accounts[1].Name != "payments" {
			t.Errorf("accounts %v (%+v), want %v and %s", ids, doc.Accounts, all, acctD)
		}
		checkJSON(t, doc, w.in(all...))
	})

	t.Run("bad usage", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(`{"rotations":[{"name":"x","schedule":"rate(1 day)","input":{"user":"u","account":"1234"}}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"--warn-days", "100"},
			{"--csv", "--json"},
			{"--organization", "--accounts", acctB},
			{"--accounts", "12345"},
			{"--accounts", acctB + ":role/x"},
			{"--role-name", "x:y"},
			{"--role-name", "a/../b c"},
			{"--external-id", auditExtID},
			{"--role-name", auditRole, "--external-id", "x"},
			{"--stack-account", "abc"},
			{"--config", bad},
		} {
			if code, out, errOut := w.run(t, w.auditor, args...); code != ExitUsage {
				t.Errorf("%v: exit %d, want %d\n%s%s", args, code, ExitUsage, out, errOut)
			}
		}
		// --account, the flag's first name, is --accounts.
		if code, out, _ := w.run(t, w.auditor, "--config", w.config, "--account", w.a, "--csv"); code != ExitAuditOverdue {
			t.Errorf("--account: exit %d", code)
		} else {
			checkCSV(t, out, w.in(w.a), w.notShown)
		}
	})
}
