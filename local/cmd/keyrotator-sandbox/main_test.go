package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline"
)

// The command prints the export lines a shell needs, answers on the port it
// printed, and stops cleanly on SIGINT.
func TestStartsPrintsEnvAndStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "keyrotator-sandbox")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.CommandContext(t.Context(), bin, "--port", "0", "--state", state)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	env := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			break
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			t.Fatalf("not an export line: %q", line)
		}
		env[k] = v
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if env[k] == "" {
			t.Fatalf("%s not printed; got %v", k, env)
		}
	}
	get, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env["AWS_ENDPOINT_URL"]+"/_sandbox/health", nil)
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	resp.Body.Close()
	// An unsigned AWS call gets AWS's error shape, not a hang or a panic.
	post, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, env["AWS_ENDPOINT_URL"]+"/", strings.NewReader("Action=GetCallerIdentity"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(post)
	if err != nil {
		t.Fatalf("unsigned call: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") {
		t.Fatalf("unsigned call: %d %s", resp.StatusCode, body)
	}

	// A warm Lambda instance: a child process that must not outlive the sandbox.
	fn := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-tags", "lambda.norpc", "-o", fn, "../../sandbox/lambda/testdata/echofn").CombinedOutput(); err != nil {
		t.Fatalf("build test function: %v\n%s", err, out)
	}
	put, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, env["AWS_ENDPOINT_URL"]+"/_sandbox/lambda/functions/echo", strings.NewReader(`{"path":"`+fn+`"}`))
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatalf("register function: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("register function: %s", resp.Status)
	}
	pid := invokeForPID(t, env)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("function process %d not running: %v", pid, err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGINT")
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("state not saved on stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("function process %d outlived the sandbox (kill 0: %v)", pid, err)
	}
}

// invokeForPID invokes the echo function through the real Lambda client,
// configured from the export lines the command printed, and returns the
// pid of the process that answered.
func invokeForPID(t *testing.T, env map[string]string) int {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(env["AWS_REGION"]), config.WithBaseEndpoint(env["AWS_ENDPOINT_URL"]),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "")),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewFromConfig(cfg).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke: %v %s", err, out.Payload)
	}
	var resp struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(out.Payload, &resp); err != nil || resp.PID == 0 {
		t.Fatalf("invoke payload %s: %v", out.Payload, err)
	}
	return resp.PID
}

func TestBadFlag(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"--no-such-flag"}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a flag error", err)
	}
}

func TestLambdaConcurrencyBelowOneIsRefused(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"--lambda-concurrency", "0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--lambda-concurrency") {
		t.Fatalf("got %v, want an error naming --lambda-concurrency", err)
	}
}

// --member-accounts: each account is held with the member stack deployed,
// trusting the sandbox's own account with the deployed template's external
// id; a bad account or a template without one is refused, named.
func TestMemberAccounts(t *testing.T) {
	t.Parallel()
	w, err := fullsandbox.New(fullsandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Server.Close() })
	root := filepath.Join("..", "..", "..")
	template := filepath.Join(root, "infra", "testdata", "template.golden.json")
	member := filepath.Join(root, pipeline.MemberTemplate)
	lines, err := deployMembers(t.Context(), w, "222233334444, 333344445555", "", template, member)
	if err != nil {
		t.Fatal(err)
	}
	for i, acct := range []string{"222233334444", "333344445555"} {
		role, ok := w.IAM.InAccount(acct).GetRole("keyrotator-member")
		if !ok {
			t.Fatalf("no keyrotator-member in %s", acct)
		}
		trust := string(role.AssumeRolePolicy)
		for _, want := range []string{"arn:aws:iam::" + w.Server.Account() + ":root", "kr-ext-7f3a", pipeline.StackName + "-*"} {
			if !strings.Contains(trust, want) {
				t.Errorf("%s's member role trust lacks %q: %s", acct, want, trust)
			}
		}
		if !strings.HasPrefix(lines[i], "# member account "+acct+": ") || !strings.Contains(lines[i], "AWS_ACCESS_KEY_ID=") {
			t.Errorf("line %q", lines[i])
		}
	}
	if _, err := deployMembers(t.Context(), w, "2222", "", template, member); err == nil || !strings.Contains(err.Error(), "12 digits") {
		t.Errorf("a bad account: %v", err)
	}
	if _, err := deployMembers(t.Context(), w, "444455556666", "", member, member); err == nil || !strings.Contains(err.Error(), "--member-external-id") {
		t.Errorf("a template without an external id: %v", err)
	}
}
