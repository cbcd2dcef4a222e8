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

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The audit world: users of every kind of cover, keys of every age and
// status, read by `keyrotator audit` from the sandbox (no stack deployed).

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

// world is one account's users: made in sb, and the rows the audit should
// show for them. Accounts are a parameter: today each sandbox is one
// account; with multi-account each account gets its own call.
type world struct {
	t0       time.Time
	rows     []wantRow
	config   string   // a rotations config naming the managed users
	notShown []string // users made after the credential report
}

func buildWorld(t *testing.T, sb *sandboxtest.Sandbox, account string, users int) world {
	t.Helper()
	clock := sb.Server.Clock()
	t0 := clock.Now().Truncate(24 * time.Hour).Add(36 * time.Hour) // noon tomorrow, ahead of the admin's key
	clock.Set(t0)
	day := 24 * time.Hour
	w := world{t0: t0}
	type rot struct {
		Name     string `json:"name"`
		Schedule string `json:"schedule"`
		TimeZone string `json:"timeZone"`
		Enabled  bool   `json:"enabled"`
		Input    struct {
			User string `json:"user"`
		} `json:"input"`
	}
	var rots []rot
	next := t0.Truncate(day).Add(day + 3*time.Hour).Format(time.RFC3339) // cron(0 3 * * ? *) UTC after noon
	var second []string                                                  // users that get a key after the report
	for i := range users {
		name := fmt.Sprintf("u%02d", i)
		c := cover(i % int(covers))
		age := worldAges[i%len(worldAges)]
		tags := [][2]string{}
		var until, reason, problem, owner string
		switch c {
		case coverExempt:
			until, reason = t0.AddDate(0, 6, 0).Format(time.DateOnly), "vendor migration INC-"+strconv.Itoa(i)
			tags = append(tags, [2]string{audit.TagExempt, until + " " + reason})
		case coverExpiredExemption:
			until, reason = t0.AddDate(0, 0, -1).Format(time.DateOnly), "old migration"
			tags = append(tags, [2]string{audit.TagExempt, until + " " + reason})
		case coverMalformedExemption:
			tags = append(tags, [2]string{audit.TagExempt, "someday maybe"})
			problem = audit.TagExempt + `: want "<until yyyy-mm-dd> <reason>": the first word is not a date yyyy-mm-dd`
		}
		switch i % 4 {
		case 0:
			owner = "arn:aws:sns:ap-northeast-1:" + account + ":team-" + name
			tags = append(tags, [2]string{audit.TagOwner, owner})
		case 1:
			owner = name + "+keys@example.com"
			tags = append(tags, [2]string{audit.TagOwner, owner})
		case 2:
			tags = append(tags, [2]string{audit.TagOwner, "nobody"})
			problem = strings.TrimPrefix(problem+"; ", "; ") + audit.TagOwner + ": neither an SNS topic ARN nor an e-mail address"
		}
		if _, err := sb.IAM.CreateUser(name, "/", tags); err != nil {
			t.Fatal(err)
		}
		k, err := sb.IAM.CreateAccessKey(name)
		if err != nil {
			t.Fatal(err)
		}
		created := t0.Add(-time.Duration(age)*day - 12*time.Hour)
		sb.IAM.Backdate(k.AccessKeyID, created)
		status := "Active"
		if i%5 == 4 {
			status = "Inactive"
			if err := iamSetStatus(t, sb, name, k.AccessKeyID, status); err != nil {
				t.Fatal(err)
			}
		}
		var used []string
		if i%3 != 0 {
			at := created.Add(day)
			svc := []string{"s3", "ses", "sts"}[i%3]
			sb.IAM.MarkUsed(k.AccessKeyID, svc, "ap-northeast-1", at)
			used = []string{at.Format(time.RFC3339), svc, "ap-northeast-1"}
		}
		row := wantRow{account: account, user: name, key: k.AccessKeyID, status: status, created: created.Format(time.RFC3339), age: age,
			used: used, usedFrom: audit.FromCredentialReport, deadline: created.AddDate(0, 0, 90).Format(time.DateOnly), left: 89 - age,
			until: until, reason: reason, owner: owner, problem: problem}
		switch c {
		case coverManaged, coverDisabledRotation:
			r := rot{Name: "rot-" + name, Schedule: "cron(0 3 * * ? *)", TimeZone: "UTC", Enabled: c == coverManaged}
			r.Input.User = name
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
		if status == "Active" && c != coverManaged && c != coverExempt {
			switch {
			case row.left < 0:
				row.flag = "overdue"
			case row.left <= DefaultWarnDays:
				row.flag = "due"
			}
		}
		w.rows = append(w.rows, row)
		if i%8 == 3 && status == "Active" {
			second = append(second, name)
		}
	}
	// The report is made now; what follows is newer than it.
	if _, err := iam.NewFromConfig(sb.Config(t)).GenerateCredentialReport(context.Background(), &iam.GenerateCredentialReportInput{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range second {
		k, err := sb.IAM.CreateAccessKey(name)
		if err != nil {
			t.Fatal(err)
		}
		views, _ := sb.IAM.Keys(name)
		created := views[len(views)-1].Created.UTC().Truncate(time.Second)
		first := w.rows[slices.IndexFunc(w.rows, func(r wantRow) bool { return r.user == name })]
		row := first
		row.key, row.status, row.created, row.age, row.used, row.usedFrom = k.AccessKeyID, "Active", created.Format(time.RFC3339), 0, nil, audit.FromGetAccessKeyLastUsed
		row.deadline, row.left, row.flag = created.AddDate(0, 0, 90).Format(time.DateOnly), 89, ""
		if row.next == "" && row.rotation == "" && row.state != "exempt" && 89 <= DefaultWarnDays {
			row.flag = "due"
		}
		w.rows = append(w.rows, row)
	}
	if _, err := sb.IAM.CreateUser("late", "/", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.IAM.CreateAccessKey("late"); err != nil {
		t.Fatal(err)
	}
	w.notShown = []string{"late"}
	b, _ := json.Marshal(map[string]any{"rotations": rots})
	w.config = filepath.Join(t.TempDir(), "keyrotator.config.json")
	if err := os.WriteFile(w.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(w.rows, func(a, b wantRow) int {
		return cmpOr(strings.Compare(a.user, b.user), strings.Compare(a.created, b.created), strings.Compare(a.key, b.key))
	})
	return w
}

func cmpOr(c ...int) int {
	for _, x := range c {
		if x != 0 {
			return x
		}
	}
	return 0
}

func iamSetStatus(t *testing.T, sb *sandboxtest.Sandbox, user, key, status string) error {
	t.Helper()
	_, err := iam.NewFromConfig(sb.Config(t)).UpdateAccessKey(context.Background(), &iam.UpdateAccessKeyInput{UserName: &user, AccessKeyId: &key, Status: "Inactive"})
	return err
}

// csvFields is a wanted row as the CSV's fields (audit.Columns).
func (r wantRow) csvFields() []string {
	used := []string{"", "", ""}
	if r.used != nil {
		used = r.used
	}
	return append(append([]string{r.account, r.user, r.key, r.status, r.created, strconv.Itoa(r.age)}, used...),
		r.usedFrom, r.deadline, strconv.Itoa(r.left), r.state, r.flag, r.rotation, r.next, r.until, r.reason, r.owner, r.problem)
}

func runAudit(t *testing.T, sb *sandboxtest.Sandbox, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunEnv(context.Background(), append([]string{"audit"}, args...), &out, &errOut, Env{AWS: sb.LoadOptions(), Getenv: func(string) string { return "" }})
	for _, s := range sb.IAM.Secrets() {
		if strings.Contains(out.String(), s) || strings.Contains(errOut.String(), s) {
			t.Fatal("the audit printed a secret access key (I1)")
		}
	}
	return code, out.String(), errOut.String()
}

func TestAuditWorld(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	account := sb.Server.Account()
	w := buildWorld(t, sb, account, 40)

	// CSV: every field of every key.
	code, out, errOut := runAudit(t, sb, "--config", w.config, "--csv")
	if code != ExitAuditOverdue {
		t.Errorf("--csv exit %d, want %d (overdue keys); stderr %s", code, ExitAuditOverdue, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("--csv: %v\n%s", err, out)
	}
	if !slices.Equal(recs[0], audit.Columns) {
		t.Errorf("CSV header %v, want %v", recs[0], audit.Columns)
	}
	got := map[string][]string{}
	users := map[string]bool{}
	for _, r := range recs[1:] {
		got[r[2]] = r
		users[r[1]] = true
	}
	for _, want := range w.rows {
		g, ok := got[want.key]
		if !ok {
			t.Errorf("CSV: no line for %s's key %s", want.user, want.key)
			continue
		}
		for i, f := range want.csvFields() {
			if g[i] != f {
				t.Errorf("CSV %s %s: %s = %q, want %q", want.user, want.key, audit.Columns[i], g[i], f)
			}
		}
	}
	if len(recs)-1 != len(w.rows)+1 || !users["sandbox-admin"] { // + the sandbox's admin, made at its start
		t.Errorf("CSV has %d keys, want the world's %d and the admin's", len(recs)-1, len(w.rows))
	}
	for _, u := range w.notShown {
		if users[u] {
			t.Errorf("%s, made after the credential report, is in the audit: the report says which users have keys", u)
		}
	}

	// JSON: the same, as documented in docs/cli.md.
	code, out, _ = runAudit(t, sb, "--config", w.config, "--json")
	var doc struct {
		At                   time.Time
		MaxAgeDays, WarnDays int
		Accounts             []struct {
			ID                        string     `json:"id"`
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
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || code != ExitAuditOverdue {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if len(doc.Accounts) != 1 || doc.Accounts[0].ID != account || doc.Accounts[0].CredentialReportGenerated == nil || doc.MaxAgeDays != 90 || doc.WarnDays != DefaultWarnDays {
		t.Errorf("--json: accounts %+v, max %d, warn %d", doc.Accounts, doc.MaxAgeDays, doc.WarnDays)
	}
	byKey := map[string]int{}
	for i, k := range doc.Keys {
		byKey[k.KeyID] = i
	}
	wantDue, wantOverdue := 0, 0
	for _, want := range w.rows {
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
		if fmt.Sprint(gotRow) != fmt.Sprint(want) {
			t.Errorf("JSON %s:\n got  %+v\n want %+v", want.key, gotRow, want)
		}
		switch want.flag {
		case "due":
			wantDue++
		case "overdue":
			wantOverdue++
		}
	}
	if doc.Summary.Due != wantDue || doc.Summary.Overdue != wantOverdue || wantDue == 0 || wantOverdue == 0 {
		t.Errorf("summary due %d overdue %d, want %d and %d (both > 0)", doc.Summary.Due, doc.Summary.Overdue, wantDue, wantOverdue)
	}

	// Text: a line per key, its columns as a person reads them.
	code, out, _ = runAudit(t, sb, "--config", w.config)
	if code != ExitAuditOverdue {
		t.Errorf("text exit %d", code)
	}
	cols := regexp.MustCompile(`\s{2,}`)
	lines := map[string][]string{}
	for l := range strings.SplitSeq(out, "\n") {
		f := cols.Split(strings.TrimSpace(l), -1)
		if len(f) >= 9 {
			lines[f[2]] = f
		}
	}
	for _, want := range w.rows {
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
	for _, s := range []string{"credential report", "GetAccessKeyLastUsed", "ListAccessKeys", "ListUserTags", "IAM.3"} {
		if !strings.Contains(out, s) {
			t.Errorf("text does not say where figures come from (%q)", s)
		}
	}
}

// The exit-code rule: 6 when an uncovered active key is overdue, else 5
// when one is within --warn-days, else 0; an account it cannot read, 1.
func TestAuditExitCodes(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	// 16 users: the oldest uncovered active key is u07's, 120 days (a
	// disabled rotation); u08's 400-day key is exempt.
	w := buildWorld(t, sb, sb.Server.Account(), 16)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"overdue keys", nil, ExitAuditOverdue},
		// With a 130-day limit the 120-day key has 9 days left: due, nothing overdue.
		{"due within the warning", []string{"--max-age", "130"}, ExitAuditDue},
		{"due but warned less", []string{"--max-age", "130", "--warn-days", "5"}, ExitOK},
		{"due on the warning's last day", []string{"--max-age", "130", "--warn-days", "9"}, ExitAuditDue},
		{"nothing near", []string{"--max-age", "1000"}, ExitOK},
		{"another account", []string{"--account", "444455556666"}, ExitError},
		{"warn beyond max", []string{"--warn-days", "100"}, ExitUsage},
		{"csv and json", []string{"--csv", "--json"}, ExitUsage},
	} {
		code, out, errOut := runAudit(t, sb, append([]string{"--config", w.config}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errOut)
		}
	}
}

// --organization audits every account organizations:ListAccounts lists:
// the caller's own is read; a member it cannot reach yet (no member role
// before multi-account rotation) is reported as not read, and exits 1.
func TestAuditOrganization(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	w := buildWorld(t, sb, sb.Server.Account(), 6)
	var members []string
	for _, n := range []string{"payments", "iot"} {
		var out struct{ ID string }
		if code := sb.AdminCall(t, "POST", "/organizations/accounts", map[string]string{"name": n, "email": n + "@example.com"}, &out); code != 201 {
			t.Fatalf("add account %s: %d", n, code)
		}
		members = append(members, out.ID)
	}
	code, out, _ := runAudit(t, sb, "--config", w.config, "--organization", "--json")
	var doc struct {
		Accounts []struct {
			ID, Name, Error string
			Keys            int
		} `json:"accounts"`
		Summary struct {
			AccountsNotRead int `json:"accountsNotRead"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitError {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if len(doc.Accounts) != 3 || doc.Accounts[0].ID != sb.Server.Account() || doc.Accounts[0].Error != "" || doc.Accounts[0].Keys != len(w.rows)+1 || doc.Summary.AccountsNotRead != 2 {
		t.Fatalf("accounts %+v, not read %d", doc.Accounts, doc.Summary.AccountsNotRead)
	}
	for i, id := range members {
		if a := doc.Accounts[i+1]; a.ID != id || !strings.Contains(a.Error, "not reachable") {
			t.Errorf("member %s: %+v, want not reachable", id, a)
		}
	}
	if code, _, _ := runAudit(t, sb, "--organization", "--account", "111122223333"); code != ExitUsage {
		t.Errorf("--organization with --account: exit %d, want %d", code, ExitUsage)
	}
}
