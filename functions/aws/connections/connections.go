// Package connections reads a target's connection secret (Auth0 or SORACOM
// API credentials, kept under keyrotator/connections/ in Secrets Manager).
package connections

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
)

type api interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Reader reads connection secrets.
type Reader struct{ api api }

// New wraps a Secrets Manager client.
func New(c api) *Reader { return &Reader{api: c} }

// SecretString is the secret's current value. Errors never quote it.
func (r *Reader) SecretString(ctx context.Context, id string) (string, error) {
	out, err := r.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", awserr.Classify("secretsmanager GetSecretValue "+id, err)
	}
	return aws.ToString(out.SecretString), nil
}
