// Package secret is the `secret` target: an application that reads its AWS
// key from a Secrets Manager secret it owns (a JSON object). The Distribute
// state writes the new key into it, keeping every other field.
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type api interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Target updates application secrets.
type Target struct{ api api }

// New wraps a Secrets Manager client.
func New(c api) *Target { return &Target{api: c} }

// Update writes key into the target's secret as a new AWSCURRENT version. A
// retry with the same execution writes nothing new (I5). A secret that holds
// neither the old nor the new key is refused: it may belong to another user.
func (t *Target) Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	out, doc, held, err := t.read(ctx, tg)
	if err != nil {
		return rotation.Receipt{}, err
	}
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), PreviousKeyID: held, NewKeyID: key.AccessKeyID}
	switch held {
	case key.AccessKeyID:
		r.Version, r.PreviousKeyID = aws.ToString(out.VersionId), oldKeyID
		return r, nil // already holds it, moved from the old key: a retry, or a resumed run
	case oldKeyID:
	default:
		return rotation.Receipt{}, neither(tg, held, oldKeyID)
	}
	doc[tg.KeyIDField], doc[tg.SecretField] = key.AccessKeyID, key.Secret()
	b, err := json.Marshal(doc)
	if err != nil {
		return rotation.Receipt{}, fmt.Errorf("encode secret %s: %w", tg.SecretID, err)
	}
	put, err := t.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(tg.SecretID), SecretString: aws.String(string(b)),
		ClientRequestToken: aws.String(rotation.Token(execution, "target:"+tg.Name)),
	})
	if err != nil {
		return rotation.Receipt{}, awserr.Classify("secretsmanager PutSecretValue "+tg.SecretID, err)
	}
	r.Version, r.Changed = aws.ToString(put.VersionId), true
	return r, nil
}

// Plan reads the secret and says what Update would write, changing nothing.
func (t *Target) Plan(ctx context.Context, tg rotation.Target, oldKeyID string) (rotation.Receipt, error) {
	out, doc, held, err := t.read(ctx, tg)
	if err != nil {
		return rotation.Receipt{}, err
	}
	if held != oldKeyID {
		return rotation.Receipt{}, neither(tg, held, oldKeyID)
	}
	others := 0
	for k := range doc {
		if k != tg.KeyIDField && k != tg.SecretField {
			others++
		}
	}
	return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), PreviousKeyID: held, Planned: []string{
		fmt.Sprintf("secret %s holds key %s in %s: write the new key into %s and %s as a new AWSCURRENT version, keeping its %d other field(s)",
			aws.ToString(out.ARN), held, tg.KeyIDField, tg.KeyIDField, tg.SecretField, others),
	}}, nil
}

// read is the target's secret, decoded, and the key id it holds.
func (t *Target) read(ctx context.Context, tg rotation.Target) (*secretsmanager.GetSecretValueOutput, map[string]any, string, error) {
	fail := func(reason string) (*secretsmanager.GetSecretValueOutput, map[string]any, string, error) {
		return nil, nil, "", &rotation.TargetFailed{Target: tg.Name, Reason: reason}
	}
	out, err := t.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tg.SecretID)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fail(fmt.Sprintf("secret %s does not exist: create it, or fix the target's secretId", tg.SecretID))
	}
	if err != nil {
		return nil, nil, "", awserr.Classify("secretsmanager GetSecretValue "+tg.SecretID, err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil || doc == nil {
		// Never quote the value: it holds a secret.
		return fail(fmt.Sprintf("secret %s is not a JSON object: keyrotator writes the fields %s and %s of one", tg.SecretID, tg.KeyIDField, tg.SecretField))
	}
	held, _ := doc[tg.KeyIDField].(string)
	return out, doc, held, nil
}

// neither is a secret that holds some other key: it may be another user's.
func neither(tg rotation.Target, held, oldKeyID string) error {
	return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s holds key %q in %s, which is neither the key being rotated (%s) nor the new one: it may belong to another user; fix the secret or the target", tg.SecretID, held, tg.KeyIDField, oldKeyID)}
}
