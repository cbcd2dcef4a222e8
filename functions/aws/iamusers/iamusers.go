// Package iamusers is what the sweep (package fleet) reads of IAM: the
// users under a path, a user's tags and its access keys. Read-only.
package iamusers

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/fleet"
)

type api interface {
	ListUsers(ctx context.Context, in *iam.ListUsersInput, opt ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, opt ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
}

var _ api = (*iam.Client)(nil)

// Directory reads an account's IAM users.
type Directory struct{ api api }

// New wraps an IAM client.
func New(c api) *Directory { return &Directory{api: c} }

var _ fleet.Directory = (*Directory)(nil)

// Users are the users whose path starts with prefix, every page.
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html
func (d *Directory) Users(ctx context.Context, prefix string) ([]fleet.User, error) {
	var out []fleet.User
	p := iam.NewListUsersPaginator(d.api, &iam.ListUsersInput{PathPrefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awserr.Classify("iam ListUsers "+prefix, err)
		}
		for _, u := range page.Users {
			out = append(out, fleet.User{Name: aws.ToString(u.UserName), Path: aws.ToString(u.Path)})
		}
	}
	return out, nil
}

// Tags are the user's tags, every page.
func (d *Directory) Tags(ctx context.Context, user string) (map[string]string, error) {
	tags := map[string]string{}
	p := iam.NewListUserTagsPaginator(d.api, &iam.ListUserTagsInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awserr.Classify("iam ListUserTags "+user, err)
		}
		for _, t := range page.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

// Keys are the user's access keys (IAM allows two: one page).
func (d *Directory) Keys(ctx context.Context, user string) ([]fleet.Key, error) {
	out, err := d.api.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		return nil, awserr.Classify("iam ListAccessKeys "+user, err)
	}
	var keys []fleet.Key
	for _, k := range out.AccessKeyMetadata {
		keys = append(keys, fleet.Key{ID: aws.ToString(k.AccessKeyId), Active: k.Status == types.StatusTypeActive, Created: aws.ToTime(k.CreateDate)})
	}
	return keys, nil
}
