package kms_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	kmssvc "github.com/keyrotator/keyrotator/local/sandbox/kms"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The golden template's key, provisioned, then read back by the SDK's KMS
// client (JSON 1.1, TrentService) and by the Go method an evaluator uses.
func TestKeyFromTemplate(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	svc, _ := sb.Server.Service("kms")
	k := svc.(*kmssvc.Service)
	policy := map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
		map[string]any{"Effect": "Allow", "Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"}, "Action": []any{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"},
	}}
	got, err := k.Create(context.Background(), cfn.Resource{LogicalID: "RotatorAlertKey89F637B3", Type: "AWS::KMS::Key", Region: "us-east-1", Account: "111122223333", Partition: "aws",
		Properties: map[string]any{"Description": "keyrotator: alerts", "EnableKeyRotation": true, "KeyPolicy": policy}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Attrs["KeyId"] != got.Ref || got.Attrs["Arn"] != "arn:aws:kms:us-east-1:111122223333:key/"+got.Ref {
		t.Fatalf("Provisioned %+v", got)
	}
	c := kms.NewFromConfig(sb.Config(t))
	ctx := context.Background()
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(got.Attrs["Arn"])})
	if err != nil || aws.ToString(d.KeyMetadata.KeyId) != got.Ref || d.KeyMetadata.KeyState != types.KeyStateEnabled ||
		d.KeyMetadata.KeyManager != types.KeyManagerTypeCustomer || aws.ToString(d.KeyMetadata.Description) != "keyrotator: alerts" {
		t.Fatalf("DescribeKey: %v %+v", err, d)
	}
	p, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(got.Ref)})
	if err != nil {
		t.Fatalf("GetKeyPolicy: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(p.Policy)), &back); err != nil || len(back["Statement"].([]any)) != 2 {
		t.Fatalf("GetKeyPolicy policy %q: %v", aws.ToString(p.Policy), err)
	}
	if pol, ok := k.KeyPolicy(got.Attrs["Arn"]); !ok || pol != aws.ToString(p.Policy) {
		t.Fatalf("KeyPolicy by ARN: %v %q", ok, pol)
	}
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(got.Ref)})
	if err != nil || !rot.KeyRotationEnabled {
		t.Fatalf("GetKeyRotationStatus: %v %+v", err, rot)
	}

	for _, id := range []string{"0b6c1e4e-0000-4000-8000-000000000000", "arn:aws:kms:eu-west-1:111122223333:key/" + got.Ref} {
		_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if nf := (*types.NotFoundException)(nil); !errors.As(err, &nf) {
			t.Errorf("DescribeKey %s: %v, want NotFoundException", id, err)
		}
	}
	if _, ok := k.KeyPolicy("nope"); ok {
		t.Error("KeyPolicy of no key")
	}
}

func TestKeyWithoutPolicyGetsTheDefault(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	svc, _ := sb.Server.Service("kms")
	k := svc.(*kmssvc.Service)
	got, err := k.Create(context.Background(), cfn.Resource{Type: "AWS::KMS::Key", Region: "us-east-1", Account: "111122223333", Partition: "aws", Properties: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if pol, _ := k.KeyPolicy(got.Ref); pol != kmssvc.DefaultPolicy("aws", "111122223333") {
		t.Fatalf("policy %s", pol)
	}
}
