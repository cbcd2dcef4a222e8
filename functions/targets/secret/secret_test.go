package secret_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func TestUpdate(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	put := func(name, value string) {
		t.Helper()
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	put("app/ok", `{"accessKeyId":"AKIAOLD","secretAccessKey":"old-secret","region":"eu-west-1"}`)
	put("app/text", `AKIAOLD:old-secret`)
	put("app/foreign", `{"accessKeyId":"AKIAOTHER","secretAccessKey":"x"}`)
	put("app/custom", `{"id":"AKIAOLD","key":"old-secret"}`)
	key := rotation.NewCredential("AKIANEW", "new-secret-0123456789012345678901234567")
	tg := func(id string) rotation.Target {
		return rotation.Target{Type: "secret", Name: "app", SecretID: id, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
	}
	s := secret.New(sm)

	r, err := s.Update(ctx, tg("app/ok"), "exec-1", "AKIAOLD", key)
	if err != nil || !r.Changed || r.PreviousKeyID != "AKIAOLD" || r.NewKeyID != "AKIANEW" {
		t.Fatalf("Update: %v %+v", err, r)
	}
	got, _ := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/ok")})
	var v map[string]string
	_ = json.Unmarshal([]byte(aws.ToString(got.SecretString)), &v)
	if v["accessKeyId"] != "AKIANEW" || v["secretAccessKey"] != key.Secret() || v["region"] != "eu-west-1" {
		t.Fatalf("secret after: %v", v)
	}
	again, err := s.Update(ctx, tg("app/ok"), "exec-1", "AKIAOLD", key)
	if err != nil || again.Changed || again.Version != r.Version || again.PreviousKeyID != "AKIAOLD" {
		t.Fatalf("a retry must write nothing new: %v %+v", err, again)
	}
	versions, _ := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("app/ok")})
	if len(versions.Versions) != 2 {
		t.Fatalf("%d versions, want the original and one new", len(versions.Versions))
	}

	custom := tg("app/custom")
	custom.KeyIDField, custom.SecretField = "id", "key"
	if r, err := s.Update(ctx, custom, "exec-1", "AKIAOLD", key); err != nil || !r.Changed {
		t.Fatalf("custom fields: %v %+v", err, r)
	}

	for name, id := range map[string]string{"missing": "app/none", "not JSON": "app/text", "another user's key": "app/foreign"} {
		_, err := s.Update(ctx, tg(id), "exec-1", "AKIAOLD", key)
		var tf *rotation.TargetFailed
		if !errors.As(err, &tf) {
			t.Errorf("%s: got %v, want TargetFailed", name, err)
			continue
		}
		if strings.Contains(err.Error(), "old-secret") || strings.Contains(err.Error(), key.Secret()) {
			t.Errorf("%s: the error quotes a secret: %v", name, err)
		}
	}
}

// A dry run's Plan reads the secret, says what it would write, and writes
// nothing; a secret Update would refuse, Plan refuses the same way.
func TestPlan(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	for name, value := range map[string]string{"app/ok": `{"accessKeyId":"AKIAOLD","secretAccessKey":"old-secret","region":"eu-west-1"}`, "app/foreign": `{"accessKeyId":"AKIAIOSFODNN7EXAMPLE","secretAccessKey":"x"}`} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	tg := func(id string) rotation.Target {
		return rotation.Target{Type: "secret", Name: "app", SecretID: id, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
	}
	seq := sb.Server.Calls().Last()
	r, err := secret.New(sm).Plan(ctx, tg("app/ok"), "AKIAOLD", "")
	if err != nil || r.Changed || r.PreviousKeyID != "AKIAOLD" || len(r.Planned) != 1 || !strings.Contains(r.Planned[0], "keeping its 1 other field") {
		t.Fatalf("plan %+v, %v", r, err)
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("Plan wrote: %+v", c)
		}
	}
	var tf *rotation.TargetFailed
	if _, err := secret.New(sm).Plan(ctx, tg("app/foreign"), "AKIAOLD", ""); !errors.As(err, &tf) || !strings.Contains(tf.Reason, "AKIAIOSFODNN7EXAMPLE") {
		t.Errorf("a foreign key: %v", err)
	}
}
