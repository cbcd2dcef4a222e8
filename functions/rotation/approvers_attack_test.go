package rotation

import (
	"fmt"
	"strings"
	"testing"
)

// Attacks on the approver matcher (issue 14): the requester approving
// their own run under another spelling of themselves, and one identity
// counted twice towards minApprovals. The spellings are generated from
// each identity; every one must be refused as the requester and count
// once. What the design cannot tell apart (an IAM user and a role of the
// same name, which one person may hold both of) is listed as such.

// spellings are ARNs AWS may authenticate for the IAM identity (account
// acct, kind, name): a user with any path, a role as its ARN with any path
// or as any session of it, and the name in another case — IAM names are
// unique in an account without regard to case
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-friendly-names:
// "names are not distinguished by case"), so USER/Alice and user/alice
// are one user.
func spellings(partition, acct, kind, name string) []string {
	names := []string{name, strings.ToUpper(name), strings.ToLower(name), strings.ToUpper(name[:1]) + name[1:]}
	var out []string
	for _, n := range names {
		for _, path := range []string{"/", "/ops/", "/aws-reserved/sso.amazonaws.com/", "/a/b/c/"} {
			out = append(out, fmt.Sprintf("arn:%s:iam::%s:%s%s%s", partition, acct, kind, path, n))
		}
		if kind == KindRole {
			for _, s := range []string{"alice", "bob@example.com", "arn.aws.iam..111122223333.user.bob", "x", strings.Repeat("s", 64)} {
				out = append(out, fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", partition, acct, n, s))
			}
		}
	}
	return out
}

func TestAttackRequesterUnderAnotherSpelling(t *testing.T) {
	t.Parallel()
	const acct = "111122223333"
	for _, id := range []struct{ kind, name string }{{KindUser, "alice"}, {KindRole, "Deploy"}, {KindRole, "AWSReservedSSO_Approver_0a1b"}, {KindUser, "ops.lead+1@x"}} {
		// Approvers that let every spelling through, were it not the requester.
		as, err := ParseApprovers([]string{
			fmt.Sprintf("arn:aws:iam::%s:%s/*%s*", acct, id.kind, id.name[1:3]),
			fmt.Sprintf("arn:aws:iam::%s:%s/*%s*", acct, id.kind, strings.ToUpper(id.name[1:3])),
			fmt.Sprintf("arn:aws:iam::%s:%s/*%s*", acct, id.kind, strings.ToLower(id.name[1:3])),
		})
		if err != nil {
			t.Fatal(err)
		}
		all := spellings("aws", acct, id.kind, id.name)
		for _, requester := range all {
			for _, arn := range all {
				caller, err := ParseCaller(arn)
				if err != nil {
					t.Fatalf("ParseCaller(%s): %v", arn, err)
				}
				if v := as.Decide(caller, requester); v.OK || !strings.Contains(v.Reason, "requester") {
					t.Errorf("requested as %s, approved as %s: %+v", requester, arn, v)
				}
				r, _ := ParseCaller(requester)
				if !r.Same(caller) {
					t.Errorf("%s and %s are one identity, Same says not (it would count twice)", requester, arn)
				}
			}
		}
	}
}

// Distinct identities stay distinct: another account, another partition,
// the other kind. The last is what the design cannot tell from one
// person: the user alice and a role alice (or any role alice may assume)
// are two principals to IAM, and count as two approvers (docs/design.md).
func TestAttackDistinctIdentitiesStayDistinct(t *testing.T) {
	t.Parallel()
	const user = "arn:aws:iam::111122223333:user/alice"
	u, _ := ParseCaller(user)
	for _, other := range []string{
		"arn:aws:iam::444455556666:user/alice",
		"arn:aws-cn:iam::111122223333:user/alice",
		"arn:aws:sts::111122223333:assumed-role/alice/alice",
		"arn:aws:iam::111122223333:user/alice2",
		"arn:aws:iam::111122223333:user/alic",
	} {
		p, err := ParseCaller(other)
		if err != nil {
			t.Fatal(err)
		}
		if u.Same(p) {
			t.Errorf("%s and %s are distinct principals, Same says one", user, other)
		}
	}
}

// Look-alikes and trailing characters never parse as a principal: a
// Cyrillic а, a zero-width space, a trailing space, newline or NUL, a
// full-width slash.
func TestAttackLookAlikeCallersNeverParse(t *testing.T) {
	t.Parallel()
	for _, arn := range []string{
		"arn:aws:iam::111122223333:user/\u0430lice", "arn:aws:iam::111122223333:user/alice\u200b",
		"arn:aws:iam::111122223333:user/alice ", "arn:aws:iam::111122223333:user/alice\n", "arn:aws:iam::111122223333:user/alice\x00",
		"arn:aws:iam::111122223333:user\uff0falice", "arn:aws:iam::111122223333:user/alice/", "arn:aws:sts::111122223333:assumed-role/Deploy/s/extra",
		"arn:aws:sts::111122223333:assumed-role/Deploy/", " arn:aws:iam::111122223333:user/alice", "ARN:AWS:IAM::111122223333:USER/alice",
		"arn:aws:iam::111122223333:user/alice\u202e", "arn:aws:iam::１11122223333:user/alice",
		// A session name is at most 64 of [\w+=,.@-] (STS AssumeRole's
		// RoleSessionName); it lands in the record, the signed document and
		// the alerts as part of the caller's ARN.
		"arn:aws:sts::111122223333:assumed-role/Deploy/evil\x1b[31m", "arn:aws:sts::111122223333:assumed-role/Deploy/rejected by ceo (verified)",
		"arn:aws:sts::111122223333:assumed-role/Deploy/b\u202eob",
		"arn:aws:sts::111122223333:assumed-role/Deploy/" + strings.Repeat("s", 65),
	} {
		if p, err := ParseCaller(arn); err == nil {
			t.Errorf("ParseCaller(%q) = %+v, want a refusal", arn, p)
		}
	}
}
