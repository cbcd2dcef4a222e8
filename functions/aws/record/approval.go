package record

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

// The approval of a run that needs one (issue 14) lives in the version the
// run's lock holds: the Approve state writes the request (its task token's
// digest, approvers, minApprovals, requester) there, and answerapproval appends
// each answer as a new version of the lock. Nothing of it is kept in a
// Lambda's memory.
//
// Each write's version id is derived from the execution and the number of
// answers it holds, so two approvers answering at once cannot both win:
// Secrets Manager refuses a second version with the same id and other
// content (ResourceExistsException,
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html),
// and the loser reads again (ErrAnswerRaced). A retry of the same write
// (a lost answer) has the same content and succeeds.

// ErrAnswerRaced is a concurrent answer that was recorded first: read the
// request again and decide anew.
var ErrAnswerRaced = errors.New("record: another answer was recorded at the same time")

// PutApprovalRequest writes the run's approval request into its lock: a
// new version carrying the lock's key-less claim (its old key id and
// intents) and req, staged AWSPENDING. A retry writes nothing new.
func (s *Store) PutApprovalRequest(ctx context.Context, user, execution string, req rotation.ApprovalRequest) (string, error) {
	lock, err := s.lockOf(ctx, user, execution)
	if err != nil {
		return "", err
	}
	if lock.Approval != nil && lock.Approval.TokenSHA256 == req.TokenSHA256 {
		return lock.ID, nil // written already (a retry after a lost answer)
	}
	// A retry of the Approve state waits on a fresh token: its request is
	// a version of its own (the id names the token), which replaces the
	// failed attempt's.
	id, err := s.putApproval(ctx, user, execution, "approval-request-"+req.TokenSHA256[:min(16, len(req.TokenSHA256))], lock, req)
	if errors.Is(err, ErrAnswerRaced) {
		return "", fmt.Errorf("record %s: another approval request of %s for the same token", s.Name(user), execution)
	}
	return id, err
}

// PendingApproval is the approval request of execution, from the version
// its lock holds; ok is false when the run holds no lock or asks for no
// approval (it is over, or never waited).
func (s *Store) PendingApproval(ctx context.Context, user, execution string) (rotation.ApprovalRequest, bool, error) {
	lock, err := s.lockOf(ctx, user, execution)
	var busy *rotation.RotationInProgress
	if errors.As(err, &busy) {
		return rotation.ApprovalRequest{}, false, nil
	}
	if err != nil {
		return rotation.ApprovalRequest{}, false, err
	}
	if lock.Approval == nil {
		return rotation.ApprovalRequest{}, false, nil
	}
	return *lock.Approval, true, nil
}

// PutAnswer records req, the request with one more answer (or marked
// answered), as the lock's new version. A concurrent answer that got there
// first is ErrAnswerRaced.
func (s *Store) PutAnswer(ctx context.Context, user, execution string, req rotation.ApprovalRequest) (string, error) {
	lock, err := s.lockOf(ctx, user, execution)
	if err != nil {
		return "", err
	}
	if lock.Approval == nil || lock.Approval.TokenSHA256 != req.TokenSHA256 {
		return "", fmt.Errorf("record %s: execution %s has no approval request to answer", s.Name(user), execution)
	}
	// One sequence for approvals and rejections: two answers to the same
	// request race for the same version id.
	n := len(req.Approvals)
	if req.Rejected != nil {
		n++
	}
	step := fmt.Sprintf("answer-%d", n)
	return s.putApproval(ctx, user, execution, step, lock, req)
}

// lockOf is the version execution's lock holds, or *RotationInProgress.
func (s *Store) lockOf(ctx context.Context, user, execution string) (Version, error) {
	holder, held, err := s.Staged(ctx, user, Pending)
	if err != nil {
		return Version{}, err
	}
	if !held || holder.Execution != execution {
		return Version{}, &rotation.RotationInProgress{User: user, Execution: holder.Execution}
	}
	return holder, nil
}

func (s *Store) putApproval(ctx context.Context, user, execution, step string, lock Version, req rotation.ApprovalRequest) (string, error) {
	name := s.Name(user)
	if lock.AccessKeyID != "" {
		// Approve runs before CreateKey: a lock that holds a key is a
		// resumed run's, and its key version must stay as it is.
		return "", fmt.Errorf("record %s: the lock holds key %s: an approval is asked before a key is made", name, lock.AccessKeyID)
	}
	b, _ := json.Marshal(value{Execution: execution, OldAccessKeyID: lock.OldKeyID, Intents: lock.Intents, Approval: &req})
	out, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(rotation.Token(execution, step)),
		SecretString: aws.String(string(b)), VersionStages: []string{Pending},
	})
	var exists *types.ResourceExistsException
	if errors.As(err, &exists) {
		return "", ErrAnswerRaced
	}
	if err != nil {
		return "", awserr.Classify("secretsmanager PutSecretValue ("+step+") "+name, err)
	}
	return aws.ToString(out.VersionId), nil
}
