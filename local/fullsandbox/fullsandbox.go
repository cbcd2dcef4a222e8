// Package fullsandbox is the whole sandbox assembled: every service (the AWS
// ones, Auth0, SORACOM) on one server, the admin identity seeded. Named for
// that: local/sandbox is the server and one package per service, this is all
// of them wired together. keyrotator-sandbox, the demo and every test that
// needs the sandbox start it here.
package fullsandbox

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/authz"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudwatch"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/iotdata"
	"github.com/keyrotator/keyrotator/local/sandbox/kms"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/organizations"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler"
	"github.com/keyrotator/keyrotator/local/sandbox/secretsmanager"
	"github.com/keyrotator/keyrotator/local/sandbox/ses"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
	"github.com/keyrotator/keyrotator/local/sandbox/sqs"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
	"github.com/keyrotator/keyrotator/local/sandbox/sts"
)

// Options configure the sandbox.
type Options struct {
	sandbox.Options
	// AdminUser is the seeded identity whose key the sandbox prints on start.
	AdminUser string
	// WaitScale shortens Step Functions Wait states and Retry pauses: a
	// 7-day wait lasts 7 days × WaitScale of real time, while the sandbox
	// clock moves the full 7 days.
	WaitScale float64
	// RetryScale shortens Retry pauses instead, if set (0: WaitScale): a
	// throttled Task's retries must outlast real Lambda work.
	RetryScale float64
	// CallbackScale shortens the timeout of callback Tasks (an approval
	// waiting for a person); 0: WaitScale, with stepfunctions' floor.
	CallbackScale float64
	// IAMLag is how long after a use of a key IAM's GetAccessKeyLastUsed
	// shows it, on the sandbox clock: 0 is iam.DefaultLag (IAM's documented
	// four hours); NoIAMLag shows every use at once.
	IAMLag time.Duration
	// LambdaConcurrency caps each deployed function's instances (reserved
	// concurrency): more overlapping calls get TooManyRequestsException.
	// 0 is lambda.DefaultMaxConcurrency.
	LambdaConcurrency int
	// EnforceIAM makes the sandbox decide every call as IAM does
	// (local/sandbox/authz): the caller's identity policies, the topic's
	// policy and its KMS key's, a KMS key's policy, a function's policy
	// (function URLs need lambda:InvokeFunctionUrl and
	// lambda:InvokeFunction); the admin identity keeps full access.
	EnforceIAM bool
	// RecordIAM, with EnforceIAM, is told every decision (a differential
	// test replays them to another evaluator).
	RecordIAM func(authz.Decision)
	// NodeModules is the node_modules folder holding aws-local-stepfunctions;
	// Node is a Node.js ≥ 22 binary. Empty: found from the working directory.
	NodeModules string
	Node        string
}

// NoIAMLag as Options.IAMLag: IAM reports a use at once (tests about
// something other than the lag).
const NoIAMLag time.Duration = -1

// Sandbox is a running sandbox's services.
type Sandbox struct {
	Server *sandbox.Server
	IAM    *iam.Service
	Auth0  *auth0.Service // fake Auth0 tenants, each on its own port
	// Soracom is fake SORACOM operators, each on its own port; their groups
	// push data into the sandbox's AWS with the keys they hold.
	Soracom *soracom.Service
	Lambda  *lambda.Service
	// Stacks are the CloudFormation stacks deployed into it (kept with
	// --state, so a deploy after a restart updates the stack).
	Stacks *cfn.Stacks
	Admin  sandbox.Credential
	// LambdaConcurrency is each function's cap that pipeline.Deploy sets.
	LambdaConcurrency int

	adminUser  string
	authorizer *authz.Authorizer // nil: IAM not enforced
	mu         sync.Mutex
	admins     map[string]sandbox.Credential // member accounts' admins, by account
}

// New builds every service on one server, restores --state if there is
// one, and seeds the admin identity.
func New(opts Options) (*Sandbox, error) {
	if opts.AdminUser == "" {
		opts.AdminUser = "sandbox-admin"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := sandbox.New(opts.Options)
	lag := opts.IAMLag
	switch {
	case lag == 0:
		lag = iam.DefaultLag
	case lag < 0:
		lag = 0
	}
	sb := &Sandbox{Server: srv, IAM: iam.New(srv, lag), LambdaConcurrency: opts.LambdaConcurrency}
	if sb.LambdaConcurrency <= 0 {
		sb.LambdaConcurrency = lambda.DefaultMaxConcurrency
	}
	srv.Register(sb.IAM)
	srv.Register(sts.New(srv))
	// more services: registered below, one line each
	srv.Register(secretsmanager.New(srv))
	srv.Register(cloudtrail.New(srv))
	topics := sns.New(srv) // its topics' policies and keys: IAM enforcement reads them
	srv.Register(topics)
	srv.Register(ses.New(srv))
	srv.Register(iotdata.New(srv))
	keys := kms.New(srv)
	srv.Register(keys) // KMS, SQS: what the deployed template's topic and dead-letter queue use
	srv.Register(sqs.New(srv))
	sb.Lambda = lambda.New(srv) // Lambda: the real bootstrap binaries as child processes
	srv.Register(sb.Lambda)
	srv.Register(stepfunctions.New(srv, stepfunctions.Options{WaitScale: opts.WaitScale, RetryScale: opts.RetryScale, CallbackScale: opts.CallbackScale, NodeModules: opts.NodeModules, Node: opts.Node})) // after Lambda: closed first
	// EventBridge Scheduler after Step Functions: it starts executions, so it stops first.
	srv.Register(scheduler.New(srv))
	srv.Register(cloudwatch.New(srv))    // evaluates alarms on Step Functions' and SQS's metrics
	srv.Register(organizations.New(srv)) // keyrotator audit --organization: ListAccounts
	sb.Auth0 = auth0.New(srv, 0)
	srv.Attach("auth0", sb.Auth0) // not AWS: its own ports, the admin API and Close
	// SORACOM, attached like Auth0; its groups publish to iotdata and invoke
	// Lambda with the keys they hold.
	sb.Soracom = soracom.New(srv, 0)
	srv.Attach("soracom", sb.Soracom)
	sb.Stacks = &cfn.Stacks{} // the template deployer's record; services provision by implementing cfn.Provisioner
	srv.Attach("cloudformation", sb.Stacks)
	if _, err := srv.LoadState(); err != nil {
		return nil, fmt.Errorf("load sandbox state: %w", err)
	}
	admin, err := sb.IAM.SeedAdmin(opts.AdminUser)
	if err != nil {
		return nil, fmt.Errorf("seed admin: %w", err)
	}
	sb.Admin = admin
	sb.adminUser = opts.AdminUser
	sb.admins = map[string]sandbox.Credential{}
	if opts.EnforceIAM {
		sb.authorizer = authz.New(authz.Options{IAM: sb.IAM, Topics: topics, Keys: keys, Functions: sb.Lambda, Admins: []string{admin.Principal.ARN}, Now: srv.Clock().Now, Record: opts.RecordIAM})
		srv.SetAuthorizer(sb.authorizer)
	}
	for _, account := range srv.Accounts()[1:] { // Options.Accounts, and those a restored state holds
		if _, err := sb.AddAccount(account); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// AddAccount makes the sandbox hold a member account (12 digits) with its
// own empty IAM, CloudTrail and Secrets Manager, and an admin identity of
// its own (an IAM user named like the sandbox's admin, in that account,
// with full access as the account's administrator has): the identity that
// sets the account up (pipeline.DeployStack deploys as it). It returns that
// admin's key; adding an account the sandbox holds returns its admin again.
func (sb *Sandbox) AddAccount(account string) (sandbox.Credential, error) {
	if account == sb.Server.Account() {
		return sb.Admin, nil
	}
	if err := sb.Server.AddAccount(account); err != nil {
		return sandbox.Credential{}, err
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if c, ok := sb.admins[account]; ok {
		return c, nil
	}
	member := sb.IAM.InAccount(account)
	if member == nil {
		return sandbox.Credential{}, fmt.Errorf("account %s: the sandbox's IAM does not hold it", account)
	}
	c, err := member.SeedAdmin(sb.adminUser)
	if err != nil {
		return sandbox.Credential{}, fmt.Errorf("seed the admin of account %s: %w", account, err)
	}
	if sb.authorizer != nil {
		sb.authorizer.AddAdmin(c.Principal.ARN)
	}
	sb.admins[account] = c
	return c, nil
}

// AdminOf is the admin identity of account (the sandbox's own or a member
// account added with AddAccount or Options.Accounts).
func (sb *Sandbox) AdminOf(account string) (sandbox.Credential, bool) {
	if account == "" || account == sb.Server.Account() {
		return sb.Admin, true
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	c, ok := sb.admins[account]
	return c, ok
}

// Env is the environment a shell or an SDK needs to reach the sandbox as the admin.
func (sb *Sandbox) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + sb.Server.URL(),
		"AWS_REGION=" + sb.Server.Region(),
		"AWS_DEFAULT_REGION=" + sb.Server.Region(),
		"AWS_ACCESS_KEY_ID=" + sb.Admin.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + sb.Admin.Secret,
	}
}
