package steps_test

import (
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
	"github.com/keyrotator/keyrotator/functions/targets/auth0"
	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// Every kind's code is a steps.Target, and what else it can do the tasks
// that ask for it may do: a UsageReporter's or Cleaner's connections are
// granted to VerifyOldKeyUnused or CleanupTargets (functions/tasks), whose
// Lambdas hold its client (functions/cmd).
var code = map[string]steps.Target{
	rotation.TargetSecret:  (*secret.Target)(nil),
	rotation.TargetAuth0:   (*auth0.Target)(nil),
	rotation.TargetSoracom: (*soracom.Target)(nil),
}

func TestEveryKindHasItsCodeAndGrants(t *testing.T) {
	for _, k := range rotation.Kinds() {
		c, ok := code[k.Name]
		if !ok {
			t.Errorf("kind %s has no code here: a package under functions/targets", k.Name)
			continue
		}
		if _, ok := c.(steps.UsageReporter); ok && !tasks.VerifyOldKeyUnused.ReadsConnections(k.Name) {
			t.Errorf("kind %s reports usage, but VerifyOldKeyUnused may not read its connections", k.Name)
		}
		if _, ok := c.(steps.Cleaner); ok && !tasks.CleanupTargets.ReadsConnections(k.Name) {
			t.Errorf("kind %s cleans up, but CleanupTargets may not read its connections", k.Name)
		}
	}
	// SORACOM can do both; the others neither (so the steps pass them by).
	if _, ok := code[rotation.TargetSoracom].(steps.Cleaner); !ok {
		t.Error("*soracom.Target is no Cleaner")
	}
	if _, ok := code[rotation.TargetSoracom].(steps.UsageReporter); !ok {
		t.Error("*soracom.Target is no UsageReporter")
	}
}
