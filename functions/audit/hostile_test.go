package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// fakeKey is one key of a fakeIAM user.
type fakeKey struct {
	id      string
	active  bool
	created time.Time
}

// fakeIAM is one account's IAM as a hostile (or broken) answer could
// show it: whatever names and tags the test puts in, IAM's rules or not.
type fakeIAM struct {
	users map[string][]fakeKey
	tags  map[string]map[string]string
}

func (f fakeIAM) GenerateCredentialReport(context.Context, *iam.GenerateCredentialReportInput, ...func(*iam.Options)) (*iam.GenerateCredentialReportOutput, error) {
	return &iam.GenerateCredentialReportOutput{State: types.ReportStateTypeComplete}, nil
}

func (f fakeIAM) GetCredentialReport(context.Context, *iam.GetCredentialReportInput, ...func(*iam.Options)) (*iam.GetCredentialReportOutput, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"user"}
	for _, n := range []string{"1", "2"} {
		for _, c := range []string{"active", "last_rotated", "last_used_date", "last_used_region", "last_used_service"} {
			head = append(head, "access_key_"+n+"_"+c)
		}
	}
	_ = w.Write(head)
	for name, keys := range f.users {
		row := []string{name}
		for i := range 2 {
			if i >= len(keys) {
				row = append(row, "false", "N/A", "N/A", "N/A", "N/A")
				continue
			}
			row = append(row, fmt.Sprint(keys[i].active), keys[i].created.Format(time.RFC3339), "N/A", "N/A", "N/A")
		}
		_ = w.Write(row)
	}
	w.Flush()
	gen := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return &iam.GetCredentialReportOutput{Content: b.Bytes(), GeneratedTime: &gen}, nil
}

func (f fakeIAM) ListAccessKeys(_ context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	var out iam.ListAccessKeysOutput
	for _, k := range f.users[aws.ToString(in.UserName)] {
		st := types.StatusTypeInactive
		if k.active {
			st = types.StatusTypeActive
		}
		out.AccessKeyMetadata = append(out.AccessKeyMetadata, types.AccessKeyMetadata{AccessKeyId: aws.String(k.id), Status: st, CreateDate: aws.Time(k.created), UserName: in.UserName})
	}
	return &out, nil
}

func (f fakeIAM) ListUserTags(_ context.Context, in *iam.ListUserTagsInput, _ ...func(*iam.Options)) (*iam.ListUserTagsOutput, error) {
	var out iam.ListUserTagsOutput
	for k, v := range f.tags[aws.ToString(in.UserName)] {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return &out, nil
}

func (f fakeIAM) GetAccessKeyLastUsed(context.Context, *iam.GetAccessKeyLastUsedInput, ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	return &iam.GetAccessKeyLastUsedOutput{}, nil
}

// fakeAccounts reach each account's fakeIAM; an account without one is
// refused as an AssumeRole would be.
type fakeAccounts map[string]IAM

func (f fakeAccounts) IAM(_ context.Context, a Account) (IAM, error) {
	if api, ok := f[a.ID]; ok {
		return api, nil
	}
	return nil, errors.New("cannot assume arn:aws:iam::" + a.ID + ":role/audit: AccessDenied")
}

var hostileNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func oldKey(id string) fakeKey {
	return fakeKey{id: id, active: true, created: hostileNow.AddDate(0, 0, -120)}
}

// A user name, a tag's reason and an owner address may begin with = + - @
// (IAM allows them); in the CSV each stays one cell, with an apostrophe
// before it so that a spreadsheet reads text, not a formula. Negative day
// counts stay numbers. In the table, a control character from a hostile
// answer (IAM refuses them) cannot start a line, move the cursor or shift a
// column.
func TestHostileNamesStayInTheirCells(t *testing.T) {
	t.Parallel()
	a := fakeIAM{
		users: map[string][]fakeKey{
			"=1+2,@x":                 {oldKey("AKIAFORMULA")},
			"@sum":                    {oldKey("AKIAAT")},
			"evil\x1b[2J\nA\tB\u202e": {oldKey("AKIACONTROL")},
			"plain":                   {oldKey("AKIAPLAIN")},
		},
		tags: map[string]map[string]string{
			"=1+2,@x": {TagExempt: "2027-01-01 =2+3 cmd", TagOwner: "-x@example.com"},
			"@sum":    {TagOwner: "+y@example.com", TagExempt: "2026-01-01 -old"},
		},
	}
	rep, err := Run(t.Context(), Configured{{ID: "111122223333"}}, fakeAccounts{"111122223333": a}, Options{Now: hostileNow, WarnDays: 14, ReportPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rep.WriteCSV(&out); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not read back: %v\n%s", err, out.String())
	}
	if len(recs) != 5 {
		t.Fatalf("%d records, want the header and 4 keys:\n%q", len(recs), recs)
	}
	col := map[string]int{}
	for i, c := range Columns {
		col[c] = i
	}
	byKey := map[string][]string{}
	for _, r := range recs[1:] {
		if len(r) != len(Columns) {
			t.Errorf("a record of %d fields, want %d: %q", len(r), len(Columns), r)
		}
		byKey[r[col["key_id"]]] = r
	}
	for _, tc := range []struct{ key, column, want string }{
		{"AKIAFORMULA", "user", "'=1+2,@x"},
		{"AKIAFORMULA", "exempt_reason", "'=2+3 cmd"},
		{"AKIAFORMULA", "owner", "'-x@example.com"},
		{"AKIAFORMULA", "state", "exempt"},
		{"AKIAAT", "user", "'@sum"},
		{"AKIAAT", "owner", "'+y@example.com"},
		{"AKIAAT", "exempt_reason", "'-old"},
		{"AKIAAT", "state", "exemption-expired"},
		{"AKIAAT", "days_left", "-30"}, // a number, not escaped
		{"AKIAAT", "flag", "overdue"},
		{"AKIAPLAIN", "user", "plain"},
		{"AKIACONTROL", "user", "evil\x1b[2J\nA\tB\u202e"}, // the CSV quotes it: one cell, exactly as answered
	} {
		if got := byKey[tc.key][col[tc.column]]; got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.key, tc.column, got, tc.want)
		}
	}
	for _, r := range recs[1:] {
		for i, f := range r {
			if f != "" && strings.ContainsAny(f[:1], "=+@\t\r") || (f != "" && f[0] == '-' && !numeric[Columns[i]]) {
				t.Errorf("%s: cell %s = %q begins like a formula", r[col["key_id"]], Columns[i], f)
			}
		}
	}

	out.Reset()
	rep.WriteText(&out)
	text := out.String()
	if strings.ContainsAny(text, "\x1b\t\u202e") {
		t.Errorf("the table carries a control character:\n%q", text)
	}
	lines := 0
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, "AKIA") {
			lines++
		}
	}
	if lines != 4 {
		t.Errorf("%d table lines name a key, want 4 (one per key):\n%s", lines, text)
	}
}

// A user name is unique only within an account: a rotation of app in the
// stack's account does not manage app in a member account, and a rotation
// naming a member account manages that account's user only.
func TestRotationsManageTheirOwnAccountsUsers(t *testing.T) {
	t.Parallel()
	const home, member = "111122223333", "222233334444"
	acct := func() fakeIAM {
		return fakeIAM{users: map[string][]fakeKey{"app": {oldKey("AKIAAPP" + fmt.Sprint(time.Now().UnixNano()))}, "svc": {oldKey("AKIASVC" + fmt.Sprint(time.Now().UnixNano()))}}}
	}
	managed := []Managed{
		{User: "app", Rotation: "app-key", Schedule: "rate(30 days)", Enabled: true},                     // home's
		{Account: member, User: "svc", Rotation: "member-svc", Schedule: "rate(30 days)", Enabled: true}, // the member's
	}
	rep, err := Run(t.Context(), Configured{{ID: home}, {ID: member}}, fakeAccounts{home: acct(), member: acct()},
		Options{Now: hostileNow, WarnDays: 14, Managed: managed, Home: home, ReportPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]State{home + "/app": StateManaged, home + "/svc": StateUnmanaged, member + "/app": StateUnmanaged, member + "/svc": StateManaged}
	for _, r := range rep.Rows {
		if w := want[r.Account+"/"+r.User]; r.State != w {
			t.Errorf("%s/%s: %s, want %s", r.Account, r.User, r.State, w)
		}
		delete(want, r.Account+"/"+r.User)
	}
	if len(want) != 0 {
		t.Errorf("rows missing: %v", want)
	}
	if rep.Summary.Overdue != 2 || rep.Verdict() != VerdictOverdue {
		t.Errorf("overdue %d, verdict %v: want the two unmanaged 120-day keys", rep.Summary.Overdue, rep.Verdict())
	}
}

// An account that cannot be reached is in the report with its error and
// counts as not read; the others are audited all the same.
func TestAnUnreachableAccountIsReportedNotSkipped(t *testing.T) {
	t.Parallel()
	rep, err := Run(t.Context(), Configured{{ID: "111122223333"}, {ID: "999988887777"}},
		fakeAccounts{"111122223333": fakeIAM{users: map[string][]fakeKey{"app": {oldKey("AKIAAPP")}}}}, Options{Now: hostileNow, ReportPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Failures != 1 || len(rep.Rows) != 1 || len(rep.Accounts) != 2 {
		t.Fatalf("failures %d, rows %d, accounts %+v", rep.Summary.Failures, len(rep.Rows), rep.Accounts)
	}
	if e := rep.Accounts[1].Error; !strings.Contains(e, "account 999988887777") || !strings.Contains(e, "role/audit") {
		t.Errorf("the error %q does not say which account and role", e)
	}
}
