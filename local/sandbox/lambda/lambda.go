// Package lambda is the sandbox's Lambda: the Invoke API outside and the
// Runtime API inside. It runs each function's real bootstrap binary as a
// child process that polls its own Runtime API listener, keeps instances
// warm between calls, grows a pool of them when calls overlap, and answers
// timeouts, crashes and function errors in Lambda's own words.
package lambda

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Defaults Lambda applies to a function that does not say otherwise.
const (
	DefaultTimeout        = 3 * time.Second
	DefaultMemoryMB       = 128
	DefaultMaxConcurrency = 10
	// MaxPayload is Lambda's limit on a synchronous request or response payload.
	MaxPayload = 6 * 1024 * 1024
	// InitTimeout bounds a cold start: process start to the first poll of
	// /runtime/invocation/next, as Lambda's init phase does.
	InitTimeout = 10 * time.Second
	// logCap is how many log lines each function keeps.
	logCap = 5000
	// stopGrace is how long Close lets a process exit on SIGTERM before SIGKILL.
	stopGrace = 2 * time.Second
)

// RoleCredentials issues temporary credentials for an execution role; the
// sandbox's IAM service implements it.
type RoleCredentials interface {
	IssueRoleCredentials(role, sessionName string) sandbox.Credential
}

// FunctionConfig describes a function: which binary to run and how.
type FunctionConfig struct {
	Name     string            // function name: letters, digits, - and _
	Path     string            // the bootstrap binary
	Env      map[string]string // the function's own environment variables
	Timeout  time.Duration     // per invocation; 0 = DefaultTimeout
	MemoryMB int               // AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 0 = DefaultMemoryMB
	// Role is the execution role, a name or an ARN; "" = "<Name>-role".
	Role string
	// Handler is _HANDLER; "" = "bootstrap".
	Handler string
	// LogGroup is where the function logs (LoggingConfig.LogGroup); "" =
	// "/aws/lambda/<Name>".
	LogGroup string
	// MaxConcurrency caps the instances of the function (reserved
	// concurrency); more overlapping calls get TooManyRequestsException.
	// 0 = DefaultMaxConcurrency.
	MaxConcurrency int
}

func (c FunctionConfig) withDefaults() FunctionConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.Role == "" {
		c.Role = c.Name + "-role"
	}
	if c.Handler == "" {
		c.Handler = "bootstrap"
	}
	if c.LogGroup == "" {
		c.LogGroup = "/aws/lambda/" + c.Name
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	return c
}

// roleName is the role's name, whether Role is a name or an ARN.
func (c FunctionConfig) roleName() string {
	if i := strings.LastIndex(c.Role, "/"); strings.HasPrefix(c.Role, "arn:") && i >= 0 {
		return c.Role[i+1:]
	}
	return c.Role
}

// reserved are the environment variables Lambda sets and refuses to let a
// function override.
var reserved = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}

func validName(n string) bool {
	return len(n) > 0 && len(n) <= 64 && !strings.ContainsFunc(n, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_'
	})
}

// Service is the Lambda service.
type Service struct {
	srv    *sandbox.Server
	log    *slog.Logger
	ctx    context.Context // ends at Close: asynchronous invocations stop
	cancel context.CancelFunc
	async  sync.WaitGroup

	mu      sync.RWMutex
	fns     map[string]*function
	retired []*function // replaced, with instances perhaps still running
	closed  bool

	deploy    DeploySettings          // for functions a template deploys
	logGroups map[string]LogGroup     // log groups a template made, by name
	urls      map[string]*URLConfig   // function URLs, by url id
	policies  map[string][]Permission // each function's resource-based policy, by function name
}

// function is a registered function: its configuration, its pool of
// instances and its log.
type function struct {
	cfg      FunctionConfig
	modified time.Time

	mu        sync.Mutex
	idle      []*instance // warm and free, most recently used last
	instances map[*instance]struct{}
	starting  int  // instances being started, counted against the concurrency
	retired   bool // replaced or the service closed: instances stop once free

	logs ring
}

// New returns a Lambda with no functions, bound to srv (its region, its
// URL for AWS_ENDPOINT_URL, its IAM for role credentials, its logger).
func New(srv *sandbox.Server) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{srv: srv, log: srv.Logger().With("service", "lambda"), ctx: ctx, cancel: cancel, fns: map[string]*function{}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "lambda", Protocol: sandbox.RESTJSON, EventSource: "lambda.amazonaws.com",
		DataEvents: []string{"Invoke", "InvokeFunctionUrl"},
	}
}

// Register adds a function, or replaces one of the same name (its warm
// instances stop, as after UpdateFunctionCode).
func (s *Service) Register(cfg FunctionConfig) error {
	if !validName(cfg.Name) {
		return sandbox.Errorf(400, "InvalidParameterValueException", "1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+", cfg.Name)
	}
	if cfg.Path == "" {
		return sandbox.Errorf(400, "InvalidParameterValueException", "function %s: no bootstrap path", cfg.Name)
	}
	p, err := filepath.Abs(cfg.Path)
	if err != nil {
		return sandbox.Errorf(400, "InvalidParameterValueException", "function %s: %v", cfg.Name, err)
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return sandbox.Errorf(400, "InvalidParameterValueException", "function %s: %s is not an executable file", cfg.Name, p)
	}
	cfg.Path = p
	var bad []string
	for k := range cfg.Env {
		if slices.Contains(reserved, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return sandbox.Errorf(400, "InvalidParameterValueException", "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(bad, ","))
	}
	cfg.Env = cloneEnv(cfg.Env)
	cfg = cfg.withDefaults()
	fn := &function{cfg: cfg, modified: s.srv.Clock().Now(), instances: map[*instance]struct{}{}, logs: ring{max: logCap}}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed()
	}
	old := s.fns[cfg.Name]
	s.fns[cfg.Name] = fn
	if old != nil {
		s.retired = append(slices.DeleteFunc(s.retired, (*function).gone), old)
	}
	s.mu.Unlock()
	if old != nil {
		fn.logs.adopt(&old.logs)
		old.retire()
	}
	s.log.Debug("function registered", "function", cfg.Name, "path", cfg.Path)
	return nil
}

func cloneEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// RegisterDir registers every <dir>/<task>/bootstrap under the name <task>
// and returns the names, sorted.
func (s *Service) RegisterDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lambda: register functions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		boot := filepath.Join(dir, e.Name(), "bootstrap")
		if st, err := os.Stat(boot); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := s.Register(FunctionConfig{Name: e.Name(), Path: boot}); err != nil {
			return names, fmt.Errorf("lambda: register %s: %w", boot, err)
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// function returns a registered function by name.
func (s *Service) function(name string) (*function, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn, ok := s.fns[name]
	return fn, ok
}

func (s *Service) functionARN(region, name string) string {
	if region == "" {
		region = s.srv.Region()
	}
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, s.srv.Account(), name)
}

func errClosed() *sandbox.Error {
	return &sandbox.Error{Status: 503, Code: "ServiceException", Message: "The sandbox is shutting down."}
}

// resolve finds the function a name, a partial ARN
// (<account>:function:<name>) or a full ARN names, with an optional
// qualifier; only $LATEST exists in the sandbox.
func (s *Service) resolve(region, ref, qualifier string) (*function, error) {
	name, qual := ref, ""
	parts := strings.Split(ref, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if parts[3] != "" {
			region = parts[3]
		}
		name = parts[6]
		if len(parts) == 8 {
			qual = parts[7]
		} else if len(parts) > 8 {
			name = ref
		}
		if parts[4] != s.srv.Account() {
			name = ref
		}
	case len(parts) >= 3 && parts[1] == "function":
		name = parts[2]
		if len(parts) == 4 {
			qual = parts[3]
		} else if len(parts) > 4 {
			name = ref
		}
		if parts[0] != s.srv.Account() {
			name = ref
		}
	case len(parts) == 2:
		name, qual = parts[0], parts[1]
	}
	if qualifier != "" {
		if qual != "" && qual != qualifier {
			return nil, sandbox.Errorf(400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier.")
		}
		qual = qualifier
	}
	arn := s.functionARN(region, name)
	if qual != "" {
		arn += ":" + qual
	}
	fn, ok := s.function(name)
	if !ok || (qual != "" && qual != "$LATEST") {
		return nil, sandbox.Errorf(404, "ResourceNotFoundException", "Function not found: %s", arn)
	}
	return fn, nil
}

// Close implements sandbox.Closer: every instance gets SIGTERM, then
// SIGKILL after a grace period, and Close waits until each has exited.
// Invocations in flight end as Runtime.ExitError.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	fns := make([]*function, 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	fns = append(fns, s.retired...)
	s.mu.Unlock()
	s.cancel()
	var all []*instance
	for _, fn := range fns {
		fn.mu.Lock()
		fn.retired = true
		fn.idle = nil
		for in := range fn.instances {
			all = append(all, in)
		}
		fn.mu.Unlock()
	}
	stopAll(all, stopGrace)
	s.async.Wait()
	return nil
}

func stopAll(all []*instance, grace time.Duration) {
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Add(1)
		go func() { defer wg.Done(); in.stop(grace) }()
	}
	wg.Wait()
}

// StopInstances stops the function's free instances, so that its next
// invocation starts cold. Busy instances finish their invocation first.
func (s *Service) StopInstances(name string) error {
	fn, ok := s.function(name)
	if !ok {
		return sandbox.Errorf(404, "ResourceNotFoundException", "Function not found: %s", s.functionARN("", name))
	}
	fn.mu.Lock()
	idle := fn.idle
	fn.idle = nil
	fn.mu.Unlock()
	stopAll(idle, stopGrace)
	return nil
}

// gone says whether a function has no instance left.
func (fn *function) gone() bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return len(fn.instances) == 0 && fn.starting == 0
}

// retire stops the free instances of a replaced function; busy ones stop
// when they come back.
func (fn *function) retire() {
	fn.mu.Lock()
	fn.retired = true
	idle := fn.idle
	fn.idle = nil
	fn.mu.Unlock()
	go stopAll(idle, stopGrace)
}

// InstanceView is an instance as the admin API shows it.
type InstanceView struct {
	PID     int       `json:"pid"`
	Busy    bool      `json:"busy"`
	Started time.Time `json:"started"`
}

// FunctionView is a function as the admin API shows it.
type FunctionView struct {
	Name           string            `json:"name"`
	ARN            string            `json:"arn"`
	Path           string            `json:"path"`
	Env            map[string]string `json:"env,omitempty"`
	Timeout        float64           `json:"timeout"` // seconds
	MemoryMB       int               `json:"memoryMB"`
	Role           string            `json:"role"`
	Handler        string            `json:"handler"`
	MaxConcurrency int               `json:"maxConcurrency"`
	Instances      []InstanceView    `json:"instances"`
}

func (s *Service) view(fn *function) FunctionView {
	v := FunctionView{Name: fn.cfg.Name, ARN: s.functionARN("", fn.cfg.Name), Path: fn.cfg.Path, Env: cloneEnv(fn.cfg.Env),
		Timeout: fn.cfg.Timeout.Seconds(), MemoryMB: fn.cfg.MemoryMB, Role: s.roleARN(fn.cfg), Handler: fn.cfg.Handler,
		MaxConcurrency: fn.cfg.MaxConcurrency, Instances: []InstanceView{}}
	fn.mu.Lock()
	for in := range fn.instances {
		v.Instances = append(v.Instances, InstanceView{PID: in.pid, Busy: !slices.Contains(fn.idle, in), Started: in.started})
	}
	fn.mu.Unlock()
	sort.Slice(v.Instances, func(i, j int) bool { return v.Instances[i].Started.Before(v.Instances[j].Started) })
	return v
}

func (s *Service) roleARN(cfg FunctionConfig) string {
	if strings.HasPrefix(cfg.Role, "arn:") {
		return cfg.Role
	}
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", s.srv.Account(), cfg.Role)
}

// Functions lists the registered functions with their instances, by name.
func (s *Service) Functions() []FunctionView {
	s.mu.RLock()
	fns := make([]*function, 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.RUnlock()
	sort.Slice(fns, func(i, j int) bool { return fns[i].cfg.Name < fns[j].cfg.Name })
	out := make([]FunctionView, 0, len(fns))
	for _, fn := range fns {
		out = append(out, s.view(fn))
	}
	return out
}

// Function returns one function's view.
func (s *Service) Function(name string) (FunctionView, bool) {
	fn, ok := s.function(name)
	if !ok {
		return FunctionView{}, false
	}
	return s.view(fn), true
}

// Logs returns the captured log lines of every instance of a function,
// oldest first, with Lambda's START, END and REPORT lines.
func (s *Service) Logs(name string) ([]LogLine, bool) {
	fn, ok := s.function(name)
	if !ok {
		return nil, false
	}
	return fn.logs.lines(), true
}

// LogsEvicted is how many of a function's log lines the sandbox let go to
// keep only its newest logCap (0 for a function it does not have).
func (s *Service) LogsEvicted(name string) int64 {
	fn, ok := s.function(name)
	if !ok {
		return 0
	}
	return fn.logs.evictedLines()
}

// ClearLogs forgets a function's captured log lines.
func (s *Service) ClearLogs(name string) bool {
	fn, ok := s.function(name)
	if ok {
		fn.logs.clear()
	}
	return ok
}

var (
	_ sandbox.Service      = (*Service)(nil)
	_ sandbox.Router       = (*Service)(nil)
	_ sandbox.Administered = (*Service)(nil)
	_ sandbox.Closer       = (*Service)(nil)
)
