package rotation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The task contracts: what each Lambda takes and returns, as the state
// machine passes them (statemachine/rotation.asl.json). Every field is an
// id, a time, a count or a sentence: never a secret (I1).
//
// The execution's data grows as it runs (ExecutionData, declared here
// only: every task, the alert and the operator's watch read it as this):
//
//	$.input      the execution input, as sent (Validate parses it: Input)
//	$.execution  $$.Execution.Id
//	$.plan       Validate's Plan
//	$.key        CreateKey's NewKey
//	$.receipts   Distribute's []Receipt, one per target, in input order
//	$.targetPlans  the Preflight's []Receipt, with Planned set
//	$.promote    Promote's Cutover
//	$.verify     VerifyOldKeyUnused's Verification (attempt 0 before the first check)
//	$.retire     DeactivateOldKey's and DeleteOldKey's KeyChange
//	$.approvalAnswer  Approve's result: SendTaskSuccess's output, unverified
//	$.approval   VerifyApproval's Approval: the signed approvals, verified
//	$.warning    AlertStillInUse's last Notice
//	$.cleanup    CleanupTargets' CleanupResult
//	$.failure    {"<State>": {"Error","Cause"}}: set by a Catch, read by NotifyFailure
//	$.dryRun     true in DryRunPlan's output, the end of a dry run

// RecordPrefix is where rotation records live under the default stack
// prefix: keyrotator/users/<user>.
const RecordPrefix = DefaultPrefix + "/users/"

// RecordName is the Secrets Manager secret that holds user's keys, under
// the default stack prefix (Names.Record under any).
func RecordName(user string) string { return RecordPrefix + user }

// DefaultPrefix is the stack prefix when the config names none: the state
// machine is "keyrotator", the records keyrotator/users/<user>.
const DefaultPrefix = "keyrotator"

// PrefixEnv is the environment variable the CDK construct sets on every
// function (and the CLI reads, beside its --prefix flag): the stack prefix.
const PrefixEnv = "KEYROTATOR_PREFIX"

// The environment variables infra sets on the tasks that reach member
// accounts (issue 15; tasks.MemberTasks): the member role's name and the
// external id (the config's member.roleName, member.externalId). Package
// functions/aws/member reads them.
const (
	MemberRoleNameEnv   = "MEMBER_ROLE_NAME"
	MemberExternalIDEnv = "MEMBER_EXTERNAL_ID"
)

// DefaultMemberRoleName is the member role's name when the config names
// none: the member stack's (infra/member.DefaultRoleName), a fixed name so
// the keyrotator account computes its ARN from the account id.
const DefaultMemberRoleName = "keyrotator-member"

// prefixPattern keeps a prefix valid as a state machine name (A-Za-z0-9-_)
// and as the first part of a secret name, and short enough for both.
var prefixPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`) })

// CheckPrefix says whether p can be a stack prefix.
func CheckPrefix(p string) error {
	if !prefixPattern().MatchString(p) {
		return fmt.Errorf("prefix %q: want 1-32 letters, digits, - or _, starting with a letter", p)
	}
	return nil
}

// Names are the fixed names of one keyrotator stack: every one starts with
// its prefix, so two stacks in one account and region do not collide. The
// zero value is the default prefix's.
type Names struct{ Prefix string }

func (n Names) prefix() string {
	if n.Prefix == "" {
		return DefaultPrefix
	}
	return n.Prefix
}

// StateMachine is the state machine's name: the prefix itself.
func (n Names) StateMachine() string { return n.prefix() }

// RecordPrefix is the name prefix of the stack's rotation records, the
// stack's own account's users' and every member account's.
func (n Names) RecordPrefix() string { return n.prefix() + "/users/" }

// Record is the Secrets Manager secret that holds the keys of the user a
// UserKey names: <prefix>/users/<user> for the stack's own account,
// <prefix>/users/<account>/<user> for a member account's.
func (n Names) Record(key string) string { return n.RecordPrefix() + key }

// RecordOf is Record of UserKey(account, user).
func (n Names) RecordOf(account, user string) string { return n.Record(UserKey(account, user)) }

// UserOfRecord is the account ("" for the stack's own) and user of a
// record's name, and whether name is one of the stack's records at all.
func (n Names) UserOfRecord(name string) (account, user string, ok bool) {
	key, ok := strings.CutPrefix(name, n.RecordPrefix())
	if !ok {
		return "", "", false
	}
	return SplitUserKey(key)
}

// UserKey names an IAM user across accounts, as its record and lock are
// named (issue 15): "<user>" in the stack's own account (account ""),
// "<account>/<user>" in a member account, since a user name is unique
// only within its account. An IAM user name holds no "/", and an account
// is 12 digits, so neither form passes for the other: a user of the own
// account named like an account id keeps "<user>", never a member's name.
func UserKey(account, user string) string {
	if account == "" {
		return user
	}
	return account + "/" + user
}

// SplitUserKey is UserKey's inverse; ok is false for a key that is
// neither form (a "/" after an account that is not 12 digits, or a second
// "/").
func SplitUserKey(key string) (account, user string, ok bool) {
	a, u, member := strings.Cut(key, "/")
	switch {
	case !member:
		return "", key, key != ""
	case !IsAccountID(a) || u == "" || strings.Contains(u, "/"):
		return "", "", false
	}
	return a, u, true
}

// IsAccountID says whether s is an AWS account id: 12 digits.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ConnectionPrefix is the name prefix of the stack's connection secrets.
func (n Names) ConnectionPrefix() string { return n.prefix() + "/connections/" }

// TaskInput is what every task receives: {"kind", "now", "data"} (and
// Approve's "token"). Now is the state's entered time, so every decision
// uses the workflow's clock rather than the Lambda's; Data is the whole
// execution data.
type TaskInput struct {
	// Kind is what the task is asked: Validate: "" checks, "lock" also
	// takes the lock; Notify: approval, success, warning, failure;
	// Update*: "plan" (the Preflight) or "" (Distribute).
	Kind  string    `json:"kind,omitempty"`
	Now   time.Time `json:"now"`
	Token string    `json:"token,omitempty"` // Approve: the task token the approver's answer carries
	// ExecutionName is $$.Execution.Name (Validate, TakeLock): what a
	// signed request must name.
	ExecutionName string        `json:"executionName,omitempty"`
	Data          ExecutionData `json:"data"`
}

// ExecutionData is the state machine's data: what the run knows so far.
// The one declaration of it: the tasks (TaskInput), the alerts and the
// operator CLI's watch (cli/watch) all decode it as this.
type ExecutionData struct {
	// Input is the execution input as it was sent: Validate parses it
	// (ParseInput, against the schema), and a failure alert is sent even
	// for input that never parsed.
	Input       json.RawMessage `json:"input"`
	Execution   string          `json:"execution"`
	Plan        *Plan           `json:"plan,omitempty"`
	Key         *NewKey         `json:"key,omitempty"`
	Target      *Target         `json:"target,omitempty"` // Distribute's item
	Receipts    []Receipt       `json:"receipts,omitempty"`
	TargetPlans []Receipt       `json:"targetPlans,omitempty"` // the Preflight's: each target's receipt with Planned set
	Promote     *Cutover        `json:"promote,omitempty"`
	Verify      *Verification   `json:"verify,omitempty"`
	Retire      *KeyChange      `json:"retire,omitempty"`
	// Answer is Approve's result: whatever SendTaskSuccess carried,
	// unverified. Only VerifyApproval reads it; nothing shows it.
	Answer json.RawMessage `json:"approvalAnswer,omitempty"`
	// Approval is VerifyApproval's result: the approvals answerapproval
	// signed, verified (issue 14).
	Approval *Approval             `json:"approval,omitempty"`
	Warning  *Notice               `json:"warning,omitempty"` // AlertStillInUse's last notice
	Cleanup  *CleanupResult        `json:"cleanup,omitempty"`
	Failure  map[string]StateError `json:"failure,omitempty"`
	DryRun   bool                  `json:"dryRun,omitempty"` // DryRunPlan's output: the run ended as a dry run
}

// Approval is a run's verified approval: who asked, and each approver
// answerapproval authenticated, in the order they approved.
type Approval struct {
	RequestedBy string          `json:"requestedBy"`
	Approvals   []ApprovalEntry `json:"approvals"`
}

// ApprovalEntry is one verified approval (or, in the record, a rejection).
type ApprovalEntry struct {
	By string `json:"by"` // the caller's ARN as AWS authenticated it
	// RolePath is the role's path, when answerapproval looked it up
	// (iam:GetRole) because an approvers pattern names a path.
	RolePath string    `json:"rolePath,omitempty"`
	At       time.Time `json:"at"`
	Comment  string    `json:"comment,omitempty"`
}

// ApprovalPurpose is the purpose of an approval document: a MAC over it
// cannot pass for another kind of signed message (a request's).
const ApprovalPurpose = "keyrotator/approval/v1"

// ApprovalDoc is what answerapproval signs once minApprovals distinct
// approvers have approved, and VerifyApproval verifies: bound to one
// execution (its ARN), run (its start) and purpose, so it cannot be
// replayed on another run.
// It is canonical JSON: encoding/json of this struct, fields in this order.
type ApprovalDoc struct {
	Purpose   string `json:"purpose"`
	Execution string `json:"execution"`
	// RunStartedAt is the run's plan's StartedAt (TakeLock's time): Step
	// Functions reuses an execution's name, so its ARN, 90 days after it
	// closed, and an approval of the earlier run must not pass on the later
	// one.
	RunStartedAt time.Time       `json:"runStartedAt"`
	RequestedBy  string          `json:"requestedBy"`
	Approvals    []ApprovalEntry `json:"approvals"`
	At           time.Time       `json:"at"`
}

// SignedApproval is the SendTaskSuccess output answerapproval sends: the
// document and its HMAC-SHA-256 (KMS GenerateMac over the SHA-256 of the
// document's canonical JSON, which keeps the message under KMS's 4096
// bytes), base64.
type SignedApproval struct {
	Doc ApprovalDoc `json:"doc"`
	MAC string      `json:"mac"`
}

// ApprovalRequest is what the Approve state keeps in the run's record
// (the version its lock holds): which task token it is for (its SHA-256:
// the token itself is read from the execution's history, where Step
// Functions keeps it, so no secret value holds it), who may answer, and
// each answer as it comes. Ids, ARNs, times and bounded comments only.
type ApprovalRequest struct {
	TokenSHA256  string    `json:"tokenSha256"`
	RunStartedAt time.Time `json:"runStartedAt"` // the plan's StartedAt: the signed document names it
	Approvers    []string  `json:"approvers"`
	MinApprovals int       `json:"minApprovals"`
	RequestedBy  string    `json:"requestedBy"`
	Expires      time.Time `json:"expires"`
	// Approvals are the distinct approvers so far; Rejected the verified
	// rejection, if any (one ends the run).
	Approvals []ApprovalEntry `json:"approvals,omitempty"`
	Rejected  *ApprovalEntry  `json:"rejected,omitempty"`
	// Seal is answerapproval's MAC (the stack's HMAC key) over the answers
	// (SealedAnswers): whoever else may write the record
	// (secretsmanager:PutSecretValue on it) cannot add an approval or a
	// rejection that answerapproval signs, or an alert calls verified.
	Seal string `json:"seal,omitempty"`
}

// ApprovalSealPurpose is the purpose of a record's seal over its answers.
const ApprovalSealPurpose = "keyrotator/approval-record/v1"

// SealedAnswers is what a record's Seal is the MAC of: the answers, bound to
// the execution, its run and the task token (its digest) they answer, as
// canonical JSON (encoding/json of a struct, fields in this order).
func SealedAnswers(execution string, req ApprovalRequest) []byte {
	b, _ := json.Marshal(struct {
		Purpose      string          `json:"purpose"`
		Execution    string          `json:"execution"`
		RunStartedAt time.Time       `json:"runStartedAt"`
		TokenSHA256  string          `json:"tokenSha256"`
		Approvals    []ApprovalEntry `json:"approvals"`
		Rejected     *ApprovalEntry  `json:"rejected"`
	}{ApprovalSealPurpose, execution, req.RunStartedAt, req.TokenSHA256, req.Approvals, req.Rejected})
	return b
}

// Answered says whether the request holds any answer (which must be sealed).
func (r ApprovalRequest) Answered() bool { return len(r.Approvals) > 0 || r.Rejected != nil }

// TokenDigest is the hex SHA-256 of a task token, as ApprovalRequest keeps it.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CleanupResult is CleanupTargets' result.
type CleanupResult struct {
	Targets      []string `json:"targets"` // a sentence per target
	LockReleased bool     `json:"lockReleased"`
}

// Notice is Notify's result. After a failure, the Fail state takes the
// execution's error and cause from it.
type Notice struct {
	Error     string `json:"error,omitempty"`
	Cause     string `json:"cause,omitempty"`
	MessageID string `json:"messageId"`
	// The owner's copy (issue 15): the topic of the user's keyrotator:owner
	// tag, when the config allows it; or why it was not sent there.
	OwnerMessageID string `json:"ownerMessageId,omitempty"`
	OwnerNote      string `json:"ownerNote,omitempty"`
}

// StateError is what a Catch stores.
type StateError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Plan is Validate's result: what this run will do.
type Plan struct {
	User string `json:"user"`
	// Account is the member account the user is in (issue 15), "" for the
	// stack's own: Validate sets it from the input's account, so every
	// later task reaches the same account and record.
	Account             string    `json:"account,omitempty"`
	Record              string    `json:"record"`                        // keyrotator/users/<user>, keyrotator/users/<account>/<user>
	OldKeyID            string    `json:"oldKeyId"`                      // the key being retired
	OldKeyCreated       time.Time `json:"oldKeyCreated"`                 //
	OldKeyAgeDays       int       `json:"oldKeyAgeDays"`                 //
	RemoveInactiveKeyID string    `json:"removeInactiveKeyId,omitempty"` // I3: made room by deleting this inactive key
	ResumeKeyID         string    `json:"resumeKeyId,omitempty"`         // a failed run's new key, taken over
	ResumeVersionID     string    `json:"resumeVersionId,omitempty"`     // the record version that holds it
	OrphanKeyIDs        []string  `json:"orphanKeyIds,omitempty"`        // I5: keys a dead run's intent accounts for, nobody holds: CreateKey deletes them
	LockVersionID       string    `json:"lockVersionId,omitempty"`       // this run's claim (AWSPENDING)
	StartedAt           time.Time `json:"startedAt"`                     // Validate's now
	Skip                bool      `json:"skip"`                          // scheduled run, key younger than minKeyAgeDays
	SkipReason          string    `json:"skipReason,omitempty"`
	DryRun              bool      `json:"dryRun"`
	RequireApproval     bool      `json:"requireApproval"`                  // the Approve state runs before CreateKey
	ApprovalTimeoutSecs int       `json:"approvalTimeoutSeconds,omitempty"` // how long Approve waits
	Approvers           []string  `json:"approvers,omitempty"`              // who may approve (patterns)
	MinApprovals        int       `json:"minApprovals,omitempty"`           // how many distinct approvers
	Reason              string    `json:"reason,omitempty"`                 // why, as the input says
	RequestedBy         string    `json:"requestedBy,omitempty"`            // who: the verified requester of a signed request, else the input's word, marked unverified
	WaitSeconds         int       `json:"waitSeconds"`
	GraceSeconds        int       `json:"graceSeconds"`
	VerifyAttempts      int       `json:"verifyAttempts"`
	Targets             []Target  `json:"targets"`
	Changes             []string  `json:"changes"` // every change, in order, as a sentence (dry run prints these)
	// Issue: the run issues a first key (the input's issue): no old key
	// (OldKeyID ""), and after Promote it ends (nothing to verify or retire).
	Issue bool `json:"issue,omitempty"`
	// Deadline is the old key's IAM.3 deadline against this run's waits
	// (deadline.go): a run that cannot make it is warned about, not refused.
	Deadline *Deadline `json:"deadline,omitempty"`
}

// UserKey is the plan's user across accounts (UserKey): what its record
// and lock are named after.
func (p Plan) UserKey() string { return UserKey(p.Account, p.User) }

// Who is the plan's user for a person: "app", or "app (account
// 222233334444)" for a member account's.
func (p Plan) Who() string { return UserIn(p.Account, p.User) }

// UserIn is user for a person, with its account when it is a member's.
func UserIn(account, user string) string {
	if account == "" {
		return user
	}
	return user + " (account " + account + ")"
}

// NewKey is CreateKey's result.
type NewKey struct {
	KeyID     string `json:"keyId"`
	RecordARN string `json:"recordArn"`
	VersionID string `json:"versionId"` // the record version holding the key, staged AWSPENDING
	Reused    bool   `json:"reused"`    // an earlier attempt's key, not a new one
	// Removed are the orphans CreateKey deleted before it made the key: keys
	// an earlier attempt or a dead run made whose secret nobody holds (I5).
	Removed []RemovedKey `json:"removed,omitempty"`
}

// RemovedKey is a key CreateKey deleted, and why.
type RemovedKey struct {
	KeyID  string `json:"keyId"`
	Reason string `json:"reason"`
}

// Receipt is a target's answer: what changed, never the secret.
type Receipt struct {
	Target        string `json:"target"`
	Type          string `json:"type"`
	Where         string `json:"where"`         // secret ARN, tenant domain, credential id…
	PreviousKeyID string `json:"previousKeyId"` // what the target held before
	NewKeyID      string `json:"newKeyId"`
	Version       string `json:"version,omitempty"` // e.g. the app secret's new version id
	Changed       bool   `json:"changed"`           // false: it already held the new key
	// Soracom is what a soracom target changed: credentials and groups.
	Soracom *SoracomChange `json:"soracom,omitempty"`
	// Planned is a dry run's answer: what the target would change, read
	// off the target itself (nothing changed; NewKeyID is empty).
	Planned []string `json:"planned,omitempty"`
	// Unconfirmed is set when the target took the new key but cannot show
	// which key it holds (Auth0 documents no accessKeyId in its email
	// provider's answer): the cut-over is confirmed later, by
	// VerifyOldKeyUnused, once IAM shows the new key used by UsedBy, and
	// until then the old key is not retired (I2).
	Unconfirmed *Unconfirmed `json:"unconfirmed,omitempty"`
}

// Unconfirmed says why a target could not confirm the key it holds, and
// which AWS service's use of the new key will.
type Unconfirmed struct {
	Reason string `json:"reason"` // a sentence for a person: ids and fields, never a value read from a secret
	// UsedBy is the service IAM's last-used names (ServiceName) when the
	// target uses the new key: "ses" for an Auth0 tenant.
	UsedBy string `json:"usedBy"`
}

// Confirmation is VerifyOldKeyUnused's word on an unconfirmed receipt: has
// IAM shown the new key used by the receipt's service yet.
type Confirmation struct {
	Target    string     `json:"target"`
	UsedBy    string     `json:"usedBy"`
	Confirmed bool       `json:"confirmed"`
	At        *time.Time `json:"at,omitempty"` // the use of the new key by UsedBy that confirmed it
}

// SoracomChange is a soracom target's part of the receipt: ids only.
type SoracomChange struct {
	Operator       string        `json:"operator"`      // SORACOM operator id
	Coverage       string        `json:"coverage"`      // jp or g
	Strategy       string        `json:"strategy"`      // newCredential or inPlace
	NewCredential  string        `json:"newCredential"` // the credential that holds the new key
	OldCredentials []string      `json:"oldCredentials,omitempty"`
	Groups         []GroupChange `json:"groups"` // every group that uses the target's credential now
}

// GroupChange is one SIM group's Funnel or Funk configuration moved to the
// new credential.
type GroupChange struct {
	GroupID   string `json:"groupId"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace"` // SoracomFunnel, SoracomFunk
	From      string `json:"from"`      // the credential it used before
	To        string `json:"to"`
	Changed   bool   `json:"changed"` // false: an earlier attempt moved it, or inPlace
}

// Cutover is Promote's result: from when on the old key should be unused.
type Cutover struct {
	At             time.Time `json:"at"`
	CurrentVersion string    `json:"currentVersion"`
	// LockReleased: an issue's Promote also released the lock (the run
	// ends after it: nothing to retire).
	LockReleased bool `json:"lockReleased,omitempty"`
}

// Verification is VerifyOldKeyUnused's result.
type Verification struct {
	Attempt      int        `json:"attempt"`
	AttemptsLeft int        `json:"attemptsLeft"`
	Unused       bool       `json:"unused"`
	OldKey       KeyUse     `json:"oldKey"`
	NewKey       KeyUse     `json:"newKey"`
	CloudTrail   []TrailUse `json:"cloudTrail,omitempty"` // supporting evidence: management events only
	// CredentialUses are a target's service's own last use of its old and
	// new credentials (a kind that reports usage: SORACOM's), a second
	// signal, as the service sees its side. Its JSON name is from when
	// SORACOM was the one such kind, kept for the contract.
	CredentialUses []CredentialUse `json:"soracom,omitempty"`
	// Confirmations are the cut-overs the receipts left unconfirmed
	// (Receipt.Unconfirmed), each confirmed or not yet by IAM's last use of
	// the new key. A confirmation stays from one check to the next: IAM
	// shows only a key's latest use, which another consumer may hide.
	Confirmations []Confirmation `json:"confirmations,omitempty"`
	CheckedAt     time.Time      `json:"checkedAt"`
	Freshness     string         `json:"freshness"` // how far the evidence can be trusted
	Evidence      string         `json:"evidence"`  // one sentence for a person
}

// KeyUse is IAM's last-used data for a key.
type KeyUse struct {
	KeyID    string     `json:"keyId"`
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	Service  string     `json:"service,omitempty"`
	Region   string     `json:"region,omitempty"`
}

// CredentialUse is when a target's service (SORACOM) last used one of the
// target's credentials.
type CredentialUse struct {
	Target     string     `json:"target"`
	Credential string     `json:"credential"`
	Role       string     `json:"role"` // old, new, or inPlace (one credential, both keys in turn)
	LastUsed   *time.Time `json:"lastUsed,omitempty"`
}

// TrailUse is a CloudTrail event made with the old key after the cut-over.
type TrailUse struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Source string    `json:"source"`
	Region string    `json:"region"`
}

// KeyChange is what DeactivateOldKey and DeleteOldKey did.
type KeyChange struct {
	KeyID   string `json:"keyId"`
	Status  string `json:"status"` // Inactive, Deleted
	Changed bool   `json:"changed"`
}
