// Package tasks is the one list of the state machine's Lambda tasks. Each is
// declared once, named after the state it serves (or, serving several, what
// they share): its function (functions/cmd/<function>), the ASL placeholder
// of its ARN, the Task states that run it, its timeout and the calls its
// role may make. The CDK app (infra/rotator: functions, grants,
// substitutions), the sandbox's deploy (local/pipeline), the Makefile
// (through functions/cmd) and the tests derive from it; a contract test
// (test/contract) holds it to statemachine/rotation.asl.json and
// functions/cmd.
//
// It imports nothing of Lambda or the SDK: infra and local read it.
package tasks

import (
	"slices"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Task is one Lambda of the state machine.
type Task struct {
	// Name is the PascalCase name: the state's, when the task serves one.
	Name string
	// States are the Task states whose Resource (or FunctionName) is this
	// task's placeholder.
	States []string
	// Timeout is the Lambda's.
	Timeout time.Duration
	// Calls are what its role may do, beside writing its own logs and
	// traces, in the order infra grants them.
	Calls []Calls
}

// Function is the function's name and its folder under functions/cmd:
// the Name in lower case ("VerifyOldKeyUnused" → "verifyoldkeyunused").
func (t Task) Function() string { return strings.ToLower(t.Name) }

// Placeholder is the ASL's ${…} for the function's ARN.
func (t Task) Placeholder() string { return t.Name + "FunctionArn" }

// ReadsConnections says whether t reads the connection secrets (a target
// API's credentials) of the target kind.
func (t Task) ReadsConnections(kind string) bool {
	return slices.ContainsFunc(t.Calls, func(c Calls) bool { return c.On == Connections && c.Kind == kind })
}

// Resource is a kind of resource a task's calls act on; infra turns each
// into ARNs (or a construct's grant).
type Resource string

// The kinds of resource.
const (
	// Users are the IAM users the config rotates.
	Users Resource = "users"
	// Records are the rotation records, keyrotator/users/*.
	Records Resource = "records"
	// Executions are the state machine's executions.
	Executions Resource = "executions"
	// AppSecrets are the application secrets the config's secret targets name.
	AppSecrets Resource = "app-secrets"
	// AppSecretKeys are the customer managed KMS keys the config's secret
	// targets name (kmsKeyId), used only through Secrets Manager.
	AppSecretKeys Resource = "app-secret-keys"
	// Connections are the connection secrets of one target kind
	// (Calls.Kind): the targets read their value only (ReadKey:
	// GetSecretValue; the secrets use Secrets Manager's own key, which
	// needs no grant).
	Connections Resource = "connections"
	// AlertTopic is the SNS topic of the alerts. infra grants it with the
	// topic's GrantPublish, which also allows its KMS key: only sns:Publish.
	AlertTopic Resource = "alert-topic"
	// StateMachine is the rotation state machine itself (StartExecution).
	StateMachine Resource = "state-machine"
	// Anything is "*", for actions that take no resource.
	Anything Resource = "*"
	// MacKey is the stack's KMS HMAC key (issue 14): the signed approval
	// and request documents.
	MacKey Resource = "mac-key"
	// Roles are the IAM roles of the stack's account: answerapproval looks
	// up a role's path (an approvers pattern with a path).
	Roles Resource = "roles"
	// OwnerTopics are the SNS topics the config's ownerTopics lists: where
	// Notify also sends a rotation's alerts when its user's keyrotator:owner
	// tag names one (issue 15). Their ARNs come from the config, since IAM
	// cannot grant on a topic read from a tag at run time.
	OwnerTopics Resource = "owner-topics"
	// AccountUsers are every IAM user of the account (user/*): the audit's,
	// which reads every user's keys and tags, and changes none.
	AccountUsers Resource = "account-users"
)

// Calls are IAM actions on one kind of resource.
type Calls struct {
	On      Resource
	Kind    string // with Connections: the target kind (rotation.TargetAuth0, …)
	Actions []string
}

// The actions that recur.
var (
	// ReadKey is reading a record version the task knows the id of
	// (record.Store.Key: GetSecretValue only).
	ReadKey = []string{"secretsmanager:GetSecretValue"}
	// MoveStage is finding a record's staged versions and moving a stage
	// (record.Store.Staged, Promote, Release): no new version is written.
	MoveStage = []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:UpdateSecretVersionStage"}
	// PutRecord is making the record (tagged: CreateSecret with Tags needs
	// secretsmanager:TagResource too) and writing versions to it
	// (record.Store.Ensure, Staged, PutIntent, PutKey, Holds), never moving a
	// stage but by writing a version with it.
	PutRecord = []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret", "secretsmanager:TagResource"}
	// MakeRecord is PutRecord and moving stages: the lock's claim and
	// takeover (record.Store.Claim, KeepForResume).
	MakeRecord = append(slices.Clone(PutRecord), "secretsmanager:UpdateSecretVersionStage")
	// UseAppSecretKey is what Secrets Manager needs of the caller on an
	// application secret's customer managed KMS key: kms:Decrypt to read it,
	// kms:GenerateDataKey to write a version
	// (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz).
	UseAppSecretKey = []string{"kms:Decrypt", "kms:GenerateDataKey"}
)

// The tasks, in the order of the flow.
var (
	// Validate checks the input, the user, its keys and the lock; with
	// "kind": "lock" (TakeLock) it makes the record and claims the lock,
	// so TakeLock's grants stay Validate's.
	Validate = Task{Name: "Validate", States: []string{"Validate", "TakeLock"}, Timeout: 30 * time.Second, Calls: []Calls{
		// Last-used tells a dead run's orphan key (never used but by
		// CreateKey's STS proof) from a key something holds.
		{On: Users, Actions: []string{"iam:GetUser", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"}},
		{On: Records, Actions: MakeRecord},
		{On: Executions, Actions: []string{"states:DescribeExecution"}}, // is the lock's holder alive?
		{On: Anything, Actions: []string{"cloudtrail:LookupEvents"}},    // who made a dead run's unrecorded key (no resource-level permissions)
		{On: MacKey, Actions: []string{"kms:VerifyMac"}},                // the signed request (requestrun's)
	}}
	// CreateKey makes, proves and records the new key; it deletes its
	// runs' orphans.
	CreateKey = Task{Name: "CreateKey", States: []string{"CreateKey"}, Timeout: 60 * time.Second, // waits for IAM to propagate the new key
		Calls: []Calls{
			{On: Users, Actions: []string{"iam:ListAccessKeys", "iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed"}},
			{On: Records, Actions: PutRecord}, // the lock is Validate's: CreateKey moves no stage
			// Who made a key of an intent's window: an orphan is deleted only
			// if CloudTrail names the attempt's own identity (I3).
			{On: Anything, Actions: []string{"cloudtrail:LookupEvents"}},
		}}
	// UpdateSecret plans (Preflight) and updates (Distribute) a secret target.
	UpdateSecret = Task{Name: "UpdateSecret", States: []string{"PlanSecret", "UpdateSecret"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: Records, Actions: ReadKey}, // the new key, by its version id
		// CreateSecret: an issue makes a target secret that does not exist yet (Issuance).
		{On: AppSecrets, Actions: []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret"}},
		{On: AppSecretKeys, Actions: UseAppSecretKey}, // only where a secret target names its kmsKeyId
	}}
	// UpdateAuth0 plans and updates an Auth0 tenant's email provider.
	UpdateAuth0 = Task{Name: "UpdateAuth0", States: []string{"PlanAuth0", "UpdateAuth0"}, Timeout: 60 * time.Second, // waits out Auth0's rate limit
		Calls: []Calls{
			{On: Records, Actions: ReadKey},
			{On: Connections, Kind: rotation.TargetAuth0, Actions: ReadKey}, // the tenants' API credentials
		}}
	// UpdateSoracom plans and updates SORACOM credentials and the groups
	// that use them.
	UpdateSoracom = Task{Name: "UpdateSoracom", States: []string{"PlanSoracom", "UpdateSoracom"},
		// SORACOM's rate limit is per minute: a 250-group repoint (pages of
		// groups) may wait out several.
		Timeout: 300 * time.Second,
		Calls: []Calls{
			{On: Records, Actions: ReadKey},
			{On: Connections, Kind: rotation.TargetSoracom, Actions: ReadKey}, // the SAM user's auth key, to repoint
		}}
	// Promote makes the new key the record's AWSCURRENT.
	Promote = Task{Name: "Promote", States: []string{"Promote"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: Records, Actions: MoveStage},
	}}
	// VerifyOldKeyUnused looks for uses of the old key since the cut-over.
	VerifyOldKeyUnused = Task{Name: "VerifyOldKeyUnused", States: []string{"VerifyOldKeyUnused"}, Timeout: 60 * time.Second, Calls: []Calls{
		{On: Connections, Kind: rotation.TargetSoracom, Actions: ReadKey}, // the credentials' last use
		{On: Users, Actions: []string{"iam:GetAccessKeyLastUsed"}},
		{On: Anything, Actions: []string{"cloudtrail:LookupEvents"}}, // no resource-level permissions
	}}
	// DeactivateOldKey switches the old key off.
	DeactivateOldKey = Task{Name: "DeactivateOldKey", States: []string{"DeactivateOldKey"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: Users, Actions: []string{"iam:ListAccessKeys", "iam:UpdateAccessKey"}},
	}}
	// DeleteOldKey reads last-used again after the grace period, and
	// switches the old key back on when a use was reported late.
	DeleteOldKey = Task{Name: "DeleteOldKey", States: []string{"DeleteOldKey"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: Users, Actions: []string{"iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey", "iam:DeleteAccessKey"}},
	}}
	// CleanupTargets removes what targets kept for the old key, then the lock.
	CleanupTargets = Task{Name: "CleanupTargets", States: []string{"CleanupTargets"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: Connections, Kind: rotation.TargetSoracom, Actions: ReadKey}, // to delete the old credential
		{On: Records, Actions: MoveStage},                                 // Release: the lock's stage off its version
	}}
	// Notify sends every alert and the approval request.
	Notify = Task{Name: "Notify", States: []string{"Approve", "AlertStillInUse", "NotifySuccess", "NotifyFailure"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: AlertTopic, Actions: []string{"sns:Publish"}},
		// Approve keeps the task token, approvers and requester in the
		// lock's version (record.Store.PutApprovalRequest), and a rejection
		// alert reads whether the record holds it (issue 14).
		{On: Records, Actions: ApprovalRecord},
		// The user's keyrotator:owner tag, and its topic when the config
		// lists it (issue 15).
		{On: Users, Actions: []string{"iam:ListUserTags"}},
		{On: OwnerTopics, Actions: []string{"sns:Publish"}},
		// A rejection alert calls the record's rejection verified only when
		// answerapproval's seal over the answers verifies: anyone else who
		// may write the record could have put it there.
		{On: MacKey, Actions: []string{"kms:VerifyMac"}},
	}}
)

// --- Issue 14: the approval (approvals helper). ---

// ApprovalRecord is reading the lock's version and writing the approval
// request and its answers as new versions that keep the lock
// (record.Store.PutApprovalRequest, PendingApproval, PutAnswer).
var ApprovalRecord = []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"}

var (
	// VerifyApproval lets the run make a key only on an approval
	// answerapproval signed for it.
	VerifyApproval = Task{Name: "VerifyApproval", States: []string{"VerifyApproval"}, Timeout: 30 * time.Second, Calls: []Calls{
		{On: MacKey, Actions: []string{"kms:VerifyMac"}},
	}}
	// AnswerApproval is the approval endpoint: a function URL (AuthType
	// AWS_IAM) that holds callers to the run's approvers, keeps each
	// answer in the record and answers the task token with a signed
	// approval.
	AnswerApproval = Task{Name: "AnswerApproval", Timeout: 30 * time.Second, Calls: []Calls{
		// The run's user, that it runs, and the task token Approve waits on
		// (its history: the record keeps only the token's digest).
		{On: Executions, Actions: []string{"states:DescribeExecution", "states:GetExecutionHistory"}},
		{On: Records, Actions: ApprovalRecord},
		{On: MacKey, Actions: []string{"kms:GenerateMac"}},
		{On: Roles, Actions: []string{"iam:GetRole"}}, // a role's path, for an approvers pattern with a path
		// A task token is no resource: SendTask* take none.
		{On: Anything, Actions: []string{"states:SendTaskSuccess", "states:SendTaskFailure"}},
	}}
)

// Endpoints are the Lambdas behind function URLs, which no state runs
// (States is empty): infra gives each a function URL with AuthType
// AWS_IAM, and the grants and the sandbox's deploy derive from them as
// from All.
var Endpoints = []Task{AnswerApproval, RequestRun}

// Every is every Lambda keyrotator deploys: the state tasks, then the
// endpoints, then the scheduled ones (what a build, a deploy and a leak
// check go over).
func Every() []Task { return slices.Concat(All, Endpoints, Scheduled) }

// --- end of issue 14 (approvals). ---

// Audit is no state's: a weekly EventBridge Scheduler schedule invokes it
// (infra/rotator/audit.go). It inventories every IAM user key of the
// account (package audit, as `keyrotator audit` does) and publishes a
// summary to the alert topic. Read-only.
var Audit = Task{Name: "Audit", Timeout: 300 * time.Second, // polls the credential report while IAM makes it
	Calls: []Calls{
		// The credential report: no resource types
		// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
		{On: Anything, Actions: []string{"iam:GenerateCredentialReport", "iam:GetCredentialReport"}},
		{On: AccountUsers, Actions: []string{"iam:ListAccessKeys", "iam:ListUserTags", "iam:GetAccessKeyLastUsed"}},
		{On: AlertTopic, Actions: []string{"sns:Publish"}},
	}}

// Scheduled are the Lambdas no state runs and no person calls: infra
// deploys each with its own schedule, the sandbox builds and deploys them
// as the tasks (Every).
var Scheduled = []Task{Audit,
	Sweep, // issue 15, fleet scale (sweep helper)
}

// --- Issue 15: fleet scale, the sweep (sweep helper). ---

// FleetConfig is the fleet config secret, <prefix>/fleet (infra writes it
// from the config's "fleet"): the sweep's templates and entries.
const FleetConfig Resource = "fleet-config"

// Sweep is no state's: one EventBridge Scheduler schedule invokes it
// (infra/rotator/sweep.go). It starts every due rotation of the fleet
// (package fleet), staggered within a window, each signed as a
// schedule's run with requestrun's code. Its timeout is Lambda's
// longest: the window is spent inside it.
var Sweep = Task{Name: "Sweep", Timeout: 900 * time.Second, Calls: []Calls{
	{On: FleetConfig, Actions: []string{"secretsmanager:GetSecretValue"}},
	// ListUsers has no resource types
	// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
	{On: Anything, Actions: []string{"iam:ListUsers"}},
	// A candidate's opt-in tag and its keys' ages (due or not).
	{On: Users, Actions: []string{"iam:ListUserTags", "iam:ListAccessKeys"}},
	// Whether a run holds the user's lock: the record's stages, never its value.
	{On: Records, Actions: []string{"secretsmanager:DescribeSecret"}},
	// What requestrun does for a schedule: sign the request, start the run.
	{On: MacKey, Actions: []string{"kms:GenerateMac"}},
	{On: StateMachine, Actions: []string{"states:StartExecution"}},
}}

// --- end of issue 15 (sweep). ---

// --- Issue 14: the request (request helper). ---

// The endpoints: Lambdas that are no state's task, called through a
// function URL with AuthType AWS_IAM (people) or invoked directly by a
// service (EventBridge Scheduler). Same Task shape (States empty), so infra
// grants, the sandbox deploy and the Makefile derive from the registry.
var (
	// RequestRun signs who asked into a run's input and starts it: the
	// request endpoint (keyrotator start) and the schedules' target.
	RequestRun = Task{Name: "RequestRun", Timeout: 30 * time.Second, Calls: []Calls{
		{On: MacKey, Actions: []string{"kms:GenerateMac"}},
		{On: StateMachine, Actions: []string{"states:StartExecution"}},
	}}
)

// IsEndpoint says whether t is an endpoint (no state runs it).
func (t Task) IsEndpoint() bool { return len(t.States) == 0 }

// FunctionName is an endpoint's Lambda function name under the stack
// prefix: <prefix>-<function>, fixed so the CLI finds its URL by name.
func (t Task) FunctionName(prefix string) string { return prefix + "-" + t.Function() }

// --- end of issue 14 (request). ---

// All are the tasks, each once.
var All = []Task{Validate, CreateKey, UpdateSecret, UpdateAuth0, UpdateSoracom, Promote, VerifyOldKeyUnused, DeactivateOldKey, DeleteOldKey, CleanupTargets, Notify,
	VerifyApproval, // issue 14
}
