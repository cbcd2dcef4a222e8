package kms

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/http"
	"sort"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// UsageMAC is the KeyUsage of an HMAC key.
const UsageMAC = "GENERATE_VERIFY_MAC"

// HMAC keys: each KeySpec's key length (the key material is as long as the
// spec says, in bits) and the one MacAlgorithm it supports.
// https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html
var (
	macKeyBytes  = map[string]int{"HMAC_224": 224 / 8, "HMAC_256": 256 / 8, "HMAC_384": 384 / 8, "HMAC_512": 512 / 8}
	macAlgorithm = map[string]string{"HMAC_224": "HMAC_SHA_224", "HMAC_256": "HMAC_SHA_256", "HMAC_384": "HMAC_SHA_384", "HMAC_512": "HMAC_SHA_512"}
	macHash      = map[string]func() hash.Hash{"HMAC_SHA_224": sha256.New224, "HMAC_SHA_256": sha256.New, "HMAC_SHA_384": sha512.New384, "HMAC_SHA_512": sha512.New}
)

// Limits of GenerateMac and VerifyMac
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_VerifyMac.html).
const (
	maxMessage = 4096
	maxMac     = 6144
)

// macRequest is GenerateMac's and VerifyMac's input. Message and Mac are
// blobs: base64 in the JSON body.
type macRequest struct {
	Message      []byte `json:"Message"`
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
	DryRun       bool   `json:"DryRun"`
}

// mac checks a MAC request against key and computes the MAC of its message.
func (s *Service) mac(c *sandbox.Call, key Key) (macRequest, []byte, error) {
	var in macRequest
	if err := c.DecodeJSON(&in); err != nil {
		return in, nil, err
	}
	switch {
	case in.Message == nil:
		return in, nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null")
	case len(in.Message) == 0 || len(in.Message) > maxMessage:
		return in, nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and %d", maxMessage)
	case in.MacAlgorithm == "":
		return in, nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'macAlgorithm' failed to satisfy constraint: Member must not be null")
	case macHash[in.MacAlgorithm] == nil:
		return in, nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [%s]", in.MacAlgorithm, strings.Join(macAlgorithms(), ", "))
	case c.Action == "VerifyMac" && (len(in.Mac) == 0 || len(in.Mac) > maxMac):
		return in, nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at 'mac' failed to satisfy constraint: Member must have length between 1 and %d", maxMac)
	case !key.Enabled:
		return in, nil, sandbox.Errorf(400, "DisabledException", "%s is disabled.", key.ARN)
	case key.KeyUsage != UsageMAC || key.Material == nil:
		return in, nil, sandbox.Errorf(400, "InvalidKeyUsageException", "%s key usage is %s which is not valid for %s.", key.ARN, key.KeyUsage, c.Action)
	case macAlgorithm[key.KeySpec] != in.MacAlgorithm:
		return in, nil, sandbox.Errorf(400, "InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s.", in.MacAlgorithm, key.KeySpec)
	case in.DryRun:
		return in, nil, sandbox.Errorf(http.StatusPreconditionFailed, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	h := hmac.New(macHash[in.MacAlgorithm], key.Material)
	h.Write(in.Message)
	return in, h.Sum(nil), nil
}

func macAlgorithms() []string {
	out := make([]string, 0, len(macHash))
	for a := range macHash {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// generateMac is GenerateMac: the HMAC of Message under the key, base64.
func (s *Service) generateMac(c *sandbox.Call, key Key) (any, error) {
	in, mac, err := s.mac(c, key)
	if err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"keyId": key.ARN, "macAlgorithm": in.MacAlgorithm})
	return map[string]any{"KeyId": key.ARN, "Mac": mac, "MacAlgorithm": in.MacAlgorithm}, nil
}

// verifyMac is VerifyMac: MacValid true, or KMSInvalidMacException when the
// MAC is not Message's under the key and algorithm.
func (s *Service) verifyMac(c *sandbox.Call, key Key) (any, error) {
	in, mac, err := s.mac(c, key)
	if err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"keyId": key.ARN, "macAlgorithm": in.MacAlgorithm})
	if !hmac.Equal(mac, in.Mac) {
		return nil, sandbox.Errorf(400, "KMSInvalidMacException", "")
	}
	return map[string]any{"KeyId": key.ARN, "MacValid": true, "MacAlgorithm": in.MacAlgorithm}, nil
}
