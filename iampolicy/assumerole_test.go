package iampolicy

import (
	"testing"
)

// The cases of issue 15's multi-account rotation: a task role's session in
// the keyrotator account (A) assumes a member account's role (B) whose
// trust policy names A's task roles and an external id, and the member
// role's session is narrowed by a session policy. Each is decided by us
// and by @cloud-copilot/iam-simulate, and held to AWS's documentation:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session
func assumeRoleCases() []tableCase {
	const (
		member    = "arn:aws:iam::222222222222:role/keyrotator-member"
		memberAlt = "arn:aws:iam::222222222222:role/other"
		sameRole  = "arn:aws:iam::111111111111:role/Helper"
		extID     = "kr-3f9a2c"
	)
	task := worker // arn:aws:sts::111111111111:assumed-role/Worker/s1
	taskCtx := func(ext string) Context {
		c := Context{"aws:SecureTransport": {"true"}, "aws:PrincipalArn": {roleARN}, "aws:PrincipalAccount": {acctA}, "aws:PrincipalType": {"AssumedRole"},
			"sts:RoleSessionName": {"rotate"}}
		if ext != "" {
			c["sts:ExternalId"] = []string{ext}
		}
		return c
	}
	aliceCtx := Context{"aws:SecureTransport": {"true"}, "aws:PrincipalArn": {alice.ARN}, "aws:PrincipalAccount": {acctA}, "aws:username": {"alice"}}
	assume := func(res string) M { return M{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": res} }
	trust := func(principal any, cond M) M {
		s := M{"Effect": "Allow", "Principal": M{"AWS": principal}, "Action": "sts:AssumeRole"}
		if cond != nil {
			s["Condition"] = cond
		}
		return s
	}
	ext := M{"StringEquals": M{"sts:ExternalId": extID}}
	extAndTasks := M{"StringEquals": M{"sts:ExternalId": extID}, "ArnLike": M{"aws:PrincipalArn": "arn:aws:iam::111111111111:role/Work*"}}
	rc := func(name string, p Principal, action, resource, acct string, ctx Context, id []refPolicy, res []M) refCase {
		c := refCase{Name: name, Principal: p, Action: action, Resource: resource, ResourceAccount: acct, Context: ctx, Identity: id}
		if res != nil {
			c.ResourcePolicy = policy(res...)
		}
		return c
	}
	session := func(c refCase, stmts ...M) refCase { c.Session = policy(stmts...); return c }

	listKeys := M{"Effect": "Allow", "Action": "iam:ListAccessKeys", "Resource": "arn:aws:iam::222222222222:user/*"}
	allIAM := M{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}
	memberUser := "arn:aws:iam::222222222222:user/svc/bob"
	memberSession := Principal{ARN: "arn:aws:sts::222222222222:assumed-role/keyrotator-member/rotate", Account: acctB, Type: AssumedRole}
	memberCtx := Context{"aws:SecureTransport": {"true"}, "aws:PrincipalArn": {member}, "aws:PrincipalAccount": {acctB}}
	publishDirect := M{"Effect": "Allow", "Principal": M{"AWS": worker.ARN}, "Action": "sns:Publish", "Resource": topicARN}
	publishRole := M{"Effect": "Allow", "Principal": M{"AWS": roleARN}, "Action": "sns:Publish", "Resource": topicARN}
	nothing := M{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}

	return []tableCase{
		{refCase: rc("assume: cross-account, trust names the account with the external id", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", ext)}), Want: Allowed},
		{refCase: rc("assume: wrong external id", task, "sts:AssumeRole", member, acctB, taskCtx("kr-wrong"),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", ext)}), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("assume: no external id given", task, "sts:AssumeRole", member, acctB, taskCtx(""),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", ext)}), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("assume: trust names another account", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("arn:aws:iam::333333333333:root", ext)}), Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("assume: trust by account id", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust(acctA, ext)}), Want: Allowed},
		{refCase: rc("assume: the caller's identity policy lacks sts:AssumeRole", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(memberAlt)), []M{trust("arn:aws:iam::111111111111:root", ext)}), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("assume: cross-account, the trust names the role itself: identity must still allow", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			nil, []M{trust(roleARN, ext)}), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("assume: cross-account, the trust names the role itself", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume("arn:aws:iam::222222222222:role/keyrotator-*")), []M{trust(roleARN, ext)}), Want: Allowed},
		{refCase: rc("assume: aws:PrincipalArn names the task roles", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", extAndTasks)}), Want: Allowed},
		{refCase: rc("assume: aws:PrincipalArn names other roles", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", M{"StringEquals": M{"sts:ExternalId": extID}, "ArnLike": M{"aws:PrincipalArn": "arn:aws:iam::111111111111:role/Audit*"}})}),
			Want: ImplicitDeny, Missing: ResourceBased},
		{refCase: rc("assume: aws:PrincipalAccount condition", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("*", M{"StringEquals": M{"aws:PrincipalAccount": acctA, "sts:ExternalId": extID}})}), Want: Allowed},
		{refCase: rc("assume: an explicit deny in the trust policy", task, "sts:AssumeRole", member, acctB, taskCtx(extID),
			ids(assume(member)), []M{trust("arn:aws:iam::111111111111:root", ext), {"Effect": "Deny", "Principal": M{"AWS": roleARN}, "Action": "sts:AssumeRole"}}),
			Want: ExplicitDeny, Missing: ResourceBased},
		{refCase: rc("assume: same account, the trust names the user: no identity policy needed", alice, "sts:AssumeRole", sameRole, acctA, aliceCtx,
			nil, []M{trust(alice.ARN, nil)}), Want: Allowed},
		{refCase: rc("assume: same account, the trust names the account: identity must allow", alice, "sts:AssumeRole", sameRole, acctA, aliceCtx,
			nil, []M{trust("arn:aws:iam::111111111111:root", nil)}), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: rc("assume: same account, identity allows but the trust names someone else", alice, "sts:AssumeRole", sameRole, acctA, aliceCtx,
			ids(assume(sameRole)), []M{trust("arn:aws:iam::111111111111:user/carol", nil)}), Want: ImplicitDeny, Missing: ResourceBased},

		{refCase: session(rc("session: the session policy allows ListAccessKeys", memberSession, "iam:ListAccessKeys", memberUser, acctB, memberCtx,
			ids(allIAM), nil), listKeys), Want: Allowed},
		{refCase: session(rc("session: the role allows DeleteAccessKey, the session policy not", memberSession, "iam:DeleteAccessKey", memberUser, acctB, memberCtx,
			ids(allIAM), nil), listKeys), Want: ImplicitDeny, Missing: SessionBased},
		{refCase: session(rc("session: the session policy allows what the role does not", memberSession, "iam:DeleteAccessKey", memberUser, acctB, memberCtx,
			ids(listKeys), nil), allIAM), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: session(rc("session: an explicit deny in the session policy", memberSession, "iam:ListAccessKeys", memberUser, acctB, memberCtx,
			ids(allIAM), nil), listKeys, M{"Effect": "Deny", "Action": "iam:List*", "Resource": "*"}), Want: ExplicitDeny, Missing: SessionBased},
		{refCase: session(rc("session: a resource policy naming the session is not narrowed", task, "sns:Publish", topicARN, acctA, taskCtx(""),
			nil, []M{publishDirect}), nothing), Want: Allowed,
			RefereeDiffers: "'If the resource-based policy specifies the ARN of the session as a principal … the resource-based policy permissions are not limited by the session policy' (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session; the AssumeRole API reference says the same: https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)",
			RefereeSays:    ImplicitDeny},
		{refCase: session(rc("session: a resource policy naming the role is narrowed", task, "sns:Publish", topicARN, acctA, taskCtx(""),
			nil, []M{publishRole}), nothing), Want: ImplicitDeny, Missing: IdentityBased},
		{refCase: session(rc("session: a resource policy naming the role, the session policy allows", task, "sns:Publish", topicARN, acctA, taskCtx(""),
			nil, []M{publishRole}), M{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}), Want: Allowed},
	}
}

// TestAssumeRoleAgainstIAMSimulate holds the multi-account cases to AWS's
// documentation and to iam-simulate.
func TestAssumeRoleAgainstIAMSimulate(t *testing.T) {
	t.Parallel()
	table := assumeRoleCases()
	cases := make([]*refCase, len(table))
	for i := range table {
		cases[i] = &table[i].refCase
	}
	ref := runReferee(t, cases)
	for i, tc := range table {
		got := Evaluate(tc.input(t))
		if got.Kind != tc.Want {
			t.Errorf("%s: we say %s (%s), AWS's documentation %s", tc.Name, got.Kind, got.Message, tc.Want)
		}
		if tc.Want != Allowed && got.Missing != tc.Missing {
			t.Errorf("%s: we blame the %s policy, want %s (%s)", tc.Name, got.Missing, tc.Missing, got.Message)
		}
		want := tc.Want
		if tc.RefereeDiffers != "" {
			want = tc.RefereeSays
			t.Logf("settled by AWS's documentation against iam-simulate: %s: iam-simulate %s, AWS %s (%s)", tc.Name, ref[i].Result, tc.Want, tc.RefereeDiffers)
		}
		if ref[i].Result != want.String() {
			t.Errorf("%s: iam-simulate says %s %s, expected %s\n%s", tc.Name, ref[i].Result, ref[i].Error, want, tc.String())
		}
	}
}
