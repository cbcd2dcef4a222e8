package steps

import (
	"context"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Planner is a target kind's read-only answer to "what would you change":
// it resolves and reads the place a target names (GETs only) and returns a
// receipt whose Planned says what it would change (the Preflight).
type Planner interface {
	// resumeKeyID (Plan.ResumeKeyID) is a dead run's new key this run
	// resumes: a target that run already moved holds it, and is accepted.
	Plan(ctx context.Context, tg rotation.Target, oldKeyID, resumeKeyID string) (rotation.Receipt, error)
}

// Target is one target kind's code, a package under functions/targets
// (*secret.Target, *auth0.Target, *soracom.Target): every kind plans
// (Preflight) and gives the new key to the place a target names, saying
// what changed (Distribute). What else a kind can do it says by
// implementing UsageReporter or Cleaner; the steps ask by type assertion
// and never by the target's type. rotation.Kind is what the workflow knows
// of the kind without this code.
type Target interface {
	Planner
	Update(ctx context.Context, tg rotation.Target, execution, oldKeyID string, key rotation.Credential) (rotation.Receipt, error)
}

// UsageReporter is a kind whose service keeps its own record of using a
// target's credentials (*soracom.Target: SORACOM's lastUsedDateTime):
// VerifyOldKeyUnused's second signal beside IAM's last-used.
type UsageReporter interface {
	Usage(ctx context.Context, tg rotation.Target, r rotation.Receipt) ([]rotation.CredentialUse, error)
}

// Cleaner is a kind that keeps something for the old key once the target
// holds the new one (*soracom.Target: the old credential). CleanupTargets
// removes it after DeleteOldKey and returns a sentence saying what went; a
// *rotation.TargetFailed says what had to stay.
type Cleaner interface {
	Cleanup(ctx context.Context, tg rotation.Target, r rotation.Receipt) (string, error)
}

// Targets are the kinds' code a step was given, by kind name (a target's
// type): the Preflight's every kind; VerifyOldKeyUnused's and
// CleanupTargets' the kinds that report usage or clean up, which their
// Lambdas hold the clients of.
type Targets map[string]Target

// usage is kind's code as a UsageReporter, if the step was given it and it is one.
func (ts Targets) usage(kind string) (UsageReporter, bool) {
	u, ok := ts[kind].(UsageReporter)
	return u, ok
}

// cleaner is kind's code as a Cleaner, if the step was given it and it is one.
func (ts Targets) cleaner(kind string) (Cleaner, bool) {
	c, ok := ts[kind].(Cleaner)
	return c, ok
}
