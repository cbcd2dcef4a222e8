package moto

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// reportView is what keyrotator audit reads of a credential report, for
// the users the test made: the key columns' presence, status and last-use
// date. Left out: the root account's row (AWS lists it first, moto not at
// all), the sandbox's seeded admin, and the password, region and service
// columns, where moto answers "not_supported" or the creation time and
// AWS N/A or the region and service
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html).
func reportView(out *iam.GetCredentialReportOutput, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	rows, cerr := csv.NewReader(bytes.NewReader(out.Content)).ReadAll()
	if cerr != nil || len(rows) == 0 {
		return nil, fmt.Errorf("report is not CSV: %w", cerr)
	}
	view := map[string]map[string]string{"header": {"columns": strings.Join(rows[0], ",")}}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, c := range rows[0] {
			if c == "arn" || strings.HasPrefix(c, "access_key_") && !strings.HasSuffix(c, "_region") && !strings.HasSuffix(c, "_service") {
				m[c] = r[i]
			}
		}
		if strings.HasPrefix(r[0], "k") {
			view[r[0]] = m
		}
	}
	return map[string]any{"ReportFormat": out.ReportFormat, "view": view}, nil
}

// TestCredentialReport: none before Generate; Generate starts one, then
// answers COMPLETE; the report lists each user with its keys, inactive ones
// too, and a key's last use. And IAM's tag value rules.
func TestCredentialReport(t *testing.T) {
	t.Parallel()
	w := start(t)
	p := w.pair(t)
	c := ctx(t)
	p.do("GetCredentialReport before any", func(s *side) (any, error) {
		return s.iam.GetCredentialReport(c, &iam.GetCredentialReportInput{})
	})
	for _, u := range []string{"k0", "k1", "k2"} {
		p.do("CreateUser "+u, func(s *side) (any, error) {
			out, err := s.iam.CreateUser(c, &iam.CreateUserInput{UserName: aws.String(u)})
			if err == nil {
				s.bind(u+".id", aws.ToString(out.User.UserId))
			}
			return out, err
		})
	}
	createKey := func(user, sym string) {
		p.do("CreateAccessKey "+sym, func(s *side) (any, error) {
			out, err := s.iam.CreateAccessKey(c, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
			if err == nil {
				s.bind(sym, aws.ToString(out.AccessKey.AccessKeyId))
				s.bind(sym+".secret", aws.ToString(out.AccessKey.SecretAccessKey))
			}
			return out, err
		})
	}
	createKey("k1", "a")
	createKey("k2", "b")
	createKey("k2", "c")
	p.do("UpdateAccessKey to Inactive", func(s *side) (any, error) {
		return s.iam.UpdateAccessKey(c, &iam.UpdateAccessKeyInput{UserName: aws.String("k2"), AccessKeyId: aws.String(s.id("c")), Status: types.StatusTypeInactive})
	})
	p.do("GetCallerIdentity with a key", func(s *side) (any, error) {
		return sts.NewFromConfig(s.as(s.id("a"), s.id("a.secret"))).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	})
	p.do("GenerateCredentialReport first", func(s *side) (any, error) {
		return s.iam.GenerateCredentialReport(c, &iam.GenerateCredentialReportInput{})
	})
	p.do("GenerateCredentialReport again", func(s *side) (any, error) {
		return s.iam.GenerateCredentialReport(c, &iam.GenerateCredentialReportInput{})
	})
	p.do("GetCredentialReport", func(s *side) (any, error) {
		return reportView(s.iam.GetCredentialReport(c, &iam.GetCredentialReportInput{}))
	})

	tag := func(step, value string) {
		p.do(step, func(s *side) (any, error) {
			return s.iam.TagUser(c, &iam.TagUserInput{UserName: aws.String("k1"), Tags: []types.Tag{{Key: aws.String("keyrotator:exempt"), Value: aws.String(value)}}})
		})
	}
	tag("TagUser with an exemption", "2027-01-31 vendor migration INC-42")
	tag("TagUser with a value of 257 characters", strings.Repeat("x", 257))
	tag("TagUser with an apostrophe in the value", "2027-01-31 owner's call")
	p.do("TagUser with a comma in the key", func(s *side) (any, error) {
		return s.iam.TagUser(c, &iam.TagUserInput{UserName: aws.String("k1"), Tags: []types.Tag{{Key: aws.String("a,b"), Value: aws.String("v")}}})
	})
}
