package audit

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// State is what covers a key.
type State string

// The states, in the order a key is checked for them.
const (
	StateManaged            State = "managed"             // an enabled rotation of the config rotates it
	StateExempt             State = "exempt"              // a current keyrotator:exempt tag
	StateExemptionExpired   State = "exemption-expired"   // the tag's date has passed: counts as none
	StateExemptionMalformed State = "exemption-malformed" // the tag does not parse: counts as none
	StateUnmanaged          State = "unmanaged"           // nothing
)

// Flag is a key's standing against its IAM.3 deadline, for keys no
// rotation or exemption covers.
type Flag string

// The flags.
const (
	FlagNone    Flag = ""
	FlagDue     Flag = "due"     // active, within --warn-days of the deadline
	FlagOverdue Flag = "overdue" // active, past the deadline
)

// Where a key's last use was read.
const (
	FromCredentialReport     = "credential-report"    // the account's report (up to 4 hours old)
	FromGetAccessKeyLastUsed = "GetAccessKeyLastUsed" // the key is newer than the report
)

// LastUsed is a key's last use as IAM reports it.
type LastUsed struct {
	Date    time.Time `json:"date"`
	Service string    `json:"service"`
	Region  string    `json:"region"`
}

// RotationRef is the configured rotation of a key's user.
type RotationRef struct {
	Name     string     `json:"name"`
	Schedule string     `json:"schedule"`
	Enabled  bool       `json:"enabled"`
	Next     *time.Time `json:"nextRun,omitempty"`
}

// ExemptionView is a keyrotator:exempt tag as the audit shows it: its date
// and reason, or the problem that makes it count as none.
type ExemptionView struct {
	Until   string `json:"until,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Expired bool   `json:"expired,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Row is one access key. The comment of each field says where it comes
// from: (report) the credential report, (ListAccessKeys), (tags) ListUserTags,
// (config) the rotations config.
type Row struct {
	Account      string         `json:"account"`
	User         string         `json:"user"`   // (report) users with keys
	KeyID        string         `json:"keyId"`  // (ListAccessKeys)
	Status       string         `json:"status"` // (ListAccessKeys) Active or Inactive
	Created      time.Time      `json:"created"`
	AgeDays      int            `json:"ageDays"`
	LastUsed     *LastUsed      `json:"lastUsed"`     // nil: never used (as far as IAM reports)
	LastUsedFrom string         `json:"lastUsedFrom"` // FromCredentialReport or FromGetAccessKeyLastUsed
	Deadline     time.Time      `json:"deadline"`     // IAM.3: created + maxAgeDays
	DaysLeft     int            `json:"daysLeft"`     // to the deadline; negative once past
	State        State          `json:"state"`
	Flag         Flag           `json:"flag,omitempty"`
	Rotation     *RotationRef   `json:"rotation,omitempty"`  // (config)
	Exemption    *ExemptionView `json:"exemption,omitempty"` // (tags)
	Owner        string         `json:"owner,omitempty"`     // (tags) a topic ARN or an e-mail address
	OwnerProblem string         `json:"ownerProblem,omitempty"`
}

// AccountSummary is one account's part of the audit.
type AccountSummary struct {
	Account
	CredentialReport *time.Time `json:"credentialReportGenerated,omitempty"`
	Keys             int        `json:"keys"`
	Error            string     `json:"error,omitempty"`
}

// Summary counts the rows.
type Summary struct {
	Keys     int           `json:"keys"`
	ByState  map[State]int `json:"byState"`
	Due      int           `json:"due"`
	Overdue  int           `json:"overdue"`
	Failures int           `json:"accountsNotRead"`
}

// Report is one audit.
type Report struct {
	At         time.Time        `json:"at"`
	MaxAgeDays int              `json:"maxAgeDays"`
	WarnDays   int              `json:"warnDays"`
	Accounts   []AccountSummary `json:"accounts"`
	Rows       []Row            `json:"keys"`
	Summary    Summary          `json:"summary"`
}

func (r Report) summarize() Summary {
	s := Summary{Keys: len(r.Rows), ByState: map[State]int{}}
	for _, row := range r.Rows {
		s.ByState[row.State]++
		switch row.Flag {
		case FlagDue:
			s.Due++
		case FlagOverdue:
			s.Overdue++
		}
	}
	for _, a := range r.Accounts {
		if a.Error != "" {
			s.Failures++
		}
	}
	return s
}

// Verdict is the audit's answer for a script: the worst of its rows.
type Verdict int

// The verdicts, worst last.
const (
	VerdictOK      Verdict = iota // nothing uncovered is due
	VerdictDue                    // an uncovered active key is within warnDays of its deadline
	VerdictOverdue                // an uncovered active key is past its deadline
)

// Verdict is the report's.
func (r Report) Verdict() Verdict {
	switch {
	case r.Summary.Overdue > 0:
		return VerdictOverdue
	case r.Summary.Due > 0:
		return VerdictDue
	}
	return VerdictOK
}

// Columns are the CSV's header and the table's columns.
var Columns = []string{"account", "user", "key_id", "status", "created", "age_days", "last_used_date", "last_used_service", "last_used_region", "last_used_from", "deadline", "days_left", "state", "flag", "rotation", "next_run", "exempt_until", "exempt_reason", "owner", "problem"}

// fields is a row as the CSV's strings: dates as yyyy-mm-dd, times RFC 3339.
func (row Row) fields() []string {
	lu := []string{"", "", ""}
	if row.LastUsed != nil {
		lu = []string{row.LastUsed.Date.Format(time.RFC3339), row.LastUsed.Service, row.LastUsed.Region}
	}
	rot, next := "", ""
	if row.Rotation != nil {
		rot = row.Rotation.Name
		if !row.Rotation.Enabled {
			rot += " (disabled)"
		}
		if row.Rotation.Next != nil {
			next = row.Rotation.Next.UTC().Format(time.RFC3339)
		}
	}
	until, reason, problems := "", "", []string{}
	if e := row.Exemption; e != nil {
		until, reason = e.Until, e.Reason
		if e.Problem != "" {
			problems = append(problems, TagExempt+": "+e.Problem)
		}
	}
	if row.OwnerProblem != "" {
		problems = append(problems, TagOwner+": "+row.OwnerProblem)
	}
	return append(append([]string{row.Account, row.User, row.KeyID, row.Status, row.Created.Format(time.RFC3339), strconv.Itoa(row.AgeDays)}, lu...),
		row.LastUsedFrom, row.Deadline.Format(time.DateOnly), strconv.Itoa(row.DaysLeft), string(row.State), string(row.Flag),
		rot, next, until, reason, row.Owner, strings.Join(problems, "; "))
}

// numeric are the columns the audit writes as integers: a leading - is a
// negative number there, not a formula.
var numeric = map[string]bool{"age_days": true, "days_left": true}

// csvCell is a cell as the CSV writes it. A text cell that a spreadsheet
// would read as a formula — beginning with =, +, -, @, a tab or a carriage
// return (https://owasp.org/www-community/attacks/CSV_Injection) — gets a
// leading apostrophe: user names may hold = + - @ and a tag's reason or an
// e-mail address may begin with them, and whoever may create a user or tag
// it should not get a formula run on the security team's machine. Quotes,
// commas and line breaks are encoding/csv's to quote. --json is the exact
// form for scripts.
func csvCell(column, v string) string {
	if v == "" || numeric[column] {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

// WriteCSV writes the header and one line per key.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	for _, row := range r.Rows {
		f := row.fields()
		for i := range f {
			f[i] = csvCell(Columns[i], f[i])
		}
		if err := cw.Write(f); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteText writes the report for a person: one line per key, then where
// each figure came from, each account's report time, and the counts.
func (r Report) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tUSER\tKEY\tSTATUS\tAGE\tLAST USED\tDEADLINE\tLEFT\tSTATE\tDETAIL")
	for _, row := range r.Rows {
		used := "never"
		if row.LastUsed != nil {
			used = fmt.Sprintf("%s %s %s", row.LastUsed.Date.Format(time.DateOnly), row.LastUsed.Service, row.LastUsed.Region)
		}
		if row.LastUsedFrom == FromGetAccessKeyLastUsed {
			used += " *"
		}
		state := string(row.State)
		if row.Flag != FlagNone {
			state += " " + strings.ToUpper(string(row.Flag))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dd\t%s\t%s\t%dd\t%s\t%s\n", printable(row.Account), printable(row.User), printable(row.KeyID), printable(row.Status), row.AgeDays, printable(used),
			row.Deadline.Format(time.DateOnly), row.DaysLeft, state, printable(row.detail()))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nDeadline: Security Hub IAM.3, created + %d days (active keys only); flagged: active keys no rotation or current exemption covers, past it (OVERDUE) or within %d days (DUE).\n", r.MaxAgeDays, r.WarnDays)
	fmt.Fprintln(w, "Users with keys and last use: IAM's credential report (up to 4 hours old); * last use by GetAccessKeyLastUsed (key newer than the report).")
	fmt.Fprintln(w, "Key ids and status: ListAccessKeys; exemptions and owners: the users' tags (ListUserTags); rotations: the config.")
	for _, a := range r.Accounts {
		switch {
		case a.Error != "":
			fmt.Fprintf(w, "Account %s: NOT READ: %s\n", a.ID, printable(a.Error))
		case a.CredentialReport != nil:
			fmt.Fprintf(w, "Account %s: %d keys, credential report of %s\n", a.ID, a.Keys, a.CredentialReport.Format(time.RFC3339))
		}
	}
	s := r.Summary
	fmt.Fprintf(w, "%d keys: %d managed, %d exempt, %d expired exemption, %d malformed exemption, %d unmanaged; %d overdue, %d due.\n",
		s.Keys, s.ByState[StateManaged], s.ByState[StateExempt], s.ByState[StateExemptionExpired], s.ByState[StateExemptionMalformed], s.ByState[StateUnmanaged], s.Overdue, s.Due)
}

// detail is the table's last column: the rotation, the exemption, the owner.
func (row Row) detail() string {
	var d []string
	if rot := row.Rotation; rot != nil {
		s := "rotation " + rot.Name
		switch {
		case !rot.Enabled:
			s += " (disabled)"
		case rot.Next != nil:
			s += ", next " + rot.Next.UTC().Format("2006-01-02 15:04Z")
		default:
			s += ", " + rot.Schedule
		}
		d = append(d, s)
	}
	if e := row.Exemption; e != nil {
		switch {
		case e.Problem != "":
			d = append(d, "exempt tag malformed: "+e.Problem)
		case e.Expired:
			d = append(d, fmt.Sprintf("exemption expired %s (%s)", e.Until, e.Reason))
		default:
			d = append(d, fmt.Sprintf("exempt until %s (%s)", e.Until, e.Reason))
		}
	}
	switch {
	case row.OwnerProblem != "":
		d = append(d, "owner tag malformed: "+row.OwnerProblem)
	case row.Owner != "":
		d = append(d, "owner "+row.Owner)
	}
	return strings.Join(d, "; ")
}

// printable is s for a terminal line: a control character (a line break,
// a tab that would shift the table's columns, an escape sequence) or a
// bidirectional override, which IAM refuses in names and tags but a
// hostile or broken answer could carry, is shown as U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}
