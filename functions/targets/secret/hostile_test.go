package secret_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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

// canaryForms are the ways a printer might carry canary: raw, JSON-escaped,
// quoted, hex.
func canaryForms(canary string) []string {
	j, _ := json.Marshal(canary)
	h := hex.EncodeToString([]byte(canary))
	return []string{canary, string(j[1 : len(j)-1]), strconv.Quote(canary), h, strings.ToUpper(h)}
}

// A canary planted in every field of every secret a hostile target can name
// — keyrotator's own records and connections (by name, ARN, partial ARN, and
// under a stack prefix other than keyrotator), application secrets of every
// bad shape — never reaches an error, a receipt or a log line, over every
// field the target could be told to read; keyrotator's own secrets are
// refused, and nothing is written.
func TestHostileSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	const canary = "Zq9/CANARY+wJalrXUtnFEMI/K7MDENGbPxRfiCY"
	fields := []string{"accessKeyId", "secretAccessKey", "clientSecret", "clientId", "authKey", "authKeyId", "execution", "missing"}
	object := func() string {
		doc := map[string]string{}
		for _, f := range fields[:len(fields)-1] {
			doc[f] = canary
		}
		b, _ := json.Marshal(doc)
		return string(b)
	}()
	tag := func(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }
	secrets := []struct {
		name, value string
		tags        []types.Tag
		own         bool
	}{
		{"keyrotator/users/victim", object, tag("keyrotator:user", "victim"), true},
		{"keyrotator/users/newvictim", object, tag("keyrotator:kind", "record"), true},
		{"keyrotator/connections/auth0-prod", object, tag("keyrotator:kind", "connection"), true},
		{"acme-rotator/users/victim", object, tag("keyrotator:kind", "record"), true},
		{"app/canary-object", object, nil, false},
		{"app/canary-text", canary, nil, false},
		{"app/canary-array", `["` + canary + `"]`, nil, false},
		{"app/canary-broken", `{"accessKeyId":"` + canary, nil, false},
		{"app/canary-number", `{"accessKeyId":12,"secretAccessKey":"` + canary + `"}`, nil, false},
		{"app/canary-nested", `{"accessKeyId":{"v":"` + canary + `"},"secretAccessKey":"` + canary + `"}`, nil, false},
	}
	type ref struct{ id, secretName string }
	var refs []ref
	for _, s := range secrets {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String(s.value), Tags: s.tags})
		if err != nil {
			t.Fatal(err)
		}
		arn := aws.ToString(out.ARN)
		refs = append(refs, ref{s.name, s.name}, ref{arn, s.name}, ref{arn[:len(arn)-7], s.name})
	}
	own := map[string]bool{}
	for _, s := range secrets {
		own[s.name] = s.own
	}
	key := rotation.NewCredential("AKIAIOSFODNN7NEWKEY1", "new-secret-0123456789012345678901234567")
	tgt := secret.New(sm)
	seq := sb.Server.Calls().Last()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, r := range refs {
		for _, idField := range fields {
			for _, secretField := range fields {
				tg := rotation.Target{Type: "secret", Name: "app", SecretID: r.id, KeyIDField: idField, SecretField: secretField}
				for op, call := range map[string]func() (rotation.Receipt, error){
					"Plan":   func() (rotation.Receipt, error) { return tgt.Plan(ctx, tg, "AKIAIOSFODNN7OLDKEY1", "") },
					"Update": func() (rotation.Receipt, error) { return tgt.Update(ctx, tg, "exec-1", "AKIAIOSFODNN7OLDKEY1", key) },
				} {
					rc, err := call()
					b, _ := json.Marshal(rc)
					log.Error("target failed", "err", err, "receipt", rc)
					out := fmt.Sprintf("%v %+v %s %+v", err, rc, b, err)
					for _, f := range canaryForms(canary) {
						if strings.Contains(out, f) {
							t.Errorf("%s of %s reading %s/%s leaks the canary: %s", op, r.id, idField, secretField, out)
						}
					}
					var tf *rotation.TargetFailed
					if err == nil || !errors.As(err, &tf) {
						t.Errorf("%s of %s reading %s/%s: %v, want TargetFailed", op, r.id, idField, secretField, err)
					} else if own[r.secretName] && idField != secretField && !strings.Contains(tf.Reason, "keyrotator's own") {
						t.Errorf("%s of %s (keyrotator's own) reading %s: %v, want refused as keyrotator's own", op, r.id, idField, err)
					}
				}
			}
		}
	}
	for _, f := range canaryForms(canary) {
		if strings.Contains(logs.String(), f) {
			t.Fatalf("the log leaks the canary")
		}
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("a hostile target wrote: %+v", c)
		}
	}
}
