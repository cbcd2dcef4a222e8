package secret_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// maxSecretString is Secrets Manager's limit on a SecretString (65,536 bytes).
const maxSecretString = 65536

// TestUpdateKeepsOtherFieldsExactly: "keeping every other field" means
// byte for byte (as JSON values): a secret's numbers beyond float64's
// precision, its 1.0s and its HTML characters come back as the application
// wrote them. Decoding into map[string]any and re-encoding rounded
// 123456789012345678901 to 123456789012345680000 and escaped "<" as \u003c.
func TestUpdateKeepsOtherFieldsExactly(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	const old = "AKIAIOSFODNN7OLDKEY1"
	value := `{"accessKeyId":"` + old + `","secretAccessKey":"old","account":123456789012345678901,"ratio":1.0,` +
		`"note":"<a href=\"x\">&amp;</a>","nested":{"n":10000000000000000001,"list":[1.50,"é",null,true]}}`
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/exact"), SecretString: aws.String(value)}); err != nil {
		t.Fatal(err)
	}
	tg := rotation.Target{Type: "secret", Name: "app", SecretID: "app/exact", KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
	key := rotation.NewCredential("AKIAIOSFODNN7NEWKEY1", "new-secret-0123456789012345678901234567")
	if _, err := secret.New(sm).Update(ctx, tg, "exec-1", old, key); err != nil {
		t.Fatal(err)
	}
	got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/exact")})
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(aws.ToString(got.SecretString)), &after); err != nil {
		t.Fatal(err)
	}
	for k, v := range before {
		if k == tg.KeyIDField || k == tg.SecretField {
			continue
		}
		if !bytes.Equal(after[k], v) {
			t.Errorf("field %s was %s, is %s after the update", k, v, after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d fields after the update, want %d", len(after), len(before))
	}
	var id, sec string
	_ = json.Unmarshal(after[tg.KeyIDField], &id)
	_ = json.Unmarshal(after[tg.SecretField], &sec)
	if id != key.AccessKeyID || sec != key.Secret() {
		t.Errorf("the key fields hold %q and a secret equal to the new one: %v", id, sec == key.Secret())
	}
}

// TestPlanRefusesASecretTheKeyWillNotFit (I7): a secret that the new key
// would grow past Secrets Manager's 65,536 bytes passes the preflight today
// and fails at PutSecretValue, after CreateKey made a key. The plan must
// refuse it, naming the limit, with no write; a secret that fits (however
// many characters encoding/json would escape) must pass the plan and update.
func TestPlanRefusesASecretTheKeyWillNotFit(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	const old = "AKIAIOSFODNN7OLDKEY1"
	doc := func(pad string) string {
		return `{"accessKeyId":"` + old + `","secretAccessKey":"","pad":"` + pad + `"}`
	}
	base := len(doc(""))
	tests := []struct {
		name, value string
		fits        bool
	}{
		// 40 bytes short of the limit: the 40-character secret fills it exactly.
		{"exactly full", doc(strings.Repeat("a", maxSecretString-base-40)), true},
		{"one byte over", doc(strings.Repeat("a", maxSecretString-base-39)), false},
		// 15,000 "<": escaped as \u003c it would be 90,000 bytes.
		{"html characters", doc(strings.Repeat("<", 15000)), true},
	}
	key := rotation.NewCredential("AKIAIOSFODNN7NEWKEY1", "new-secret-0123456789012345678901234567")
	tgt := secret.New(sm)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "app/" + strings.ReplaceAll(tt.name, " ", "-")
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(tt.value)}); err != nil {
				t.Fatal(err)
			}
			tg := rotation.Target{Type: "secret", Name: "app", SecretID: name, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
			seq := sb.Server.Calls().Last()
			_, perr := tgt.Plan(ctx, tg, old, "")
			for _, c := range sb.Calls(t, seq) {
				if c.Write {
					t.Errorf("the plan wrote: %s", c.Action)
				}
			}
			var tf *rotation.TargetFailed
			if !tt.fits {
				if !errors.As(perr, &tf) || !strings.Contains(tf.Reason, "65536") {
					t.Fatalf("plan of a secret the key would grow past the limit: %v, want TargetFailed naming 65536 bytes", perr)
				}
				return
			}
			if perr != nil {
				t.Fatalf("plan: %v", perr)
			}
			if _, err := tgt.Update(ctx, tg, "exec-1", old, key); err != nil {
				t.Fatalf("update after a plan that passed: %v", err)
			}
		})
	}
}

// TestSpellingsOfOwnSecrets: a secret target naming one of keyrotator's own
// secrets by any spelling is refused, never read into an error, never
// written: the name in another case or with a trailing slash, an ARN of
// another region, an ARN with another random suffix, a traversal — and a
// record whose tags were removed (or were lost when it was re-created from
// a backup), which keyrotator still knows by its KEYROTATOR_CLAIM stage.
func TestSpellingsOfOwnSecrets(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	const old = "AKIAIOSFODNN7OLDKEY1"
	const canary = "Zq9/CANARY+wJalrXUtnFEMI/K7MDENGbPxRfiCY"
	value := `{"accessKeyId":"` + old + `","secretAccessKey":"` + canary + `","execution":"arn:x","oldAccessKeyId":"AKIAIOSFODNN7OLDEST1"}`
	rec, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("keyrotator/users/victim"), SecretString: aws.String(value),
		Tags: []types.Tag{{Key: aws.String(secret.Own), Value: aws.String("record")}, {Key: aws.String(secret.User), Value: aws.String("victim")}}})
	if err != nil {
		t.Fatal(err)
	}
	// A record with no tag at all: the stage keyrotator's lock leaves on it
	// is the same as every record's.
	bare, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ops/users/untagged"), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: bare.ARN, SecretString: aws.String(`{"execution":"arn:x","oldAccessKeyId":"` + old + `"}`),
		ClientRequestToken: aws.String("claim-0123456789abcdef0123456789abcdef"), VersionStages: []string{"KEYROTATOR_CLAIM"}}); err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(rec.ARN)
	other := strings.Replace(arn, ":"+sb.Server.Region()+":", ":eu-west-3:", 1)
	ids := []string{
		"keyrotator/users/victim", "KEYROTATOR/users/victim", "keyrotator/users/Victim", "keyrotator/users/victim/",
		"keyrotator/users/victim ", "keyrotator/connections/../users/victim", arn, arn[:len(arn)-7], arn[:len(arn)-6] + "ZZZZZZ",
		other, other[:len(other)-7], aws.ToString(bare.ARN), "ops/users/untagged",
	}
	key := rotation.NewCredential("AKIAIOSFODNN7NEWKEY1", "new-secret-0123456789012345678901234567")
	tgt := secret.New(sm)
	seq := sb.Server.Calls().Last()
	for _, id := range ids {
		tg := rotation.Target{Type: "secret", Name: "app", SecretID: id, KeyIDField: "accessKeyId", SecretField: "secretAccessKey"}
		for op, call := range map[string]func() (rotation.Receipt, error){
			"Plan":   func() (rotation.Receipt, error) { return tgt.Plan(ctx, tg, old, "") },
			"Update": func() (rotation.Receipt, error) { return tgt.Update(ctx, tg, "exec-1", old, key) },
		} {
			r, err := call()
			var tf *rotation.TargetFailed
			if !errors.As(err, &tf) || !strings.Contains(tf.Reason, "keyrotator's own") && !strings.Contains(tf.Reason, "does not exist") {
				t.Errorf("%s of %q: %v (receipt %+v), want TargetFailed: keyrotator's own or does not exist", op, id, err, r)
				continue
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("%s of %q leaks the canary: %v", op, id, err)
			}
		}
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("a target naming keyrotator's own secret wrote: %s %s", c.Action, c.Resource)
		}
	}
}
