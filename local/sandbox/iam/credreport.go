package iam

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"slices"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// The credential report
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html):
// GenerateCredentialReport makes one when there is none or the last is
// older than four hours, answering STARTED, and otherwise answers COMPLETE
// and keeps the old one
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GenerateCredentialReport.html);
// GetCredentialReport returns the last one as it was when made, with its
// GeneratedTime, or ReportNotPresent (410) before the first
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetCredentialReport.html).
// The sandbox makes a report at once; IAM takes a while (ReportInProgress),
// which callers poll through.

// ReportMaxAge is how long IAM keeps answering with the same report.
const ReportMaxAge = 4 * time.Hour

// CredentialReport is the account's last report, as made.
type CredentialReport struct {
	Generated time.Time `json:"generated"`
	Content   string    `json:"content"`
}

// reportColumns are the report's columns, in AWS's order.
var reportColumns = []string{"user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed", "password_next_rotation", "mfa_active",
	"access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
	"access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date", "access_key_2_last_used_region", "access_key_2_last_used_service",
	"cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated"}

func (s *Service) generateCredentialReport() (any, error) {
	now := s.srv.Clock().Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	type out struct {
		State       string `xml:"State"`
		Description string `xml:"Description,omitempty"`
	}
	if r := s.st.Report; r != nil && now.Sub(r.Generated) < ReportMaxAge {
		return out{State: "COMPLETE"}, nil
	}
	s.st.Report = &CredentialReport{Generated: now.Truncate(time.Second), Content: s.reportLocked(now)}
	return out{State: "STARTED", Description: "No report exists. Starting a new report generation task"}, nil
}

func (s *Service) getCredentialReport() (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.st.Report
	if r == nil {
		return nil, sandbox.Errorf(410, "ReportNotPresent", "Credential report not present")
	}
	return struct {
		Content       string          `xml:"Content"` // a blob: base64 on the wire
		ReportFormat  string          `xml:"ReportFormat"`
		GeneratedTime sandbox.ISOTime `xml:"GeneratedTime"`
	}{base64.StdEncoding.EncodeToString([]byte(r.Content)), "text/csv", sandbox.ISOTime(r.Generated)}, nil
}

// reportLocked is the report's CSV at now: each user (sorted by name, the
// root account's row first) with its keys oldest first, and their last use
// as GetAccessKeyLastUsed shows it at now (IAM's reporting lag applies).
func (s *Service) reportLocked(now time.Time) string {
	const na = "N/A"
	iso := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(reportColumns)
	_ = w.Write([]string{"<root_account>", "arn:aws:iam::" + s.account + ":root", na, "not_supported", na, "not_supported", "not_supported", "false",
		"false", na, na, na, na, "false", na, na, na, na, "false", na, "false", na})
	names := make([]string, 0, len(s.st.Users))
	for n := range s.st.Users {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		u := s.st.Users[n]
		row := []string{u.Name, s.userARN(u), iso(u.Created), "false", na, na, na, "false"}
		keys := s.keysOf(n)
		for i := range 2 {
			if i >= len(keys) {
				row = append(row, "false", na, na, na, na)
				continue
			}
			k := keys[i]
			used := []string{na, na, na}
			if r := k.reported(now, s.lag); r != nil {
				used = []string{iso(r.At), r.Region, r.Service}
			}
			row = append(append(row, boolString(k.Status == "Active"), iso(k.Created)), used...)
		}
		row = append(row, "false", na, "false", na)
		_ = w.Write(row)
	}
	w.Flush()
	return buf.String()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
