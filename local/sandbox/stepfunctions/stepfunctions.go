// Package stepfunctions is the sandbox's Step Functions (JSON 1.0,
// AWSStepFunctions): Standard state machines and their executions. The
// States Language itself is interpreted by aws-local-stepfunctions, in one
// Node.js child process that runs every execution (runner.mjs); this package binds its
// Task states to the sandbox's Lambda and SNS, runs callback Tasks
// (.waitForTaskToken, finished by SendTaskSuccess/SendTaskFailure:
// callbacks.go), keeps each execution's history in AWS's shape, and moves
// the sandbox clock through shortened Wait states.
package stepfunctions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Limits Step Functions applies.
const (
	// MaxInput is the largest execution input, in bytes (256 KiB).
	MaxInput = 256 * 1024
	// defaultPage and maxPage bound List* and GetExecutionHistory pages.
	defaultPage = 100
	maxPage     = 1000
)

// Options configure the service.
type Options struct {
	// WaitScale shortens Wait states and Retry pauses: a wait of d lasts
	// d × WaitScale of real time while the sandbox clock moves d. 0 means 1.
	// A callback Task's timeout is shortened too, but never below
	// CallbackScaleFloor (callbacks.go); the clock does not move for it.
	WaitScale float64
	// RetryScale, if set, shortens a Retry pause instead: the work a retry
	// waits for (a throttled Lambda's busy instances) runs in real time, so
	// a pause shortened as much as a Wait would end before it could help.
	// 0 means WaitScale.
	RetryScale float64
	// CallbackScale, if set, is the real time per unit of a callback Task's
	// timeout and heartbeat instead: a sandbox a person drives by hand may
	// want an approval window of minutes. 0 means max(WaitScale,
	// CallbackScaleFloor).
	CallbackScale float64
	// NodeModules is the node_modules folder holding aws-local-stepfunctions;
	// "" finds it walking up from the working directory.
	NodeModules string
	// Node is a Node.js ≥ 22 binary; "" means <NodeModules>/.bin/node.
	Node string
}

// Service is the Step Functions service.
type Service struct {
	srv  *sandbox.Server
	opts Options

	nodeOnce sync.Once
	node     nodeEnv
	nodeErr  error

	mu       sync.Mutex
	machines map[string]*stateMachine // by ARN
	execs    map[string]*execution    // by ARN
	closed   bool
	runs     sync.WaitGroup // executions on the runner

	hmu    sync.Mutex
	runner *host              // the runner new executions go to; nil: start one
	hosts  map[*host]struct{} // every runner process not yet exited
	// hclosed: Close has stopped the runners; none starts again.
	hclosed bool
	seq     atomic.Int64 // the runner's execution and request ids

	// idleAfter is how long a runner with nothing to run stays (0:
	// hostIdle); onIdleExit, if set, runs when an idle runner has been
	// told to go, before its stdin closes. Both for tests only, set before
	// the first execution or definition.
	idleAfter  time.Duration
	onIdleExit func()

	cbmu   sync.Mutex
	tokens map[string]*callback // every task token issued, open or closed

	itemPath []string // LabelItems: where in a Task's input its Map item's name is

	metrics metrics // who is told of closed executions (metrics.go)
}

// LabelItems says where, in the input a Task state hands its resource (a
// Lambda's payload), the name of the Map item it runs for is: e.g. "data",
// "target", "name". The sandbox then attributes the Task's calls, and the
// calls of the Lambda invocation it makes, to (execution, state, item):
// sandbox.Origin. Without it, Item is "".
func (s *Service) LabelItems(path ...string) {
	s.mu.Lock()
	s.itemPath = append([]string(nil), path...)
	s.mu.Unlock()
}

// itemOf is the Map item's name in a Task's input (or its Payload), "" if none.
func (s *Service) itemOf(input json.RawMessage) string {
	s.mu.Lock()
	path := s.itemPath
	s.mu.Unlock()
	if len(path) == 0 {
		return ""
	}
	for _, in := range []json.RawMessage{input, payloadOf(input)} {
		v := any(nil)
		if json.Unmarshal(in, &v) != nil {
			continue
		}
		for _, k := range path {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		if name, ok := v.(string); ok {
			return name
		}
	}
	return ""
}

func payloadOf(input json.RawMessage) json.RawMessage {
	var p struct {
		Payload json.RawMessage `json:"Payload"`
	}
	_ = json.Unmarshal(input, &p)
	return p.Payload
}

// stateMachine is a registered state machine.
type stateMachine struct {
	ARN        string    `json:"arn"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	RoleARN    string    `json:"roleArn"`
	Type       string    `json:"type"`
	Created    time.Time `json:"created"`
	// Logging and Tracing are LoggingConfiguration and
	// TracingConfiguration as a template gave them: recorded, not acted on.
	Logging json.RawMessage `json:"logging,omitempty"`
	Tracing json.RawMessage `json:"tracing,omitempty"`
}

// New returns a Step Functions service on srv.
func New(srv *sandbox.Server, opts Options) *Service {
	if opts.WaitScale <= 0 {
		opts.WaitScale = 1
	}
	return &Service{srv: srv, opts: opts, machines: map[string]*stateMachine{}, execs: map[string]*execution{}, tokens: map[string]*callback{}, hosts: map[*host]struct{}{}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "states", Protocol: sandbox.JSON10, TargetPrefix: "AWSStepFunctions",
		EventSource: "states.amazonaws.com",
	}
}

// Handle implements sandbox.Service.
func (s *Service) Handle(ctx context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "CreateStateMachine":
		return s.createStateMachine(ctx, c)
	case "DescribeStateMachine":
		return s.describeStateMachine(c)
	case "ListStateMachines":
		return s.listStateMachines(c)
	case "DeleteStateMachine":
		return s.deleteStateMachine(c)
	case "StartExecution":
		return s.startExecution(c)
	case "DescribeExecution":
		return s.describeExecution(c)
	case "ListExecutions":
		return s.listExecutions(c)
	case "GetExecutionHistory":
		return s.getExecutionHistory(c)
	case "StopExecution":
		return s.stopExecution(c)
	case "SendTaskSuccess":
		return s.sendTaskSuccess(c)
	case "SendTaskFailure":
		return s.sendTaskFailure(c)
	case "SendTaskHeartbeat":
		return s.sendTaskHeartbeat(c)
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "Unknown operation %s", c.Action)
}

// ---- names and ARNs -------------------------------------------------------

var badNameChars = regexp.MustCompile("[\\s<>{}\\[\\]?*\"#%\\\\^|~`$&,;:/\\x00-\\x1f\\x7f-\\x9f]")

func validName(n string) bool {
	return len(n) >= 1 && len(n) <= 80 && !badNameChars.MatchString(n)
}

func (s *Service) machineARN(name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", s.srv.Region(), s.srv.Account(), name)
}

func (s *Service) executionARN(machine, name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", s.srv.Region(), s.srv.Account(), machine, name)
}

// parseARN checks arn names a resource of kind (stateMachine, execution) of
// Step Functions, as AWS does before looking it up.
func parseARN(arn, kind string) error {
	parts := strings.Split(arn, ":")
	want := 7
	if kind == "execution" {
		want = 8
	}
	if len(parts) != want || parts[0] != "arn" || parts[2] != "states" || parts[3] == "" || parts[4] == "" {
		return sandbox.Errorf(400, "InvalidArn", "Invalid Arn: 'Invalid ARN prefix: %s'", arn)
	}
	if parts[5] != kind {
		return sandbox.Errorf(400, "InvalidArn", "Invalid Arn: 'Resource type not valid in this context: %s'", parts[5])
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	return nil
}

// ---- state machines -------------------------------------------------------

func (s *Service) createStateMachine(ctx context.Context, c *sandbox.Call) (any, error) {
	var req struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
		RoleArn    string `json:"roleArn"`
		Type       string `json:"type"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	for _, f := range [][2]string{{"name", req.Name}, {"definition", req.Definition}, {"roleArn", req.RoleArn}} {
		if err := required(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	if req.Type == "" {
		req.Type = "STANDARD"
	}
	if req.Type != "STANDARD" {
		return nil, sandbox.Errorf(400, "StateMachineTypeNotSupported", "State Machine Type Not Supported: '%s' (the sandbox runs STANDARD state machines)", req.Type)
	}
	sm, err := s.create(ctx, req.Name, req.Definition, req.RoleArn, false)
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::StepFunctions::StateMachine", sm.ARN)
	c.RequestParameters(map[string]any{"name": sm.Name, "roleArn": sm.RoleARN, "type": sm.Type})
	return map[string]any{"stateMachineArn": sm.ARN, "creationDate": sandbox.EpochTime(sm.Created)}, nil
}

// create validates and stores a state machine. A second create with the
// same definition and role returns the first (AWS's idempotency); replace
// lets the admin API swap the definition of an existing one.
func (s *Service) create(ctx context.Context, name, definition, role string, replace bool) (*stateMachine, error) {
	if !validName(name) {
		return nil, sandbox.Errorf(400, "InvalidName", "Invalid Name: '%s'", name)
	}
	if err := s.validate(ctx, definition); err != nil {
		return nil, err
	}
	arn := s.machineARN(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.machines[arn]; ok && !replace {
		if old.Definition == definition && old.RoleARN == role {
			return old, nil
		}
		return nil, sandbox.Errorf(400, "StateMachineAlreadyExists", "State Machine Already Exists: '%s'", arn)
	}
	sm := &stateMachine{ARN: arn, Name: name, Definition: definition, RoleARN: role, Type: "STANDARD", Created: s.srv.Clock().Now()}
	if old, ok := s.machines[arn]; ok {
		sm.Created = old.Created
	}
	s.machines[arn] = sm
	s.srv.MarkDirty()
	return sm, nil
}

// validate checks a definition: JSON with StartAt and States here, then
// the States Language rules with the same validator the interpreter uses
// (asl-validator, in a short-lived runner) when Node.js is at hand.
func (s *Service) validate(ctx context.Context, definition string) error {
	var def struct {
		StartAt *string                    `json:"StartAt"`
		States  map[string]json.RawMessage `json:"States"`
	}
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return sandbox.Errorf(400, "InvalidDefinition", "Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: %v'", err)
	}
	if def.StartAt == nil || len(def.States) == 0 {
		return sandbox.Errorf(400, "InvalidDefinition", "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: the definition needs StartAt and States'")
	}
	if _, ok := def.States[*def.StartAt]; !ok {
		return sandbox.Errorf(400, "InvalidDefinition", "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: %s at /StartAt'", *def.StartAt)
	}
	if _, err := s.nodeEnv(); err != nil {
		s.srv.Logger().Warn("state machine not checked with asl-validator", "err", err)
		return nil
	}
	msg, err := s.validateWithRunner(ctx, definition)
	if err != nil {
		return fmt.Errorf("validate definition: %w", err)
	}
	if msg != "" {
		msg = strings.TrimPrefix(msg, "State machine definition is invalid, see error(s) below:")
		return sandbox.Errorf(400, "InvalidDefinition", "Invalid State Machine Definition: '%s'", strings.TrimSpace(msg))
	}
	return nil
}

func (s *Service) machine(arn string) (*stateMachine, error) {
	if err := required("stateMachineArn", arn); err != nil {
		return nil, err
	}
	if err := parseARN(arn, "stateMachine"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sm, ok := s.machines[arn]
	s.mu.Unlock()
	if !ok {
		return nil, sandbox.Errorf(400, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn)
	}
	return sm, nil
}

func (s *Service) describeStateMachine(c *sandbox.Call) (any, error) {
	var req struct {
		StateMachineArn string `json:"stateMachineArn"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	sm, err := s.machine(req.StateMachineArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"stateMachineArn": sm.ARN, "name": sm.Name, "status": "ACTIVE", "definition": sm.Definition,
		"roleArn": sm.RoleARN, "type": sm.Type, "creationDate": sandbox.EpochTime(sm.Created),
		"loggingConfiguration": map[string]any{"level": "OFF", "includeExecutionData": false},
		"tracingConfiguration": map[string]any{"enabled": false},
	}, nil
}

func (s *Service) deleteStateMachine(c *sandbox.Call) (any, error) {
	var req struct {
		StateMachineArn string `json:"stateMachineArn"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if err := required("stateMachineArn", req.StateMachineArn); err != nil {
		return nil, err
	}
	if err := parseARN(req.StateMachineArn, "stateMachine"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.machines, req.StateMachineArn) // deleting what is not there succeeds, as in AWS
	s.mu.Unlock()
	return struct{}{}, nil
}

func (s *Service) listStateMachines(c *sandbox.Call) (any, error) {
	var req struct {
		MaxResults int    `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	all := make([]*stateMachine, 0, len(s.machines))
	for _, sm := range s.machines {
		all = append(all, sm)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	from, to, next, err := page(len(all), req.MaxResults, req.NextToken)
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, sm := range all[from:to] {
		items = append(items, map[string]any{"stateMachineArn": sm.ARN, "name": sm.Name, "type": sm.Type, "creationDate": sandbox.EpochTime(sm.Created)})
	}
	out := map[string]any{"stateMachines": items}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// ---- Go and admin registration ------------------------------------------------

var placeholder = regexp.MustCompile(`\$\{[^}]*\}`)

// Substitute replaces each ${Name} in definition with subs[Name], as
// CloudFormation's DefinitionSubstitutions do, and refuses a placeholder
// left without a value.
func Substitute(definition string, subs map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(definition, func(p string) string {
		k := p[2 : len(p)-1]
		if v, ok := subs[k]; ok {
			return v
		}
		missing = append(missing, p)
		return p
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("definition substitutions: no value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// Register creates (or replaces) a state machine from a definition with
// ${Name} placeholders filled from subs; it returns the state machine's ARN.
// role "" is the sandbox's default Step Functions role.
func (s *Service) Register(ctx context.Context, name, definition string, subs map[string]string, role string) (string, error) {
	def, err := Substitute(definition, subs)
	if err != nil {
		return "", err
	}
	if role == "" {
		role = fmt.Sprintf("arn:aws:iam::%s:role/sandbox-states", s.srv.Account())
	}
	sm, err := s.create(ctx, name, def, role, true)
	if err != nil {
		return "", err
	}
	return sm.ARN, nil
}

// RegisterFile is Register with the definition read from a file
// (statemachine/rotation.asl.json).
func (s *Service) RegisterFile(ctx context.Context, name, path string, subs map[string]string, role string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read state machine definition: %w", err)
	}
	return s.Register(ctx, name, string(b), subs, role)
}
