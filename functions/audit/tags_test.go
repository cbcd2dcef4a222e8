package audit

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestParseExempt(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		value, until, reason, problem string
	}{
		{value: "2027-01-31 vendor migration INC-42", until: "2027-01-31", reason: "vendor migration INC-42"},
		{value: "  2027-01-31   two  spaces  ", until: "2027-01-31", reason: "two spaces"},
		{value: "2027-02-29 leap", problem: "not a date"},
		{value: "2027-1-31 short date", problem: "not a date"},
		{value: "31/01/2027 other order", problem: "not a date"},
		{value: "2027-01-31", problem: "no reason"},
		{value: "2027-01-31    ", problem: "no reason"},
		{value: "", problem: "not a date"},
		{value: "forever because", problem: "not a date"},
		{value: "2027-01-31 owner's call", problem: "character IAM does not accept"},
		{value: "2027-01-31 " + strings.Repeat("x", 250), problem: "at most 256"},
		{value: "2027-01-31 ticket=OPS-1 by ops@example.com +/: ok", until: "2027-01-31", reason: "ticket=OPS-1 by ops@example.com +/: ok"},
		{value: "2027-01-31 移行中", until: "2027-01-31", reason: "移行中"},
	}
	for _, tt := range tests {
		e, err := ParseExempt(tt.value)
		if tt.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("ParseExempt(%q) = %v, %v; want an error saying %q", tt.value, e, err, tt.problem)
			}
			continue
		}
		if err != nil || !e.Until.Equal(day(tt.until)) || e.Reason != tt.reason {
			t.Errorf("ParseExempt(%q) = %v %q, %v; want %s %q", tt.value, e.Until, e.Reason, err, tt.until, tt.reason)
		}
	}
}

// The until day counts in full (UTC): the exemption ends at the next midnight.
func TestExemptionActiveThroughItsDay(t *testing.T) {
	t.Parallel()
	e, err := ParseExempt("2027-01-31 migration")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at     time.Time
		active bool
	}{
		{time.Date(2027, 1, 30, 12, 0, 0, 0, time.UTC), true},
		{time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := e.ActiveAt(c.at); got != c.active {
			t.Errorf("ActiveAt(%s) = %v, want %v", c.at, got, c.active)
		}
	}
}

func TestParseOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value, topic, email, problem string
	}{
		{value: "arn:aws:sns:ap-northeast-1:123456789012:team-a-keys", topic: "arn:aws:sns:ap-northeast-1:123456789012:team-a-keys"},
		{value: "arn:aws-cn:sns:cn-north-1:123456789012:keys.fifo", topic: "arn:aws-cn:sns:cn-north-1:123456789012:keys.fifo"},
		{value: "team-a@example.com", email: "team-a@example.com"},
		{value: "team+keys@example.co.jp", email: "team+keys@example.co.jp"},
		{value: "arn:aws:sqs:ap-northeast-1:123456789012:q", problem: "not of an SNS topic"},
		{value: "arn:aws:sns:ap-northeast-1:1234:t", problem: "not an SNS topic ARN"},
		{value: "arn:aws:sns::123456789012:t", problem: "not an SNS topic ARN"},
		{value: "arn:aws:sns:ap-northeast-1:123456789012:bad.name", problem: "not an SNS topic ARN"},
		{value: "arn:nope", problem: "not an ARN"},
		{value: "Team A <a@example.com>", problem: "character IAM does not accept"},
		{value: "team-a", problem: "neither"},
		{value: "a@localhost", problem: "neither"},
		{value: "", problem: "neither"},
	}
	for _, tt := range tests {
		o, err := ParseOwner(tt.value)
		if tt.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("ParseOwner(%q) = %+v, %v; want an error saying %q", tt.value, o, err, tt.problem)
			}
			continue
		}
		if err != nil || o.TopicARN != tt.topic || o.Email != tt.email {
			t.Errorf("ParseOwner(%q) = %+v, %v; want topic %q email %q", tt.value, o, err, tt.topic, tt.email)
		}
	}
}

// acceptedByIAM is the tag value rule written apart from the regexp, from
// the pattern's words: Unicode letters, separators and numbers, and _.:/=+-@.
func acceptedByIAM(v string) bool {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 256 {
		return false
	}
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.In(r, unicode.Z) && !unicode.IsNumber(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

func FuzzTags(f *testing.F) {
	for _, s := range []string{"2027-01-31 vendor migration", "arn:aws:sns:us-east-1:123456789012:t", "a@example.com", "2027-13-01 x", "\xff", "2027-01-31 \u00a0", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if (CheckTagValue(v) == nil) != acceptedByIAM(v) {
			t.Fatalf("CheckTagValue(%q) = %v, the rule's words say %v", v, CheckTagValue(v), acceptedByIAM(v))
		}
		if e, err := ParseExempt(v); err == nil {
			if !acceptedByIAM(v) || e.Reason == "" || e.Reason != strings.Join(strings.Fields(e.Reason), " ") {
				t.Fatalf("ParseExempt(%q) accepted %+v", v, e)
			}
			again, err := ParseExempt(e.Until.Format(time.DateOnly) + " " + e.Reason)
			if err != nil || again != e {
				t.Fatalf("ParseExempt(%q) = %+v does not round-trip: %+v, %v", v, e, again, err)
			}
		} else if strings.Contains(err.Error(), v) && len(v) > 8 {
			t.Fatalf("ParseExempt's refusal repeats the value: %v", err)
		}
		if o, err := ParseOwner(v); err == nil && (!acceptedByIAM(v) || (o.TopicARN == "") == (o.Email == "")) {
			t.Fatalf("ParseOwner(%q) accepted %+v", v, o)
		}
	})
}
