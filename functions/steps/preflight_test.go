package steps_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/aws/executions"
	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/aws/trail"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema/subset"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Preflight (Validate's checks and every target's Plan) writes nothing,
// whether it passes or fails; only Lock, after it, makes the record and
// takes the lock (finding 3).
func TestPreflightWritesNothing(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	cfg := sb.Config(t)
	sm := secretsmanager.NewFromConfig(cfg)
	key := sb.User(t, "u", 1)[0]
	doc, _ := json.Marshal(map[string]string{"accessKeyId": key.AccessKeyID, "secretAccessKey": key.SecretAccessKey})
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/u"), SecretString: aws.String(string(doc))}); err != nil {
		t.Fatal(err)
	}
	v := &steps.Validate{Schema: subset.Check, Keys: iamkeys.New(iam.NewFromConfig(cfg)), Records: record.New(sm), Executions: executions.New(sfn.NewFromConfig(cfg)), Makers: trail.ForIAMEvents(cfg)}
	targets := steps.Targets{rotation.TargetSecret: secret.New(sm)}
	event := func(secretID string) steps.ValidateInput {
		var ev steps.ValidateInput
		ev.Now = sb.Server.Clock().Now()
		ev.Data.Execution = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:e1"
		ev.Data.Input = json.RawMessage(`{"user":"u","targets":[{"type":"secret","name":"app","secretId":"` + secretID + `"}]}`)
		return ev
	}
	seq := sb.Server.Calls().Last()
	for id, wantErr := range map[string]bool{"app/u": false, "app/none": true} {
		plan, receipts, err := steps.Preflight(ctx, v, targets, event(id))
		var tf *rotation.TargetFailed
		switch {
		case wantErr && !errors.As(err, &tf):
			t.Errorf("%s: %v, want TargetFailed", id, err)
		case !wantErr && (err != nil || len(receipts) != 1 || plan.OldKeyID != key.AccessKeyID || plan.LockVersionID != ""):
			t.Errorf("%s: %+v %+v %v", id, plan, receipts, err)
		}
	}
	for _, c := range sb.Calls(t, seq) {
		if c.Write {
			t.Errorf("the preflight wrote: %s %s", c.Service, c.Action)
		}
	}
	ev := event("app/u")
	ev.Kind = "lock"
	plan, err := v.Run(ctx, ev)
	if err != nil || plan.LockVersionID == "" {
		t.Fatalf("lock: %+v %v", plan, err)
	}
	if again, err := v.Run(ctx, ev); err != nil || again.LockVersionID != plan.LockVersionID {
		t.Errorf("a retried lock must find its own: %+v %v", again, err)
	}
}
