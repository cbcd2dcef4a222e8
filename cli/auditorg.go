package cli

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/keyrotator/keyrotator/functions/audit"
)

// orgAccounts lists the organization's active accounts
// (organizations:ListAccounts, from the management account or a delegated
// administrator: https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html):
// audit --organization's audit.Accounts. It lives in the CLI, not in
// package audit, so that no Lambda links the Organizations client.
type orgAccounts struct {
	api organizations.ListAccountsAPIClient
}

// Accounts implements audit.Accounts.
func (o orgAccounts) Accounts(ctx context.Context) ([]audit.Account, error) {
	var out []audit.Account
	for p := organizations.NewListAccountsPaginator(o.api, &organizations.ListAccountsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("organizations:ListAccounts: %w", err)
		}
		for _, a := range page.Accounts {
			// State replaces the deprecated Status; either says ACTIVE.
			if a.State == types.AccountStateActive || a.Status == types.AccountStatusActive {
				out = append(out, audit.Account{ID: aws.ToString(a.Id), Name: aws.ToString(a.Name)})
			}
		}
	}
	return out, nil
}
