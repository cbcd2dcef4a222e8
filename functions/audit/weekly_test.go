package audit

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarySubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{Keys: 45, Due: 7, Overdue: 9}, "keyrotator audit 111122223333: 9 overdue, 7 due (45 keys)"},
		{Summary{Keys: 3}, "keyrotator audit 111122223333: 3 keys, none overdue or due"},
		{Summary{Failures: 1}, "keyrotator audit 111122223333: could not read the account"},
	} {
		if got := tc.s.subject("111122223333", 1); got != tc.want || len(got) >= 100 {
			t.Errorf("subject %q, want %q (under 100)", got, tc.want)
		}
	}
	// Several accounts (issue 15: the member accounts the rotations name).
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{Keys: 45, Due: 7, Overdue: 9}, "keyrotator audit 111122223333 +2 accounts: 9 overdue, 7 due (45 keys)"},
		{Summary{Failures: 1, Keys: 45, Overdue: 9}, "keyrotator audit 111122223333 +2 accounts: 1 not read, 9 overdue, 0 due"},
	} {
		if got := tc.s.subject("111122223333 +2 accounts", 3); got != tc.want || len(got) >= 100 {
			t.Errorf("subject %q, want %q (under 100)", got, tc.want)
		}
	}
}

// The body lists only the keys worth a look, and links the runbook.
func TestSummaryBodyListsFlaggedKeys(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rows := []Row{
		{Account: "a", User: "fine", KeyID: "AKIAFINE", Status: "Active", Created: now, Deadline: now.AddDate(0, 0, 90), State: StateUnmanaged},
		{Account: "a", User: "late", KeyID: "AKIALATE", Status: "Active", Created: now, Deadline: now, State: StateUnmanaged, Flag: FlagOverdue},
		{Account: "a", User: "bad", KeyID: "AKIABADTAG", Status: "Inactive", Created: now, Deadline: now, State: StateExemptionMalformed, Exemption: &ExemptionView{Problem: "x"}},
	}
	r := Report{At: now, MaxAgeDays: 90, WarnDays: 14, Rows: rows}
	r.Summary = r.summarize()
	body := r.summaryBody("https://example.com/runbook.md")
	for _, s := range []string{"AKIALATE", "AKIABADTAG", "https://example.com/runbook.md#audit", "1 overdue"} {
		if !strings.Contains(body, s) {
			t.Errorf("body does not say %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, "AKIAFINE") {
		t.Errorf("body lists a key with nothing to do:\n%s", body)
	}
}

// The weekly audit reads its own account and every member account a
// rotation or a fleet template names, each once, in order.
func TestWeeklyAccounts(t *testing.T) {
	t.Parallel()
	w := &Weekly{
		Managed:   []Managed{{User: "a"}, {Account: "333344445555", User: "b"}, {Account: "111122223333", User: "c"}, {Account: "333344445555", User: "d"}},
		Templates: []Template{{Name: "f", Accounts: []string{"222233334444", "333344445555"}}, {Name: "g"}},
	}
	var got []string
	for _, a := range w.accounts("111122223333") {
		got = append(got, a.ID)
	}
	if want := []string{"111122223333", "222233334444", "333344445555"}; !slices.Equal(got, want) {
		t.Errorf("accounts %v, want %v", got, want)
	}
}
