// Package secret is the `secret` target: an application that reads its AWS
// key from a Secrets Manager secret it owns (a JSON object). The Distribute
// state writes the new key into it, keeping every other field.
package secret

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type api interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Target updates application secrets: the secret kind's code (steps.Target).
type Target struct{ api api }

// New wraps a Secrets Manager client.
func New(c api) *Target { return &Target{api: c} }

// Update writes key into the target's secret as a new AWSCURRENT version. A
// retry with the same execution writes nothing new (I5). A secret that holds
// neither the old nor the new key is refused: it may belong to another user.
// An issue (oldKeyID "": Issuance) fills a secret that holds no key id, and
// creates one that does not exist yet (named, not by ARN).
func (t *Target) Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	out, doc, held, err := t.read(ctx, tg)
	if m := (*missing)(nil); errors.As(err, &m) && oldKeyID == "" {
		if r, done, err := t.create(ctx, tg, execution, key); err != nil || done {
			return r, err
		}
		out, doc, held, err = t.read(ctx, tg) // made meanwhile: by a lost answer's first try, or someone else
	}
	if err != nil {
		return rotation.Receipt{}, named(err)
	}
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), PreviousKeyID: oldKeyID, NewKeyID: key.AccessKeyID}
	switch held.Reveal() {
	case key.AccessKeyID:
		r.Version, r.PreviousKeyID = aws.ToString(out.VersionId), oldKeyID
		return r, nil // already holds it, moved from the old key: a retry, or a resumed run
	case oldKeyID:
		if oldKeyID == "" && holdsSecret(doc, tg) {
			return rotation.Receipt{}, secretWithoutID(tg)
		}
	default:
		return rotation.Receipt{}, neither(tg, held, oldKeyID)
	}
	b, err := withKey(doc, tg, key.AccessKeyID, key.Secret())
	if err != nil {
		return rotation.Receipt{}, fmt.Errorf("encode secret %s: %w", tg.SecretID, err)
	}
	if len(b) > MaxSecretString {
		return rotation.Receipt{}, tooLarge(tg, len(b))
	}
	put, err := t.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: out.ARN, SecretString: aws.String(string(b)),
		ClientRequestToken: aws.String(rotation.Token(execution, "target:"+tg.Name)),
	})
	if err != nil {
		return rotation.Receipt{}, awserr.Classify("secretsmanager PutSecretValue "+tg.SecretID, err)
	}
	r.Version, r.Changed = aws.ToString(put.VersionId), true
	return r, nil
}

// Plan reads the secret and says what Update would write, changing nothing.
// resumeKeyID is the new key of a dead run this run resumes (Plan.ResumeKeyID,
// "" if none): a secret that run already moved holds it, and Update accepts it.
func (t *Target) Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error) {
	out, doc, held, err := t.read(ctx, tg)
	if m := (*missing)(nil); errors.As(err, &m) && oldKeyID == "" {
		if why := uncreatable(tg.SecretID); why != "" {
			return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s does not exist, and an issue does not create it: %s; create it, or fix the target's secretId", tg.SecretID, why)}
		}
		// Where is the name: two targets naming one new secret are one place.
		return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: tg.SecretID, Planned: []string{
			fmt.Sprintf("secret %s does not exist: create it holding the new key in %s and %s (encrypted with %s)", tg.SecretID, tg.KeyIDField, tg.SecretField, cmp.Or(tg.KMSKeyID, "aws/secretsmanager")),
		}}, nil
	}
	if err != nil {
		return rotation.Receipt{}, named(err)
	}
	holds := held.Reveal()
	if holds != oldKeyID && (resumeKeyID == "" || holds != resumeKeyID) {
		return rotation.Receipt{}, neither(tg, held, oldKeyID)
	}
	if holds == "" && oldKeyID == "" && holdsSecret(doc, tg) {
		return rotation.Receipt{}, secretWithoutID(tg)
	}
	if holds == resumeKeyID {
		return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), PreviousKeyID: oldKeyID, Planned: []string{
			fmt.Sprintf("secret %s already holds the resumed key %s in %s (an earlier run moved it): nothing to write", aws.ToString(out.ARN), resumeKeyID, tg.KeyIDField),
		}}, nil
	}
	// The size the secret will have with the new key (an IAM key id as long
	// as the old one, a 40-character secret): one that will not fit must fail
	// here, before the run makes a key, not at PutSecretValue (I7).
	b, err := withKey(doc, tg, strings.Repeat("A", max(len(oldKeyID), 20)), strings.Repeat("a", secretLen))
	if err != nil {
		return rotation.Receipt{}, fmt.Errorf("encode secret %s: %w", tg.SecretID, err)
	}
	if len(b) > MaxSecretString {
		return rotation.Receipt{}, tooLarge(tg, len(b))
	}
	others := 0
	for k := range doc {
		if k != tg.KeyIDField && k != tg.SecretField {
			others++
		}
	}
	if oldKeyID == "" { // Issuance: a secret that holds no key yet
		return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), Planned: []string{
			fmt.Sprintf("secret %s holds no key id in %s: write the new key into %s and %s as a new AWSCURRENT version, keeping its %d other field(s)",
				aws.ToString(out.ARN), tg.KeyIDField, tg.KeyIDField, tg.SecretField, others),
		}}, nil
	}
	return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), PreviousKeyID: oldKeyID, Planned: []string{
		fmt.Sprintf("secret %s holds key %s in %s: write the new key into %s and %s as a new AWSCURRENT version, keeping its %d other field(s)",
			aws.ToString(out.ARN), oldKeyID, tg.KeyIDField, tg.KeyIDField, tg.SecretField, others),
	}}, nil
}

// Own is the tag keyrotator puts on each of its own secrets (value "record"
// or "connection"); User is the tag records made before it carry. A target
// secret carrying either is refused, whatever name or ARN the input used and
// whatever prefix the stack was deployed with.
const (
	Own  = "keyrotator:kind"
	User = "keyrotator:user"
)

// ClaimStage is the staging label every rotation record's lock claim
// carries (record.claimStage): a record is known by it with no tag at all.
const ClaimStage = "KEYROTATOR_CLAIM"

// read resolves the target's secret by DescribeSecret (its real ARN and
// tags), refuses one of keyrotator's own, and decodes it. The key id it holds
// is a SecretValue: it was read from a secret and may be anything.
func (t *Target) read(ctx context.Context, tg rotation.Target) (*secretsmanager.GetSecretValueOutput, map[string]json.RawMessage, rotation.SecretValue, error) {
	fail := func(reason string) (*secretsmanager.GetSecretValueOutput, map[string]json.RawMessage, rotation.SecretValue, error) {
		return nil, nil, rotation.SecretValue{}, &rotation.TargetFailed{Target: tg.Name, Reason: reason}
	}
	if tg.KeyIDField == tg.SecretField {
		return fail(fmt.Sprintf("keyIdField and secretField are both %s: the key id and its secret need two fields", tg.KeyIDField))
	}
	d, err := t.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(tg.SecretID)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil, rotation.SecretValue{}, &missing{TargetFailed: rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s does not exist: create it, or fix the target's secretId", tg.SecretID)}}
	}
	if err != nil {
		return nil, nil, rotation.SecretValue{}, awserr.Classify("secretsmanager DescribeSecret "+tg.SecretID, err)
	}
	for _, tag := range d.Tags {
		if k := aws.ToString(tag.Key); k == Own || k == User {
			kind := aws.ToString(tag.Value)
			if k == User {
				kind = "record"
			}
			return fail(fmt.Sprintf("secret %s is keyrotator's own (%s, tag %s): a target may name only an application's secret; fix the target's secretId", aws.ToString(d.ARN), kind, k))
		}
	}
	// A record whose tags were removed, or were lost when it was re-created
	// from a backup, still carries the stage keyrotator's lock puts on it.
	for _, stages := range d.VersionIdsToStages {
		for _, st := range stages {
			if st == ClaimStage {
				return fail(fmt.Sprintf("secret %s is keyrotator's own (record, stage %s): a target may name only an application's secret; fix the target's secretId", aws.ToString(d.ARN), st))
			}
		}
	}
	out, err := t.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: d.ARN})
	if errors.As(err, &nf) {
		// No AWSCURRENT value (a secret made without one): it holds no key.
		return &secretsmanager.GetSecretValueOutput{ARN: d.ARN, Name: d.Name}, map[string]json.RawMessage{}, rotation.SecretValue{}, nil
	}
	if err != nil {
		return nil, nil, rotation.SecretValue{}, awserr.Classify("secretsmanager GetSecretValue "+tg.SecretID, err)
	}
	// Every other field is kept as the application wrote it (raw JSON, not
	// float64s: a number beyond float64's precision must not be rounded).
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil || doc == nil {
		// Never quote the value, nor the decoder's error (it may quote it).
		return fail(fmt.Sprintf("secret %s is not a JSON object: keyrotator writes the fields %s and %s of one", tg.SecretID, tg.KeyIDField, tg.SecretField))
	}
	var held string
	if raw, ok := doc[tg.KeyIDField]; ok && json.Unmarshal(raw, &held) != nil {
		// Not a string (an object, a number, true): no key id keyrotator
		// could name, but something — never "no key", which an issue would
		// fill. Kept as its raw JSON, a SecretValue: never quoted, nor the
		// decoder's error (it may quote it).
		held = string(raw)
	}
	return out, doc, rotation.NewSecretValue(held), nil
}

// holdsSecret says whether the secret's secret field holds anything but
// null or "": an issue fills only a secret that holds no key, and a secret
// access key without its id is still someone's key.
func holdsSecret(doc map[string]json.RawMessage, tg rotation.Target) bool {
	raw, ok := doc[tg.SecretField]
	if !ok {
		return false
	}
	var s *string
	return json.Unmarshal(raw, &s) != nil || (s != nil && *s != "")
}

// MaxSecretString is Secrets Manager's limit on a SecretString: 65,536
// bytes (Secrets Manager API reference, PutSecretValue, SecretString).
const MaxSecretString = 65536

// secretLen is the length of an IAM secret access key.
const secretLen = 40

// withKey is the secret's JSON with the key in its two fields and every
// other field as it was: raw values, HTML characters not escaped (encoding/json
// would turn each "<" into six bytes and change what the application reads
// back byte for byte).
func withKey(doc map[string]json.RawMessage, tg rotation.Target, id, secret string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(doc)+2)
	for k, v := range doc {
		out[k] = v
	}
	for field, v := range map[string]string{tg.KeyIDField: id, tg.SecretField: secret} {
		b, err := marshal(v)
		if err != nil {
			return nil, err
		}
		out[field] = b
	}
	return marshal(out)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// tooLarge is a secret the new key will not fit in.
func tooLarge(tg rotation.Target, size int) error {
	return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s would be %d bytes with the new key in %s and %s, more than Secrets Manager's limit of %d: make it smaller", tg.SecretID, size, tg.KeyIDField, tg.SecretField, MaxSecretString)}
}

// neither is a secret that holds some other key: it may be another user's.
// What it holds is shown only if it has an access key id's shape.
func neither(tg rotation.Target, held rotation.SecretValue, oldKeyID string) error {
	what := "a value that is not an access key id"
	if id := rotation.ShownKeyID(held); id != "" {
		what = "key " + id
	} else if held.Empty() {
		what = "no key id"
	}
	if oldKeyID == "" { // Issuance
		return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s holds %s in %s: an issue fills only a secret that holds no key id (it may belong to another user, or hold the user's inactive key: then reactivate that key and rotate, or clear the field); fix the secret or the target", tg.SecretID, what, tg.KeyIDField)}
	}
	return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s holds %s in %s, which is neither the key being rotated (%s) nor the new one: it may belong to another user; fix the secret or the target", tg.SecretID, what, tg.KeyIDField, oldKeyID)}
}

// secretWithoutID is an issue's refusal of a secret whose secret field
// holds a value though its key id field holds none.
func secretWithoutID(tg rotation.Target) error {
	return &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s holds no key id in %s but a value in %s: an issue fills only a secret that holds no key (that value may be another user's secret access key); clear both fields, or fix the target", tg.SecretID, tg.KeyIDField, tg.SecretField)}
}

// missing is read's refusal of a secret that does not exist: a rotation's
// TargetFailed, which an issue may instead create (Issuance).
type missing struct{ rotation.TargetFailed }

func (m *missing) Unwrap() error { return &m.TargetFailed }

// named is err as the state machine must see it: a missing secret's plain
// TargetFailed (a *missing would reach Step Functions by its own type name).
func named(err error) error {
	if m := (*missing)(nil); errors.As(err, &m) {
		return &m.TargetFailed
	}
	return err
}

// reservedName is a name under a keyrotator stack's own secrets
// (<prefix>/users/<user>, <prefix>/connections/<name>; the prefix as
// rotation.CheckPrefix allows it): an issue never creates one, whatever
// prefix a stack uses, so a target cannot plant a record or a connection.
var reservedName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}/(users|connections)/`)

// uncreatable says why an issue may not create a secret of this id ("" if
// it may): an ARN names a secret that exists (its suffix is Secrets
// Manager's), and keyrotator's own names are never a target's.
func uncreatable(id string) string {
	switch {
	case strings.HasPrefix(id, "arn:"):
		return "it is named by ARN, and only a name can be created"
	case reservedName.MatchString(id):
		return "the name is where a keyrotator stack keeps its own secrets (<prefix>/users/, <prefix>/connections/)"
	}
	return ""
}

// create makes the target's secret holding key (Issuance: a secret that
// does not exist yet). The token is the execution's, as Update's
// PutSecretValue: a retry whose first try made it finds it (ResourceExists)
// and Update goes on as for a secret that exists (done false).
func (t *Target) create(ctx context.Context, tg rotation.Target, execution string, key rotation.Credential) (r rotation.Receipt, done bool, err error) {
	if why := uncreatable(tg.SecretID); why != "" {
		return r, true, &rotation.TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("secret %s does not exist, and an issue does not create it: %s; create it, or fix the target's secretId", tg.SecretID, why)}
	}
	b, err := withKey(map[string]json.RawMessage{}, tg, key.AccessKeyID, key.Secret())
	if err != nil {
		return r, true, fmt.Errorf("encode secret %s: %w", tg.SecretID, err)
	}
	in := &secretsmanager.CreateSecretInput{
		Name: aws.String(tg.SecretID), SecretString: aws.String(string(b)),
		ClientRequestToken: aws.String(rotation.Token(execution, "target:"+tg.Name)),
		Description:        aws.String("an AWS access key keyrotator issued (target " + tg.Name + ")"),
	}
	if tg.KMSKeyID != "" {
		in.KmsKeyId = aws.String(tg.KMSKeyID)
	}
	out, err := t.api.CreateSecret(ctx, in)
	var exists *types.ResourceExistsException
	if errors.As(err, &exists) {
		return r, false, nil
	}
	if err != nil {
		return r, true, awserr.Classify("secretsmanager CreateSecret "+tg.SecretID, err)
	}
	return rotation.Receipt{Target: tg.Name, Type: rotation.TargetSecret, Where: aws.ToString(out.ARN), NewKeyID: key.AccessKeyID,
		Version: aws.ToString(out.VersionId), Changed: true}, true, nil
}
