// Package kmsmac signs and verifies keyrotator's signed documents (issue
// 14: the approval answerapproval sends, the request requestrun puts into
// an execution's input) with a KMS HMAC key (KeySpec HMAC_256, KeyUsage
// GENERATE_VERIFY_MAC): only the functions granted kms:GenerateMac can
// sign, only those granted kms:VerifyMac can check, and the key never
// leaves KMS. The message is the SHA-256 of the document's canonical JSON,
// which keeps every document under GenerateMac's 4096-byte limit
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html).
package kmsmac

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

type api interface {
	GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opt ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
	VerifyMac(ctx context.Context, in *kms.VerifyMacInput, opt ...func(*kms.Options)) (*kms.VerifyMacOutput, error)
}

var _ api = (*kms.Client)(nil)

// Key is one KMS HMAC key.
type Key struct {
	api api
	id  string
}

// New is the key id (an ARN) through c.
func New(c api, id string) *Key { return &Key{api: c, id: id} }

// Sign is the MAC of doc, base64.
func (k *Key) Sign(ctx context.Context, doc []byte) (string, error) {
	sum := sha256.Sum256(doc)
	out, err := k.api.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(k.id), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: sum[:]})
	if err != nil {
		return "", awserr.Classify("kms GenerateMac "+k.id, err)
	}
	return base64.StdEncoding.EncodeToString(out.Mac), nil
}

// Verify reports whether mac (base64) is this key's MAC of doc. A MAC that
// does not verify is false, not an error: KMS answers
// KMSInvalidMacException.
func (k *Key) Verify(ctx context.Context, doc []byte, mac string) (bool, error) {
	raw, err := base64.StdEncoding.DecodeString(mac)
	if err != nil || len(raw) == 0 {
		return false, nil
	}
	sum := sha256.Sum256(doc)
	out, err := k.api.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(k.id), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: sum[:], Mac: raw})
	var invalid *types.KMSInvalidMacException
	if errors.As(err, &invalid) {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("kms VerifyMac "+k.id, err)
	}
	return out.MacValid, nil
}
