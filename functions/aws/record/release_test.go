package record_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// lostAnswer runs UpdateSecretVersionStage and then loses its answer.
type lostAnswer struct {
	*secretsmanager.Client
}

func (l lostAnswer) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	if _, err := l.Client.UpdateSecretVersionStage(ctx, in, opt...); err != nil {
		return nil, err
	}
	return nil, errors.New("injected: answer lost after the label moved")
}

// A release whose answer was lost after the lock label was removed succeeds:
// the lock is gone, which is what Release is for (issue 11, finding 4).
func TestReleaseAnswerLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	client := secretsmanager.NewFromConfig(sb.Config(t))
	good := record.New(client)
	const user, exec = "app", "arn:aws:states:us-east-1:111122223333:execution:rotation:a"
	if _, err := good.Ensure(ctx, user); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if _, err := good.Claim(ctx, user, exec, "AKIAOLD", ""); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	lossy := record.New(lostAnswer{client})
	if err := lossy.Release(ctx, user, exec); err != nil {
		t.Fatalf("Release with its answer lost: %v", err)
	}
	if _, ok, err := good.Staged(ctx, user, record.Pending); err != nil || ok {
		t.Fatalf("lock still held after Release: %v %v", ok, err)
	}
	if err := good.Release(ctx, user, exec); err != nil {
		t.Fatalf("Release retried: %v", err)
	}
}
