package iampolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// refCase is one request for both evaluators: ours and
// @cloud-copilot/iam-simulate (the referee, run by testdata/simulate.mjs).
type refCase struct {
	Name            string
	Principal       Principal
	Action          string
	Resource        string
	ResourceAccount string
	Context         Context
	Identity        []refPolicy
	ResourcePolicy  json.RawMessage
	Session         json.RawMessage // the session policy of a role session, if one was passed
}

// roleTrust: an sts:AssumeRole's resource policy is the role's trust
// policy (iam-simulate's StsServiceAuthorizer), so we say so.
func (c *refCase) roleTrust() bool { return c.Action == "sts:AssumeRole" }

type refPolicy struct {
	Name string
	Doc  json.RawMessage
}

// keyPolicy: the referee applies KMS key-policy rules to kms requests on a
// key/ resource, so do we.
func (c *refCase) keyPolicy() bool {
	p, ok := arnParts(c.Resource)
	return ok && p[2] == "kms" && len(p[5]) > 4 && p[5][:4] == "key/"
}

// multiValued are the context keys the referee types as lists.
var multiValued = map[string]bool{"aws:TagKeys": true, "aws:CalledVia": true}

// simulation is the referee's input shape (iam-simulate's Simulation).
func (c *refCase) simulation() map[string]any {
	ctx := map[string]any{}
	for k, v := range c.Context {
		if multiValued[k] {
			ctx[k] = v
		} else {
			ctx[k] = v[0]
		}
	}
	var ids []map[string]any
	for _, p := range c.Identity {
		ids = append(ids, map[string]any{"name": p.Name, "policy": p.Doc})
	}
	sim := map[string]any{
		"request": map[string]any{
			"principal":        c.Principal.ARN,
			"action":           c.Action,
			"resource":         map[string]any{"resource": c.Resource, "accountId": c.ResourceAccount},
			"contextVariables": ctx,
		},
		"identityPolicies": ids,
	}
	if c.ResourcePolicy != nil {
		sim["resourcePolicy"] = c.ResourcePolicy
	}
	if c.Session != nil {
		sim["sessionPolicy"] = c.Session
	}
	return sim
}

// input parses the case's documents for our evaluator.
func (c *refCase) input(t testing.TB) *Input {
	t.Helper()
	in := &Input{Request: Request{
		Principal: c.Principal, Action: c.Action, Resource: c.Resource,
		ResourceAccount: c.ResourceAccount, Context: c.Context,
	}, KeyPolicy: c.keyPolicy(), RoleTrust: c.roleTrust()}
	if c.Session != nil {
		pol, err := Parse(c.Session, Identity)
		if err != nil {
			t.Fatalf("%s: session policy: %v\n%s", c.Name, err, c.Session)
		}
		in.SessionPolicies = []NamedPolicy{{Name: "session", Policy: pol}}
	}
	for _, p := range c.Identity {
		pol, err := Parse(p.Doc, Identity)
		if err != nil {
			t.Fatalf("%s: identity policy %s: %v\n%s", c.Name, p.Name, err, p.Doc)
		}
		in.IdentityPolicies = append(in.IdentityPolicies, NamedPolicy{Name: p.Name, Policy: pol})
	}
	if c.ResourcePolicy != nil {
		pol, err := Parse(c.ResourcePolicy, Resource)
		if err != nil {
			t.Fatalf("%s: resource policy: %v\n%s", c.Name, err, c.ResourcePolicy)
		}
		in.ResourcePolicy = &NamedPolicy{Name: "resource", Policy: pol}
	}
	return in
}

func (c *refCase) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// refereeResult is simulate.mjs's answer for one case.
type refereeResult struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

// repoRoot walks up from the package directory to the directory holding
// package.json.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no package.json above the package directory")
		}
		dir = parent
	}
}

// runReferee asks iam-simulate about every case in one node process; it
// skips the test when the npm packages are not installed.
func runReferee(t *testing.T, cases []*refCase) []refereeResult {
	t.Helper()
	root := repoRoot(t)
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(filepath.Join(root, "node_modules", "@cloud-copilot", "iam-simulate")); err != nil {
		t.Skip("node_modules/@cloud-copilot/iam-simulate is missing: run `npm ci` at the repository root for the IAM referee")
	}
	if _, err := os.Stat(node); err != nil {
		t.Skip("node_modules/.bin/node is missing: run `npm ci` at the repository root")
	}
	sims := make([]map[string]any, len(cases))
	for i, c := range cases {
		sims[i] = c.simulation()
	}
	body, err := json.Marshal(sims)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(root, "iampolicy", "testdata", "simulate.mjs"))
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("simulate.mjs: %v\n%s", err, stderr.String())
	}
	var out []refereeResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("simulate.mjs answer: %v\n%s", err, stdout.String())
	}
	if len(out) != len(cases) {
		t.Fatalf("simulate.mjs answered %d cases of %d", len(out), len(cases))
	}
	return out
}

// doc renders a policy literal as JSON.
func doc(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("policy literal: %v", err))
	}
	return b
}
