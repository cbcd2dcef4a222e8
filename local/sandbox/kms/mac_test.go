package kms_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	kmssvc "github.com/keyrotator/keyrotator/local/sandbox/kms"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func code(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return "not an API error: " + err.Error()
	}
	return ae.ErrorCode()
}

func service(t *testing.T, sb *sandboxtest.Sandbox) *kmssvc.Service {
	t.Helper()
	svc, ok := sb.Server.Service("kms")
	if !ok {
		t.Fatal("no kms")
	}
	return svc.(*kmssvc.Service)
}

// HMAC keys of every spec: the MAC GenerateMac answers is RFC 2104's
// (Go's crypto/hmac over the key's material), VerifyMac accepts it and
// refuses any change to the message, the MAC or the algorithm as AWS
// documents (https://docs.aws.amazon.com/kms/latest/APIReference/API_VerifyMac.html).
func TestHMACKeys(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	c := kms.NewFromConfig(sb.Config(t))
	ctx := context.Background()
	for _, tt := range []struct {
		spec types.KeySpec
		alg  types.MacAlgorithmSpec
		size int
		hash func() hash.Hash
	}{
		{types.KeySpecHmac224, types.MacAlgorithmSpecHmacSha224, 28, sha256.New224},
		{types.KeySpecHmac256, types.MacAlgorithmSpecHmacSha256, 32, sha256.New},
		{types.KeySpecHmac384, types.MacAlgorithmSpecHmacSha384, 48, sha512.New384},
		{types.KeySpecHmac512, types.MacAlgorithmSpecHmacSha512, 64, sha512.New},
	} {
		t.Run(string(tt.spec), func(t *testing.T) {
			t.Parallel()
			created, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: tt.spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Description: aws.String("approvals")})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			md := created.KeyMetadata
			if md.KeySpec != tt.spec || md.KeyUsage != types.KeyUsageTypeGenerateVerifyMac || !slices.Equal(md.MacAlgorithms, []types.MacAlgorithmSpec{tt.alg}) || len(md.EncryptionAlgorithms) != 0 {
				t.Fatalf("KeyMetadata %+v", md)
			}
			id := aws.ToString(md.KeyId)
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.Arn})
			if err != nil || d.KeyMetadata.KeySpec != tt.spec || !slices.Equal(d.KeyMetadata.MacAlgorithms, []types.MacAlgorithmSpec{tt.alg}) {
				t.Fatalf("DescribeKey: %v %+v", err, d)
			}
			k, _ := service(t, sb).Key(id)
			if len(k.Material) != tt.size {
				t.Fatalf("key material of %d bytes, want %d", len(k.Material), tt.size)
			}
			for _, printed := range []string{fmt.Sprint(k), fmt.Sprintf("%+v %#v %x %s", k, k, k.Material, k.Material)} {
				raw := []byte(k.Material)
				if strings.Contains(printed, hex.EncodeToString(raw)) || strings.Contains(printed, base64.StdEncoding.EncodeToString(raw)) ||
					!strings.Contains(printed, "[redacted]") {
					t.Fatalf("the key material prints: %s", printed)
				}
			}
			msg := []byte(`{"purpose":"keyrotator/approval/v1","execution":"arn:aws:states:us-east-1:111122223333:execution:sm:run-1"}`)
			g, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), Message: msg, MacAlgorithm: tt.alg})
			if err != nil {
				t.Fatalf("GenerateMac: %v", err)
			}
			h := hmac.New(tt.hash, k.Material)
			h.Write(msg)
			if want := h.Sum(nil); !bytes.Equal(g.Mac, want) || aws.ToString(g.KeyId) != aws.ToString(md.Arn) || g.MacAlgorithm != tt.alg {
				t.Fatalf("GenerateMac = %x %s %s, want %x by crypto/hmac", g.Mac, aws.ToString(g.KeyId), g.MacAlgorithm, want)
			}
			v, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: md.Arn, Message: msg, Mac: g.Mac, MacAlgorithm: tt.alg})
			if err != nil || !v.MacValid || aws.ToString(v.KeyId) != aws.ToString(md.Arn) {
				t.Fatalf("VerifyMac: %v %+v", err, v)
			}
			other := slices.Clone(g.Mac)
			other[0] ^= 1
			otherAlg := types.MacAlgorithmSpecHmacSha256
			if tt.alg == otherAlg {
				otherAlg = types.MacAlgorithmSpecHmacSha512
			}
			for name, in := range map[string]*kms.VerifyMacInput{
				"another message":   {KeyId: aws.String(id), Message: append(slices.Clone(msg), ' '), Mac: g.Mac, MacAlgorithm: tt.alg},
				"another MAC":       {KeyId: aws.String(id), Message: msg, Mac: other, MacAlgorithm: tt.alg},
				"a truncated MAC":   {KeyId: aws.String(id), Message: msg, Mac: g.Mac[:16], MacAlgorithm: tt.alg},
				"another algorithm": {KeyId: aws.String(id), Message: msg, Mac: g.Mac, MacAlgorithm: otherAlg},
			} {
				want := "KMSInvalidMacException"
				if name == "another algorithm" {
					want = "InvalidKeyUsageException"
				}
				if _, err := c.VerifyMac(ctx, in); code(err) != want {
					t.Errorf("VerifyMac with %s: %v, want %s", name, err, want)
				}
			}
		})
	}
}

// What KMS refuses around MACs, in its words.
func TestMACRefusals(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	c := kms.NewFromConfig(sb.Config(t))
	ctx := context.Background()
	hk, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if ek.KeyMetadata.KeySpec != types.KeySpecSymmetricDefault || ek.KeyMetadata.KeyUsage != types.KeyUsageTypeEncryptDecrypt || len(ek.KeyMetadata.MacAlgorithms) != 0 {
		t.Fatalf("default key %+v", ek.KeyMetadata)
	}
	h, e := hk.KeyMetadata.KeyId, ek.KeyMetadata.KeyId
	sha := types.MacAlgorithmSpecHmacSha256
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"HMAC spec without GENERATE_VERIFY_MAC", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256})
			return err
		}, "ValidationException"},
		{"GENERATE_VERIFY_MAC on a symmetric key", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
			return err
		}, "ValidationException"},
		{"GenerateMac with an encryption key", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: e, Message: []byte("m"), MacAlgorithm: sha})
			return err
		}, "InvalidKeyUsageException"},
		{"GenerateMac with the key's other algorithm", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: h, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha384})
			return err
		}, "InvalidKeyUsageException"},
		{"a 4096-byte message", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: h, Message: bytes.Repeat([]byte("m"), 4096), MacAlgorithm: sha})
			return err
		}, ""},
		{"a 4097-byte message", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: h, Message: bytes.Repeat([]byte("m"), 4097), MacAlgorithm: sha})
			return err
		}, "ValidationException"},
		{"no such key", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("0b6c1e4e-0000-4000-8000-000000000000"), Message: []byte("m"), MacAlgorithm: sha})
			return err
		}, "NotFoundException"},
		{"DryRun", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: h, Message: []byte("m"), MacAlgorithm: sha, DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperationException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := code(tt.call()); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// An HMAC key made by a template keeps its material across a restart
// (Snapshot, Restore), and its material is a secret the leak check knows.
func TestHMACKeyFromTemplateSurvivesRestore(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	k := service(t, sb)
	got, err := k.Create(context.Background(), cfn.Resource{LogicalID: "ApprovalKey", Type: "AWS::KMS::Key", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Create(context.Background(), cfn.Resource{Type: "AWS::KMS::Key", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"KeySpec": "HMAC_256"}}); err == nil {
		t.Error("an HMAC key without KeyUsage GENERATE_VERIFY_MAC was made")
	}
	c := kms.NewFromConfig(sb.Config(t))
	g, err := c.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(got.Attrs["Arn"]), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := k.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := sandboxtest.Start(t, fullsandbox.Options{})
	if err := service(t, other).Restore(snap); err != nil {
		t.Fatal(err)
	}
	v, err := kms.NewFromConfig(other.Config(t)).VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: aws.String(got.Ref), Message: []byte("m"), Mac: g.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil || !v.MacValid {
		t.Fatalf("VerifyMac after Restore: %v", err)
	}
	secrets := sb.Secrets()
	if !slices.ContainsFunc(secrets, func(s leak.Secret) bool { return s.Kind == sandboxtest.KindKMS }) {
		t.Error("the leak check does not know the key's material")
	}
	var keys []map[string]any
	sb.AdminCall(t, "GET", "/kms/keys", nil, &keys)
	if b, _ := json.Marshal(keys); len(keys) == 0 || strings.Contains(string(b), "material") {
		t.Errorf("the admin API shows key material: %s", b)
	}
}

// Where the sandbox enforces IAM, GenerateMac and VerifyMac are decided by
// the key policy and the caller's identity policies, as KMS does: the key
// policy must allow the caller, directly or by delegating to the account.
func TestMACAuthorization(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{EnforceIAM: true})
	k := service(t, sb)
	signer := sb.User(t, "signer", 1)[0]
	verifier := sb.User(t, "verifier", 1)[0]
	delegating, err := k.NewKey("us-east-1", kmssvc.KeyOptions{KeySpec: "HMAC_256", KeyUsage: kmssvc.UsageMAC})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := k.NewKey("us-east-1", kmssvc.KeyOptions{KeySpec: "HMAC_256", KeyUsage: kmssvc.UsageMAC, Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/verifier"},"Action":"kms:VerifyMac","Resource":"*"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	allow := func(action, key string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%q,"Resource":%q}]}`, action, key))
	}
	if err := sb.IAM.PutUserPolicy("signer", "mac", allow("kms:GenerateMac", "*")); err != nil {
		t.Fatal(err)
	}
	admin := kms.NewFromConfig(sb.Config(t))
	msg := []byte("m")
	sha := types.MacAlgorithmSpecHmacSha256
	macOf := func(key string) []byte {
		g, err := admin.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(key), Message: msg, MacAlgorithm: sha})
		if err != nil {
			t.Fatal(err)
		}
		return g.Mac
	}
	sc := kms.NewFromConfig(sb.ConfigAs(t, signer.AccessKeyID, signer.SecretAccessKey, ""))
	vc := kms.NewFromConfig(sb.ConfigAs(t, verifier.AccessKeyID, verifier.SecretAccessKey, ""))
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"identity Allow, key policy delegates to the account", func() error {
			_, err := sc.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(delegating.ID), Message: msg, MacAlgorithm: sha})
			return err
		}, ""},
		{"identity Allow, key policy names only someone else", func() error {
			_, err := sc.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(direct.ID), Message: msg, MacAlgorithm: sha})
			return err
		}, "AccessDeniedException"},
		{"GenerateMac does not grant VerifyMac", func() error {
			_, err := sc.VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: aws.String(delegating.ID), Message: msg, Mac: macOf(delegating.ID), MacAlgorithm: sha})
			return err
		}, "AccessDeniedException"},
		{"the key policy names the verifier", func() error {
			_, err := vc.VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: aws.String(direct.ARN), Message: msg, Mac: macOf(direct.ID), MacAlgorithm: sha})
			return err
		}, ""},
		{"no identity Allow under a delegating key policy", func() error {
			_, err := vc.VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: aws.String(delegating.ID), Message: msg, Mac: macOf(delegating.ID), MacAlgorithm: sha})
			return err
		}, "AccessDeniedException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(tt.call()); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
