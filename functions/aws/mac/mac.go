// Package mac makes and checks HMACs with the stack's KMS HMAC key
// (KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC): the key never leaves
// KMS, so only a role granted kms:GenerateMac on it can sign, and only one
// granted kms:VerifyMac can check.
// https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html
package mac

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

// KeyEnv is the environment variable the CDK construct sets on the
// functions that sign or verify: the HMAC key's ARN.
const KeyEnv = "KEYROTATOR_SIGNING_KEY"

// Algorithm is the MAC algorithm of the key.
const Algorithm = types.MacAlgorithmSpecHmacSha256

// MaxMessage is the longest message KMS MACs: 4,096 bytes
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html#KMS-GenerateMac-request-Message).
const MaxMessage = 4096

type api interface {
	GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opt ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
	VerifyMac(ctx context.Context, in *kms.VerifyMacInput, opt ...func(*kms.Options)) (*kms.VerifyMacOutput, error)
}

// Key is the HMAC key, by ARN.
type Key struct {
	api api
	id  string
}

// New is the key id of the client c.
func New(c api, keyID string) *Key { return &Key{api: c, id: keyID} }

// Sign is the MAC of msg, base64.
func (k *Key) Sign(ctx context.Context, msg []byte) (string, error) {
	if k.id == "" {
		return "", errors.New("mac: no signing key configured (" + KeyEnv + ")")
	}
	if len(msg) > MaxMessage {
		return "", fmt.Errorf("mac: a %d-byte message is longer than KMS takes (%d)", len(msg), MaxMessage)
	}
	out, err := k.api.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(k.id), MacAlgorithm: Algorithm, Message: msg})
	if err != nil {
		return "", awserr.Classify("kms GenerateMac", err)
	}
	return base64.StdEncoding.EncodeToString(out.Mac), nil
}

// Verify says whether mac (base64) is the key's MAC of msg. A MAC that is
// not base64, or that KMS finds wrong (KMSInvalidMacException, or
// MacValid false), is false with no error; an error is KMS not answering
// (transient: Retryable) or refusing the call (AccessDenied).
// https://docs.aws.amazon.com/kms/latest/APIReference/API_VerifyMac.html
func (k *Key) Verify(ctx context.Context, msg []byte, mac string) (bool, error) {
	if k.id == "" {
		return false, errors.New("mac: no signing key configured (" + KeyEnv + ")")
	}
	sum, err := base64.StdEncoding.DecodeString(mac)
	if err != nil || len(sum) == 0 || len(msg) > MaxMessage {
		return false, nil
	}
	out, err := k.api.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(k.id), MacAlgorithm: Algorithm, Message: msg, Mac: sum})
	if _, bad := errors.AsType[*types.KMSInvalidMacException](err); bad {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("kms VerifyMac", err)
	}
	return out.MacValid, nil
}
