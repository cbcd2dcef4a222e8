package secret_test

import (
	"context"
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

// An issue must never fill a target that already holds someone's key
// (Issuance: "a target that holds no key yet is filled"). A secret holds a
// key when either of its two fields holds anything: a key id that is not a
// string (an object, a number, true: read, it decoded as "no key id"), or
// a secret access key with the key id left out. Each is refused before any
// write, saying which field, never its value; an empty or null field is
// no key.
func TestAttackIssueFillsOnlyASecretThatHoldsNoKey(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	const theirSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	refused := map[string]string{
		"app/id-object": `{"accessKeyId":{"id":"AKIAIOSFODNN7EXAMPLE"},"secretAccessKey":"` + theirSecret + `"}`,
		"app/id-number": `{"accessKeyId":12345}`,
		"app/id-true":   `{"accessKeyId":true}`,
		"app/secret":    `{"secretAccessKey":"` + theirSecret + `","region":"eu-west-1"}`,
		"app/secret-id": `{"accessKeyId":"","secretAccessKey":"` + theirSecret + `"}`,
		"app/secret-no": `{"accessKeyId":null,"secretAccessKey":["` + theirSecret + `"]}`,
	}
	filled := map[string]string{
		"app/nulls":  `{"accessKeyId":null,"secretAccessKey":null}`,
		"app/blanks": `{"accessKeyId":"","secretAccessKey":"","region":"x"}`,
	}
	for _, m := range []map[string]string{refused, filled} {
		for name, value := range m {
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	key := rotation.NewCredential("AKIANEW0000000000001", "new-secret-0123456789012345678901234567")
	tg := func(id string) rotation.Target {
		return rotation.Target{Type: "secret", Name: "app", SecretID: id, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
	}
	s := secret.New(sm)
	seq := sb.Server.Calls().Last()
	for id := range refused {
		for op, call := range map[string]func() error{
			"Plan":   func() error { _, err := s.Plan(ctx, tg(id), "", ""); return err },
			"Update": func() error { _, err := s.Update(ctx, tg(id), "exec-1", "", key); return err },
		} {
			err := call()
			var tf *rotation.TargetFailed
			if !errors.As(err, &tf) || !strings.Contains(tf.Reason, "an issue fills only a secret that holds no key") {
				t.Errorf("%s %s: %v, want TargetFailed (it holds a key)", op, id, err)
			}
			if err != nil && (strings.Contains(err.Error(), theirSecret) || strings.Contains(err.Error(), "12345")) {
				t.Errorf("I1: %s %s quotes the value: %v", op, id, err)
			}
		}
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("a refused issue wrote: %+v", c)
		}
	}
	for id := range filled {
		if _, err := s.Plan(ctx, tg(id), "", ""); err != nil {
			t.Errorf("Plan %s (no key): %v", id, err)
		}
		if r, err := s.Update(ctx, tg(id), "exec-1", "", key); err != nil || !r.Changed {
			t.Errorf("Update %s (no key): %+v %v", id, r, err)
		}
	}
	// A rotation's refusal of a non-string key id is unchanged.
	if _, err := s.Plan(ctx, tg("app/id-number"), "AKIAOLD", ""); err == nil || !strings.Contains(err.Error(), "not an access key id") {
		t.Errorf("a rotation of a secret whose key id is a number: %v", err)
	}
}
