// Package steps holds the work of each Task state of the rotation state
// machine, over small interfaces to the AWS adapters, so that the Lambdas
// in cmd/ are wiring only and every step can be run twice (I5). A step is
// named after its state, in a file of that name (steps.VerifyOldKeyUnused
// in verifyoldkeyunused.go); functions/tasks lists which states each
// Lambda serves.
package steps

import (
	"context"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// keyStore is what the steps need of IAM (*iamkeys.Keys).
type keyStore interface {
	UserARN(ctx context.Context, user string) (string, error)
	List(ctx context.Context, user string) ([]iamkeys.Key, error)
	Create(ctx context.Context, user string) (rotation.Credential, time.Time, error)
	CreateOnce(ctx context.Context, user string) (rotation.Credential, time.Time, error) // Issuance: no retry after a lost answer
	SetStatus(ctx context.Context, user, id string, active bool) error
	Delete(ctx context.Context, user, id string) (bool, error)
	LastUsed(ctx context.Context, id string) (rotation.KeyUse, error)
}

var _ keyStore = (*iamkeys.Keys)(nil)

// recordStore is what the steps need of the rotation record (*record.Store).
type recordStore interface {
	Name(user string) string // under the stack prefix the store was made with
	Ensure(ctx context.Context, user string) (string, error)
	Staged(ctx context.Context, user, stage string) (record.Version, bool, error)
	Claim(ctx context.Context, user, execution, oldKeyID, from string, inherit ...record.Intent) (string, error)
	KeepForResume(ctx context.Context, user, versionID string) error
	PutIntent(ctx context.Context, user, execution, oldKeyID string, intents []record.Intent) (string, error)
	Holds(ctx context.Context, user, id string, executions []string) (bool, error)
	PutKey(ctx context.Context, user, execution, oldKeyID string, key rotation.Credential) (string, error)
	KeyVersion(ctx context.Context, user, execution string) (record.Version, bool, error)
	Key(ctx context.Context, user, versionID string) (rotation.Credential, error)
	Promote(ctx context.Context, user, versionID string) error
	Release(ctx context.Context, user, execution string) error
}

var _ recordStore = (*record.Store)(nil)

const day = 24 * time.Hour
