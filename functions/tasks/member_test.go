package tasks

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The tasks that assume the member role are exactly those whose calls act
// on a rotated user or an application secret; the others never do.
func TestMemberTasks(t *testing.T) {
	t.Parallel()
	var got []string
	for _, task := range MemberTasks() {
		got = append(got, task.Name)
	}
	want := []string{"Validate", "CreateKey", "UpdateSecret", "VerifyOldKeyUnused", "DeactivateOldKey", "DeleteOldKey", "Notify"}
	if !slices.Equal(got, want) {
		t.Errorf("member tasks %v, want %v", got, want)
	}
	for _, task := range []Task{Promote, CleanupTargets, UpdateAuth0, UpdateSoracom, VerifyApproval, AnswerApproval, RequestRun} {
		if task.ReachesMembers() || task.MemberCalls() != nil {
			t.Errorf("%s reaches member accounts", task.Name)
		}
		if _, err := task.SessionPolicy("aws", "222233334444", "app"); err == nil {
			t.Errorf("%s has a session policy", task.Name)
		}
	}
}

type policyDoc struct {
	Version   string
	Statement []struct {
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string]string
	}
}

// Each member task's session policy is its own member calls, the user's
// ARNs at any path, within STS's 2,048 characters for the longest user
// name; what is not a user or an account is refused, not put in.
func TestSessionPolicies(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("u", 64)
	for _, task := range MemberTasks() {
		raw, err := task.SessionPolicy("aws-us-gov", "222233334444", long)
		if err != nil {
			t.Fatalf("%s: %v", task.Name, err)
		}
		if len(raw) > MaxSessionPolicy {
			t.Errorf("%s: %d characters", task.Name, len(raw))
		}
		var doc policyDoc
		if err := json.Unmarshal([]byte(raw), &doc); err != nil || doc.Version != "2012-10-17" {
			t.Fatalf("%s: %v %s", task.Name, err, raw)
		}
		var actions, want []string
		for _, c := range task.MemberCalls() {
			want = append(want, c.Actions...)
		}
		for _, s := range doc.Statement {
			if s.Effect != "Allow" {
				t.Errorf("%s: effect %s", task.Name, s.Effect)
			}
			actions = append(actions, s.Action...)
			for _, r := range s.Resource {
				switch {
				case r == "*":
					if !slices.Equal(s.Action, []string{"cloudtrail:LookupEvents"}) {
						t.Errorf("%s: %v on *", task.Name, s.Action)
					}
				case strings.HasPrefix(r, "arn:aws-us-gov:iam::222233334444:user/"):
					if r != "arn:aws-us-gov:iam::222233334444:user/"+long && r != "arn:aws-us-gov:iam::222233334444:user/*/"+long {
						t.Errorf("%s: user resource %s", task.Name, r)
					}
				case r == "arn:aws-us-gov:secretsmanager:*:222233334444:secret:*":
				case r == "arn:aws-us-gov:kms:*:222233334444:key/*":
					if s.Condition["StringLike"]["kms:ViaService"] != "secretsmanager.*.amazonaws.com" {
						t.Errorf("%s: a KMS key without kms:ViaService", task.Name)
					}
				default:
					t.Errorf("%s: resource %s", task.Name, r)
				}
			}
		}
		if !slices.Equal(actions, want) {
			t.Errorf("%s: actions %v, want its member calls %v", task.Name, actions, want)
		}
	}
	for _, c := range []struct{ partition, account, user string }{
		{"aws", "222233334444", "*"},
		{"aws", "222233334444", "a*"},
		{"aws", "222233334444", "a?"},
		{"aws", "222233334444", "service/app"},
		{"aws", "222233334444", long + "u"},
		{"aws", "*", "app"},
		{"aws", "22223333444", "app"},
		{"aws", "222233334444\"", "app"},
		{"aws\"x", "222233334444", "app"},
		{"", "222233334444", "app"},
	} {
		if p, err := Validate.SessionPolicy(c.partition, c.account, c.user); err == nil {
			t.Errorf("%+v: %s", c, p)
		}
	}
	// The audit's (every user of the account) is user/*.
	p, err := Validate.SessionPolicy("aws", "222233334444", "")
	if err != nil || !strings.Contains(p, `"arn:aws:iam::222233334444:user/*"`) {
		t.Errorf("account-wide: %s %v", p, err)
	}
}

// The sweep (issue 15) lists a member account's users through the member
// role: its session policy is its member calls only, read-only: ListUsers
// (no resource), each user's tags and keys; never its records, the MAC
// key or the state machine, which stay in the keyrotator account.
func TestSweepSessionPolicy(t *testing.T) {
	t.Parallel()
	raw, err := Sweep.SessionPolicy("aws", "222233334444", "")
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			got[a] = append(got[a], s.Resource...)
		}
	}
	want := map[string][]string{
		"iam:ListUsers":      {"*"},
		"iam:ListUserTags":   {"arn:aws:iam::222233334444:user/*"},
		"iam:ListAccessKeys": {"arn:aws:iam::222233334444:user/*"},
	}
	if len(got) != len(want) {
		t.Fatalf("session policy %s, want %v", raw, want)
	}
	for a, res := range want {
		if !slices.Equal(got[a], res) {
			t.Errorf("%s on %v, want %v (%s)", a, got[a], res, raw)
		}
	}
}
