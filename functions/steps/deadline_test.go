package steps_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Validate plans the old key's deactivation against its IAM.3 deadline
// (created + maxKeyAgeDays) and warns, in the plan, when the waits cannot
// make it; it never refuses for it (docs/design.md, "Compliance timing").
func TestValidatePlansTheDeadline(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	cfg := sb.Config(t)
	// The stack's HMAC key: a run that needs approval carries a request
	// requestrun signed with it (issue 14).
	k, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	mac := kmsmac.New(kms.NewFromConfig(cfg), aws.ToString(k.KeyMetadata.Arn))
	v := &steps.Validate{Schema: subset.Check, Keys: iamkeys.New(iam.NewFromConfig(cfg)), Records: record.New(secretsmanager.NewFromConfig(cfg)),
		Executions: executions.New(sfn.NewFromConfig(cfg)), Makers: trail.ForIAMEvents(cfg), Requests: mac}
	now := sb.Server.Clock().Now()
	for _, tc := range []struct {
		user    string
		ageDays int
		input   string
		verdict string
	}{
		// The defaults: first check after 7 days, the last after 21, deleted a day later.
		{"fresh", 30, `{}`, rotation.DeadlineOK},
		{"late", 75, `{}`, rotation.DeadlineAtRisk},
		{"too-late", 85, `{}`, rotation.DeadlineMissed},
		{"too-late-but-longer-limit", 85, `{"maxKeyAgeDays": 180}`, rotation.DeadlineOK},
		{"approval", 66, `{"requireApproval": true, "approvers": ["arn:aws:iam::111122223333:role/security-*"]}`, rotation.DeadlineAtRisk},
	} {
		key := sb.User(t, tc.user, 1)[0]
		created := now.AddDate(0, 0, -tc.ageDays)
		sb.IAM.Backdate(key.AccessKeyID, created)
		var in map[string]any
		_ = json.Unmarshal([]byte(tc.input), &in)
		in["user"] = tc.user
		in["targets"] = []map[string]string{{"type": "secret", "name": "app", "secretId": "app/" + tc.user}}
		raw, _ := json.Marshal(in)
		if in["requireApproval"] == true {
			d, err := rotation.InputDigest(raw)
			if err != nil {
				t.Fatal(err)
			}
			r := rotation.Request{Purpose: rotation.RequestPurpose, Execution: tc.user, RequestedBy: "arn:aws:iam::111122223333:user/requester", InputSHA256: d, At: now}
			sig, err := mac.Sign(ctx, r.Message())
			if err != nil {
				t.Fatal(err)
			}
			if raw, err = rotation.WithRequest(raw, rotation.SignedRequest{Request: r, MAC: sig}); err != nil {
				t.Fatal(err)
			}
		}
		var ev steps.ValidateInput
		ev.Now = now
		ev.Data.Execution = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:" + tc.user
		ev.ExecutionName = tc.user
		ev.Data.Input = raw
		plan, err := v.Check(ctx, ev)
		if err != nil {
			t.Errorf("%s: refused: %v (a deadline is warned about, never refused)", tc.user, err)
			continue
		}
		d := plan.Deadline
		if d == nil || d.Verdict != tc.verdict || !d.At.Equal(created.Truncate(time.Second).AddDate(0, 0, d.MaxKeyAgeDays)) || !d.EarliestDeactivation.After(now) {
			t.Errorf("%s (%d days old, %s): deadline %+v, want verdict %s", tc.user, tc.ageDays, tc.input, d, tc.verdict)
		}
	}
}
