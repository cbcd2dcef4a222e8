package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
)

func golden(t *testing.T) string {
	// go test runs in the package's folder.
	return filepath.Join("..", "..", pipeline.DefaultTemplate)
}

// fakeDist is a folder of <task>/bootstrap that are executables but not
// the tasks: this test deploys, it invokes nothing.
func fakeDist(t *testing.T) string {
	d := t.TempDir()
	for _, tk := range tasks.Every() {
		if err := os.MkdirAll(filepath.Join(d, tk.Function()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, tk.Function(), "bootstrap"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestDeployGoldenTemplate(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	// Every type of the template has a provisioner: nothing is skipped.
	dep, err := pipeline.Deploy(ctx, sb.Sandbox, pipeline.Options{Dist: fakeDist(t), Template: golden(t)})
	if err != nil {
		if strings.Contains(err.Error(), "node") {
			t.Skipf("Step Functions needs Node ≥ 22 (run `make deps`): %v", err)
		}
		t.Fatalf("deploy: %v", err)
	}
	if dep.StateMachineARN != "arn:aws:states:us-east-1:111122223333:stateMachine:keyrotator" {
		t.Errorf("state machine %s", dep.StateMachineARN)
	}
	if !strings.HasPrefix(dep.AlertTopicARN, "arn:aws:sns:us-east-1:111122223333:keyrotator-RotatorAlerts") {
		t.Errorf("alert topic %s", dep.AlertTopicARN)
	}
	for _, tk := range tasks.All {
		if want := "arn:aws:lambda:us-east-1:111122223333:function:" + tk.Function(); dep.Functions[tk.Function()] != want {
			t.Errorf("function %s = %q, want %s", tk.Function(), dep.Functions[tk.Function()], want)
		}
	}
	// An endpoint keeps the name the template gives it (issue 14).
	for _, tk := range tasks.Endpoints {
		if want := "arn:aws:lambda:us-east-1:111122223333:function:keyrotator-" + tk.Function(); dep.Functions[tk.Function()] != want {
			t.Errorf("endpoint %s = %q, want %s", tk.Function(), dep.Functions[tk.Function()], want)
		}
	}
	if len(dep.Stack.Skipped) > 0 {
		t.Errorf("skipped %v: every type of the template has a provisioner", dep.Stack.Skipped)
	}
	// The functions' execution roles hold the template's policies.
	role := dep.Stack.Resources["RotatorCreatekeyRoleA2550433"].Ref
	roleARN, ok := sb.IAM.RoleARN(role)
	if !ok {
		t.Fatalf("no role %s", role)
	}
	pols, err := sb.IAM.IdentityPolicies(roleARN)
	if err != nil || len(pols) != 1 || !strings.Contains(string(pols[0].Document), "iam:CreateAccessKey") {
		t.Errorf("createkey's role policies: %v %v", pols, err)
	}
	svc, _ := sb.Server.Service("sns")
	if p, ok := svc.(*sns.Service).TopicPolicy(dep.AlertTopicARN); !ok || !strings.Contains(string(p), "aws:SecureTransport") {
		t.Errorf("alert topic policy: %s %v", p, ok)
	}
	if dep.Stack.Outputs["OperatorPolicyArn"] == "" || !strings.HasPrefix(dep.Stack.Outputs["OperatorPolicyArn"], "arn:aws:iam::111122223333:policy/") {
		t.Errorf("outputs %v", dep.Stack.Outputs)
	}
}

// A second deploy of the stack, in a sandbox restarted from its --state,
// updates what the first made instead of making it again or failing on the
// names it took.
func TestRedeployAfterRestartUpdates(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state.json")
	dist := fakeDist(t)
	deploy := func() pipeline.Deployment {
		t.Helper()
		w, err := fullsandbox.New(fullsandbox.Options{Options: sandbox.Options{StateFile: state}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := w.Server.SaveState(); err != nil {
				t.Error(err)
			}
			_ = w.Server.Close()
		}()
		dep, err := pipeline.Deploy(context.Background(), w, pipeline.Options{Dist: dist, Template: golden(t), Skip: pipeline.HarnessSkips})
		if err != nil {
			if strings.Contains(err.Error(), "node") {
				t.Skipf("Step Functions needs Node ≥ 22 (run `make deps`): %v", err)
			}
			t.Fatalf("deploy: %v", err)
		}
		return dep
	}
	first, second := deploy(), deploy()
	if first.Stack.ID != second.Stack.ID || first.AlertTopicARN != second.AlertTopicARN || first.StateMachineARN != second.StateMachineARN {
		t.Errorf("the update changed the stack: %s %s → %s %s", first.Stack.ID, first.AlertTopicARN, second.Stack.ID, second.AlertTopicARN)
	}
	for _, id := range []string{"RotatorCreatekeyRoleA2550433", "RotatorOperatorPolicy8A9F549A", "RotatorConnectionSoracom172F8362", "RotatorAlertsoncallexamplecom222D4556"} {
		if a, b := first.Stack.Resources[id].Ref, second.Stack.Resources[id].Ref; a != b {
			t.Errorf("%s: %s, then %s", id, a, b)
		}
	}
}
