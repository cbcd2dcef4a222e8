package sandboxtest_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// fakeTB records the canary's failures instead of failing the real test.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

// world with one secret of each kind: an IAM user's key, a Secrets Manager
// value (JSON, two versions), an Auth0 tenant, a SORACOM operator.
func seeded(t *testing.T) (*sandboxtest.Sandbox, string, string) {
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "app", 1)
	if _, err := sb.Auth0.AddTenant(auth0.TenantConfig{Name: "prod", ClientID: "cid", ClientSecret: "auth0-client-secret-0123456789"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Soracom.AddOperator(soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{{Name: "k", AuthKeyID: "keyId-k", AuthKey: "secret-soracom-authkey-0123456789"}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	old := "old-application-secret-0123456789"
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/creds"), SecretString: aws.String(`{"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"` + old + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/creds"), SecretString: aws.String(`{"secretAccessKey":"new-application-secret-0123456789"}`)}); err != nil {
		t.Fatal(err)
	}
	return sb, keys[0].SecretAccessKey, old
}

func TestSecretsHoldEveryKind(t *testing.T) {
	t.Parallel()
	sb, iamSecret, old := seeded(t)
	secrets := sb.Secrets()
	kinds := leak.Kinds(secrets)
	for _, k := range []string{sandboxtest.KindIAM, sandboxtest.KindSecretsManager, sandboxtest.KindAuth0, sandboxtest.KindSoracom} {
		if !slices.Contains(kinds, k) {
			t.Errorf("Secrets has no %s: kinds %v", k, kinds)
		}
	}
	var values []string
	for _, s := range secrets {
		values = append(values, s.Value)
	}
	for _, want := range []string{iamSecret, old, "new-application-secret-0123456789", "auth0-client-secret-0123456789", "secret-soracom-authkey-0123456789"} {
		if !slices.Contains(values, want) {
			t.Errorf("Secrets misses a value of length %d", len(want))
		}
	}
	if slices.Contains(values, "AKIAEXAMPLE") {
		t.Error("an access key id is searched for as a secret")
	}
	f := &fakeTB{}
	emitted, err := sb.Emitted()
	if err != nil {
		t.Fatal(err)
	}
	leak.Check(f, secrets, emitted)
	if len(f.errs) != 0 {
		t.Fatalf("a clean sandbox fails the canary: %q", f.errs)
	}
}

func TestCanaryFailsOnAPlantedLeak(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		plant func(iamSecret, old string) string
	}{
		{"an IAM secret in an alert", func(s, _ string) string { return "rotated; new secret " + s }},
		{"an old version's value, base64", func(_, old string) string { return base64.StdEncoding.EncodeToString([]byte(old)) }},
		{"half an Auth0 client secret", func(_, _ string) string { return "client " + "auth0-client-secret-0123456789"[5:27] }},
		{"a SORACOM AuthKey, JSON-escaped", func(_, _ string) string { return `{\"authKey\":\"secret-soracom-authkey-0123456789\"}` }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb, iamSecret, old := seeded(t)
			ctx := context.Background()
			n := sns.NewFromConfig(sb.Config(t))
			topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("alerts")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(c.plant(iamSecret, old))}); err != nil {
				t.Fatal(err)
			}
			f := &fakeTB{}
			emitted, err := sb.Emitted()
			if err != nil {
				t.Fatal(err)
			}
			leak.Check(f, sb.Secrets(), emitted)
			if len(f.errs) == 0 || !strings.Contains(strings.Join(f.errs, "\n"), "SNS messages") {
				t.Fatalf("the canary missed a leak into an SNS message: %q", f.errs)
			}
		})
	}
}
