package tasks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync"
)

// Issue 15: a rotation in a member account. The tasks whose calls act on a
// member account's resources (its IAM users, CloudTrail, its application
// secrets and their keys) make them through the member role
// (infra/member), each with a session policy of its own calls: this list
// is where both come from, so the role's grants (the union) and every
// session policy (one task's) cannot drift apart.

// memberResources are the kinds of resource that live in the rotation's
// account, not the keyrotator account: everything else a task touches
// (records, connections, the lock, the alert topic, executions, the MAC
// key) stays in the keyrotator account.
var memberResources = []Resource{Users, AccountUsers, AppSecrets, AppSecretKeys}

// ReachesMembers says whether t acts on a member account's resources (and
// so assumes the member role for a member account's rotation): a call on
// its users or its application secrets.
func (t Task) ReachesMembers() bool {
	return slices.ContainsFunc(t.Calls, func(c Calls) bool { return slices.Contains(memberResources, c.On) })
}

// MemberCalls are t's calls made in a member account: those on member
// resources and, for a task that reaches members, those that take no
// resource (cloudtrail:LookupEvents). nil for a task that reaches none.
func (t Task) MemberCalls() []Calls {
	if !t.ReachesMembers() {
		return nil
	}
	var out []Calls
	for _, c := range t.Calls {
		if c.On == Anything || slices.Contains(memberResources, c.On) {
			out = append(out, c)
		}
	}
	return out
}

// MemberTasks are the state machine's tasks that assume the member role:
// infra gives exactly their roles sts:AssumeRole on the member accounts'
// roles. (The weekly audit's member access is its own: tasks.Audit.)
func MemberTasks() []Task {
	var out []Task
	for _, t := range All {
		if t.ReachesMembers() {
			out = append(out, t)
		}
	}
	return out
}

// MaxSessionPolicy is the longest session policy STS takes as plaintext
// (AssumeRole's Policy: "The plaintext that you use for both inline and
// managed session policies can't exceed 2,048 characters";
// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
// The packed size STS then checks is smaller for the same text.
const MaxSessionPolicy = 2048

// iamUserName is what IAM takes as a user name: no wildcard, no "/"
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_User.html).
var iamUserName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{1,64}$`) })

var accountID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })

var partitionName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^aws(-[a-z]+)*$`) })

type statement struct {
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// SessionPolicy is the session policy t assumes the member role of
// account with for a rotation of user: t's MemberCalls and nothing else
// (a session may do what both the role and the session policy allow:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).
// IAM calls are scoped to the user by name at any path (user/<name> and
// user/*/<name>: a user name is unique in its account whatever its path,
// so both name that one user); user "" (an account-wide task's, the
// audit's) is every user. Application secrets are the account's (the
// member stack's TargetNamePattern narrows them), their keys through
// Secrets Manager only. A user or account that is not one (a wildcard, a
// "/") is refused: it would widen the policy.
func (t Task) SessionPolicy(partition, account, user string) (string, error) {
	if !partitionName().MatchString(partition) || !accountID().MatchString(account) {
		return "", fmt.Errorf("session policy of %s: partition %q, account %q: want aws… and 12 digits", t.Name, partition, account)
	}
	if user != "" && !iamUserName().MatchString(user) {
		return "", fmt.Errorf("session policy of %s: %q is not an IAM user name", t.Name, user)
	}
	calls := t.MemberCalls()
	if len(calls) == 0 {
		return "", fmt.Errorf("session policy of %s: the task makes no call in a member account", t.Name)
	}
	arn := func(service, region, resource string) string {
		return "arn:" + partition + ":" + service + ":" + region + ":" + account + ":" + resource
	}
	users := []string{arn("iam", "", "user/*")}
	if user != "" {
		users = []string{arn("iam", "", "user/"+user), arn("iam", "", "user/*/"+user)}
	}
	var stmts []statement
	for _, c := range calls {
		s := statement{Effect: "Allow", Action: slices.Clone(c.Actions)}
		switch c.On {
		case Users:
			s.Resource = users
		case AccountUsers:
			s.Resource = []string{arn("iam", "", "user/*")}
		case Anything:
			s.Resource = []string{"*"}
		case AppSecrets:
			s.Resource = []string{arn("secretsmanager", "*", "secret:*")}
		case AppSecretKeys:
			s.Resource = []string{arn("kms", "*", "key/*")}
			s.Condition = map[string]map[string]string{"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}
		default:
			continue
		}
		stmts = append(stmts, s)
	}
	b, err := json.Marshal(struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", stmts})
	if err != nil {
		return "", fmt.Errorf("session policy of %s: %w", t.Name, err)
	}
	if len(b) > MaxSessionPolicy {
		return "", fmt.Errorf("session policy of %s is %d characters: STS takes at most %d", t.Name, len(b), MaxSessionPolicy)
	}
	return string(b), nil
}
