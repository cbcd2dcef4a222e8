// Package cli_test runs the keyrotator CLI in-process against the sandbox
// with keyrotator deployed in it: the real state machine and Lambdas, the
// CLI reaching them through the sandbox's SDK loading options (region,
// endpoint, key, no shared files) and an environment of its own, never the
// test process's, so the tests run in parallel. Every test ends with a check that nothing the CLI
// printed holds a secret the sandbox issued (I1).
package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/cli"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/pipeline"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// lambdas holds <function>/bootstrap for every task, built once per run.
var lambdas string

// root is the repository, from this package.
var root = filepath.Join("..", "..")

func TestMain(m *testing.M) {
	os.Exit(pipelinetest.Main(m, root, func(dist string) { lambdas = dist }))
}

// waitScale makes a 7-day wait last 60 ms (the sandbox clock still moves
// 7 days); an approval request's timeout is floored by the sandbox so a
// person (this test) has seconds to answer.
const waitScale = 1e-7

// H is one test's sandbox with keyrotator deployed, and everything the CLI
// printed in it.
type H struct {
	t       *testing.T
	sb      *sandboxtest.Sandbox
	dep     pipeline.Deployment
	sfn     *sfn.Client
	sm      *secretsmanager.Client
	printed bytes.Buffer
}

func start(t *testing.T) *H {
	t.Helper()
	sb, dep := pipelinetest.Start(t, fullsandbox.Options{WaitScale: waitScale}, root, lambdas)
	cfg := sb.Config(t)
	h := &H{t: t, sb: sb, dep: dep, sfn: sfn.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
	t.Cleanup(h.noSecretPrinted)
	return h
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in-process.
func (h *H) run(args ...string) result {
	h.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The CLI finds the state machine by its name, as with a fresh shell:
	// no KEYROTATOR_STATE_MACHINE.
	code := cli.RunEnv(ctx, args, &out, &errOut, cli.Env{Getenv: func(string) string { return "" }, AWS: h.sb.LoadOptions()})
	h.printed.Write(out.Bytes())
	h.printed.Write(errOut.Bytes())
	h.t.Logf("$ keyrotator %s  → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// runAs runs the CLI in-process as another identity (an access key of
// the sandbox's IAM): an approver is never the requester.
func (h *H) runAs(key sandboxtest.UserKey, args ...string) result {
	h.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(h.sb.Server.Region()), config.WithBaseEndpoint(h.sb.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
	}
	code := cli.RunEnv(ctx, args, &out, &errOut, cli.Env{Getenv: func(string) string { return "" }, AWS: opts})
	h.printed.Write(out.Bytes())
	h.printed.Write(errOut.Bytes())
	h.t.Logf("$ (as %s) keyrotator %s  → exit %d\n%s%s", key.AccessKeyID, strings.Join(args, " "), code, out.String(), errOut.String())
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// runJSON runs the CLI with --json and decodes its one document into v.
func (h *H) runJSON(v any, args ...string) result {
	h.t.Helper()
	r := h.run(append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		h.t.Fatalf("keyrotator %v --json: not the document expected: %v\n%s", args, err, r.stdout)
	}
	if dec.More() {
		h.t.Fatalf("keyrotator %v --json printed more than one document:\n%s", args, r.stdout)
	}
	return r
}

// fixture is a user whose one key an application reads from a secret.
type fixture struct {
	user, secretID, oldKey string
}

// seed makes user with one key ageDays old, kept in the app secret app/<user>.
func (h *H) seed(user string, ageDays int) fixture {
	h.t.Helper()
	keys := h.sb.User(h.t, user, 1)
	h.sb.IAM.Backdate(keys[0].AccessKeyID, h.sb.Server.Clock().Now().AddDate(0, 0, -ageDays))
	f := fixture{user: user, secretID: "app/" + user, oldKey: keys[0].AccessKeyID}
	v, _ := json.Marshal(map[string]string{"accessKeyId": keys[0].AccessKeyID, "secretAccessKey": keys[0].SecretAccessKey})
	if _, err := h.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(f.secretID), SecretString: aws.String(string(v))}); err != nil {
		h.t.Fatalf("seed app secret: %v", err)
	}
	return f
}

// file writes an input file for --input.
func (h *H) file(body string) string {
	h.t.Helper()
	f, err := os.CreateTemp(h.t.TempDir(), "run-*.json")
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteString(body); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

// executions is how many executions the state machine has.
func (h *H) executions() int {
	h.t.Helper()
	out, err := h.sfn.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.dep.StateMachineARN), MaxResults: 1000})
	if err != nil {
		h.t.Fatalf("ListExecutions: %v", err)
	}
	return len(out.Executions)
}

// keys is user's access keys in IAM: id → status.
func (h *H) keys(user string) map[string]string {
	h.t.Helper()
	ks, _ := h.sb.IAM.Keys(user)
	out := map[string]string{}
	for _, k := range ks {
		out[k.AccessKeyID] = k.Status
	}
	return out
}

// noSecretPrinted is I1 for the CLI: no secret the sandbox holds (an
// access key's, a record's or application secret's value, an Auth0 client
// secret, a SORACOM AuthKey) is in anything it printed, on stdout or stderr.
func (h *H) noSecretPrinted() {
	h.t.Helper()
	// The leak canary: every secret the world holds, in every encoding and
	// as pieces; it fails on nothing to search or no secret to search for.
	leak.Check(h.t, h.sb.Secrets(), map[string][]byte{"what the CLI printed (text and --json)": h.printed.Bytes()}, sandboxtest.KindIAM)
}
