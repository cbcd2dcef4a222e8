package moto

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

var (
	orgAccountID  = regexp.MustCompile(`^[0-9]{12}$`)
	orgAccountARN = regexp.MustCompile(`^arn:aws:organizations::[0-9]{12}:account/o-[a-z0-9]{10,32}/[0-9]{12}$`)
)

// accountsView is what keyrotator audit --organization reads of
// ListAccounts: each account's name, e-mail and state, sorted; the ids
// and ARNs, which both sides make at random, only for their form. The
// management account (the caller's own) is counted, not compared: its
// name and e-mail are the account's, which neither side has (moto says
// "master", the sandbox "management").
func accountsView(out *organizations.ListAccountsOutput, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	var view []string
	others := 0
	for _, a := range out.Accounts {
		if name := aws.ToString(a.Name); aws.ToString(a.Email) != name+"@example.com" || name == "master" || name == "management" {
			others++
			continue
		}
		form := "ok"
		if !orgAccountID.MatchString(aws.ToString(a.Id)) || !orgAccountARN.MatchString(aws.ToString(a.Arn)) {
			form = "bad id or ARN: " + aws.ToString(a.Id) + " " + aws.ToString(a.Arn)
		}
		view = append(view, strings.Join([]string{aws.ToString(a.Name), aws.ToString(a.Email), string(a.State), string(a.Status), form}, " "))
	}
	slices.Sort(view)
	return map[string]any{"accounts": view, "management": others, "more": out.NextToken != nil}, nil
}

// TestOrganizations: no organization, then one with two member accounts,
// as ListAccounts shows them.
func TestOrganizations(t *testing.T) {
	t.Parallel()
	w := start(t)
	p := w.pair(t)
	c := ctx(t)
	list := func(step string) {
		p.do(step, func(s *side) (any, error) {
			return accountsView(s.org.ListAccounts(c, &organizations.ListAccountsInput{}))
		})
	}
	list("ListAccounts without an organization")
	p.do("CreateOrganization", func(s *side) (any, error) {
		out, err := s.org.CreateOrganization(c, &organizations.CreateOrganizationInput{FeatureSet: types.OrganizationFeatureSetAll})
		if err != nil {
			return nil, err
		}
		return map[string]any{"featureSet": out.Organization.FeatureSet}, nil
	})
	for _, n := range []string{"payments", "iot"} {
		p.do("CreateAccount "+n, func(s *side) (any, error) {
			out, err := s.org.CreateAccount(c, &organizations.CreateAccountInput{AccountName: aws.String(n), Email: aws.String(n + "@example.com")})
			if err != nil {
				return nil, err
			}
			return map[string]any{"state": out.CreateAccountStatus.State}, nil
		})
	}
	list("ListAccounts")
}
