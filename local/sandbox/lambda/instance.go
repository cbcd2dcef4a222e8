package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Bounds on what the logs keep.
const (
	invLogCap = 64 << 10 // an invocation's own log, of which Tail returns 4 KB
	lineCap   = 32 << 10 // one line in a function's log
)

// instance is one running bootstrap process with its own Runtime API.
type instance struct {
	svc     *Service
	fn      *function
	cmd     *exec.Cmd
	pid     int
	keyID   string // the access key of its own role credentials: calls signed with it are its invocation's
	started time.Time
	hs      *http.Server

	invokes    chan *invocation // at most one in flight
	polled     chan struct{}    // closed at the first GET /next
	polledOnce sync.Once
	initDur    time.Duration // process start to first poll
	initErr    chan []byte   // POST /runtime/init/error
	exited     chan struct{} // closed once the process is reaped
	exitErr    error
	logsDone   chan struct{} // closed when stdout/stderr reach EOF
	logR       *os.File
	logRC      syscall.RawConn

	mu      sync.Mutex // guards what follows, and every read of the log pipe
	cur     *invocation
	logInv  *invocation // where the lines go now; nil: into pre
	pre     []byte      // lines written before the first invocation (init)
	partial []byte
	buf     []byte // for reads of the log pipe
	warm    bool   // has run an invocation
	killing bool
}

// invocation is one call handed to an instance.
type invocation struct {
	id            string
	arn           string
	payload       []byte
	clientContext string
	trace         string
	deadline      time.Time
	done          chan outcome // one outcome, from /response or /error
	log           []byte       // this invocation's log (for X-Amz-Log-Result)
}

// outcome is what the runtime posted for an invocation.
type outcome struct {
	body    []byte
	failed  bool   // posted to /error
	errType string // Lambda-Runtime-Function-Error-Type or the payload's errorType
}

// start launches a new instance of fn: listener, process, log capture.
func (s *Service) start(fn *function, in *instance) error {
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0") // bounds only the bind: the listener lives as long as the instance
	if err != nil {
		return fmt.Errorf("runtime API listener: %w", err)
	}
	in.svc, in.fn = s, fn
	in.invokes = make(chan *invocation, 1)
	in.polled = make(chan struct{})
	in.initErr = make(chan []byte, 1)
	in.exited = make(chan struct{})
	in.logsDone = make(chan struct{})
	in.hs = &http.Server{Handler: in.runtimeAPI(), ReadHeaderTimeout: 10 * time.Second}

	r, w, err := os.Pipe()
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("log pipe: %w", err)
	}
	rc, err := r.SyscallConn()
	if err != nil {
		_ = ln.Close()
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("log pipe: %w", err)
	}
	in.logR, in.logRC = r, rc

	cfg := fn.cfg
	cmd := exec.Command(cfg.Path) //nolint:noctx // an instance outlives the invoke that starts it; stop and the sandbox's Close kill it (SIGKILL to its process group)
	cmd.Dir = filepath.Dir(cfg.Path)
	cmd.Env, in.keyID = s.environ(cfg, ln.Addr().String())
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	in.cmd = cmd
	in.started = time.Now()
	go func() { _ = in.hs.Serve(ln) }()
	if err := cmd.Start(); err != nil {
		_ = in.hs.Close()
		_ = r.Close()
		_ = w.Close()
		return err
	}
	_ = w.Close() // the child holds the write end now
	in.pid = cmd.Process.Pid
	go in.capture()
	go func() {
		err := cmd.Wait()
		in.mu.Lock()
		in.exitErr = err
		in.mu.Unlock()
		close(in.exited)
		_ = in.hs.Close()
		fn.remove(in)
		s.log.Debug("instance exited", "function", cfg.Name, "pid", in.pid, "err", err)
	}()
	s.log.Debug("instance started", "function", cfg.Name, "pid", in.pid, "runtimeAPI", ln.Addr().String())
	return nil
}

// environ is the process environment Lambda gives a function, and nothing
// of the sandbox's own.
// It returns the access key id of the instance's own role credentials too.
func (s *Service) environ(cfg FunctionConfig, runtimeAPI string) ([]string, string) {
	region := s.srv.Region()
	now := time.Now().UTC()
	env := []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"AWS_ENDPOINT_URL=" + s.srv.URL(),
	}
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME="+cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME="+cfg.LogGroup,
		"AWS_LAMBDA_LOG_STREAM_NAME="+now.Format("2006/01/02")+"/[$LATEST]"+strings.ReplaceAll(sandbox.NewUUID(), "-", ""),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"_HANDLER="+cfg.Handler,
		"LAMBDA_TASK_ROOT="+filepath.Dir(cfg.Path),
	)
	if svc, ok := s.srv.Service("iam"); ok {
		if rc, ok := svc.(RoleCredentials); ok {
			c := rc.IssueRoleCredentials(cfg.roleName(), cfg.Name)
			env = append(env, "AWS_ACCESS_KEY_ID="+c.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+c.Secret, "AWS_SESSION_TOKEN="+c.SessionToken)
			return env, c.AccessKeyID
		}
	}
	return env, ""
}

// runtimeAPI is the Lambda Runtime API of one instance.
func (in *instance) runtimeAPI() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /2018-06-01/runtime/invocation/next", in.next)
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		in.post(w, r, false)
	})
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		in.post(w, r, true)
	})
	m.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, MaxPayload))
		body = errorPayload(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
		select {
		case in.initErr <- body:
		default:
		}
		runtimeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
	})
	return m
}

func runtimeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func runtimeError(w http.ResponseWriter, status int, typ, msg string) {
	runtimeJSON(w, status, map[string]string{"errorMessage": msg, "errorType": typ})
}

// next hands the runtime its next invocation, waiting as long as it takes.
func (in *instance) next(w http.ResponseWriter, r *http.Request) {
	in.polledOnce.Do(func() {
		in.initDur = time.Since(in.started)
		close(in.polled)
	})
	var inv *invocation
	select {
	case inv = <-in.invokes:
	case <-r.Context().Done():
		return
	}
	in.mu.Lock()
	in.cur = inv
	in.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", inv.arn)
	h.Set("Lambda-Runtime-Trace-Id", inv.trace)
	if inv.clientContext != "" {
		h.Set("Lambda-Runtime-Client-Context", inv.clientContext)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// post takes the runtime's response or error for an invocation.
func (in *instance) post(w http.ResponseWriter, r *http.Request, failed bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		runtimeError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	out := outcome{body: body, failed: failed}
	switch {
	case len(body) > MaxPayload:
		out = outcome{failed: true, errType: "Function.ResponseSizeTooLarge", body: mustJSON(sandboxError{
			Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayload)})}
	case r.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "":
		// aws-lambda-go reports a failure while streaming the response in trailers.
		b, _ := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		out = outcome{failed: true, body: errorPayload(b, r.Trailer.Get("Lambda-Runtime-Function-Error-Type"))}
	case failed:
		out.body = errorPayload(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	}
	id := r.PathValue("id")
	in.mu.Lock()
	inv := in.cur
	if inv == nil || inv.id != id {
		in.mu.Unlock()
		runtimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	in.cur = nil
	in.mu.Unlock()
	inv.done <- out
	if out.errType == "Function.ResponseSizeTooLarge" {
		runtimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Response payload size exceeded maximum allowed payload size")
		return
	}
	runtimeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// errorPayload is an error body as the runtime posted it; an empty one
// becomes an error document of the type the header names.
func errorPayload(body []byte, typ string) []byte {
	if len(bytes.TrimSpace(body)) > 0 {
		return body
	}
	if typ == "" {
		typ = "Unhandled"
	}
	return mustJSON(sandboxError{Type: typ})
}

// sandboxError is the document Lambda writes for errors it detects itself
// (timeouts, exits), errorType first as Lambda does.
type sandboxError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes are marshalled here
	}
	return b
}

// capture reads the process's stdout and stderr until EOF.
func (in *instance) capture() {
	defer close(in.logsDone)
	defer in.logR.Close()
	for {
		eof := false
		err := in.logRC.Read(func(fd uintptr) bool {
			in.mu.Lock()
			defer in.mu.Unlock()
			done, eofNow := in.readLocked(fd)
			eof = eofNow
			return done
		})
		if err != nil || eof {
			in.mu.Lock()
			in.flushPartialLocked()
			in.mu.Unlock()
			return
		}
	}
}

// readLocked reads what the pipe holds without blocking. It reports
// whether reading should stop waiting (data or EOF seen) and whether EOF
// was reached. Callers hold in.mu.
func (in *instance) readLocked(fd uintptr) (done, eof bool) {
	if in.buf == nil {
		in.buf = make([]byte, 32<<10)
	}
	for {
		n, err := syscall.Read(int(fd), in.buf)
		switch {
		case n > 0:
			in.consumeLocked(in.buf[:n])
			done = true
			continue
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return done, false
		default: // n == 0: EOF, or a real error
			return true, true
		}
	}
}

// drain takes every byte the process has written so far into the logs, so
// that an invocation's log is complete when its result is.
func (in *instance) drain() {
	select {
	case <-in.logsDone:
		return
	default:
	}
	_ = in.logRC.Control(func(fd uintptr) {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.readLocked(fd)
		in.flushPartialLocked()
	})
}

func (in *instance) consumeLocked(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			in.partial = append(in.partial, b...)
			if len(in.partial) > 256<<10 { // a line that never ends
				in.flushPartialLocked()
			}
			return
		}
		line := b[:i]
		if len(in.partial) > 0 {
			line = append(in.partial, line...)
			in.partial = in.partial[:0]
		}
		in.lineLocked(string(line))
		b = b[i+1:]
	}
}

func (in *instance) flushPartialLocked() {
	if len(in.partial) > 0 {
		in.lineLocked(string(in.partial))
		in.partial = in.partial[:0]
	}
}

// lineLocked records one line: the function's log, the invocation's log,
// the sandbox's debug log. Callers hold in.mu.
func (in *instance) lineLocked(line string) {
	var reqID string
	if inv := in.logInv; inv != nil {
		reqID = inv.id
		inv.log = append(append(inv.log, line...), '\n')
		if len(inv.log) > invLogCap { // only the tail is ever returned
			inv.log = append(inv.log[:0], inv.log[len(inv.log)-invLogCap/2:]...)
		}
	} else if len(in.pre) < invLogCap {
		in.pre = append(append(in.pre, line...), '\n')
	}
	kept := line
	if len(kept) > lineCap {
		kept = kept[:lineCap] + " [truncated]"
	}
	in.fn.logs.add(LogLine{Time: time.Now().UTC(), PID: in.pid, RequestID: reqID, Message: kept})
	in.svc.log.Debug("function log", "function", in.fn.cfg.Name, "pid", in.pid, "requestId", reqID, "line", line)
}

// platformLine is a line Lambda itself adds to an invocation's log.
func (in *instance) platformLine(inv *invocation, line string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	prev := in.logInv
	in.logInv = inv
	in.lineLocked(line)
	in.logInv = prev
}

func (in *instance) isDead() bool {
	select {
	case <-in.exited:
		return true
	default:
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.killing
}

// kill ends the process group at once.
func (in *instance) kill() {
	in.mu.Lock()
	in.killing = true
	in.mu.Unlock()
	select {
	case <-in.exited: // reaped: its pid may belong to someone else now
	default:
		_ = syscall.Kill(-in.pid, syscall.SIGKILL)
	}
}

// stop asks the process group to end (SIGTERM), kills it after grace, and
// waits until the process is reaped.
func (in *instance) stop(grace time.Duration) {
	in.mu.Lock()
	in.killing = true
	in.mu.Unlock()
	select {
	case <-in.exited:
		return
	default:
		_ = syscall.Kill(-in.pid, syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-in.exited:
	case <-t.C:
		in.kill()
		<-in.exited
	}
}

// exitMessage words why a process ended as Lambda does.
func (in *instance) exitMessage() string {
	in.mu.Lock()
	err := in.exitErr
	in.mu.Unlock()
	var ee *exec.ExitError
	if err == nil || (errors.As(err, &ee) && ee.Success()) {
		return "Runtime exited without providing a reason"
	}
	if errors.As(err, &ee) {
		return "Runtime exited with error: " + ee.String()
	}
	return "Runtime exited with error: " + err.Error()
}

// remove forgets an instance that has exited.
func (fn *function) remove(in *instance) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	delete(fn.instances, in)
	if i := indexOf(fn.idle, in); i >= 0 {
		fn.idle = append(fn.idle[:i], fn.idle[i+1:]...)
	}
}

func indexOf(s []*instance, in *instance) int {
	for i, x := range s {
		if x == in {
			return i
		}
	}
	return -1
}

// acquire returns a free warm instance or starts one, within the
// function's concurrency.
func (s *Service) acquire(ctx context.Context, fn *function) (*instance, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed()
	}
	fn.mu.Lock()
	for len(fn.idle) > 0 {
		in := fn.idle[len(fn.idle)-1]
		fn.idle = fn.idle[:len(fn.idle)-1]
		if !in.isDead() {
			fn.mu.Unlock()
			return in, nil
		}
	}
	if len(fn.instances)+fn.starting >= fn.cfg.MaxConcurrency {
		fn.mu.Unlock()
		return nil, errThrottled()
	}
	fn.starting++
	fn.mu.Unlock()
	in := &instance{}
	err := s.start(fn, in)
	fn.mu.Lock()
	fn.starting--
	if err == nil {
		select {
		case <-in.exited: // gone already: the invocation will say how
		default:
			fn.instances[in] = struct{}{}
		}
	}
	fn.mu.Unlock()
	if err != nil {
		s.log.WarnContext(ctx, "instance failed to start", "function", fn.cfg.Name, "err", err)
		return nil, &startError{err}
	}
	return in, nil
}

// errThrottled is Lambda's answer to a synchronous Invoke beyond the
// function's reserved concurrency: 429 TooManyRequestsException, its Reason
// saying which limit (Step Functions reports it as
// Lambda.TooManyRequestsException).
func errThrottled() *sandbox.Error {
	e := sandbox.Errorf(429, "TooManyRequestsException", "Rate Exceeded.")
	e.Fields = map[string]string{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
	return e
}

// startError is a bootstrap that could not be run at all.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }

// release returns an instance to the pool, or stops it if it cannot serve again.
func (fn *function) release(in *instance) {
	fn.mu.Lock()
	retired := fn.retired
	if !retired && !in.isDead() {
		fn.idle = append(fn.idle, in)
	}
	fn.mu.Unlock()
	if retired {
		go in.stop(stopGrace)
	}
}
