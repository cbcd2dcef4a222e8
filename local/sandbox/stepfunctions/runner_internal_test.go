package stepfunctions

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// newService is a Step Functions service on a bare sandbox server, for
// tests that reach the runner's insides; it skips without Node.js ≥ 22.
func newService(t *testing.T) *Service {
	t.Helper()
	s := New(sandbox.New(sandbox.Options{}), Options{WaitScale: 1e-6})
	if err := s.Ready(); err != nil {
		t.Skipf("Step Functions needs Node.js >= 22 with aws-local-stepfunctions (npm ci at the repository root): %v", err)
	}
	return s
}

const waitForeverDefinition = `{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100000000,"End":true}}}`

// waitEntered waits until the execution arn is in its Wait state: on a runner.
func waitEntered(t *testing.T, s *Service, arn string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h, _ := s.History(arn)
		for _, ev := range h {
			if ev.Type == "WaitStateEntered" {
				return
			}
		}
		if time.Now().After(deadline) {
			v, _ := s.Describe(arn)
			t.Fatalf("%s never entered its Wait: %s %s %q", arn, v.Status, v.Error, v.Cause)
		}
	}
}

// An execution that starts just as the runner's idle countdown has decided
// to end it must go to a runner that lives, not to the one about to exit:
// that one took it (it was not yet closing), then closed its stdin, and
// the execution failed "the runner exited before the execution ended".
func TestExecutionStartedAsTheIdleRunnerExitsRuns(t *testing.T) {
	t.Parallel()
	s := newService(t)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	s.idleAfter = 20 * time.Millisecond
	var (
		once sync.Once
		arn  = make(chan string, 1)
		errs = make(chan error, 1)
	)
	machine := make(chan string, 1)
	s.onIdleExit = func() {
		m := <-machine // the first idle exit after the machine exists
		once.Do(func() {
			v, err := s.Start(ctx, m, "during-idle-exit", "{}")
			if err != nil {
				errs <- err
				return
			}
			waitEntered(t, s, v.ARN)
			arn <- v.ARN
		})
		machine <- m
	}
	m, err := s.Register(ctx, "wait", waitForeverDefinition, nil, "")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	machine <- m
	var a string
	select {
	case a = <-arn:
	case err := <-errs:
		t.Fatalf("Start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the runner never went idle")
	}
	time.Sleep(500 * time.Millisecond) // the runner it went to, had it been the idle one, is gone by now
	if v, _ := s.Describe(a); v.Status != Running {
		t.Fatalf("the execution started as the idle runner exited is %s %s %q, want RUNNING", v.Status, v.Error, v.Cause)
	}
	s.Stop(a, "", "")
}

// hostCount is how many runner processes the service has not yet seen exit.
func hostCount(s *Service) int {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return len(s.hosts)
}

// Close leaves no runner, and nothing after it starts one: a definition
// validated after Close (or retried, its runner killed by Close) started
// a new Node.js process that Close never saw, alive for hostIdle more.
func TestNoRunnerStartsAfterClose(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	m, err := s.Register(ctx, "wait", waitForeverDefinition, nil, "")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	v, err := s.Start(ctx, m, "", "{}")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitEntered(t, s, v.ARN)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := hostCount(s); n != 0 {
		t.Fatalf("%d runners after Close", n)
	}
	_, err = s.Register(ctx, "after-close", `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, nil, "")
	if n := hostCount(s); n != 0 {
		t.Fatalf("a definition validated after Close (%v) left %d runners", err, n)
	}
	if err == nil {
		t.Errorf("Register after Close: no error, want the sandbox shutting down")
	}
}
