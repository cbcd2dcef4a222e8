package organizations_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// No organization until CreateOrganization; then ListAccounts pages
// through the management account and every member made since.
func TestListAccounts(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := organizations.NewFromConfig(sb.Config(t))
	var notInUse *types.AWSOrganizationsNotInUseException
	if _, err := c.ListAccounts(ctx, &organizations.ListAccountsInput{}); !errors.As(err, &notInUse) {
		t.Fatalf("ListAccounts without an organization: %v, want AWSOrganizationsNotInUseException", err)
	}
	org, err := c.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: types.OrganizationFeatureSetAll})
	if err != nil || aws.ToString(org.Organization.MasterAccountId) != sb.Server.Account() {
		t.Fatalf("CreateOrganization: %v %+v", err, org)
	}
	var already *types.AlreadyInOrganizationException
	if _, err := c.CreateOrganization(ctx, &organizations.CreateOrganizationInput{}); !errors.As(err, &already) {
		t.Errorf("CreateOrganization twice: %v", err)
	}
	for i := range 24 {
		if _, err := c.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String(fmt.Sprintf("member-%d", i)), Email: aws.String(fmt.Sprintf("m%d@example.com", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String("again"), Email: aws.String("m0@example.com")}); err != nil ||
		out.CreateAccountStatus.State != types.CreateAccountStateFailed || out.CreateAccountStatus.FailureReason != types.CreateAccountFailureReasonEmailAlreadyExists {
		t.Errorf("CreateAccount with a used e-mail: %+v %v, want FAILED EMAIL_ALREADY_EXISTS", out, err)
	}
	var ids []string
	pages := 0
	for p := organizations.NewListAccountsPaginator(c, &organizations.ListAccountsInput{}); p.HasMorePages(); pages++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Accounts {
			if a.State != types.AccountStateActive || aws.ToString(a.Name) == "" {
				t.Errorf("account %+v", a)
			}
			ids = append(ids, aws.ToString(a.Id))
		}
	}
	if len(ids) != 25 || ids[0] != sb.Server.Account() || pages != 2 {
		t.Errorf("ListAccounts: %d accounts in %d pages, first %s; want 25 in 2, the management account first", len(ids), pages, ids[0])
	}
}
