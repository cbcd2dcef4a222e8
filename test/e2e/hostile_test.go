package e2e

import (
	"context"
	"encoding/json"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// A `secret` target aimed at keyrotator's own secrets — another user's
// record (by ARN and by partial ARN) reading its secretAccessKey as the key
// id, a connection secret reading its clientSecret — is refused, in a dry run
// and in a real run, and the value it read appears nowhere: not in the
// history, the Lambda logs, the SNS alerts, the call log or CloudTrail (the
// harness's I1 scan covers every key IAM issued and the connection's client
// secret). Issue 11, finding 1.
func TestHostileSecretTargetRefused(t *testing.T) {
	t.Parallel()
	// keyrotator's own refusal, the wall behind IAM's: the template's
	// policies already deny the updatesecret role keyrotator's records and
	// connections (AccessDenied under enforcement), so this runs where IAM
	// would let it through — a policy widened by hand.
	h := startWith(t, fullsandbox.Options{WaitScale: waitScale})
	ctx := context.Background()
	victim := h.seed("victim", 95)
	if r := h.Run(victim.input(nil)); r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the victim's rotation: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	record, err := h.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(rotation.RecordName(victim.user))})
	if err != nil {
		t.Fatal(err)
	}
	clientSecret := "hostile-client-secret-" + strings.Repeat("c", 24)
	h.secrets = append(h.secrets, clientSecret)
	conn, _ := json.Marshal(map[string]string{"domain": "http://127.0.0.1:1", "clientId": "cid", "clientSecret": clientSecret})
	c, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("keyrotator/connections/hostile"), SecretString: aws.String(string(conn)),
		Tags: []smtypes.Tag{{Key: aws.String("keyrotator:kind"), Value: aws.String("connection")}}}) // as infra tags it
	if err != nil {
		t.Fatal(err)
	}
	recordARN, connARN := aws.ToString(record.ARN), aws.ToString(c.ARN)
	cases := []struct{ name, secretID, keyIDField string }{
		{"record by ARN", recordARN, "secretAccessKey"},
		{"record by partial ARN", recordARN[:len(recordARN)-7], "secretAccessKey"},
		{"connection by ARN", connARN, "clientSecret"},
	}
	for i, c := range cases {
		for _, dry := range []bool{true, false} {
			attacker := h.seed("attacker-"+string(rune('a'+i))+map[bool]string{true: "-dry", false: "-real"}[dry], 95)
			in := attacker.input(map[string]any{"dryRun": dry, "targets": []map[string]string{
				{"type": "secret", "name": "loot", "secretId": c.secretID, "keyIdField": c.keyIDField, "secretField": "x"}}})
			before, _ := h.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(c.secretID)})
			seq := h.sb.Server.Calls().Last()
			r := h.Run(in)
			if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" || !strings.Contains(r.Cause, "keyrotator's own") {
				t.Errorf("%s (dry run %v): %s %s: %s, want refused as keyrotator's own", c.name, dry, r.Status, r.Error, r.Cause)
			}
			if dry {
				for _, w := range h.writesSince(seq) {
					if w.Service != "sns" { // the failure alert is the one write expected
						t.Errorf("%s: the dry run wrote %+v", c.name, w)
					}
				}
			}
			after, _ := h.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(c.secretID)})
			if len(after.Versions) != len(before.Versions) {
				t.Errorf("%s (dry run %v): keyrotator's own secret has %d versions, was %d", c.name, dry, len(after.Versions), len(before.Versions))
			}
		}
	}
}

// Every bad target reference fails a real run before its first write: the
// Preflight (or Validate, for what the schema refuses) stops it with no
// write in the call log but the alert, no record made, no lock, no key, and
// the user's one key unchanged — the same user runs every case, so a lock or
// key left behind by one would fail the next. Issue 11, finding 3.
func TestBadReferencesChangeNothing(t *testing.T) {
	t.Parallel()
	// keyrotator's own refusal, the wall behind IAM's: the template's
	// policies already deny the updatesecret role keyrotator's records and
	// connections (AccessDenied under enforcement), so this runs where IAM
	// would let it through — a policy widened by hand.
	h := startWith(t, fullsandbox.Options{WaitScale: waitScale})
	ctx := context.Background()
	f := h.seed("careful", 95)
	victim := h.seed("victim", 95)
	own, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("acme/users/victim"), SecretString: aws.String(`{"accessKeyId":"` + victim.old.AccessKeyID + `","secretAccessKey":"` + victim.old.SecretAccessKey + `"}`),
		Tags: []smtypes.Tag{{Key: aws.String("keyrotator:kind"), Value: aws.String("record")}}}) // a record under another stack prefix
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/text"), SecretString: aws.String("AKIA:not-json")}); err != nil {
		t.Fatal(err)
	}
	keys := h.keys(f.user)
	for _, c := range []struct {
		name, state, error string
		target             map[string]string
	}{
		{"a secret that does not exist", "Preflight", "TargetFailed", map[string]string{"type": "secret", "name": "s", "secretId": "app/none"}},
		{"a secret that is not JSON", "Preflight", "TargetFailed", map[string]string{"type": "secret", "name": "s", "secretId": "app/text"}},
		{"keyrotator's own record by ARN", "Preflight", "TargetFailed", map[string]string{"type": "secret", "name": "s", "secretId": aws.ToString(own.ARN), "keyIdField": "accessKeyId"}},
		{"a missing connection", "Preflight", "TargetFailed", map[string]string{"type": "auth0", "name": "a", "connection": "keyrotator/connections/none", "sesRegion": "ap-northeast-1"}},
		{"a connection climbing out", "Validate", "InvalidInput", map[string]string{"type": "auth0", "name": "a", "connection": "keyrotator/connections/../users/x", "sesRegion": "ap-northeast-1"}},
		{"keyIdField = secretField", "Validate", "InvalidInput", map[string]string{"type": "secret", "name": "s", "secretId": f.secretID, "keyIdField": "k", "secretField": "k"}},
	} {
		seq := h.sb.Server.Calls().Last()
		r := h.Run(f.input(map[string]any{"targets": []any{map[string]string{"type": "secret", "name": "app", "secretId": f.secretID}, c.target}}))
		if r.Status != types.ExecutionStatusFailed || r.Error != c.error {
			t.Errorf("%s: %s %s, want FAILED %s", c.name, r.Status, r.Error, c.error)
		}
		if _, a := h.alertOf(r.ARN, "failure"); a.State != c.state || !strings.Contains(strings.Join(a.Changed, " "), "nothing") {
			t.Errorf("%s: the alert says state %s, changed %v; want %s and nothing", c.name, a.State, a.Changed, c.state)
		}
		for _, w := range h.writesSince(seq) {
			if w.Service != "sns" {
				t.Errorf("%s: wrote %s %s %s", c.name, w.Service, w.Action, w.Resource)
			}
		}
		if got := h.keys(f.user); !maps.Equal(got, keys) {
			t.Errorf("%s: keys %v, were %v", c.name, got, keys)
		}
		if got := h.keys(victim.user); len(got) != 1 || got[victim.old.AccessKeyID] != "Active" {
			t.Errorf("%s: the victim's keys %v", c.name, got)
		}
	}
	if _, err := h.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(rotation.RecordName(f.user))}); err == nil {
		t.Error("a record was made")
	}
}
