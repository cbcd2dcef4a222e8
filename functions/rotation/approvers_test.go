package rotation

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestParseCaller(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		arn  string
		want Principal
		bad  string // what the refusal says, "" if accepted
	}{
		{arn: "arn:aws:iam::111122223333:user/alice", want: Principal{"aws", "111122223333", KindUser, "/", "alice"}},
		{arn: "arn:aws:iam::111122223333:user/ops/team-a/alice", want: Principal{"aws", "111122223333", KindUser, "/ops/team-a/", "alice"}},
		{arn: "arn:aws:sts::111122223333:assumed-role/security-lead/alice@example.com", want: Principal{"aws", "111122223333", KindRole, "", "security-lead"}},
		// IAM Identity Center: the session ARN drops /aws-reserved/sso.amazonaws.com/.
		{arn: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_SecurityAdmin_0123456789abcdef/bob", want: Principal{"aws", "111122223333", KindRole, "", "AWSReservedSSO_SecurityAdmin_0123456789abcdef"}},
		{arn: "arn:aws-us-gov:iam::111122223333:role/a/b/r", want: Principal{"aws-us-gov", "111122223333", KindRole, "/a/b/", "r"}},
		{arn: "arn:aws:iam::111122223333:root", bad: "root user"},
		{arn: "arn:aws:sts::111122223333:federated-user/bob", bad: "federated user"},
		{arn: "arn:aws:sts::111122223333:assumed-role/r", bad: "assumed-role/ROLE/session"},
		{arn: "arn:aws:iam::111122223333:group/admins", bad: "only IAM users"},
		{arn: "arn:aws:iam::11112222333:user/alice", bad: "not an IAM or STS"},
		{arn: "arn:aws:iam:us-east-1:111122223333:user/alice", bad: "not an IAM or STS"},
		{arn: "arn:evil:iam::111122223333:user/alice", bad: "not an IAM or STS"},
		{arn: "arn:aws:iam::111122223333:user/ali ce", bad: "not an IAM name"},
		{arn: "arn:aws:iam::111122223333:user//alice", bad: "not an IAM path"},
		{arn: "", bad: "not an IAM or STS"},
		{arn: "schedule nightly", bad: "not an IAM or STS"},
	} {
		got, err := ParseCaller(c.arn)
		var na *NotApprover
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("ParseCaller(%q): %v", c.arn, err)
		case c.bad == "" && got != c.want:
			t.Errorf("ParseCaller(%q) = %+v, want %+v", c.arn, got, c.want)
		case c.bad != "" && (!errors.As(err, &na) || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("ParseCaller(%q) = %+v, %v; want a refusal saying %q", c.arn, got, err, c.bad)
		}
	}
}

func TestParseApprover(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		want ApproverPattern
		bad  string
	}{
		{s: "arn:aws:iam::123456789012:role/security-*", want: ApproverPattern{"aws", "123456789012", KindRole, "", "security-*"}},
		{s: "arn:aws:iam::123456789012:user/ops/alice", want: ApproverPattern{"aws", "123456789012", KindUser, "/ops/", "alice"}},
		{s: "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_SecurityAdmin_*", want: ApproverPattern{"aws", "123456789012", KindRole, "/aws-reserved/sso.amazonaws.com/", "AWSReservedSSO_SecurityAdmin_*"}},
		{s: "arn:aws:iam::*:role/security", bad: "12 digits"},
		{s: "arn:aws:iam::123456789012:role/*", bad: "every role"},
		{s: "arn:aws:iam::123456789012:role/**", bad: "every role"},
		{s: "arn:aws:iam::123456789012:role/*/x", bad: "literal IAM path"},
		{s: "arn:aws:iam::123456789012:root", bad: "only user/"},
		{s: "arn:aws:iam::123456789012:group/admins", bad: "only user/"},
		{s: "arn:aws:sts::123456789012:assumed-role/r/s", bad: "want arn:aws:iam"},
		{s: "arn:aws:iam::123456789012:user/al[ic]e", bad: "IAM name characters"},
		{s: "arn:aws:iam::123456789012:user/\x1b[31mx", bad: "IAM name characters"},
	} {
		got, err := ParseApprover(c.s)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("ParseApprover(%q): %v", c.s, err)
		case c.bad == "" && got != c.want:
			t.Errorf("ParseApprover(%q) = %+v, want %+v", c.s, got, c.want)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("ParseApprover(%q) = %+v, %v; want a refusal saying %q", c.s, got, err, c.bad)
		case c.bad != "" && strings.ContainsRune(err.Error(), 0x1b):
			t.Errorf("ParseApprover(%q): the refusal quotes a control character: %q", c.s, err)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	as, err := ParseApprovers([]string{
		"arn:aws:iam::111122223333:role/security-*",
		"arn:aws:iam::111122223333:user/alice",
		"arn:aws:iam::111122223333:user/ops/bob",
		"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Approver_*",
	})
	if err != nil {
		t.Fatal(err)
	}
	caller := func(arn string) Principal {
		p, err := ParseCaller(arn)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const requester = "arn:aws:sts::111122223333:assumed-role/security-lead/carol"
	for _, c := range []struct {
		caller, path string
		ok, needs    bool
		says         string
	}{
		{caller: "arn:aws:sts::111122223333:assumed-role/security-oncall/dave", ok: true},
		{caller: "arn:aws:iam::111122223333:user/alice", ok: true},
		{caller: "arn:aws:iam::111122223333:user/other/alice", ok: true}, // no path in the pattern: names are unique per account
		{caller: "arn:aws:iam::111122223333:user/ops/bob", ok: true},
		{caller: "arn:aws:iam::111122223333:user/bob", says: "not among"}, // the pattern names bob's path
		{caller: "arn:aws:iam::444455556666:user/alice", says: "not among"},
		{caller: "arn:aws-cn:iam::111122223333:user/alice", says: "not among"},
		{caller: "arn:aws:sts::111122223333:assumed-role/alice/x", says: "not among"}, // a role named alice is not the user alice
		{caller: "arn:aws:sts::111122223333:assumed-role/securitylead/x", says: "not among"},
		// The requester, by another session of the same role: refused.
		{caller: "arn:aws:sts::111122223333:assumed-role/security-lead/carol-2", says: "requester never counts"},
		// An SSO role: the session drops the path, so it must be looked up.
		{caller: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Approver_0a1b/erin", needs: true},
		{caller: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Approver_0a1b/erin", path: "/aws-reserved/sso.amazonaws.com/", ok: true},
		{caller: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Approver_0a1b/erin", path: "/", says: "not among"}, // a look-alike made by hand
	} {
		p := caller(c.caller)
		if c.path != "" {
			p.Path = c.path
		}
		v := as.Decide(p, requester)
		if v.OK != c.ok || v.NeedsPath != c.needs || !strings.Contains(v.Reason, c.says) {
			t.Errorf("Decide(%s path %q) = %+v; want ok %v needsPath %v saying %q", c.caller, c.path, v, c.ok, c.needs, c.says)
		}
	}
}

func TestInputApprovers(t *testing.T) {
	t.Parallel()
	const base = `{"user":"u","targets":[{"type":"secret","name":"s","secretId":"app/x"}]`
	for _, c := range []struct {
		extra, field, says string
	}{
		{extra: `,"requireApproval":true`, field: "approvers", says: "who may approve?"},
		{extra: `,"requireApproval":true,"approvers":[]`, field: "approvers", says: "who may approve?"},
		{extra: `,"requireApproval":true,"approvers":["arn:aws:iam::111122223333:user/a"],"minApprovals":2`, field: "minApprovals", says: "could never be approved"},
		{extra: `,"requireApproval":true,"approvers":["arn:aws:iam::111122223333:role/*"]`, field: "approvers[0]", says: "every role"},
		{extra: `,"requireApproval":true,"approvers":["arn:aws:iam::111122223333:role/sec-*"],"minApprovals":2`},
		{extra: `,"requireApproval":true,"approvers":["arn:aws:iam::111122223333:user/a","arn:aws:iam::111122223333:user/b"],"minApprovals":2`},
		{extra: `,"approvers":["arn:aws:iam::111122223333:user/a"]`},
	} {
		in, err := ParseInput([]byte(base+c.extra+"}"), func([]byte) error { return nil }) // the schema has its own tests (inputschema)
		var ii *InvalidInput
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.extra, err)
		case c.field == "" && in.MinApprovals < 1:
			t.Errorf("%s: minApprovals %d, want the default 1 or more", c.extra, in.MinApprovals)
		case c.field != "" && (!errors.As(err, &ii) || ii.Field != c.field || !strings.Contains(ii.Reason, c.says)):
			t.Errorf("%s: %v; want %s refused saying %q", c.extra, err, c.field, c.says)
		}
	}
}

// FuzzApprovers holds Glob to path.Match (an implementation nobody here
// wrote; IAM names hold no / [ or \, which path.Match reads specially) and
// the matcher to its promises on any caller ARN: never a panic, root and
// federated users never match, the requester never approves.
func FuzzApprovers(f *testing.F) {
	for _, s := range [][2]string{
		{"security-*", "security-lead"}, {"a?c", "abc"}, {"*a*b*", "xaybz"}, {"**", ""}, {"a*", "b"},
		{"arn:aws:sts::111122223333:assumed-role/security-x/s", "arn:aws:iam::111122223333:role/security-*"},
		{"arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/*x"},
		{"arn:aws:sts::111122223333:federated-user/x", "arn:aws:iam::111122223333:user/x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !strings.ContainsAny(a+b, "/[\\") && isASCII(a+b) { // IAM names are ASCII; Glob matches bytes
			want, err := path.Match(a, b)
			if err == nil && Glob(a, b) != want {
				t.Fatalf("Glob(%q, %q) = %v, path.Match says %v", a, b, !want, want)
			}
		}
		caller, err := ParseCaller(a)
		if err != nil {
			if strings.HasSuffix(a, ":root") || strings.Contains(a, ":federated-user/") {
				var na *NotApprover
				if !errors.As(err, &na) {
					t.Fatalf("ParseCaller(%q): %v, want *NotApprover", a, err)
				}
			}
			return
		}
		if caller.Kind != KindUser && caller.Kind != KindRole {
			t.Fatalf("ParseCaller(%q) = kind %q", a, caller.Kind)
		}
		as, err := ParseApprovers([]string{b})
		if err != nil {
			return
		}
		if v := as.Decide(caller, a); v.OK {
			t.Fatalf("%q approves its own request under %q", a, b)
		}
		caller.Path = "/"
		if v := as.Decide(caller, "schedule s"); v.NeedsPath {
			t.Fatalf("%q with a known path still needs one under %q", a, b)
		}
	})
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
