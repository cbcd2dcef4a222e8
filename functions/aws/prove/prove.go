// Package prove shows that a new access key works before anything relies on
// it: STS GetCallerIdentity signed with that key (CreateKey).
package prove

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// STS proves keys through STS.
type STS struct{ cfg aws.Config }

// New uses cfg's endpoint and region, with the key under test as credentials.
func New(cfg aws.Config) *STS { return &STS{cfg: cfg} }

// CallerARN is the identity the key signs as.
func (s *STS) CallerARN(ctx context.Context, key rotation.Credential) (string, error) {
	cfg := s.cfg.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.Secret(), "")
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts GetCallerIdentity with %s: %w", key.AccessKeyID, err)
	}
	return aws.ToString(out.Arn), nil
}
