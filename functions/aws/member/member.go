// Package member reaches a member account (issue 15): the SDK
// configuration a keyrotator Lambda calls a rotation's account with. The
// stack's own account is the Lambda's own configuration; a member account
// is a session of its member role (the member stack, infra/member) that
// the Lambda assumes with the external id, a session name naming the
// function, and a session policy of the task's own calls on the
// rotation's user (tasks.Task.SessionPolicy), through the SDK's
// stscreds.AssumeRoleProvider wrapped in aws.CredentialsCache. Each
// account's (and user's) configuration is built once per cold start and
// kept; a failed assume is not kept, so the next invocation tries again.
//
// A role that cannot be assumed (no member stack in the account, another
// external id, a trust that does not name this stack's task roles) is
// *rotation.MemberAccessDenied, naming the account, the role and what to
// deploy; the provider assumes the role before it hands a configuration
// out, so a step refuses there, before any change.
package member

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// The environment variables infra sets on the tasks that reach member
// accounts (tasks.MemberTasks), from the config's "member".
const (
	RoleNameEnv   = rotation.MemberRoleNameEnv
	ExternalIDEnv = rotation.MemberExternalIDEnv
)

// DefaultRoleName is the member role's name when the config names none
// (infra/member.DefaultRoleName, the member stack's).
const DefaultRoleName = rotation.DefaultMemberRoleName

// SessionDuration is how long a member session lasts: STS's shortest (15
// minutes), longer than any task's timeout; the cache renews it a minute
// before it ends (ExpiryWindow), so no call is signed with credentials
// about to expire.
const SessionDuration = 15 * time.Minute

// Settings are the member role's name and the external id keyrotator
// passes (the config's member.roleName, member.externalId).
type Settings struct {
	RoleName   string
	ExternalID string
}

// FromEnv reads the settings from the environment (getenv is os.Getenv in
// a Lambda's main).
func FromEnv(getenv func(string) string) Settings {
	s := Settings{RoleName: getenv(RoleNameEnv), ExternalID: getenv(ExternalIDEnv)}
	if s.RoleName == "" {
		s.RoleName = DefaultRoleName
	}
	return s
}

// RoleARN is the member role of account.
func (s Settings) RoleARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":role/" + s.RoleName
}

// stsAPI is what the provider calls of STS (*sts.Client): AssumeRole
// through stscreds, and GetCallerIdentity where the Lambda context does
// not say the own account.
type stsAPI interface {
	stscreds.AssumeRoleAPIClient
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ stsAPI = (*sts.Client)(nil)

// Provider is one Lambda's way into member accounts: its own configuration
// and, per account and user, the member role's session.
type Provider struct {
	base     aws.Config
	settings Settings
	task     tasks.Task
	sts      stsAPI
	newSTS   func() stsAPI
	stsOnce  sync.Once

	mu        sync.Mutex
	own       string // the stack's own account, once known
	partition string
	configs   map[string]aws.Config // by account/user (UserKey; the user "" for a task whose calls are every user's, the audit's and the sweep's)
	assuming  map[string]*assuming  // the assumes under way, by the same key
}

// assuming is an assume under way: callers for the same key wait for it
// (the sweep lists two template paths of one account side by side)
// instead of assuming the role once each.
type assuming struct {
	done chan struct{}
	cfg  aws.Config
	err  error
}

// New is task's provider over base (the Lambda's configuration, whose
// credentials assume the member role). Its STS client is made on first
// use: a rotation in the stack's own account never makes one, and a cold
// start pays nothing for it.
func New(base aws.Config, s Settings, task tasks.Task) *Provider {
	p := NewWith(base, s, task, nil)
	p.newSTS = func() stsAPI { return sts.NewFromConfig(base) }
	return p
}

// NewWith is New with its STS client given (tests).
func NewWith(base aws.Config, s Settings, task tasks.Task, client stsAPI) *Provider {
	if s.RoleName == "" {
		s.RoleName = DefaultRoleName
	}
	return &Provider{base: base, settings: s, task: task, sts: client, configs: map[string]aws.Config{}, assuming: map[string]*assuming{}}
}

// client is the STS client, made on first use.
func (p *Provider) client() stsAPI {
	p.stsOnce.Do(func() {
		if p.sts == nil && p.newSTS != nil {
			p.sts = p.newSTS()
		}
	})
	return p.sts
}

// SessionName is the RoleSessionName of task's member sessions: it names
// the function, so the member account's CloudTrail says which step made
// each call (assumed-role/keyrotator-member/keyrotator-createkey). It is
// the same for every session of the task: CreateKey's intent records it,
// and CloudTrail's maker of a key must be that same identity (I3).
func SessionName(task tasks.Task) string { return "keyrotator-" + task.Function() }

// Own is the stack's own account: the account of the invoked function's
// ARN (the Lambda context), else of the caller's identity (STS).
func (p *Provider) Own(ctx context.Context) (string, error) {
	own, _, err := p.self(ctx)
	return own, err
}

func (p *Provider) self(ctx context.Context) (account, partition string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.own != "" {
		return p.own, p.partition, nil
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		if a, err := arn.Parse(lc.InvokedFunctionArn); err == nil && rotation.IsAccountID(a.AccountID) {
			p.own, p.partition = a.AccountID, a.Partition
			return p.own, p.partition, nil
		}
	}
	out, err := p.client().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("which account is this stack's (sts GetCallerIdentity): %w", err)
	}
	a, err := arn.Parse(aws.ToString(out.Arn))
	if err != nil {
		return "", "", fmt.Errorf("which account is this stack's: caller ARN %q: %w", aws.ToString(out.Arn), err)
	}
	p.own, p.partition = a.AccountID, a.Partition
	return p.own, p.partition, nil
}

// Config is the configuration to call account with for a rotation of
// user: the Lambda's own for the stack's own account ("" or its id); for
// a member account, a session of its member role narrowed by the task's
// session policy for user. The session is assumed here, before the
// configuration is returned: a role that cannot be assumed is
// *rotation.MemberAccessDenied now, not at the step's first call.
func (p *Provider) Config(ctx context.Context, account, user string) (aws.Config, error) {
	own, partition, err := p.self(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	if account == "" || account == own {
		return p.base, nil
	}
	policy, err := p.task.SessionPolicy(partition, account, user)
	if err != nil {
		return aws.Config{}, &rotation.Internal{Reason: err.Error()}
	}
	return p.config(ctx, rotation.UserKey(account, user), partition, account, policy)
}

func (p *Provider) config(ctx context.Context, key, partition, account, policy string) (aws.Config, error) {
	p.mu.Lock()
	if cfg, ok := p.configs[key]; ok {
		p.mu.Unlock()
		return cfg, nil
	}
	if a, ok := p.assuming[key]; ok {
		p.mu.Unlock()
		select {
		case <-a.done:
			return a.cfg, a.err
		case <-ctx.Done():
			return aws.Config{}, &rotation.Retryable{Reason: fmt.Sprintf("assume %s: %v", p.settings.RoleARN(partition, account), ctx.Err())}
		}
	}
	a := &assuming{done: make(chan struct{})}
	p.assuming[key] = a
	p.mu.Unlock()
	a.cfg, a.err = p.assume(ctx, partition, account, policy)
	p.mu.Lock()
	delete(p.assuming, key)
	if a.err == nil { // a refused assume is not kept: the next call asks again
		p.configs[key] = a.cfg
	}
	p.mu.Unlock()
	close(a.done)
	return a.cfg, a.err
}

// assume assumes the member role of account with policy.
func (p *Provider) assume(ctx context.Context, partition, account, policy string) (aws.Config, error) {
	role := p.settings.RoleARN(partition, account)
	denied := &rotation.MemberAccessDenied{Account: account, Role: role, Task: p.task.Function()}
	if p.settings.ExternalID == "" {
		denied.Reason = "this stack is deployed without a member external id: set the config's member.externalId (MEMBER_EXTERNAL_ID) and deploy"
		return aws.Config{}, denied
	}
	assume := stscreds.NewAssumeRoleProvider(p.client(), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName(p.task)
		o.ExternalID = aws.String(p.settings.ExternalID)
		o.Policy = aws.String(policy)
		o.Duration = SessionDuration
	})
	creds := aws.NewCredentialsCache(named{assume, denied}, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
	if _, err := creds.Retrieve(ctx); err != nil {
		return aws.Config{}, err
	}
	cfg := p.base.Copy()
	cfg.Credentials = creds
	return cfg, nil
}

// named is the assume provider with its errors named: AWS refusing the
// assume is *rotation.MemberAccessDenied (also when a renewal mid-run is
// refused: the SDK wraps a credentials error with %w into the call's, so
// the step's error keeps the name); a transient failure is
// *rotation.Retryable; anything else keeps its text.
type named struct {
	aws.CredentialsProvider
	denied *rotation.MemberAccessDenied
}

func (n named) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := n.CredentialsProvider.Retrieve(ctx)
	if err == nil {
		return c, nil
	}
	if _, ok := awserr.Denied(err); ok || awserr.Code(err) == "AccessDenied" {
		d := *n.denied
		d.Reason = reason(err)
		return aws.Credentials{}, &d
	}
	if awserr.Transient(err) || errors.Is(err, context.DeadlineExceeded) {
		return aws.Credentials{}, &rotation.Retryable{Reason: fmt.Sprintf("assume %s: %v", n.denied.Role, err)}
	}
	return aws.Credentials{}, fmt.Errorf("assume %s: %w", n.denied.Role, err)
}

// reason is AWS's message of a refused assume, in one line, bounded: it
// names the caller and the role (ids only).
func reason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "api error "); i >= 0 {
		msg = msg[i+len("api error "):]
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	return msg
}

// Clients are C (a step's adapters, built by Make from a configuration)
// for a rotation's account, kept per account and user like the
// configurations they are made from. A step declares what it needs of
// them (an interface with Own and Member); *Clients[steps.Clients] is it.
type Clients[C any] struct {
	Provider *Provider
	Make     func(aws.Config) C

	mu   sync.Mutex
	made map[string]C
}

// Own is the stack's own account.
func (c *Clients[C]) Own(ctx context.Context) (string, error) { return c.Provider.Own(ctx) }

// Member is C for a member account's user, over a session of its member
// role (Provider.Config).
func (c *Clients[C]) Member(ctx context.Context, account, user string) (C, error) {
	var zero C
	if account == "" || !rotation.IsAccountID(account) {
		return zero, &rotation.Internal{Reason: fmt.Sprintf("member account %q: want 12 digits", account)}
	}
	key := rotation.UserKey(account, user)
	c.mu.Lock()
	made, ok := c.made[key]
	c.mu.Unlock()
	if ok {
		return made, nil
	}
	cfg, err := c.Provider.Config(ctx, account, user)
	if err != nil {
		return zero, err
	}
	made = c.Make(cfg)
	c.mu.Lock()
	if c.made == nil {
		c.made = map[string]C{}
	}
	c.made[key] = made
	c.mu.Unlock()
	return made, nil
}
