package secretsmanager_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Tags as AWS keeps them: CreateSecret's, TagResource adds or replaces by
// key, UntagResource removes by key, DescribeSecret shows them.
func TestTags(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("app/t"), SecretString: aws.String("{}"), Tags: []types.Tag{tag("a", "1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String("app/t"), Tags: []types.Tag{tag("a", "2"), tag("keyrotator:kind", "connection")}}); err != nil {
		t.Fatal(err)
	}
	got := func() map[string]string {
		d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("app/t")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tg := range d.Tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	if m := got(); len(m) != 2 || m["a"] != "2" || m["keyrotator:kind"] != "connection" {
		t.Fatalf("after TagResource: %v", m)
	}
	if _, err := c.UntagResource(ctx, &sm.UntagResourceInput{SecretId: aws.String("app/t"), TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if m := got(); len(m) != 1 || m["keyrotator:kind"] != "connection" {
		t.Fatalf("after UntagResource: %v", m)
	}
	if _, err := c.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String("app/none"), Tags: []types.Tag{tag("a", "1")}}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("tagging a missing secret: %v", err)
	}
}
