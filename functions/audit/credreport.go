package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// The credential report
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/credential-reports.html)
// is one call for the whole account, but IAM makes a new one at most every
// four hours (GenerateCredentialReport answers COMPLETE with the old one
// until then) and it has no key ids and no tags. The audit takes from it
// which users have keys and, for a key it can match by its creation time
// (the report's access_key_N_last_rotated), the key's last use; the rest
// comes from per-user calls.

// credentialReport is the part of one account's report the audit reads.
type credentialReport struct {
	Generated time.Time
	Users     []reportUser
}

// reportUser is one row: a user and its two key columns.
type reportUser struct {
	Name string
	// Path is the user's IAM path, from the report's arn column
	// (arn:aws:iam::<account>:user<path><name>): "" when the report has
	// none, which no fleet template's path matches.
	Path string
	Keys [2]reportKey
}

// reportKey is one access_key_N_* group; Present is false when the user
// has no key in that column (last_rotated N/A).
type reportKey struct {
	Present     bool
	Active      bool
	LastRotated time.Time
	LastUsed    *LastUsed
}

// reportAPI is what reading the report needs.
type reportAPI interface {
	GenerateCredentialReport(ctx context.Context, in *iam.GenerateCredentialReportInput, opt ...func(*iam.Options)) (*iam.GenerateCredentialReportOutput, error)
	GetCredentialReport(ctx context.Context, in *iam.GetCredentialReportInput, opt ...func(*iam.Options)) (*iam.GetCredentialReportOutput, error)
}

// fetchReport asks for a report and waits until IAM has one, polling up
// to attempts times: after 200 ms at first, doubling up to poll (IAM makes
// a report in seconds; the sandbox at once).
func fetchReport(ctx context.Context, api reportAPI, poll time.Duration, attempts int) (credentialReport, error) {
	pause := min(200*time.Millisecond, poll)
	for i := 0; ; i++ {
		g, err := api.GenerateCredentialReport(ctx, &iam.GenerateCredentialReportInput{})
		if err != nil {
			return credentialReport{}, fmt.Errorf("generate credential report: %w", err)
		}
		if g.State == types.ReportStateTypeComplete {
			out, err := api.GetCredentialReport(ctx, &iam.GetCredentialReportInput{})
			var notReady *types.CredentialReportNotReadyException
			switch {
			case errors.As(err, &notReady):
			case err != nil:
				return credentialReport{}, fmt.Errorf("get credential report: %w", err)
			default:
				r, err := parseReport(out.Content)
				if err != nil {
					return credentialReport{}, err
				}
				if out.GeneratedTime != nil {
					r.Generated = out.GeneratedTime.UTC()
				}
				return r, nil
			}
		}
		if i+1 >= attempts {
			return credentialReport{}, fmt.Errorf("credential report: still %s after %d tries", g.State, attempts)
		}
		select {
		case <-ctx.Done():
			return credentialReport{}, fmt.Errorf("credential report: %w", ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, poll)
	}
}

// parseReport reads the report's CSV by its header's column names.
func parseReport(content []byte) (credentialReport, error) {
	rows, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	if err != nil {
		return credentialReport{}, fmt.Errorf("credential report: not CSV: %w", err)
	}
	if len(rows) == 0 {
		return credentialReport{}, errors.New("credential report: empty")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	need := []string{"user"}
	for _, n := range []string{"1", "2"} {
		for _, f := range []string{"active", "last_rotated", "last_used_date", "last_used_region", "last_used_service"} {
			need = append(need, "access_key_"+n+"_"+f)
		}
	}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return credentialReport{}, fmt.Errorf("credential report: no column %s", n)
		}
	}
	var r credentialReport
	for li, row := range rows[1:] {
		get := func(name string) string { return row[col[name]] }
		if len(row) != len(rows[0]) {
			return credentialReport{}, fmt.Errorf("credential report: line %d has %d fields, the header %d", li+2, len(row), len(rows[0]))
		}
		if get("user") == "<root_account>" {
			continue // the root user's keys are Security Hub's IAM.4, not IAM users' keys
		}
		u := reportUser{Name: get("user")}
		if i, ok := col["arn"]; ok {
			u.Path = userPath(row[i], u.Name)
		}
		for k, n := range []string{"1", "2"} {
			p := "access_key_" + n + "_"
			rotated, ok := reportTime(get(p + "last_rotated"))
			if !ok {
				continue
			}
			rk := reportKey{Present: true, Active: get(p+"active") == "true", LastRotated: rotated}
			if used, ok := reportTime(get(p + "last_used_date")); ok {
				rk.LastUsed = &LastUsed{Date: used, Service: get(p + "last_used_service"), Region: get(p + "last_used_region")}
			}
			u.Keys[k] = rk
		}
		r.Users = append(r.Users, u)
	}
	return r, nil
}

// userPath is the path of user's ARN (arn:…:user/a/b/name → /a/b/), ""
// when the ARN is not the user's.
func userPath(arn, user string) string {
	_, res, ok := strings.Cut(arn, ":user/")
	if !ok || !strings.HasSuffix(res, user) {
		return ""
	}
	return "/" + strings.TrimSuffix(res, user)
}

// reportTime reads an ISO 8601 time; "N/A", "no_information" and
// "not_supported" are no time.
func reportTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// hasKeys says whether the report shows the user with any access key.
func (u reportUser) hasKeys() bool { return u.Keys[0].Present || u.Keys[1].Present }

// match finds the report's column for a key made at created (to the
// second: the report's precision).
func (u reportUser) match(created time.Time) (reportKey, bool) {
	for _, k := range u.Keys {
		if k.Present && k.LastRotated.Equal(created.UTC().Truncate(time.Second)) {
			return k, true
		}
	}
	return reportKey{}, false
}
