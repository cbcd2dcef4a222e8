package moto

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestAssumeRole assumes roles on both sides, in the caller's account and
// in another one, and compares the session's credentials, its identity and
// where its calls land: a user the other account's session makes is that
// account's (moto keeps a backend per account, as the sandbox keeps an IAM
// per account). moto does not evaluate trust policies, so the refusals
// (wrong external id, a missing role, a caller the trust does not name)
// are checked against iam-simulate (iampolicy) and the sandbox's own tests
// (local/pipeline), not here.
func TestAssumeRole(t *testing.T) {
	t.Parallel()
	w := start(t)
	const member = "222233334444"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`
	// The member account's role, made on the sandbox by the account's
	// admin (moto lets a session make anything in any account).
	if _, err := w.sb.AddAccount(member); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sb.IAM.InAccount(member).CreateRole("member", "/keyrotator/", "", []byte(trust), 0); err != nil {
		t.Fatal(err)
	}
	// The sandbox's IAM makes roles from templates only (iam:CreateRole is
	// not among its actions); moto needs no role to assume one.
	if _, err := w.sb.IAM.CreateRole("worker", "/svc/", "", []byte(trust), 0); err != nil {
		t.Fatal(err)
	}
	p := w.pair(t)
	c := ctx(t)
	// The caller's account: the sandbox's own, moto's default.
	home := map[string]string{"sandbox": w.sb.Server.Account(), "moto": "123456789012"}
	assume := func(step, sym, roleARN, session string, duration int32) {
		p.do(step, func(s *side) (any, error) {
			arn := strings.ReplaceAll(roleARN, "<home>", home[s.name])
			in := &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String(session), ExternalId: aws.String("kr-ext")}
			if duration != 0 {
				in.DurationSeconds = aws.Int32(duration)
			}
			out, err := sts.NewFromConfig(s.as(s.id("admin"), s.id("admin.secret"))).AssumeRole(c, in)
			if err == nil && sym != "" {
				s.bind(sym, aws.ToString(out.Credentials.AccessKeyId))
				s.bind(sym+".secret", aws.ToString(out.Credentials.SecretAccessKey))
				s.bind(sym+".token", aws.ToString(out.Credentials.SessionToken))
				s.bind(sym+".roleid", aws.ToString(out.AssumedRoleUser.AssumedRoleId))
			}
			return out, err
		})
	}
	for i, sd := range p.sides {
		id, secret := w.sb.Admin.AccessKeyID, w.sb.Admin.Secret
		if i == 1 {
			id, secret = "AKIAMOTODIFFERENTIAL", "moto-accepts-any-secret"
		}
		sd.bind("admin", id)
		sd.bind("admin.secret", secret)
	}
	assume("AssumeRole in the caller's account", "same", "arn:aws:iam::<home>:role/svc/worker", "rotate-1", 900)
	assume("AssumeRole of another account's role", "cross", "arn:aws:iam::"+member+":role/keyrotator/member", "rotate-2", 0)
	assume("AssumeRole with an invalid session name", "", "arn:aws:iam::"+member+":role/keyrotator/member", "no spaces", 0)
	assume("AssumeRole with DurationSeconds under 900", "", "arn:aws:iam::"+member+":role/keyrotator/member", "rotate-3", 899)

	session := func(sym string) func(s *side) *iam.Client {
		return func(s *side) *iam.Client {
			return iam.NewFromConfig(s.asSession(s.id(sym), s.id(sym+".secret"), s.id(sym+".token")))
		}
	}
	for _, sym := range []string{"same", "cross"} {
		p.do("GetCallerIdentity of the "+sym+"-account session", func(s *side) (any, error) {
			return sts.NewFromConfig(s.asSession(s.id(sym), s.id(sym+".secret"), s.id(sym+".token"))).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
		})
	}
	p.do("CreateUser as the other account's session", func(s *side) (any, error) {
		out, err := session("cross")(s).CreateUser(c, &iam.CreateUserInput{UserName: aws.String("member-app")})
		if err == nil {
			s.bind("member-app.id", aws.ToString(out.User.UserId))
		}
		return out, err
	})
	p.do("GetUser of the member's user in the caller's account", func(s *side) (any, error) {
		return s.iam.GetUser(c, &iam.GetUserInput{UserName: aws.String("member-app")})
	})
	p.do("GetUser of the member's user as the member's session", func(s *side) (any, error) {
		return session("cross")(s).GetUser(c, &iam.GetUserInput{UserName: aws.String("member-app")})
	})
	p.do("CreateAccessKey for the member's user", func(s *side) (any, error) {
		out, err := session("cross")(s).CreateAccessKey(c, &iam.CreateAccessKeyInput{UserName: aws.String("member-app")})
		if err == nil {
			s.bind("memberkey", aws.ToString(out.AccessKey.AccessKeyId))
			s.bind("memberkey.secret", aws.ToString(out.AccessKey.SecretAccessKey))
		}
		return out, err
	})
	p.do("ListAccessKeys of the member's user", func(s *side) (any, error) {
		return session("cross")(s).ListAccessKeys(c, &iam.ListAccessKeysInput{UserName: aws.String("member-app")})
	})
}
