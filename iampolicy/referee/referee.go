// Package referee asks @cloud-copilot/iam-simulate (npm, pinned in the
// repository's package.json) what AWS would decide, for differential tests
// of the sandbox's own evaluator (iampolicy, its own module): a table of
// tricky cases, and every decision the sandbox's enforcement made during
// the e2e suite. One node process answers every case of a run.
package referee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Policy is a named policy document.
type Policy struct {
	Name string          `json:"name"`
	Doc  json.RawMessage `json:"doc"`
}

// Case is one authorization question, in plain values.
type Case struct {
	Principal       string              `json:"principal"` // ARN, or a service's name
	Action          string              `json:"action"`
	Resource        string              `json:"resource"`
	ResourceAccount string              `json:"resourceAccount"`
	Context         map[string][]string `json:"context,omitempty"`
	Identity        []Policy            `json:"identity,omitempty"`
	ResourcePolicy  json.RawMessage     `json:"resourcePolicy,omitempty"`
	// SessionPolicy is a role session's session policy (the policies
	// passed to AssumeRole, as one document), if any.
	SessionPolicy json.RawMessage `json:"sessionPolicy,omitempty"`
}

// Result is the referee's answer: "Allowed", "ExplicitlyDenied",
// "ImplicitlyDenied", or "error" with Error.
type Result struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

// multiValued are the context keys the referee types as lists.
var multiValued = map[string]bool{"aws:TagKeys": true, "aws:CalledVia": true}

// Simulation is the case in iam-simulate's Simulation shape.
func (c Case) Simulation() map[string]any {
	ctx := map[string]any{}
	for k, v := range c.Context {
		if multiValued[k] {
			ctx[k] = v
		} else if len(v) > 0 {
			ctx[k] = v[0]
		}
	}
	ids := []map[string]any{}
	for _, p := range c.Identity {
		ids = append(ids, map[string]any{"name": p.Name, "policy": p.Doc})
	}
	sim := map[string]any{
		"request": map[string]any{
			"principal":        c.Principal,
			"action":           c.Action,
			"resource":         map[string]any{"resource": c.Resource, "accountId": c.ResourceAccount},
			"contextVariables": ctx,
		},
		"identityPolicies": ids,
	}
	if c.ResourcePolicy != nil {
		sim["resourcePolicy"] = c.ResourcePolicy
	}
	if c.SessionPolicy != nil {
		sim["sessionPolicy"] = c.SessionPolicy
	}
	return sim
}

// ErrMissing is Run's answer where the npm packages are not installed.
var ErrMissing = errors.New("node_modules/@cloud-copilot/iam-simulate or node_modules/.bin/node is missing: run `npm ci` at the repository root for the IAM referee")

// Run asks the referee about every case; root is the repository root.
func Run(ctx context.Context, root string, cases []Case) ([]Result, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("referee: %w", err)
	}
	node := filepath.Join(root, "node_modules", ".bin", "node")
	for _, p := range []string{node, filepath.Join(root, "node_modules", "@cloud-copilot", "iam-simulate")} {
		if _, err := os.Stat(p); err != nil {
			return nil, ErrMissing
		}
	}
	sims := make([]map[string]any, len(cases))
	for i, c := range cases {
		sims[i] = c.Simulation()
	}
	body, err := json.Marshal(sims)
	if err != nil {
		return nil, fmt.Errorf("referee: %w", err)
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(root, "iampolicy", "testdata", "simulate.mjs"))
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("simulate.mjs: %w\n%s", err, stderr.String())
	}
	var out []Result
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("simulate.mjs answer: %w", err)
	}
	if len(out) != len(cases) {
		return nil, fmt.Errorf("simulate.mjs answered %d cases of %d", len(out), len(cases))
	}
	return out, nil
}
