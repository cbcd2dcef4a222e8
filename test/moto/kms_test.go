package moto

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// keyView is what both sides are compared on for a key: the fields that
// make it an HMAC key (moto's KeyMetadata carries more, and other fields).
func keyView(md *types.KeyMetadata) map[string]any {
	if md == nil {
		return nil
	}
	return map[string]any{"KeyId": aws.ToString(md.KeyId), "Arn": aws.ToString(md.Arn), "KeySpec": md.KeySpec, "KeyUsage": md.KeyUsage,
		"MacAlgorithms": md.MacAlgorithms, "EncryptionAlgorithms": md.EncryptionAlgorithms, "KeyState": md.KeyState, "Enabled": md.Enabled}
}

// macView: the two sides' keys differ, so their MACs do; what must agree
// is the key named, the algorithm and the MAC's length.
func macView(out *kms.GenerateMacOutput) map[string]any {
	return map[string]any{"KeyId": aws.ToString(out.KeyId), "MacAlgorithm": out.MacAlgorithm, "MacLength": len(out.Mac)}
}

// TestKMSMac: HMAC keys, GenerateMac and VerifyMac on both sides, with the
// refusals keyrotator's approval signing relies on (a changed message or
// MAC is KMSInvalidMacException; an encryption key is InvalidKeyUsageException).
func TestKMSMac(t *testing.T) {
	t.Parallel()
	w := start(t)
	p := w.pair(t)
	c := ctx(t)
	create := func(step, sym string, spec types.KeySpec, usage types.KeyUsageType) {
		p.do(step, func(s *side) (any, error) {
			out, err := s.kms.CreateKey(c, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
			if err != nil {
				return nil, err
			}
			s.bind(sym, aws.ToString(out.KeyMetadata.KeyId))
			s.bind(sym+".arn", aws.ToString(out.KeyMetadata.Arn))
			return keyView(out.KeyMetadata), nil
		})
	}
	create("CreateKey HMAC_256", "hmac", types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
	create("CreateKey HMAC_512", "hmac512", types.KeySpecHmac512, types.KeyUsageTypeGenerateVerifyMac)
	create("CreateKey default", "enc", "", "")
	p.do("DescribeKey of the HMAC key", func(s *side) (any, error) {
		out, err := s.kms.DescribeKey(c, &kms.DescribeKeyInput{KeyId: aws.String(s.id("hmac"))})
		if err != nil {
			return nil, err
		}
		return keyView(out.KeyMetadata), nil
	})
	msg := []byte(`{"purpose":"keyrotator/approval/v1","execution":"run-1"}`)
	macs := map[*side][]byte{}
	gen := func(step, key string, alg types.MacAlgorithmSpec, keep bool) {
		p.do(step, func(s *side) (any, error) {
			out, err := s.kms.GenerateMac(c, &kms.GenerateMacInput{KeyId: aws.String(s.id(key)), Message: msg, MacAlgorithm: alg})
			if err != nil {
				return nil, err
			}
			if keep {
				macs[s] = out.Mac
			}
			return macView(out), nil
		})
	}
	gen("GenerateMac", "hmac", types.MacAlgorithmSpecHmacSha256, true)
	gen("GenerateMac HMAC_SHA_512 with an HMAC_512 key", "hmac512", types.MacAlgorithmSpecHmacSha512, false)
	gen("GenerateMac with an encryption key", "enc", types.MacAlgorithmSpecHmacSha256, false)
	gen("GenerateMac with an algorithm the key does not support", "hmac", types.MacAlgorithmSpecHmacSha512, false)
	gen("GenerateMac with no such algorithm", "hmac", "HMAC_SHA_1", false)
	gen("GenerateMac with no such key", "0b6c1e4e-0000-4000-8000-000000000000", types.MacAlgorithmSpecHmacSha256, false)
	verify := func(step string, edit func(m, mac []byte) ([]byte, []byte)) {
		p.do(step, func(s *side) (any, error) {
			m, mac := edit(bytes.Clone(msg), bytes.Clone(macs[s]))
			return s.kms.VerifyMac(c, &kms.VerifyMacInput{KeyId: aws.String(s.id("hmac.arn")), Message: m, Mac: mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		})
	}
	verify("VerifyMac", func(m, mac []byte) ([]byte, []byte) { return m, mac })
	verify("VerifyMac of another message", func(m, mac []byte) ([]byte, []byte) { return append(m, ' '), mac })
	verify("VerifyMac of another MAC", func(m, mac []byte) ([]byte, []byte) { mac[0] ^= 1; return m, mac })
}
