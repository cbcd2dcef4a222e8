// Package iamkeys is keyrotator's view of IAM: a user's access keys, made,
// switched off and removed, and what IAM knows of their last use. Validate,
// CreateKey, VerifyOldKeyUnused, DeactivateOldKey and DeleteOldKey use it.
package iamkeys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type api interface {
	GetUser(ctx context.Context, in *iam.GetUserInput, opt ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, opt ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opt ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opt ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opt ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
}

var _ api = (*iam.Client)(nil)

// Keys reads and changes IAM access keys.
type Keys struct{ api api }

// New wraps an IAM client.
func New(c api) *Keys { return &Keys{api: c} }

// Key is an access key's metadata.
type Key struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"` // Active | Inactive
	Created time.Time `json:"created"`
}

// Active reports whether the key is switched on.
func (k Key) Active() bool { return k.Status == string(types.StatusTypeActive) }

// UserARN returns the user's ARN, or *rotation.UserNotFound.
func (k *Keys) UserARN(ctx context.Context, user string) (string, error) {
	out, err := k.api.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", &rotation.UserNotFound{User: user}
	}
	if err != nil {
		return "", awserr.Classify("iam GetUser "+user, err)
	}
	return aws.ToString(out.User.Arn), nil
}

// List returns the user's keys, oldest first.
func (k *Keys) List(ctx context.Context, user string) ([]Key, error) {
	var keys []Key
	p := iam.NewListAccessKeysPaginator(k.api, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nse *types.NoSuchEntityException
		if errors.As(err, &nse) {
			return nil, &rotation.UserNotFound{User: user}
		}
		if err != nil {
			return nil, awserr.Classify("iam ListAccessKeys "+user, err)
		}
		for _, m := range page.AccessKeyMetadata {
			keys = append(keys, Key{ID: aws.ToString(m.AccessKeyId), Status: string(m.Status), Created: aws.ToTime(m.CreateDate)})
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Created.Before(keys[j].Created) })
	return keys, nil
}

// createTries is how many times Create sends CreateAccessKey.
const createTries = 3

// AnswerLost is Create's error when IAM refused for the two-key quota after
// an earlier try of the same call failed in a way that leaves its outcome
// unknown (a 5xx, a timeout): that try's key probably exists, and its
// secret was never seen. The caller decides whether it is an orphan.
type AnswerLost struct{ Limit *rotation.KeyLimitReached }

func (e *AnswerLost) Error() string {
	return "an earlier CreateAccessKey's answer was lost: " + e.Limit.Error()
}

// Unwrap is the KeyLimitReached.
func (e *AnswerLost) Unwrap() error { return e.Limit }

// Create makes a key. IAM's two-key quota becomes *rotation.KeyLimitReached,
// or *AnswerLost if an earlier try's answer was lost. Create retries
// transient errors itself (the SDK's retryer is off for this call) so that
// it knows whether a LimitExceeded follows a lost answer: CreateAccessKey
// has no idempotency token, and a retry after a lost answer makes IAM
// refuse because of the key the lost try made.
func (k *Keys) Create(ctx context.Context, user string) (rotation.Credential, time.Time, error) {
	return k.create(ctx, user, createTries)
}

// CreateOnce makes a key in one try, never retried: for a user with no
// key (an issue), whose quota has room for two, so a retry after a lost
// answer would not be refused but make a second key, leaving the first
// one's secret with nobody. A transient error ends the attempt instead
// (Retryable): the next attempt finds the key the lost try may have made
// inside its intent's window and deletes it as an orphan (docs/design.md,
// Issuance).
func (k *Keys) CreateOnce(ctx context.Context, user string) (rotation.Credential, time.Time, error) {
	return k.create(ctx, user, 1)
}

func (k *Keys) create(ctx context.Context, user string, tries int) (rotation.Credential, time.Time, error) {
	lost := false
	for try := 1; ; try++ {
		out, err := k.api.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)}, func(o *iam.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			ak := out.AccessKey
			return rotation.NewCredential(aws.ToString(ak.AccessKeyId), aws.ToString(ak.SecretAccessKey)), aws.ToTime(ak.CreateDate), nil
		}
		var limit *types.LimitExceededException
		if errors.As(err, &limit) {
			// Name each key the user has, so the alert never lists "()".
			keys, _ := k.List(ctx, user)
			if lost {
				return rotation.Credential{}, time.Time{}, &AnswerLost{Limit: LimitReached(user, keys, nil)}
			}
			return rotation.Credential{}, time.Time{}, LimitReached(user, keys, nil)
		}
		if !awserr.Transient(err) || try >= tries {
			return rotation.Credential{}, time.Time{}, awserr.Classify("iam CreateAccessKey "+user, err)
		}
		lost = true
		select {
		case <-ctx.Done():
			return rotation.Credential{}, time.Time{}, awserr.Classify("iam CreateAccessKey "+user, err)
		case <-time.After(time.Duration(try) * 200 * time.Millisecond):
		}
	}
}

// LimitReached is the one builder of *rotation.KeyLimitReached (Validate,
// CreateKey, Create): every key by id, status and creation time, and what
// note says of it (whose it is, why it stays), so on-call sees which key
// is in the way and who made it.
func LimitReached(user string, keys []Key, note func(Key) string) *rotation.KeyLimitReached {
	e := &rotation.KeyLimitReached{User: user}
	for _, key := range keys {
		d := key.ID + " (" + key.Status
		if !key.Created.IsZero() {
			d += ", created " + key.Created.UTC().Format(time.RFC3339)
		}
		if note != nil {
			if n := note(key); n != "" {
				d += ", " + n
			}
		}
		e.Keys = append(e.Keys, d+")")
	}
	return e
}

// SetStatus switches a key on or off; a key that is gone is an error.
func (k *Keys) SetStatus(ctx context.Context, user, id string, active bool) error {
	status := types.StatusTypeInactive
	if active {
		status = types.StatusTypeActive
	}
	_, err := k.api.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id), Status: status})
	if err != nil {
		return awserr.Classify(fmt.Sprintf("iam UpdateAccessKey %s %s", id, status), err)
	}
	return nil
}

// Delete removes a key. It reports false, and no error, when the key was
// already gone: a retried delete ends where the first one did (I5).
func (k *Keys) Delete(ctx context.Context, user, id string) (bool, error) {
	_, err := k.api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id)})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("iam DeleteAccessKey "+id, err)
	}
	return true, nil
}

// LastUsed is IAM's record of the key's last use: the primary evidence of
// whether anything still uses it. IAM fills it in with a delay of hours.
func (k *Keys) LastUsed(ctx context.Context, id string) (rotation.KeyUse, error) {
	out, err := k.api.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id)})
	if err != nil {
		return rotation.KeyUse{}, awserr.Classify("iam GetAccessKeyLastUsed "+id, err)
	}
	use := rotation.KeyUse{KeyID: id}
	if lu := out.AccessKeyLastUsed; lu != nil && lu.LastUsedDate != nil {
		t := lu.LastUsedDate.UTC()
		use.LastUsed, use.Service, use.Region = &t, aws.ToString(lu.ServiceName), aws.ToString(lu.Region)
	}
	return use, nil
}
