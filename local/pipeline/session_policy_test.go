package pipeline_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/iampolicy/referee"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Issue 15: every task's session policy (functions/tasks, SessionPolicy)
// is within the member role's grants (infra/member, from the same list),
// as @cloud-copilot/iam-simulate decides: each call a task makes on the
// rotation's user (at a path), the member's application secret and its
// key through Secrets Manager is allowed by the role and the session
// policy together; the other tasks' calls, and the same calls on another
// user, are not (the session policy narrows the role to one step and one
// user). The role's policies are the member stack's, as deployed.
func TestSessionPoliciesAreWithinTheMemberRole(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{Options: sandbox.Options{Accounts: []string{memberB}}})
	if _, err := pipeline.DeployStack(t.Context(), sb.Sandbox, pipeline.StackOptions{
		Template: filepath.Join("..", "..", pipeline.MemberTemplate), StackName: "keyrotator-member", Account: memberB,
		Parameters: map[string]string{"MainAccountId": mainAccount, "ExternalId": externalID, "UserPath": "/service/", "TargetNamePattern": "app/*"},
	}); err != nil {
		t.Fatal(err)
	}
	const session = "arn:aws:sts::" + memberB + ":assumed-role/keyrotator-member/keyrotator-task"
	pols, err := sb.IAM.IdentityPolicies(session)
	if err != nil || len(pols) == 0 {
		t.Fatalf("the member role's policies: %v %v", pols, err)
	}
	var role []referee.Policy
	for _, p := range pols {
		role = append(role, referee.Policy{Name: p.Name, Doc: p.Document})
	}
	resource := func(on tasks.Resource, user string) (string, map[string][]string) {
		switch on {
		case tasks.Users:
			return "arn:aws:iam::" + memberB + ":user/service/" + user, nil
		case tasks.AppSecrets:
			return "arn:aws:secretsmanager:us-east-1:" + memberB + ":secret:app/key-AbCdEf", nil
		case tasks.AppSecretKeys:
			return "arn:aws:kms:us-east-1:" + memberB + ":key/1234abcd-12ab-34cd-56ef-1234567890ab", map[string][]string{"kms:ViaService": {"secretsmanager.us-east-1.amazonaws.com"}}
		}
		return "*", nil
	}
	type want struct {
		what    string
		allowed bool
	}
	var cases []referee.Case
	var wants []want
	all := map[string]tasks.Resource{} // every member action, on its resource kind
	for _, task := range tasks.MemberTasks() {
		for _, c := range task.MemberCalls() {
			for _, a := range c.Actions {
				all[a] = c.On
			}
		}
	}
	for _, task := range tasks.MemberTasks() {
		policy, err := task.SessionPolicy("aws", memberB, "app")
		if err != nil {
			t.Fatal(err)
		}
		mine := map[string]bool{}
		add := func(action string, on tasks.Resource, user string, allowed bool) {
			res, ctx := resource(on, user)
			c := referee.Case{Principal: session, Action: action, Resource: res, ResourceAccount: memberB, Context: ctx,
				Identity: role, SessionPolicy: json.RawMessage(policy)}
			if on == tasks.AppSecretKeys {
				// A KMS key needs its key policy too: the default one,
				// which lets the account's IAM policies decide
				// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
				c.ResourcePolicy = json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + memberB + `:root"},"Action":"kms:*","Resource":"*"}]}`)
			}
			cases = append(cases, c)
			wants = append(wants, want{task.Name + " " + action + " on " + res, allowed})
		}
		for _, c := range task.MemberCalls() {
			for _, a := range c.Actions {
				mine[a] = true
				add(a, c.On, "app", true)
				if c.On == tasks.Users {
					add(a, c.On, "other", false) // another user of the same path
				}
			}
		}
		for _, a := range slices.Sorted(mapsKeys(all)) {
			if !mine[a] {
				add(a, all[a], "app", false) // another task's call
			}
		}
	}
	out, err := referee.Run(t.Context(), filepath.Join("..", ".."), cases)
	if errors.Is(err, referee.ErrMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for i, r := range out {
		if (r.Result == "Allowed") != wants[i].allowed {
			t.Errorf("%s: iam-simulate %s %s, want allowed=%v", wants[i].what, r.Result, r.Error, wants[i].allowed)
		}
		if r.Result != "Allowed" {
			denied++
		}
	}
	t.Logf("%d cases (%d denied) put to iam-simulate", len(cases), denied)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
