package tasks

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// What infra and the sandbox rely on when they read the list; the contract
// tests (test/contract) hold it to the ASL file and functions/cmd.
func TestTheList(t *testing.T) {
	functions := map[string]bool{}
	states := map[string]string{}
	for _, task := range slices.Concat(All, Endpoints) {
		fn := task.Function()
		if functions[fn] {
			t.Errorf("two tasks are function %s", fn)
		}
		functions[fn] = true
		if task.Name == "" || strings.ToUpper(task.Name[:1]) != task.Name[:1] || strings.ContainsAny(task.Name, " -_") {
			t.Errorf("task %q: the name is PascalCase (its placeholder is <Name>FunctionArn)", task.Name)
		}
		if endpoint := slices.ContainsFunc(Endpoints, func(e Task) bool { return e.Name == task.Name }); endpoint != (len(task.States) == 0) || endpoint != task.IsEndpoint() {
			t.Errorf("task %s: states %v; a task serves a state, an endpoint none", task.Name, task.States)
		}
		for _, s := range task.States {
			if other, dup := states[s]; dup {
				t.Errorf("state %s is declared by %s and %s", s, other, task.Name)
			}
			states[s] = task.Name
		}
		// Lambda allows 1 s to 15 min; Step Functions' retriers count on a
		// task that ends well within it.
		if task.Timeout < time.Second || task.Timeout > 15*time.Minute {
			t.Errorf("task %s: timeout %s is outside Lambda's 1 s – 15 min", task.Name, task.Timeout)
		}
		if len(task.Calls) == 0 {
			t.Errorf("task %s makes no calls: its role would grant nothing", task.Name)
		}
		for _, c := range task.Calls {
			if len(c.Actions) == 0 {
				t.Errorf("task %s: no actions on %s", task.Name, c.On)
			}
			for _, a := range c.Actions {
				if !strings.Contains(a, ":") || strings.Contains(a, "*") {
					t.Errorf("task %s: %q is not one service:Action (no wildcards)", task.Name, a)
				}
			}
			switch c.On {
			case Connections:
				if !slices.Contains([]string{rotation.TargetAuth0, rotation.TargetSoracom}, c.Kind) {
					t.Errorf("task %s reads connections of kind %q: only auth0 and soracom targets have connections", task.Name, c.Kind)
				}
				if !slices.Equal(c.Actions, ReadKey) {
					t.Errorf("task %s: %v on connections; the targets read exactly the value, %v", task.Name, c.Actions, ReadKey)
				}
			case AlertTopic:
				if !slices.Equal(c.Actions, []string{"sns:Publish"}) {
					t.Errorf("task %s: %v on the alert topic; the topic's GrantPublish gives exactly sns:Publish", task.Name, c.Actions)
				}
			case MacKey:
				for _, a := range c.Actions {
					if a != "kms:GenerateMac" && a != "kms:VerifyMac" {
						t.Errorf("task %s: %s on the signing key; it only makes or checks MACs", task.Name, a)
					}
				}
				fallthrough
			case Users, Records, Executions, AppSecrets, AppSecretKeys, StateMachine, Anything, Roles, OwnerTopics, AccountUsers:
				if c.Kind != "" {
					t.Errorf("task %s: a Kind (%q) on %s, which has none", task.Name, c.Kind, c.On)
				}
			default:
				t.Errorf("task %s: calls on %q, no kind of resource infra knows", task.Name, c.On)
			}
		}
	}
}

// Endpoints serve no state and are no state task: their functions are
// their own.
func TestEndpoints(t *testing.T) {
	for _, e := range Endpoints {
		if len(e.States) != 0 {
			t.Errorf("endpoint %s serves states %v", e.Name, e.States)
		}
		if slices.ContainsFunc(All, func(t Task) bool { return t.Function() == e.Function() }) {
			t.Errorf("endpoint %s is a state task too", e.Name)
		}
		if len(e.Calls) == 0 || e.Timeout < time.Second || e.Timeout > 15*time.Minute {
			t.Errorf("endpoint %s: calls %v, timeout %s", e.Name, e.Calls, e.Timeout)
		}
	}
}

// Only the endpoints that sign make MACs, and only states check them: no
// task both signs and verifies, so no one role can forge what it checks.
func TestMacKeyUse(t *testing.T) {
	for _, task := range slices.Concat(All, Endpoints) {
		for _, c := range task.Calls {
			if c.On != MacKey {
				continue
			}
			if slices.Contains(c.Actions, "kms:GenerateMac") && !task.IsEndpoint() {
				t.Errorf("task %s generates MACs: only the endpoints sign", task.Name)
			}
			if slices.Contains(c.Actions, "kms:VerifyMac") && task.IsEndpoint() {
				t.Errorf("endpoint %s verifies MACs: only the states check them", task.Name)
			}
		}
	}
	if got := RequestRun.FunctionName("keyrotator"); got != "keyrotator-requestrun" {
		t.Errorf("FunctionName = %q", got)
	}
}

func TestNames(t *testing.T) {
	if got := VerifyOldKeyUnused.Function(); got != "verifyoldkeyunused" {
		t.Errorf("function %q", got)
	}
	if got := VerifyOldKeyUnused.Placeholder(); got != "VerifyOldKeyUnusedFunctionArn" {
		t.Errorf("placeholder %q", got)
	}
	if !CleanupTargets.ReadsConnections(rotation.TargetSoracom) || CleanupTargets.ReadsConnections(rotation.TargetAuth0) {
		t.Error("CleanupTargets reads SORACOM's connections only")
	}
}
