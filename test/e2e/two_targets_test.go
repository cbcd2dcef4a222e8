package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// TestTwoTargetsOneSecret (I2): one application secret holds the key twice,
// in two spellings read by two consumers, and the input names it twice
// (once by name, once by ARN), one target per pair of fields. The Map
// would update both at once; each reads the secret, sets its own pair and
// writes the whole secret back, so the later write puts the old key back
// in the other pair, and both receipts said "holds the new key" (the old
// key was then deleted under the consumer of the other pair). The
// preflight refuses it: both targets resolve (DescribeSecret's ARN) to one
// secret; the failure names both; nothing is written.
func TestTwoTargetsOneSecret(t *testing.T) {
	t.Parallel()
	h := Start(t)
	ctx := context.Background()
	f := h.seed("two-spellings", 95)
	v, _ := json.Marshal(map[string]string{"accessKeyId": f.old.AccessKeyID, "secretAccessKey": f.old.SecretAccessKey,
		"AWS_ACCESS_KEY_ID": f.old.AccessKeyID, "AWS_SECRET_ACCESS_KEY": f.old.SecretAccessKey})
	d, err := h.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.secretID), SecretString: aws.String(string(v))})
	if err != nil {
		t.Fatal(err)
	}
	// Hold back one target's write so the other reads before it lands, as
	// two Lambdas side by side may (it never fires once the preflight refuses).
	h.sb.Fault(t, sandbox.Fault{Service: "secretsmanager", Action: "PutSecretValue", State: "UpdateSecret", Item: "lower", Delay: 800 * time.Millisecond, Times: -1})
	seq := h.sb.Server.Calls().Last()
	r := h.Run(f.input(map[string]any{"dryRun": false, "targets": []map[string]string{
		{"type": "secret", "name": "lower", "secretId": f.secretID},
		{"type": "secret", "name": "upper", "secretId": aws.ToString(d.ARN), "keyIdField": "AWS_ACCESS_KEY_ID", "secretField": "AWS_SECRET_ACCESS_KEY"},
	}}))
	got, _ := h.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.secretID)})
	var doc map[string]string
	_ = json.Unmarshal([]byte(aws.ToString(got.SecretString)), &doc)
	if doc["accessKeyId"] != f.old.AccessKeyID || doc["AWS_ACCESS_KEY_ID"] != f.old.AccessKeyID {
		t.Errorf("the secret holds %s in accessKeyId and %s in AWS_ACCESS_KEY_ID, want the old key %s in both", doc["accessKeyId"], doc["AWS_ACCESS_KEY_ID"], f.old.AccessKeyID)
	}
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" || !strings.Contains(r.Cause, "lower") || !strings.Contains(r.Cause, "upper") || !strings.Contains(r.Cause, aws.ToString(d.ARN)) {
		t.Errorf("%s %s: %s; want TargetFailed naming targets lower and upper and the secret's ARN", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); len(ks) != 1 || ks[f.old.AccessKeyID] != "Active" {
		t.Errorf("keys now %v, want only the old key, active", ks)
	}
	for _, w := range h.writesSince(seq) {
		if w.Service != "sns" {
			t.Errorf("wrote %s %s %s", w.Service, w.Action, w.Resource)
		}
	}
}
