// Package pipelinetest is what the end-to-end and CLI test suites share: the
// real Lambdas built once per test binary, and a fresh sandbox per test
// with keyrotator deployed in it as the CDK app deploys it.
package pipelinetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Main is a TestMain body: it builds every functions/cmd/<task> under root
// (the repository) into a temporary folder, hands the folder to use, runs
// the tests and removes it. It returns the exit code.
func Main(m *testing.M, root string, use func(dist string)) int {
	dir, err := os.MkdirTemp("", "keyrotator-lambdas-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if err := pipeline.Build(context.Background(), filepath.Join(root, "functions"), dir); err != nil {
		fmt.Fprintln(os.Stderr, "build the Lambdas:", err)
		return 2
	}
	use(dir)
	return m.Run()
}

// Deploy says what StartDeploy deploys, where a test needs other than
// Start's default.
type Deploy struct {
	// Skip are the resource types left out (pipeline.Options.Skip). nil is
	// pipeline.HarnessSkips (no schedule, no alarm); a non-nil empty slice
	// deploys every resource of the template.
	Skip []string
	// Edit, if set, changes the template before it is deployed (after the
	// execution timeout is taken out): a test of a broken deploy removes a
	// statement here. It gets and returns the template's JSON.
	Edit func(t testing.TB, template []byte) []byte
	// Checkpoint, if set, is where the test runs the leak canary before it
	// moves the clock past CloudTrail's 90 days (Checkpoint.Check): the
	// canary at the end then accepts CloudTrail's dropped events if every
	// one of them was checked there.
	Checkpoint *Checkpoint
	// AnyUser widens what the golden config names in the functions'
	// policies — its IAM users, its app/ and iot/ secrets, its connection
	// secrets — to any user, any secret under app/ and iot/, and any
	// connection, each statement keeping its actions: so a test under IAM
	// enforcement can rotate users of its own. The tests that prove the
	// template's exact grants deploy it unwidened.
	AnyUser bool
}

// Checkpoint is a leak canary run in the middle of a test, for a test that
// moves the sandbox clock more than 90 days: CloudTrail drops the older
// events, as its event history does, and the canary at the end could no
// longer see them.
type Checkpoint struct {
	checked int64 // CloudTrail's events so far, dropped or kept, when Check ran
}

// Check runs the leak canary now over everything sb has emitted (invariant
// I1), and notes how many CloudTrail events it saw.
func (c *Checkpoint) Check(t testing.TB, sb *sandboxtest.Sandbox) {
	t.Helper()
	n := int64(-1)
	if ct, ok := cloudTrailOf(sb); ok { // before Emitted: each of these is in what it reads
		n = ct.Expired() + int64(len(ct.Events()))
	}
	emitted, err := sb.Emitted()
	if err != nil { // nothing may be gone before a checkpoint
		t.Errorf("leak canary at a checkpoint: %v", err)
	}
	leak.Check(t, sb.Secrets(), emitted, sandboxtest.KindIAM)
	c.checked = max(c.checked, n)
}

// excuse is err without CloudTrail's expiry, if every event CloudTrail
// dropped was seen by a Check.
func (c *Checkpoint) excuse(err error) error {
	var kept []error
	for _, e := range flatten(err) {
		var ex *sandboxtest.CloudTrailExpiredError
		if errors.As(e, &ex) && ex.Dropped <= c.checked {
			continue
		}
		kept = append(kept, e)
	}
	return errors.Join(kept...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func cloudTrailOf(sb *sandboxtest.Sandbox) (*cloudtrail.Service, bool) {
	svc, ok := sb.Server.Service("cloudtrail")
	if !ok {
		return nil, false
	}
	ct, ok := svc.(*cloudtrail.Service)
	return ct, ok
}

// Start runs a sandbox for the test and deploys keyrotator into it: root's
// golden template (pipeline.DefaultTemplate), its functions from dist,
// without the schedules and alarms (pipeline.HarnessSkips). Without Node ≥
// 22 the test is skipped, saying how to get it. When the test ends, the
// leak canary (invariant I1) searches everything the sandbox emitted for
// every secret it holds, and fails the test on any find.
func Start(t testing.TB, opts fullsandbox.Options, root, dist string) (*sandboxtest.Sandbox, pipeline.Deployment) {
	t.Helper()
	return StartDeploy(t, opts, root, dist, Deploy{})
}

// StartDeploy is Start deploying what d says.
func StartDeploy(t testing.TB, opts fullsandbox.Options, root, dist string, d Deploy) (*sandboxtest.Sandbox, pipeline.Deployment) {
	t.Helper()
	sb := sandboxtest.Start(t, opts)
	t.Cleanup(func() { // before the sandbox stops
		emitted, err := sb.Emitted()
		if err != nil && d.Checkpoint != nil {
			err = d.Checkpoint.excuse(err)
		}
		if err != nil { // what is left is not every byte: the canary would pass on less
			t.Errorf("leak canary: %v", err)
		}
		leak.Check(t, sb.Secrets(), emitted, sandboxtest.KindIAM)
	})
	// HarnessSkips by default: no schedule fires and no alarm publishes in
	// a test's sandbox unless the test deploys them itself.
	skip := d.Skip
	if skip == nil {
		skip = pipeline.HarnessSkips
	}
	tpl := testTemplate(t, filepath.Join(root, pipeline.DefaultTemplate), d)
	dep, err := pipeline.Deploy(context.Background(), sb.Sandbox, pipeline.Options{Dist: dist, Template: tpl, Skip: skip})
	if err != nil {
		if strings.Contains(err.Error(), "node") {
			t.Skipf("Step Functions needs Node ≥ 22 (run `make deps`): %v", err)
		}
		t.Fatalf("deploy: %v", err)
	}
	return sb, dep
}

// executionTimeout is the TimeoutSeconds infra/rotator writes at the top of
// the golden definition (the golden config's longest run, 23 days).
var executionTimeout = regexp.MustCompile(`,\\"TimeoutSeconds\\":[0-9]+}"`)

// testTemplate is the golden template without the state machine's
// execution timeout. The sandbox's clock is shared: every execution's Wait
// moves it for all of them, so six rotations side by side each see the
// others' weeks pass, and a 23-day TimeoutSeconds counted on that clock
// times out runs that waited 7 days. AWS counts each execution's own time.
// Until the sandbox counts it per execution, the tests' deploys leave it
// out; the demo and keyrotator-sandbox deploy the template as it is.
// AnyUser and Edit, if set, change the result further (Deploy).
func testTemplate(t testing.TB, path string, d Deploy) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	if len(executionTimeout.FindAll(b, -1)) != 1 {
		t.Fatalf("template %s: want exactly one top-level TimeoutSeconds in the state machine's definition", path)
	}
	b = executionTimeout.ReplaceAll(b, []byte(`}"`))
	if d.AnyUser {
		if b, err = anyUser(b); err != nil {
			t.Fatalf("template %s: %v", path, err)
		}
	}
	if d.Edit != nil {
		b = d.Edit(t, b)
	}
	out := filepath.Join(t.TempDir(), "template.json")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatalf("template: %v", err)
	}
	return out
}

var (
	userARN      = regexp.MustCompile(`:user/[^/]+$`)
	appSecretARN = regexp.MustCompile(`:secret:(app|iot)/[^*]*$`)
)

// anyUser is Template.AnyUser on a template's JSON.
func anyUser(b []byte) ([]byte, error) {
	var tmpl map[string]any
	if err := json.Unmarshal(b, &tmpl); err != nil {
		return nil, err
	}
	resources, _ := tmpl["Resources"].(map[string]any)
	connections := map[string]bool{}
	for id, r := range resources {
		r, _ := r.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		if name, _ := props["Name"].(string); r["Type"] == "AWS::SecretsManager::Secret" && strings.HasPrefix(name, "keyrotator/connections/") {
			connections[id] = true
		}
	}
	anyConnection := map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":secretsmanager:",
		map[string]any{"Ref": "AWS::Region"}, ":", map[string]any{"Ref": "AWS::AccountId"}, ":secret:keyrotator/connections/*"}}}
	var widen func(v any) any
	widen = func(v any) any {
		switch x := v.(type) {
		case string:
			return appSecretARN.ReplaceAllString(userARN.ReplaceAllString(x, ":user/*"), ":secret:$1/*")
		case []any:
			for i := range x {
				x[i] = widen(x[i])
			}
			return x
		case map[string]any:
			if ref, ok := x["Ref"].(string); ok && len(x) == 1 && connections[ref] {
				return anyConnection
			}
			for k := range x {
				x[k] = widen(x[k])
			}
			return x
		}
		return v
	}
	for _, r := range resources {
		r, _ := r.(map[string]any)
		if r["Type"] != "AWS::IAM::Policy" {
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		doc, _ := props["PolicyDocument"].(map[string]any)
		stmts, _ := doc["Statement"].([]any)
		for _, st := range stmts {
			st, _ := st.(map[string]any)
			if res, ok := st["Resource"]; ok {
				st["Resource"] = widen(res)
			}
		}
	}
	return json.Marshal(tmpl)
}
