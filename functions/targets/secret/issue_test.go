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

// An issue (oldKeyID ""; docs/design.md, Issuance) fills a secret that
// holds no key id and creates one that does not exist; it refuses a secret
// that holds any key, and never creates one by ARN or under a keyrotator
// stack's own names. Plan writes nothing; a retry of Update writes nothing new.
func TestIssue(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	for name, value := range map[string]string{
		"app/empty":   `{"region":"eu-west-1"}`,
		"app/blank":   `{"accessKeyId":"","region":"eu-west-1"}`,
		"app/held":    `{"accessKeyId":"AKIAIOSFODNN7EXAMPLE","secretAccessKey":"held-secret"}`,
		"app/garbage": `{"accessKeyId":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","secretAccessKey":"x"}`,
	} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/novalue")}); err != nil {
		t.Fatal(err)
	}
	key := rotation.NewCredential("AKIANEW0000000000001", "new-secret-0123456789012345678901234567")
	tg := func(id string) rotation.Target {
		return rotation.Target{Type: "secret", Name: "app", SecretID: id, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
	}
	s := secret.New(sm)
	value := func(id string) map[string]string {
		t.Helper()
		got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var v map[string]string
		_ = json.Unmarshal([]byte(aws.ToString(got.SecretString)), &v)
		return v
	}

	for _, id := range []string{"app/empty", "app/blank", "app/novalue", "app/new"} {
		seq := sb.Server.Calls().Last()
		p, err := s.Plan(ctx, tg(id), "", "")
		if err != nil || len(p.Planned) != 1 || p.Where == "" {
			t.Fatalf("%s: plan %+v, %v", id, p, err)
		}
		for _, c := range sb.Calls(t, seq) {
			if c.Write {
				t.Errorf("%s: Plan wrote: %+v", id, c)
			}
		}
		r, err := s.Update(ctx, tg(id), "exec-1", "", key)
		if err != nil || !r.Changed || r.NewKeyID != key.AccessKeyID || r.PreviousKeyID != "" || r.Version == "" {
			t.Fatalf("%s: Update %+v, %v", id, r, err)
		}
		if v := value(id); v["accessKeyId"] != key.AccessKeyID || v["secretAccessKey"] != key.Secret() {
			t.Errorf("%s: after the issue the secret holds %q", id, v["accessKeyId"])
		} else if id == "app/empty" && v["region"] != "eu-west-1" {
			t.Errorf("%s: the other fields went: %v", id, v)
		}
		again, err := s.Update(ctx, tg(id), "exec-1", "", key)
		if err != nil || again.Changed || again.Version != r.Version {
			t.Errorf("%s: a retry must write nothing new: %+v, %v", id, again, err)
		}
	}

	// Refused, before anything is written: a secret that holds a key (shown
	// only if it has a key id's shape), a name under keyrotator's own, an ARN.
	seq := sb.Server.Calls().Last()
	for id, want := range map[string]string{
		"app/held":                      "AKIAIOSFODNN7EXAMPLE",
		"app/garbage":                   "not an access key id",
		"keyrotator/users/bob":          "keeps its own secrets",
		"other-stack/connections/auth0": "keeps its own secrets",
		"arn:aws:secretsmanager:us-east-1:111122223333:secret:gone-AbCdEf": "by ARN",
	} {
		for op, call := range map[string]func() error{
			"Plan":   func() error { _, err := s.Plan(ctx, tg(id), "", ""); return err },
			"Update": func() error { _, err := s.Update(ctx, tg(id), "exec-2", "", key); return err },
		} {
			err := call()
			var tf *rotation.TargetFailed
			if !errors.As(err, &tf) || !strings.Contains(tf.Reason, want) {
				t.Errorf("%s %s: got %v, want TargetFailed saying %q", op, id, err, want)
			}
			if err != nil && (strings.Contains(err.Error(), "held-secret") || strings.Contains(err.Error(), "wJalrXUtnFEMI") || strings.Contains(err.Error(), key.Secret())) {
				t.Errorf("I1: %s %s quotes a secret: %v", op, id, err)
			}
		}
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("a refused issue wrote: %+v", c)
		}
	}

	// A rotation (an old key) still refuses a secret that holds no key.
	var tf *rotation.TargetFailed
	if _, err := s.Plan(ctx, tg("app/novalue"), "AKIAOLD", ""); err == nil {
		t.Error("a rotation accepted a secret that holds the new key but not the old one")
	} else if _, err := s.Plan(ctx, tg("app/nothing"), "AKIAOLD", ""); !errors.As(err, &tf) || !strings.Contains(tf.Reason, "does not exist") {
		t.Errorf("a rotation's missing secret: %v", err)
	}
}
