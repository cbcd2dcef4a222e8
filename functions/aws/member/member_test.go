package member

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

const (
	own = "111122223333"
	b   = "222233334444"
)

// fakeSTS answers AssumeRole as STS does, or with err; it records each call.
type fakeSTS struct {
	mu       sync.Mutex
	assumes  []*sts.AssumeRoleInput
	whoami   int
	err      error         // AssumeRole's answer when set
	lifetime time.Duration // of the credentials it issues (default an hour)
}

func (f *fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assumes = append(f.assumes, in)
	if f.err != nil {
		return nil, &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: f.err}
	}
	life := f.lifetime
	if life == 0 {
		life = time.Hour
	}
	return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{
		AccessKeyId: aws.String("ASIAMEMBER"), SecretAccessKey: aws.String("s"), SessionToken: aws.String("t"), Expiration: aws.Time(time.Now().Add(life)),
	}}, nil
}

func (f *fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.whoami++
	return &sts.GetCallerIdentityOutput{Account: aws.String(own), Arn: aws.String("arn:aws:sts::" + own + ":assumed-role/KeyRotator-RotatorValidateRole-X/keyrotator-validate")}, nil
}

func (f *fakeSTS) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.assumes)
}

func base() aws.Config {
	return aws.Config{Region: "ap-northeast-1", Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIALAMBDA", "x", "tok"))}
}

var denied = &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::111122223333:assumed-role/KeyRotator-RotatorValidateRole-X/keyrotator-validate is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222233334444:role/keyrotator-member"}

// The stack's own account is the Lambda's configuration as it is; a member
// account's is a session of its member role, assumed with the external id,
// the function's session name and the task's session policy for the user,
// once per account and user.
func TestConfigAssumesTheMemberRole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := &fakeSTS{}
	p := NewWith(base(), Settings{ExternalID: "kr-ext"}, tasks.CreateKey, f)
	for _, acct := range []string{"", own} {
		cfg, err := p.Config(ctx, acct, "app")
		if err != nil {
			t.Fatal(err)
		}
		c, _ := cfg.Credentials.Retrieve(ctx)
		if c.AccessKeyID != "AKIALAMBDA" {
			t.Errorf("account %q: credentials %s, want the Lambda's own", acct, c.AccessKeyID)
		}
	}
	if f.calls() != 0 || f.whoami != 1 {
		t.Fatalf("the own account assumed %d times, asked who it is %d times", f.calls(), f.whoami)
	}
	cfg, err := p.Config(ctx, b, "app")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil || c.AccessKeyID != "ASIAMEMBER" {
		t.Fatalf("member credentials %s %v", c.AccessKeyID, err)
	}
	if cfg.Region != "ap-northeast-1" {
		t.Errorf("region %q", cfg.Region)
	}
	if f.calls() != 1 {
		t.Fatalf("%d AssumeRole calls", f.calls())
	}
	in := f.assumes[0]
	wantPolicy, _ := tasks.CreateKey.SessionPolicy("aws", b, "app")
	if aws.ToString(in.RoleArn) != "arn:aws:iam::"+b+":role/keyrotator-member" || aws.ToString(in.ExternalId) != "kr-ext" ||
		aws.ToString(in.RoleSessionName) != "keyrotator-createkey" || aws.ToString(in.Policy) != wantPolicy || aws.ToInt32(in.DurationSeconds) != 900 {
		t.Errorf("AssumeRole %s ext=%s session=%s duration=%d policy=%s", aws.ToString(in.RoleArn), aws.ToString(in.ExternalId), aws.ToString(in.RoleSessionName), aws.ToInt32(in.DurationSeconds), aws.ToString(in.Policy))
	}
	if !strings.Contains(aws.ToString(in.Policy), "user/*/app") || strings.Contains(aws.ToString(in.Policy), "user/*\"") {
		t.Errorf("the session policy is not scoped to the user: %s", aws.ToString(in.Policy))
	}
	// Kept: the same account and user assume no more; another user is a session of its own.
	if _, err := p.Config(ctx, b, "app"); err != nil || f.calls() != 1 {
		t.Errorf("a second Config: %v, %d AssumeRole calls", err, f.calls())
	}
	if _, err := p.Config(ctx, b, "other"); err != nil || f.calls() != 2 || !strings.Contains(aws.ToString(f.assumes[1].Policy), "user/other") {
		t.Errorf("another user: %v, %d calls", err, f.calls())
	}
	if p.base.Credentials == cfg.Credentials {
		t.Error("the member configuration shares the Lambda's credentials")
	}
}

// The own account comes from the invoked function's ARN when the Lambda
// context has it: no STS call.
func TestOwnFromTheLambdaContext(t *testing.T) {
	t.Parallel()
	f := &fakeSTS{}
	p := NewWith(base(), Settings{ExternalID: "x"}, tasks.Validate, f)
	ctx := lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{InvokedFunctionArn: "arn:aws-cn:lambda:cn-north-1:444455556666:function:kr-validate"})
	got, err := p.Own(ctx)
	if err != nil || got != "444455556666" || f.whoami != 0 {
		t.Fatalf("own %q %v, %d STS calls", got, err, f.whoami)
	}
	if _, err := p.Config(ctx, b, "app"); err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(f.assumes[0].RoleArn); arn != "arn:aws-cn:iam::"+b+":role/keyrotator-member" {
		t.Errorf("role %s: the partition is the function's", arn)
	}
}

// A refused assume is MemberAccessDenied naming the account, the role and
// the task, with AWS's words; it is not kept (the next invocation assumes
// again, after the member stack is deployed). A throttle is Retryable. No
// external id configured is refused without a call.
func TestAssumeRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := &fakeSTS{err: denied}
	p := NewWith(base(), Settings{ExternalID: "kr-ext", RoleName: "kr-member"}, tasks.Validate, f)
	_, err := p.Config(ctx, b, "app")
	var mad *rotation.MemberAccessDenied
	if !errors.As(err, &mad) || mad.Account != b || mad.Role != "arn:aws:iam::"+b+":role/kr-member" || mad.Task != "validate" ||
		!strings.Contains(mad.Reason, "is not authorized to perform: sts:AssumeRole") {
		t.Fatalf("refused assume: %#v", err)
	}
	for _, want := range []string{b, "arn:aws:iam::" + b + ":role/kr-member", "deploy the member stack", "ExternalId", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err.Error(), want)
		}
	}
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
	if _, err := p.Config(ctx, b, "app"); err != nil || f.calls() != 2 {
		t.Errorf("after the stack is deployed: %v, %d calls", err, f.calls())
	}

	throttled := &fakeSTS{err: &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}}
	_, err = NewWith(base(), Settings{ExternalID: "kr-ext"}, tasks.Validate, throttled).Config(ctx, b, "app")
	if _, ok := errors.AsType[*rotation.Retryable](err); !ok {
		t.Errorf("throttled: %#v, want Retryable", err)
	}

	none := &fakeSTS{}
	_, err = NewWith(base(), Settings{}, tasks.Validate, none).Config(ctx, b, "app")
	if !errors.As(err, &mad) || !strings.Contains(mad.Reason, "member.externalId") || none.calls() != 0 {
		t.Errorf("no external id: %v, %d calls", err, none.calls())
	}
	// What is not a user or an account never reaches STS.
	for _, c := range []struct{ account, user string }{{b, "*"}, {b, "a/b"}, {"22223333444", "app"}} {
		if _, err := NewWith(base(), Settings{ExternalID: "x"}, tasks.Validate, none).Config(ctx, c.account, c.user); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if none.calls() != 0 {
		t.Errorf("%d AssumeRole calls for bad names", none.calls())
	}
}

// Credentials that expire mid-run are renewed; a renewal AWS refuses (the
// member stack removed mid-run) reaches the step's call as
// MemberAccessDenied, as the SDK wraps a credentials error into the call's.
func TestRenewalRefusedMidRun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := &fakeSTS{lifetime: 30 * time.Second} // inside the cache's one-minute window: every Retrieve renews
	p := NewWith(base(), Settings{ExternalID: "kr-ext"}, tasks.DeleteOldKey, f)
	cfg, err := p.Config(ctx, b, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil || f.calls() != 2 {
		t.Fatalf("renewal: %v, %d calls", err, f.calls())
	}
	f.mu.Lock()
	f.err = denied
	f.mu.Unlock()
	_, err = cfg.Credentials.Retrieve(ctx)
	wrapped := &smithy.OperationError{ServiceID: "IAM", OperationName: "DeleteAccessKey", Err: errors.Join(errors.New("get credentials"), err)}
	if _, ok := errors.AsType[*rotation.MemberAccessDenied](wrapped); !ok {
		t.Errorf("a refused renewal: %#v", err)
	}
}

// Clients are made once per account and user; the own account is never
// asked of Member.
func TestClients(t *testing.T) {
	t.Parallel()
	f := &fakeSTS{}
	made := 0
	c := &Clients[string]{Provider: NewWith(base(), Settings{ExternalID: "x"}, tasks.Validate, f), Make: func(cfg aws.Config) string {
		made++
		k, _ := cfg.Credentials.Retrieve(context.Background())
		return k.AccessKeyID
	}}
	for range 3 {
		got, err := c.Member(t.Context(), b, "app")
		if err != nil || got != "ASIAMEMBER" {
			t.Fatalf("%q %v", got, err)
		}
	}
	if made != 1 || f.calls() != 1 {
		t.Errorf("made %d, assumed %d", made, f.calls())
	}
	if _, err := c.Member(t.Context(), "", "app"); err == nil {
		t.Error("Member of no account")
	}
	if own, err := c.Own(t.Context()); err != nil || own != "111122223333" {
		t.Errorf("own %q %v", own, err)
	}
}

// The weekly audit's (functions/cmd/audit): Config with no user is a
// session narrowed to tasks.Audit's calls on every user, made once per
// account; the own account is the Lambda's, with no assume.
func TestConfigOfEveryUser(t *testing.T) {
	t.Parallel()
	f := &fakeSTS{}
	p := NewWith(base(), Settings{ExternalID: "x"}, tasks.Audit, f)
	want, err := tasks.Audit.SessionPolicy("aws", b, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := p.Config(t.Context(), b, ""); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.assumes) != 1 || aws.ToString(f.assumes[0].Policy) != want || aws.ToString(f.assumes[0].RoleSessionName) != "keyrotator-audit" {
		t.Fatalf("%d assumes, the first %+v; want one, with the audit's policy %s", len(f.assumes), f.assumes, want)
	}
	if !strings.Contains(want, `"arn:aws:iam::`+b+`:user/*"`) || strings.Contains(want, "sns:") {
		t.Errorf("the audit's session policy %s: want every user of %s, and nothing of the keyrotator account", want, b)
	}
	if _, err := p.Config(t.Context(), own, ""); err != nil || f.calls() != 1 {
		t.Errorf("own account: %v %d", err, f.calls())
	}
}

// Callers that ask for one account and user at once share one assume
// (the sweep lists two template paths of one member account side by
// side); a refused one is shared too, and asked again later.
func TestConcurrentConfigsShareOneAssume(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	f := &slowSTS{fakeSTS: &fakeSTS{}, gate: gate}
	p := NewWith(base(), Settings{ExternalID: "x"}, tasks.Sweep, f)
	if _, err := p.Own(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = p.Config(t.Context(), b, "") })
	}
	for f.calls() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the other seven are waiting by now, or would have assumed
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls(); n != 1 {
		t.Errorf("%d assumes for 8 callers at once, want 1", n)
	}
}

// slowSTS holds each AssumeRole until gate closes.
type slowSTS struct {
	*fakeSTS
	gate chan struct{}
}

func (s *slowSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, o ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	s.fakeSTS.mu.Lock()
	s.fakeSTS.assumes = append(s.fakeSTS.assumes, in)
	s.fakeSTS.mu.Unlock()
	<-s.gate
	s.fakeSTS.mu.Lock()
	s.fakeSTS.assumes = s.fakeSTS.assumes[:len(s.fakeSTS.assumes)-1]
	s.fakeSTS.mu.Unlock()
	return s.fakeSTS.AssumeRole(ctx, in, o...)
}
