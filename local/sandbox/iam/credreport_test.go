package iam_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// reportRows reads a report into rows by user, each a map by column.
func reportRows(t *testing.T, content []byte) map[string]map[string]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, content)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, c := range rows[0] {
			m[c] = r[i]
		}
		out[m["user"]] = m
	}
	return out
}

// The report is made by Generate, kept as made for four hours (a key made
// since is not in it), and made anew after; it shows last use as
// GetAccessKeyLastUsed does, after IAM's reporting lag.
func TestCredentialReport(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))
	clock := sb.Server.Clock()

	var notPresent *types.CredentialReportNotPresentException
	if _, err := c.GetCredentialReport(ctx, &iam.GetCredentialReportInput{}); !errors.As(err, &notPresent) {
		t.Fatalf("GetCredentialReport before any: %v, want ReportNotPresent", err)
	}
	keys := sb.User(t, "app", 2)
	if _, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(keys[1].AccessKeyID), Status: types.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	used := clock.Now()
	sb.IAM.MarkUsed(keys[0].AccessKeyID, "s3", "ap-northeast-1", used)
	sb.User(t, "nokeys", 0)
	clock.Advance(5 * time.Hour) // past the lag: the use shows

	gen := func(want types.ReportStateType) {
		t.Helper()
		g, err := c.GenerateCredentialReport(ctx, &iam.GenerateCredentialReportInput{})
		if err != nil || g.State != want {
			t.Fatalf("GenerateCredentialReport: %v %v, want %s", g, err, want)
		}
	}
	get := func() (map[string]map[string]string, time.Time) {
		t.Helper()
		out, err := c.GetCredentialReport(ctx, &iam.GetCredentialReportInput{})
		if err != nil || out.ReportFormat != types.ReportFormatTypeTextCsv {
			t.Fatalf("GetCredentialReport: %v %v", out, err)
		}
		return reportRows(t, out.Content), aws.ToTime(out.GeneratedTime)
	}
	gen(types.ReportStateTypeStarted)
	first := clock.Now().Truncate(time.Second)
	rows, at := get()
	if !at.Equal(first) {
		t.Errorf("GeneratedTime %s, want %s", at, first)
	}
	app := rows["app"]
	iso := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }
	for col, want := range map[string]string{
		"arn": "arn:aws:iam::111122223333:user/app", "password_enabled": "false",
		"access_key_1_active": "true", "access_key_1_last_used_date": iso(used), "access_key_1_last_used_region": "ap-northeast-1", "access_key_1_last_used_service": "s3",
		"access_key_2_active": "false", "access_key_2_last_used_date": "N/A", "access_key_2_last_used_service": "N/A",
	} {
		if app[col] != want {
			t.Errorf("app %s = %q, want %q", col, app[col], want)
		}
	}
	if app["access_key_1_last_rotated"] == "N/A" || app["access_key_2_last_rotated"] == "N/A" {
		t.Errorf("app's keys have no last_rotated: %v", app)
	}
	if nk := rows["nokeys"]; nk["access_key_1_last_rotated"] != "N/A" || nk["access_key_2_last_rotated"] != "N/A" || nk["access_key_1_active"] != "false" {
		t.Errorf("nokeys: %v", nk)
	}
	if _, ok := rows["<root_account>"]; !ok {
		t.Error("no <root_account> row")
	}

	// Within four hours: the same report, without a user made since.
	clock.Advance(3 * time.Hour)
	sb.User(t, "late", 1)
	gen(types.ReportStateTypeComplete)
	if rows, at := get(); !at.Equal(first) || rows["late"] != nil {
		t.Errorf("within 4 hours: report of %s with late=%v, want the one of %s without", at, rows["late"], first)
	}
	// After: a new one.
	clock.Advance(time.Hour + time.Second)
	gen(types.ReportStateTypeStarted)
	if rows, at := get(); !at.After(first) || rows["late"]["access_key_1_active"] != "true" {
		t.Errorf("after 4 hours: report of %s with late=%v", at, rows["late"])
	}
}

func TestTagValuesAsIAMTakesThem(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := iam.NewFromConfig(sb.Config(t))
	sb.User(t, "app", 0)
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{"keyrotator:exempt", "2027-01-31 vendor migration INC-42", true},
		{"keyrotator:owner", "arn:aws:sns:ap-northeast-1:111122223333:team-keys", true},
		{"keyrotator:owner", "team+keys@example.com", true},
		{"note", "", true},
		{"note", "日本語 ok", true},
		{"note", "it's", false},
		{"note", "a,b", false},
		{"note", string(bytes.Repeat([]byte("x"), 257)), false},
		{"bad,key", "v", false},
	} {
		_, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("app"), Tags: []types.Tag{{Key: aws.String(tc.key), Value: aws.String(tc.value)}}})
		if (err == nil) != tc.ok || (err != nil && apiCode(err) != "ValidationError") {
			t.Errorf("TagUser %s=%q: %v, want ok=%v (else ValidationError)", tc.key, tc.value, err, tc.ok)
		}
	}
}
