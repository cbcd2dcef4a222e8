package stepfunctions

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed runner.mjs
var runnerSource string

// MinNodeMajor is the oldest Node.js aws-local-stepfunctions 3 runs on.
const MinNodeMajor = 22

const (
	libPath     = "aws-local-stepfunctions/build/main.node.esm.js"
	killGrace   = 2 * time.Second // a runner's time to exit by itself
	clockPoll   = 20 * time.Millisecond
	maxLine     = 64 << 20 // a protocol line: events carry states' inputs and outputs
	stderrBytes = 8 << 10
)

// nodeEnv is where Node.js and the interpreter are.
type nodeEnv struct {
	node    string // the node binary
	lib     string // main.node.esm.js, absolute
	version string
}

func (s *Service) nodeEnv() (nodeEnv, error) {
	s.nodeOnce.Do(func() { s.node, s.nodeErr = findNode(s.opts) })
	return s.node, s.nodeErr
}

// Ready says whether executions can run: Node.js ≥ 22 and
// aws-local-stepfunctions were found. Tests skip on its error.
func (s *Service) Ready() error {
	_, err := s.nodeEnv()
	return err
}

func findNode(opts Options) (nodeEnv, error) {
	modules := opts.NodeModules
	if modules == "" {
		dir, err := os.Getwd()
		if err != nil {
			return nodeEnv{}, fmt.Errorf("find node_modules: %w", err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", libPath)); err == nil {
				modules = filepath.Join(dir, "node_modules")
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return nodeEnv{}, errors.New("no node_modules with aws-local-stepfunctions above the working directory (run npm ci at the repository root, or set NodeModules)")
			}
			dir = parent
		}
	}
	modules, err := filepath.Abs(modules)
	if err != nil {
		return nodeEnv{}, fmt.Errorf("node_modules: %w", err)
	}
	lib := filepath.Join(modules, libPath)
	if _, err := os.Stat(lib); err != nil {
		return nodeEnv{}, fmt.Errorf("aws-local-stepfunctions is not installed in %s: %w", modules, err)
	}
	node := opts.Node
	if node == "" {
		node = filepath.Join(modules, ".bin", "node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return nodeEnv{}, fmt.Errorf("node %s: %w", node, err)
	}
	version := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < MinNodeMajor {
		return nodeEnv{}, fmt.Errorf("node %s is %s: aws-local-stepfunctions needs Node.js >= %d", node, version, MinNodeMajor)
	}
	return nodeEnv{node: node, lib: lib, version: version}, nil
}

// command is a runner process, not yet started.
func (env nodeEnv) command(ctx context.Context, region string) *exec.Cmd {
	// --stack-size: the interpreter and the protocol's JSON.stringify recurse
	// once per level of the data, and V8's default (984 KiB) overflows on an
	// execution input nested a few thousand deep, which Step Functions
	// accepts (valid JSON within 256 KiB): the run must reach the Task that
	// refuses it, not crash. 3,800 KiB stays inside the 8 MiB main-thread
	// stack Linux gives a process.
	cmd := exec.CommandContext(ctx, env.node, "--stack-size=3800", "--input-type=module", "-e", runnerSource)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"SFN_LOCAL_LIB=" + env.lib,
		"NODE_COMPILE_CACHE=" + filepath.Join(os.TempDir(), "keyrotator-node-compile-cache"),
		"TZ=UTC",
		// The runner never calls AWS: every Task goes to the sandbox. Should
		// the interpreter try anyway, it reaches nothing.
		"AWS_REGION=" + region,
		"AWS_ENDPOINT_URL=http://127.0.0.1:9",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	cmd.SysProcAttr = sysProcAttr()
	return cmd
}

// validateWithRunner checks a definition with the interpreter's own
// validator; it returns the validator's complaint, or "".
func (s *Service) validateWithRunner(ctx context.Context, definition string) (string, error) {
	env, err := s.nodeEnv()
	if err != nil {
		return "", err
	}
	// Generous: on a loaded 2-core machine (make test runs every package
	// side by side) Node's start and the validator took over 30 s, and a
	// deploy that AWS would accept failed "signal: killed".
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := env.command(ctx, s.srv.Region())
	line, _ := json.Marshal(map[string]any{"type": "validate", "definition": json.RawMessage(definition)})
	cmd.Stdin = bytes.NewReader(append(line, '\n'))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("runner: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		return "", fmt.Errorf("runner answered %q: %w", out, err)
	}
	if res.Type == "invalid" {
		return res.Message, nil
	}
	return "", nil
}

// run is one execution's runner process.
type run struct {
	s      *Service
	e      *execution
	cmd    *exec.Cmd
	ctx    context.Context // ends with the execution
	cancel context.CancelFunc

	wmu   sync.Mutex
	stdin io.WriteCloser

	tmu   sync.Mutex
	tasks map[int64]*task

	stderr tail
	exited chan struct{}
	iters  map[string]map[int]bool // Map name → iteration index → ended (read loop only)
}

// message is a protocol line from the runner.
type message struct {
	Type     string          `json:"type"`
	Event    json.RawMessage `json:"event"`
	ID       int64           `json:"id"`
	State    string          `json:"state"`
	Resource string          `json:"resource"`
	Input    json.RawMessage `json:"input"`
	ToMs     int64           `json:"toMs"`
	Status   string          `json:"status"`
	Output   json.RawMessage `json:"output"`
	Error    *string         `json:"error"`
	Cause    *string         `json:"cause"`
	// A Task's timeout and heartbeat, in seconds of workflow time, when
	// its definition sets them; the token of a callback Task.
	TimeoutSeconds   *int64 `json:"timeoutSeconds"`
	HeartbeatSeconds *int64 `json:"heartbeatSeconds"`
	Token            string `json:"token"`
}

// execute runs an execution's runner from start to end; it returns once
// the process is gone.
func (s *Service) execute(e *execution, env nodeEnv) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &run{s: s, e: e, ctx: ctx, cancel: cancel, tasks: map[int64]*task{}, exited: make(chan struct{})}
	// Not the execution's context: the process must outlive its end long
	// enough to exit by itself (loop kills it after killGrace).
	r.cmd = env.command(context.Background(), s.srv.Region())
	r.cmd.Stderr = &r.stderr
	stdin, err := r.cmd.StdinPipe()
	if err == nil {
		r.stdin = stdin
		var stdout io.ReadCloser
		if stdout, err = r.cmd.StdoutPipe(); err == nil {
			if err = r.cmd.Start(); err == nil {
				r.loop(stdout)
				return
			}
		}
	}
	s.end(e, Failed, nil, "States.Runtime", "The sandbox could not start the Step Functions runner: "+err.Error())
}

func (r *run) loop(stdout io.Reader) {
	s, e := r.s, r.e
	e.mu.Lock()
	ended := e.status != Running
	if !ended {
		e.run = r
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.run == r {
			e.run = nil
		}
		e.mu.Unlock()
	}()
	// The process goes when the execution ends: at once if the sandbox is
	// closing, else after a grace to exit by itself.
	go func() {
		<-r.ctx.Done()
		s.mu.Lock()
		grace := killGrace
		if s.closed {
			grace = 0
		}
		s.mu.Unlock()
		select {
		case <-r.exited:
		case <-time.After(grace):
			_ = r.cmd.Process.Kill()
		}
	}()
	if ended { // stopped before it started
		r.closeStdin()
		r.cancel()
	} else {
		var def any
		_ = json.Unmarshal([]byte(e.machine.Definition), &def)
		r.send(map[string]any{
			"type": "start", "definition": def, "input": json.RawMessage(e.input),
			"executionArn": e.arn, "name": e.name, "roleArn": e.machine.RoleARN,
			"stateMachineArn": e.machine.ARN, "stateMachineName": e.machine.Name,
			"startTime": e.start.UTC().Format("2006-01-02T15:04:05.000Z"),
			"clockMs":   s.srv.Clock().Now().UnixMilli(), "waitScale": s.opts.WaitScale, "retryScale": s.opts.RetryScale,
		})
		go r.syncClock()
	}

	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			s.srv.Logger().Warn("step functions runner: bad line", "execution", e.arn, "err", err)
			continue
		}
		r.handle(m)
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := r.cmd.Wait()
	close(r.exited)
	cause := fmt.Sprintf("The Step Functions runner (node, pid %d) exited before the execution ended", r.cmd.Process.Pid)
	if werr != nil {
		cause += ": " + werr.Error()
	}
	if msg := strings.TrimSpace(r.stderr.String()); msg != "" {
		cause += ": " + msg
	}
	s.end(e, Failed, nil, "States.Runtime", cause)
	r.cancel()
}

func (r *run) handle(m message) {
	s, e := r.s, r.e
	switch m.Type {
	case "event":
		var ev runnerEvent
		if err := json.Unmarshal(m.Event, &ev); err == nil {
			s.record(e, ev, r)
		}
	case "task":
		r.startTask(m)
	case "advance":
		s.srv.Clock().Flow(time.UnixMilli(m.ToMs))
		s.srv.MarkDirty()
	case "result":
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		switch m.Status {
		case Succeeded:
			out := "null"
			if len(m.Output) > 0 {
				out = string(m.Output)
			}
			s.end(e, Succeeded, &out, "", "")
		case Aborted:
			s.end(e, Aborted, nil, "", "")
		case TimedOut:
			s.end(e, TimedOut, nil, str(m.Error), str(m.Cause))
		default:
			s.end(e, Failed, nil, str(m.Error), str(m.Cause))
		}
		r.closeStdin()
	default:
		s.srv.Logger().Warn("step functions runner: unknown message", "execution", e.arn, "type", m.Type)
	}
}

// syncClock tells the runner whenever the sandbox clock jumps (a test,
// another execution's Wait), so its virtual time keeps up.
func (r *run) syncClock() {
	clock := r.s.srv.Clock()
	last := clock.Offset()
	t := time.NewTicker(clockPoll)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			if off := clock.Offset(); off != last {
				last = off
				r.send(map[string]any{"type": "clock", "nowMs": clock.Now().UnixMilli()})
			}
		}
	}
}

// send writes one protocol line to the runner; a runner that is gone
// drops it (its end is reported by the read loop).
func (r *run) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		r.s.srv.Logger().Error("step functions runner: encode", "err", err)
		return
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.stdin != nil {
		_, _ = r.stdin.Write(append(b, '\n'))
	}
}

func (r *run) closeStdin() {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.stdin != nil {
		_ = r.stdin.Close()
		r.stdin = nil
	}
}

// abort asks the runner to stop (StopExecution) and lets it go.
func (r *run) abort() {
	r.send(map[string]any{"type": "abort"})
	r.closeStdin()
	r.cancel()
}

// tail keeps the last bytes a runner wrote to stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > stderrBytes {
		t.buf = t.buf[len(t.buf)-stderrBytes:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// RunnerPIDs are the process ids of the runners alive now.
func (s *Service) RunnerPIDs() []int {
	s.mu.Lock()
	all := make([]*execution, 0, len(s.execs))
	for _, e := range s.execs {
		all = append(all, e)
	}
	s.mu.Unlock()
	var pids []int
	for _, e := range all {
		e.mu.Lock()
		if e.run != nil && e.run.cmd.Process != nil {
			pids = append(pids, e.run.cmd.Process.Pid)
		}
		e.mu.Unlock()
	}
	return pids
}

// Close implements sandbox.Closer: every running execution is aborted and
// every runner process is gone when it returns.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	var running []string
	for arn, e := range s.execs {
		if e.view().Status == Running {
			running = append(running, arn)
		}
	}
	s.mu.Unlock()
	for _, arn := range running {
		s.Stop(arn, "Sandbox.Stopped", "The sandbox stopped while the execution ran.")
	}
	done := make(chan struct{})
	go func() { s.runs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("step functions: runners still alive 10s after close")
	}
}
