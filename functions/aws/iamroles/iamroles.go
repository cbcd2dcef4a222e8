// Package iamroles looks up an IAM role's path for the approval endpoint:
// an assumed-role session ARN drops the role's path, and an approvers
// pattern with a path (IAM Identity Center's /aws-reserved/sso.amazonaws.com/)
// needs it (issue 14).
package iamroles

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

type api interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, opt ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

var _ api = (*iam.Client)(nil)

// Roles reads roles of the caller's account.
type Roles struct{ api api }

// New wraps an IAM client.
func New(c api) *Roles { return &Roles{api: c} }

// RolePath is the path of role name (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html).
func (r *Roles) RolePath(ctx context.Context, name string) (string, error) {
	out, err := r.api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		return "", awserr.Classify("iam GetRole "+name, err)
	}
	return aws.ToString(out.Role.Path), nil
}
