package e2e

import (
	"context"
	"encoding/json"
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
	h := Start(t)
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
