// Package rotation is keyrotator's domain: the execution input and its
// schema, the plan, the receipts each task returns, and the named errors
// that Step Functions matches in Retry and Catch. It knows nothing of
// Lambda, JSON events or the AWS SDK.
package rotation

import (
	"errors"
	"fmt"
	"strings"
)

// The named errors. aws-lambda-go reports a returned error's type name as
// the errorType Step Functions matches, so these names are part of the state
// machine's API: handlers return them unwrapped.

// InvalidInput is bad input, refused before any change (I7).
type InvalidInput struct {
	Field  string // JSON path of the offending field, e.g. "targets[1].type"
	Reason string
}

func (e *InvalidInput) Error() string {
	if e.Field == "" {
		return "invalid input: " + e.Reason
	}
	return fmt.Sprintf("invalid input: %s: %s", e.Field, e.Reason)
}

// UserNotFound is an IAM user that does not exist.
type UserNotFound struct{ User string }

func (e *UserNotFound) Error() string { return fmt.Sprintf("IAM user %q not found", e.User) }

// KeyLimitReached is a user who already has two keys (I3).
type KeyLimitReached struct {
	User    string
	Keys    []string // "AKIA… (Active, created …, whose it is)": iamkeys.LimitReached builds it
	Removed []string // orphans deleted before the limit was found: "AKIA… (why)"
	// Issue: the run was to issue a first key (Plan.Issue), and the user
	// has no room for one; an issue never removes a key to make room.
	Issue bool
}

func (e *KeyLimitReached) Error() string {
	msg := fmt.Sprintf("IAM user %q already has two access keys (%s): delete or deactivate one first, or allow removing an inactive key with allowRemoveInactiveKey",
		e.User, strings.Join(e.Keys, ", "))
	if e.Issue {
		msg = fmt.Sprintf("IAM user %q already has two access keys (%s): no room to issue one, and an issue never removes a key to make room; delete the one that is not used first, or rotate the active one (leave out issue)",
			e.User, strings.Join(e.Keys, ", "))
	}
	if len(e.Removed) > 0 {
		msg += "; keyrotator deleted first: " + strings.Join(e.Removed, ", ")
	}
	return msg
}

// OrphanUnconfirmed is a key inside the window of a CreateKey attempt that
// died or lost its answer, held by no record version and never used, whose
// maker CloudTrail does not show yet: it is keyrotator's orphan only if
// CloudTrail's CreateAccessKey event names the attempt's own identity, and
// a person may make a key inside that window too (I3). The state machine
// retries it for as long as CloudTrail may take to show the event.
type OrphanUnconfirmed struct {
	User    string
	KeyID   string
	Attempt string // "<execution> attempt <n>"
}

func (e *OrphanUnconfirmed) Error() string {
	return fmt.Sprintf("key %s of IAM user %q was made inside the window of %s, which died or lost its answer, and no record holds it; CloudTrail does not show yet who made it (CreateAccessKey events can take 15 minutes to appear): keyrotator deletes it only once CloudTrail shows that attempt's own identity made it",
		e.KeyID, e.User, e.Attempt)
}

// RotationInProgress is a second rotation for a user whose first is in flight (I6).
type RotationInProgress struct {
	User      string
	Execution string // who holds the lock
}

func (e *RotationInProgress) Error() string {
	return fmt.Sprintf("a rotation for IAM user %q is already in flight (%s): wait for it to finish, or stop it and clear the AWSPENDING stage", e.User, e.Execution)
}

// TargetFailed is a target that could not take the new key.
type TargetFailed struct {
	Target string
	Reason string
}

func (e *TargetFailed) Error() string { return fmt.Sprintf("target %q failed: %s", e.Target, e.Reason) }

// OldKeyStillInUse is evidence that something still uses the old key (I2).
type OldKeyStillInUse struct {
	KeyID    string
	Evidence string
}

func (e *OldKeyStillInUse) Error() string {
	return fmt.Sprintf("old key %s is still in use: %s", e.KeyID, e.Evidence)
}

// ApprovalRejected is a rotation a person declined.
type ApprovalRejected struct{ By, Reason string }

func (e *ApprovalRejected) Error() string {
	return fmt.Sprintf("rotation rejected by %s: %s", e.By, e.Reason)
}

// RequestUnsigned is a run that needs approval started without the signed
// request the request endpoint (requestrun) puts into its input: nobody
// authenticated who asked, so it is refused before any change.
type RequestUnsigned struct{ Execution string }

func (e *RequestUnsigned) Error() string {
	return fmt.Sprintf("execution %s needs approval but its input carries no signed request: a run that needs approval is started through the request endpoint (keyrotator start, or the requestrun function URL), which signs who asked; nothing was changed", e.Execution)
}

// RequestForged is a signed request that does not verify: its MAC is not
// the stack's key's, or it was made for another execution, another input
// or another purpose. Refused before any change. Reason names what did not
// match, never a value beyond ids and digests.
type RequestForged struct{ Reason string }

func (e *RequestForged) Error() string {
	return "the input's signed request does not verify: " + e.Reason + "; nothing was changed"
}

// ApprovalForged is an answer to the Approve state's task token that
// answerapproval did not sign, or that does not hold for this run: a raw
// SendTaskSuccess, a document for another run or purpose, an approver not
// on the list or the requester (issue 14). What names what arrived, by its
// shape and digest only: its values are a stranger's words.
type ApprovalForged struct{ What string }

func (e *ApprovalForged) Error() string {
	return "the approval is not one keyrotator signed for this run, so no key is made: " + e.What
}

// MemberAccessDenied is a rotation in a member account whose member role
// keyrotator could not assume (issue 15): the member stack is not deployed
// there (no role), its external id or trust does not match this stack's,
// or the task role may not assume it. AWS answers all of these alike.
// Refused before any change (Validate assumes the role before it reads the
// user); not retried: it fails the same way until the member stack or the
// config changes.
type MemberAccessDenied struct {
	Account string // the member account
	Role    string // the member role's ARN
	Task    string // the task that assumed it
	Reason  string // AWS's answer, as it said it (ids only)
}

func (e *MemberAccessDenied) Error() string {
	why := ""
	if e.Reason != "" {
		why = " (" + e.Reason + ")"
	}
	return fmt.Sprintf("keyrotator's %s could not assume the member role %s of account %s%s: deploy the member stack (KeyRotatorMember, to the account or its OU with CloudFormation StackSets) with MainAccountId this stack's account and ExternalId the config's member.externalId, and check that its TrustedRoleNames matches this stack's task roles; nothing was changed",
		e.Task, e.Role, e.Account, why)
}

// Retryable is a transient failure (throttling, 5xx) that Step Functions retries with backoff.
type Retryable struct{ Reason string }

func (e *Retryable) Error() string { return "transient: " + e.Reason }

// AccessDenied is an AWS call that the function's role may not make: a
// grant is missing or a policy denies it. Not retried: it fails the same
// way until someone changes a policy. It names the service, the action and
// the resource where AWS said which, never a value.
type AccessDenied struct {
	Service  string // the SDK's service id, e.g. "IAM"
	Action   string // the API operation, e.g. "DeleteAccessKey"
	Resource string // what the call was on, when AWS's message names it; "" if not
	Code     string // AWS's error code, e.g. "AccessDenied"
}

func (e *AccessDenied) Error() string {
	on := ""
	if e.Resource != "" {
		on = " on " + e.Resource
	}
	return fmt.Sprintf("access denied (%s): %s %s%s was refused: check that the function's role allows %s%s and that no policy (SCP, permission boundary, resource policy) denies it",
		e.Code, e.Service, e.Action, on, iamAction(e.Service, e.Action), on)
}

// iamAction is the IAM action of an SDK service id and operation, e.g.
// "iam:DeleteAccessKey", "secretsmanager:PutSecretValue".
func iamAction(service, op string) string {
	prefix := strings.ToLower(strings.ReplaceAll(service, " ", ""))
	switch prefix {
	case "cloudwatchlogs":
		prefix = "logs"
	case "sfn":
		prefix = "states"
	}
	if prefix == "" {
		return op
	}
	return prefix + ":" + op
}

// Internal is any other error: a bug, or an answer keyrotator does not
// expect. Not retried (a bug fails the same way again); it keeps the text of
// the error it names, which never holds a value read from a secret (every
// such value is a SecretValue, which prints redacted).
type Internal struct{ Reason string }

func (e *Internal) Error() string { return "internal error: " + e.Reason }

// ConnectionUnreadable is the error for a target whose connection secret
// could not be read: a named or transient error passes through; any other
// is the target's failure, naming the secret.
func ConnectionUnreadable(tg Target, err error) error {
	var tf *TargetFailed
	var rt *Retryable
	if errors.As(err, &tf) || errors.As(err, &rt) {
		return err
	}
	return &TargetFailed{Target: tg.Name, Reason: fmt.Sprintf("connection secret %s: %v", tg.Connection, err)}
}

// ErrorNames are the errorTypes the state machine may match besides States.*.
var ErrorNames = []string{
	"InvalidInput", "UserNotFound", "KeyLimitReached", "RotationInProgress", "TargetFailed",
	"OldKeyStillInUse", "ApprovalRejected", "Retryable", "AccessDenied", "Internal",
	"OrphanUnconfirmed", "RequestUnsigned", "RequestForged",
	"ApprovalForged",     // issue 14: VerifyApproval
	"MemberAccessDenied", // issue 15: a member account's role could not be assumed
}
