// Package fleetstore is what the sweep (package fleet) reads of Secrets
// Manager: the fleet config secret (<prefix>/fleet), and whether a user's
// rotation record holds its lock (the AWSPENDING stage), from its stages
// only: no record value is read.
package fleetstore

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type api interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

var _ api = (*secretsmanager.Client)(nil)

// SecretName is the fleet config secret's name under the stack prefix.
func SecretName(n rotation.Names) string { return n.StateMachine() + "/fleet" }

// Store reads the fleet config and the locks.
type Store struct {
	api   api
	names rotation.Names
}

// New wraps a Secrets Manager client for the stack's names.
func New(c api, names rotation.Names) *Store { return &Store{api: c, names: names} }

var (
	_ fleet.ConfigSource = (*Store)(nil)
	_ fleet.Locks        = (*Store)(nil)
)

// Config is the fleet config secret's current value.
func (s *Store) Config(ctx context.Context) ([]byte, error) {
	name := SecretName(s.names)
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return nil, awserr.Classify("secretsmanager GetSecretValue "+name, err)
	}
	return []byte(aws.ToString(out.SecretString)), nil
}

// Locked says whether account's user's record (Names.RecordOf: a member
// account's user's is <prefix>/users/<account>/<user>, kept in the
// keyrotator account like every record) has a version staged AWSPENDING:
// a run holds the lock (I6). No record: no run ever held it.
func (s *Store) Locked(ctx context.Context, account, user string) (bool, error) {
	name := s.names.RecordOf(account, user)
	out, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); ok {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("secretsmanager DescribeSecret "+name, err)
	}
	for _, stages := range out.VersionIdsToStages {
		if slices.Contains(stages, "AWSPENDING") {
			return true, nil
		}
	}
	return false, nil
}
