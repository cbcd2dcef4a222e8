// Package record keeps a user's rotation record, the Secrets Manager secret
// <prefix>/users/<user> (keyrotator/users/<user> by default): the only place keyrotator keeps a secret access
// key (I1). Its AWSCURRENT version is the key in service, its AWSPENDING
// version the key being rolled out; the AWSPENDING stage is also the lock
// that keeps two rotations of one user apart (I6, docs/design.md §7).
package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Stages Secrets Manager's own rotation uses; keyrotator follows them.
const (
	Current  = "AWSCURRENT"
	Pending  = "AWSPENDING"
	Previous = "AWSPREVIOUS"
	// claimStage marks the version an execution wrote to take the lock.
	claimStage = "KEYROTATOR_CLAIM"
	// Resume keeps a dead run's key version labelled while a re-run
	// takes it over: the claim moves AWSPENDING off it, and Secrets Manager
	// may remove a version without a label. A retry of the re-run's
	// TakeLock finds the version it resumes by it.
	Resume = "KEYROTATOR_RESUME"
)

type api interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

var _ api = (*secretsmanager.Client)(nil)

// Store reads and writes rotation records.
type Store struct {
	api   api
	names rotation.Names
}

// New wraps a Secrets Manager client, for the records under the default
// stack prefix.
func New(c api) *Store { return &Store{api: c} }

// NewIn wraps a Secrets Manager client, for the records of the stack whose
// names are n (its prefix: the function's KEYROTATOR_PREFIX).
func NewIn(c api, n rotation.Names) *Store { return &Store{api: c, names: n} }

// Name is user's record.
func (s *Store) Name(user string) string { return s.names.Record(user) }

// value is a record version's content. Only this package sees the secret.
type value struct {
	AccessKeyID     string `json:"accessKeyId,omitempty"`
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	Execution       string `json:"execution,omitempty"`
	OldAccessKeyID  string `json:"oldAccessKeyId,omitempty"`
	// Intents are the CreateKey attempts the lock holder still accounts for.
	Intents []Intent `json:"intents,omitempty"`
	// Approval is the run's approval request and its answers (issue 14):
	// in the lock's version while the run waits at Approve.
	Approval *rotation.ApprovalRequest `json:"approval,omitempty"`
}

// Intent is what a CreateKey attempt writes to the record before it calls
// CreateAccessKey, so that a key whose answer was lost is known to be the
// run's own: the attempt, when, until when it could have made a key, and
// which keys the user had before. It holds ids and times only (I1).
type Intent struct {
	Execution string    `json:"execution"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`    // just before CreateAccessKey
	Until     time.Time `json:"until"` // the attempt's deadline: no key of its can be newer
	Before    []string  `json:"before"`
	// By is the identity the attempt calls IAM as (its STS caller ARN): a
	// key of the window is the attempt's orphan only if CloudTrail's
	// CreateAccessKey event for it names this identity.
	By string `json:"by,omitempty"`
	// Outcome is set once the attempt's outcome is known: "none" (IAM
	// refused: the attempt made no key) or "deleted" (CreateKey deleted
	// the key it could not store). Such an intent accounts for no key.
	Outcome string `json:"outcome,omitempty"`
}

// Accounts reports whether k, made at created, appeared inside the intent's
// window: not one of the keys the user had before, and made between At and
// Until, each widened by margin (clock skew, IAM's whole-second dates).
func (i Intent) Accounts(id string, created time.Time, margin time.Duration) bool {
	return i.Outcome == "" && !slices.Contains(i.Before, id) &&
		!created.Before(i.At.Add(-margin)) && !created.After(i.Until.Add(margin))
}

// Version is what a record version says, without its secret.
type Version struct {
	ID          string
	Stages      []string
	AccessKeyID string // "" for a claim that holds no key yet
	Execution   string
	OldKeyID    string
	Intents     []Intent // CreateKey attempts not yet resolved (claim and intent versions)
	Approval    *rotation.ApprovalRequest
}

// Ensure makes the record if there is none and returns its ARN.
func (s *Store) Ensure(ctx context.Context, user string) (string, error) {
	name := s.Name(user)
	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err == nil {
		return aws.ToString(d.ARN), nil
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return "", awserr.Classify("secretsmanager DescribeSecret "+name, err)
	}
	c, err := s.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:        aws.String(name),
		Description: aws.String("keyrotator: the access keys of IAM user " + user + " (AWSCURRENT in service, AWSPENDING being rolled out)"),
		Tags:        []types.Tag{{Key: aws.String("keyrotator:user"), Value: aws.String(user)}, {Key: aws.String("keyrotator:kind"), Value: aws.String("record")}},
	})
	var exists *types.ResourceExistsException
	if errors.As(err, &exists) { // made by a concurrent run: fine
		return s.Ensure(ctx, user)
	}
	if err != nil {
		return "", awserr.Classify("secretsmanager CreateSecret "+name, err)
	}
	return aws.ToString(c.ARN), nil
}

// Staged returns the version holding stage, if any (none when the record
// does not exist yet: a dry run reads without making it).
func (s *Store) Staged(ctx context.Context, user, stage string) (Version, bool, error) {
	name := s.Name(user)
	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, awserr.Classify("secretsmanager DescribeSecret "+name, err)
	}
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, stage) {
			v, _, err := s.read(ctx, user, id)
			if err != nil {
				return Version{}, false, err
			}
			v.Stages = stages
			return v, true, nil
		}
	}
	return Version{}, false, nil
}

func (s *Store) read(ctx context.Context, user, versionID string) (Version, value, error) {
	name := s.Name(user)
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(versionID)})
	if err != nil {
		return Version{}, value{}, awserr.Classify("secretsmanager GetSecretValue "+name+" version "+versionID, err)
	}
	var v value
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		// Never quote the value: it may hold a secret.
		return Version{}, value{}, fmt.Errorf("record %s version %s is not keyrotator's JSON", name, versionID)
	}
	return Version{ID: versionID, Stages: out.VersionStages, AccessKeyID: v.AccessKeyID, Execution: v.Execution, OldKeyID: v.OldAccessKeyID, Intents: v.Intents, Approval: v.Approval}, v, nil
}

// Claim takes the lock for execution: a claim version gets the AWSPENDING
// stage by compare-and-swap. from is the version a dead run left the stage
// on ("" when the stage is free). Losing the race is *rotation.RotationInProgress.
// inherit are the dead run's unresolved intents: the claim carries them, so
// this run's CreateKey removes that run's orphans.
func (s *Store) Claim(ctx context.Context, user, execution, oldKeyID, from string, inherit ...Intent) (string, error) {
	name := s.Name(user)
	token := rotation.Token(execution, "claim")
	b, _ := json.Marshal(value{Execution: execution, OldAccessKeyID: oldKeyID, Intents: inherit})
	_, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(string(b)), VersionStages: []string{claimStage},
	})
	if err != nil {
		return "", awserr.Classify("secretsmanager PutSecretValue (claim) "+name, err)
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(Pending), MoveToVersionId: aws.String(token)}
	if from != "" && from != token {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err = s.api.UpdateSecretVersionStage(ctx, in)
	var bad *types.InvalidParameterException
	if errors.As(err, &bad) {
		holder, ok, herr := s.Staged(ctx, user, Pending)
		if herr == nil && ok && holder.Execution == execution {
			return holder.ID, nil // our own earlier attempt already won
		}
		return "", &rotation.RotationInProgress{User: user, Execution: holder.Execution}
	}
	if err != nil {
		// The answer may have been lost after the stage moved (as in
		// Release): if the lock is this claim's, the claim happened.
		if holder, ok, herr := s.Staged(ctx, user, Pending); herr == nil && ok && holder.ID == token && holder.Execution == execution {
			return token, nil
		}
		return "", awserr.Classify("secretsmanager UpdateSecretVersionStage (claim) "+name, err)
	}
	return token, nil
}

// KeepForResume labels a dead run's key version before a re-run's claim
// takes AWSPENDING off it, so the version (the key the re-run reuses)
// cannot be removed as an unlabelled one.
func (s *Store) KeepForResume(ctx context.Context, user, versionID string) error {
	name := s.Name(user)
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(Resume), MoveToVersionId: aws.String(versionID)}
	if held, ok, err := s.Staged(ctx, user, Resume); err != nil {
		return err
	} else if ok && held.ID == versionID {
		return nil
	} else if ok {
		in.RemoveFromVersionId = aws.String(held.ID)
	}
	if _, err := s.api.UpdateSecretVersionStage(ctx, in); err != nil {
		return awserr.Classify("secretsmanager UpdateSecretVersionStage (resume) "+name, err)
	}
	return nil
}

// PutIntent writes intents (the last one this attempt's) as a new version
// that takes the AWSPENDING stage: the lock stays with execution, and the
// intent lives in the lock's version, which has a label, so Secrets Manager
// never removes it as it removes unlabelled versions beyond its limit. The
// token is the attempt's, so a lost answer's retry writes nothing new.
func (s *Store) PutIntent(ctx context.Context, user, execution, oldKeyID string, intents []Intent) (string, error) {
	if len(intents) == 0 {
		return "", errors.New("record: PutIntent without an intent")
	}
	name := s.Name(user)
	last := intents[len(intents)-1]
	step := fmt.Sprintf("intent-%d", last.Attempt)
	if last.Outcome != "" {
		step += "-" + last.Outcome
	}
	token := rotation.Token(execution, step)
	if err := s.ownLock(ctx, user, execution); err != nil {
		return "", err
	}
	b, _ := json.Marshal(value{Execution: execution, OldAccessKeyID: oldKeyID, Intents: intents})
	out, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(string(b)), VersionStages: []string{Pending},
	})
	if err != nil {
		return "", awserr.Classify("secretsmanager PutSecretValue (intent) "+name, err)
	}
	return aws.ToString(out.VersionId), nil
}

// ownLock refuses, as *rotation.RotationInProgress, a write that stages
// AWSPENDING for an execution that no longer holds the lock.
// PutSecretValue moves the stage from any holder: the Lambda of a run that
// was stopped runs on to its deadline, and its write would take the lock
// back from the re-run that took it over (I6). Read just before the write,
// so only a takeover in that gap gets past it (a compare-and-swap would
// need a re-run to resume a key version that never held the stage).
func (s *Store) ownLock(ctx context.Context, user, execution string) error {
	holder, held, err := s.Staged(ctx, user, Pending)
	if err != nil {
		return err
	}
	if held && holder.Execution != execution {
		return &rotation.RotationInProgress{User: user, Execution: holder.Execution}
	}
	return nil
}

// Holds reports whether a record version holds key id: the key in service
// (AWSCURRENT), the one before it (AWSPREVIOUS), the lock's version, or the
// key version of one of executions. A key a version holds has a holder; it
// is never an orphan.
func (s *Store) Holds(ctx context.Context, user, id string, executions []string) (bool, error) {
	name := s.Name(user)
	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, awserr.Classify("secretsmanager DescribeSecret "+name, err)
	}
	versions := make([]string, 0, len(d.VersionIdsToStages)+len(executions))
	for v, stages := range d.VersionIdsToStages {
		if slices.ContainsFunc(stages, func(st string) bool { return st == Current || st == Previous || st == Pending }) {
			versions = append(versions, v)
		}
	}
	for _, e := range executions {
		versions = append(versions, rotation.Token(e, "key"))
	}
	for _, vid := range slices.Compact(slices.Sorted(slices.Values(versions))) {
		v, _, err := s.read(ctx, user, vid)
		if errors.As(err, &nf) {
			continue // that execution recorded no key
		}
		if err != nil {
			return false, err
		}
		if v.AccessKeyID == id {
			return true, nil
		}
	}
	return false, nil
}

// PutKey keeps the new key as this execution's AWSPENDING version. A retry
// with the same execution writes nothing new (the token is the version id).
func (s *Store) PutKey(ctx context.Context, user, execution, oldKeyID string, key rotation.Credential) (string, error) {
	name := s.Name(user)
	token := rotation.Token(execution, "key")
	if err := s.ownLock(ctx, user, execution); err != nil {
		return "", err
	}
	b, _ := json.Marshal(value{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.Secret(), Execution: execution, OldAccessKeyID: oldKeyID})
	out, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(string(b)), VersionStages: []string{Pending},
	})
	if err != nil {
		return "", awserr.Classify("secretsmanager PutSecretValue (key) "+name, err)
	}
	return aws.ToString(out.VersionId), nil
}

// KeyVersion is the version this execution's PutKey wrote, if it did.
func (s *Store) KeyVersion(ctx context.Context, user, execution string) (Version, bool, error) {
	v, _, err := s.read(ctx, user, rotation.Token(execution, "key"))
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

// Key reads the key kept in a version, for the one call that needs it.
func (s *Store) Key(ctx context.Context, user, versionID string) (rotation.Credential, error) {
	_, v, err := s.read(ctx, user, versionID)
	if err != nil {
		return rotation.Credential{}, err
	}
	c := rotation.NewCredential(v.AccessKeyID, v.SecretAccessKey)
	if !c.Valid() {
		return rotation.Credential{}, fmt.Errorf("record %s version %s holds no key", s.Name(user), versionID)
	}
	return c, nil
}

// Promote makes versionID AWSCURRENT (Secrets Manager moves AWSPREVIOUS to
// the version it leaves); AWSPENDING stays on it as the lock until Release.
func (s *Store) Promote(ctx context.Context, user, versionID string) error {
	name := s.Name(user)
	cur, ok, err := s.Staged(ctx, user, Current)
	if err != nil {
		return err
	}
	if ok && cur.ID == versionID {
		return nil // already promoted: a retry
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(Current), MoveToVersionId: aws.String(versionID)}
	if ok {
		in.RemoveFromVersionId = aws.String(cur.ID)
	}
	if _, err := s.api.UpdateSecretVersionStage(ctx, in); err != nil {
		return awserr.Classify("secretsmanager UpdateSecretVersionStage (promote) "+name, err)
	}
	return nil
}

// Release drops the lock, if execution holds it.
func (s *Store) Release(ctx context.Context, user, execution string) error {
	name := s.Name(user)
	v, ok, err := s.Staged(ctx, user, Pending)
	if err != nil || !ok || v.Execution != execution {
		return err
	}
	_, err = s.api.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String(Pending), RemoveFromVersionId: aws.String(v.ID),
	})
	if err != nil {
		// The answer may have been lost after the label moved (a 5xx or a
		// timeout after the side effect; the SDK's retry then finds the
		// label gone). Release is idempotent: if execution no longer holds
		// the lock, the release happened.
		if held, ok, rerr := s.Staged(ctx, user, Pending); rerr == nil && (!ok || held.Execution != execution) {
			return nil
		}
		return awserr.Classify("secretsmanager UpdateSecretVersionStage (release) "+name, err)
	}
	return nil
}
