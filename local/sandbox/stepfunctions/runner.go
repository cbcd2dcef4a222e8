package stepfunctions

import (
	"bufio"
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
	for range 2 { // a host that was closing as it was asked: once more, on a new one
		h, err := s.host(env)
		if err != nil {
			return "", err
		}
		m, err := h.validate(ctx, json.RawMessage(definition))
		if errors.Is(err, errHostGone) {
			continue
		}
		if err != nil {
			return "", err
		}
		if m.Type == "invalid" {
			return m.Message, nil
		}
		return "", nil
	}
	return "", errors.New("runner: the Step Functions runner exited twice while validating")
}

// errClosed: the service was closed; it starts no runner any more.
var errClosed = errors.New("the sandbox is shutting down: it starts no Step Functions runner")

// errHostGone: the runner process ended, or was closing, before it could
// take a request.
var errHostGone = errors.New("the Step Functions runner process is gone")

// host is the runner process (runner.mjs) that runs a Service's
// executions: one Node.js process for all of them, started with the first
// and ended when none has run for hostIdle. Its lines carry the id of the
// execution they belong to.
type host struct {
	s   *Service
	cmd *exec.Cmd

	wmu   sync.Mutex
	stdin io.WriteCloser

	mu      sync.Mutex
	runs    map[int64]*run           // by exec id
	reqs    map[int64]chan<- message // validations waiting, by req id
	closing bool                     // asked to exit: takes nothing new
	idle    *time.Timer

	stderr tail
	exited chan struct{}
}

// hostIdle is how long a runner with nothing to run stays: long enough
// that a test's next execution finds it, short enough that a sandbox
// left idle holds no Node.js process.
const hostIdle = 5 * time.Second

// host returns the runner process, starting one if there is none.
func (s *Service) host(env nodeEnv) (*host, error) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if h := s.runner; h != nil {
		return h, nil
	}
	if s.hclosed {
		return nil, errClosed
	}
	h := &host{s: s, runs: map[int64]*run{}, reqs: map[int64]chan<- message{}, exited: make(chan struct{})}
	// Not an execution's context: the process outlives every execution.
	h.cmd = env.command(context.Background(), s.srv.Region())
	h.cmd.Stderr = &h.stderr
	stdin, err := h.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("runner stdin: %w", err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("runner stdout: %w", err)
	}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the runner: %w", err)
	}
	h.stdin = stdin
	s.runner = h
	s.hosts[h] = struct{}{}
	go h.read(stdout)
	go h.syncClock()
	return h, nil
}

// attach gives r to h; false if h takes nothing new.
func (h *host) attach(r *run) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.runs[r.id] = r
	h.busy()
	return true
}

// detach takes r from h: its lines go nowhere after this.
func (h *host) detach(r *run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.runs, r.id)
	h.maybeIdle()
}

// busy stops the idle countdown (h.mu held).
func (h *host) busy() {
	if h.idle != nil {
		h.idle.Stop()
		h.idle = nil
	}
}

// maybeIdle starts the idle countdown if h has nothing to do (h.mu held).
func (h *host) maybeIdle() {
	if h.closing || len(h.runs) > 0 || len(h.reqs) > 0 || h.idle != nil {
		return
	}
	idle := h.s.idleAfter
	if idle <= 0 {
		idle = hostIdle
	}
	h.idle = time.AfterFunc(idle, h.idleExit)
}

// idleExit ends h if it still has nothing to do. It stops taking work in
// the same step as it finds none (retire), so an execution that comes a
// moment later goes to a new runner: one that found h still open between
// the check and the close was taken, then lost when h's stdin closed.
func (h *host) idleExit() {
	s := h.s
	s.hmu.Lock()
	h.mu.Lock()
	done := len(h.runs) == 0 && len(h.reqs) == 0 && !h.closing
	if done {
		h.retire()
	}
	h.mu.Unlock()
	s.hmu.Unlock()
	if !done {
		return
	}
	if f := s.onIdleExit; f != nil {
		f()
	}
	h.closeStdin()
}

// retire makes h take nothing new: closing, and no longer the runner new
// work goes to (s.hmu and h.mu held).
func (h *host) retire() {
	h.closing = true
	h.busy()
	if h.s.runner == h {
		h.s.runner = nil
	}
}

// close asks the process to exit once it has nothing to run (its stdin
// closes): it takes nothing new from here on.
func (h *host) close() {
	h.s.hmu.Lock()
	h.mu.Lock()
	h.retire()
	h.mu.Unlock()
	h.s.hmu.Unlock()
	h.closeStdin()
}

// closeStdin closes the process's stdin: it exits once its executions
// are done.
func (h *host) closeStdin() {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.stdin != nil {
		_ = h.stdin.Close()
		h.stdin = nil
	}
}

// stop closes h and kills it if it has not exited within grace.
func (h *host) stop(grace time.Duration) {
	h.close()
	select {
	case <-h.exited:
	case <-time.After(grace):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
}

// validate asks h's validator about a definition.
func (h *host) validate(ctx context.Context, definition json.RawMessage) (message, error) {
	ch := make(chan message, 1)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return message{}, errHostGone
	}
	id := h.s.seq.Add(1)
	h.reqs[id] = ch
	h.busy()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.reqs, id)
		h.maybeIdle()
		h.mu.Unlock()
	}()
	if !h.write(map[string]any{"type": "validate", "req": id, "definition": definition}) {
		return message{}, errHostGone
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return message{}, fmt.Errorf("runner: %w: %s", errHostGone, strings.TrimSpace(h.stderr.String()))
		}
		return m, nil
	case <-ctx.Done():
		return message{}, fmt.Errorf("runner: validate: %w", ctx.Err())
	}
}

// write sends one protocol line; false if the process's stdin is closed.
func (h *host) write(msg any) bool {
	b, err := json.Marshal(msg)
	if err != nil {
		h.s.srv.Logger().Error("step functions runner: encode", "err", err)
		return false
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.stdin == nil {
		return false
	}
	_, err = h.stdin.Write(append(b, '\n'))
	return err == nil
}

// read takes the runner's lines to the executions they belong to until
// the process exits; every execution still on it then fails.
func (h *host) read(stdout io.Reader) {
	s := h.s
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			s.srv.Logger().Warn("step functions runner: bad line", "err", err)
			continue
		}
		switch m.Type {
		case "advance":
			s.srv.Clock().Flow(time.UnixMilli(m.ToMs))
			s.srv.MarkDirty()
			continue
		case "valid", "invalid":
			h.mu.Lock()
			ch := h.reqs[m.Req]
			delete(h.reqs, m.Req)
			h.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		h.mu.Lock()
		r := h.runs[m.Exec]
		h.mu.Unlock()
		if r != nil {
			r.handle(m)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := h.cmd.Wait()
	h.close()
	cause := fmt.Sprintf("The Step Functions runner (node, pid %d) exited before the execution ended", h.cmd.Process.Pid)
	if werr != nil {
		cause += ": " + werr.Error()
	}
	if msg := strings.TrimSpace(h.stderr.String()); msg != "" {
		cause += ": " + msg
	}
	h.mu.Lock()
	runs := make([]*run, 0, len(h.runs))
	for _, r := range h.runs {
		runs = append(runs, r)
	}
	for id, ch := range h.reqs {
		close(ch)
		delete(h.reqs, id)
	}
	h.mu.Unlock()
	for _, r := range runs {
		s.end(r.e, Failed, nil, "States.Runtime", cause)
		r.cancel()
	}
	s.hmu.Lock()
	delete(s.hosts, h)
	s.hmu.Unlock()
	close(h.exited)
}

// syncClock tells the runner whenever the sandbox clock jumps (a test,
// another execution's Wait), so its executions' virtual time keeps up.
func (h *host) syncClock() {
	clock := h.s.srv.Clock()
	last := clock.Offset()
	t := time.NewTicker(clockPoll)
	defer t.Stop()
	for {
		select {
		case <-h.exited:
			return
		case <-t.C:
			if off := clock.Offset(); off != last {
				last = off
				h.write(map[string]any{"type": "clock", "nowMs": clock.Now().UnixMilli()})
			}
		}
	}
}

// run is one execution on the runner.
type run struct {
	s      *Service
	e      *execution
	h      *host
	id     int64           // the execution's id on the runner
	ctx    context.Context // ends with the execution
	cancel context.CancelFunc

	tmu   sync.Mutex
	tasks map[int64]*task

	iters map[string]map[int]bool // Map name → iteration index → ended (read loop only)
}

// message is a protocol line from the runner.
type message struct {
	Type     string          `json:"type"`
	Exec     int64           `json:"exec"` // the execution it belongs to
	Req      int64           `json:"req"`  // the validation it answers
	Message  string          `json:"message"`
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

// execute runs an execution on the runner from start to end; it returns
// once the runner has let it go.
func (s *Service) execute(e *execution, env nodeEnv) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &run{s: s, e: e, id: s.seq.Add(1), ctx: ctx, cancel: cancel, tasks: map[int64]*task{}}
	var err error
	for range 2 { // a host that was closing as it was asked: once more, on a new one
		if r.h, err = s.host(env); err != nil {
			break
		}
		if r.h.attach(r) {
			break
		}
		r.h, err = nil, errHostGone
	}
	if r.h == nil {
		s.end(e, Failed, nil, "States.Runtime", "The sandbox could not start the Step Functions runner: "+err.Error())
		return
	}
	defer r.h.detach(r)
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
	if ended { // stopped before it started
		return
	}
	var def any
	_ = json.Unmarshal([]byte(e.machine.Definition), &def)
	r.send(map[string]any{
		"type": "start", "definition": def, "input": json.RawMessage(e.input),
		"executionArn": e.arn, "name": e.name, "roleArn": e.machine.RoleARN,
		"stateMachineArn": e.machine.ARN, "stateMachineName": e.machine.Name,
		"startTime": e.start.UTC().Format("2006-01-02T15:04:05.000Z"),
		"clockMs":   s.srv.Clock().Now().UnixMilli(), "waitScale": s.opts.WaitScale, "retryScale": s.opts.RetryScale,
	})
	<-ctx.Done()
	// The execution ended here (its result, StopExecution, the runner's
	// death): the runner drops what is left of it.
	r.send(map[string]any{"type": "forget"})
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
		r.cancel()
	default:
		s.srv.Logger().Warn("step functions runner: unknown message", "execution", e.arn, "type", m.Type)
	}
}

// send writes one of the execution's protocol lines; a runner that is gone
// drops it (the execution's end is reported by the read loop).
func (r *run) send(msg map[string]any) {
	msg["exec"] = r.id
	r.h.write(msg)
}

// abort lets the execution go (StopExecution): the runner stops it.
func (r *run) abort() {
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

// RunnerPIDs are the process ids of the runners running an execution now.
func (s *Service) RunnerPIDs() []int {
	s.hmu.Lock()
	h := s.runner
	s.hmu.Unlock()
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.runs) == 0 || h.cmd.Process == nil {
		return nil
	}
	return []int{h.cmd.Process.Pid}
}

// Close implements sandbox.Closer: every running execution is aborted and
// the runner process is gone when it returns.
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
	var err error
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// The runners go all the same: what is left of those executions
		// fails as the runner's death fails it.
		err = errors.New("step functions: executions still running 10s after close")
	}
	s.hmu.Lock()
	// From here no runner starts: a definition validated now (or retried,
	// its runner stopped below) would start one this Close never sees.
	s.hclosed = true
	hosts := make([]*host, 0, len(s.hosts))
	for h := range s.hosts {
		hosts = append(hosts, h)
	}
	s.hmu.Unlock()
	for _, h := range hosts {
		h.stop(killGrace)
	}
	return err
}
