// Package prove shows that a new access key works before anything relies on
// it: STS GetCallerIdentity signed with that key (CreateKey).
package prove

import (
	"context"
	"fmt"
	"sync"

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

// Self is who this process calls AWS as: STS GetCallerIdentity with its
// own credentials (a Lambda's, its role session), asked once and kept.
type Self struct {
	client *sts.Client
	mu     sync.Mutex
	arn    string
}

// NewSelf uses cfg's credentials, endpoint and region.
func NewSelf(cfg aws.Config) *Self { return &Self{client: sts.NewFromConfig(cfg)} }

// Identity is the caller ARN (for a Lambda, arn:aws:sts::<account>:assumed-role/<role>/<function>).
func (s *Self) Identity(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arn != "" {
		return s.arn, nil
	}
	out, err := s.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	s.arn = aws.ToString(out.Arn)
	return s.arn, nil
}
