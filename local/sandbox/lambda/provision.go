package lambda

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// TaskMetadata is the CloudFormation Metadata key on an
// AWS::Lambda::Function that names the keyrotator task whose code it runs
// (infra/rotator records it). The template's Code points at an S3 asset
// (`<asset-hash>` in the checked-in golden template); the sandbox runs
// <Dist>/<task>/bootstrap, this machine's build of that task.
const TaskMetadata = "keyrotator:task"

// DeploySettings are the sandbox's knobs for the functions a template
// deploys; pipeline.Deploy sets them before it deploys.
type DeploySettings struct {
	// Dist holds <task>/bootstrap for this machine (`make build`'s output).
	Dist string
	// MaxConcurrency caps each function's instances when the template sets
	// no ReservedConcurrentExecutions; 0 is DefaultMaxConcurrency.
	MaxConcurrency int
	// Env is added to every function's Environment.Variables, over the
	// template's (the sandbox's shorter rate-limit waits).
	Env map[string]string
	// NameByTask names a function after its task when the template gives no
	// FunctionName, where CloudFormation would generate
	// "<stack>-<logicalId>-<random>": the sandbox's tests, fault rules and
	// admin API address functions by task.
	NameByTask bool
}

// SetDeploySettings sets the knobs for the functions templates deploy.
func (s *Service) SetDeploySettings(d DeploySettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Env = maps.Clone(d.Env)
	s.deploy = d
}

// LogGroup is a CloudWatch Logs log group a template made. The sandbox
// keeps each function's log itself (Logs); a group is recorded so the
// template's references to it resolve and the functions name it.
type LogGroup struct {
	Name          string `json:"name"`
	ARN           string `json:"arn"`
	RetentionDays int    `json:"retentionDays,omitempty"`
}

// LogGroups lists the log groups templates made, by name.
func (s *Service) LogGroups() map[string]LogGroup {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.logGroups)
}

const (
	typeFunction   = "AWS::Lambda::Function"
	typeURL        = "AWS::Lambda::Url"
	typePermission = "AWS::Lambda::Permission"
	typeLogGroup   = "AWS::Logs::LogGroup"
)

// Types implements cfn.Provisioner. Log groups live here because the
// sandbox's Lambda keeps the functions' logs.
func (s *Service) Types() []string {
	return []string{typeFunction, typeURL, typePermission, typeLogGroup}
}

// Create implements cfn.Provisioner.
func (s *Service) Create(_ context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	switch r.Type {
	case typeFunction:
		return s.createFunctionResource(r)
	case typeURL:
		return s.createURLResource(r)
	case typePermission:
		return s.createPermissionResource(r)
	case typeLogGroup:
		return s.createLogGroupResource(r)
	}
	return cfn.Provisioned{}, fmt.Errorf("lambda: no provisioner for %s", r.Type)
}

// createFunctionResource registers the function as CreateFunction would,
// from its task's local build. Ref is the function name; Fn::GetAtt Arn.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-function.html
func (s *Service) createFunctionResource(r cfn.Resource) (cfn.Provisioned, error) {
	s.mu.RLock()
	d := s.deploy
	s.mu.RUnlock()
	task, _ := r.Metadata[TaskMetadata].(string)
	if task == "" {
		return cfn.Provisioned{}, fmt.Errorf("metadata %s: the sandbox finds a function's code by the task it names, and the resource names none", TaskMetadata)
	}
	if d.Dist == "" {
		return cfn.Provisioned{}, errors.New("the sandbox was given no folder of built functions (lambda.DeploySettings.Dist)")
	}
	if strings.ContainsAny(task, `/\`) || task == "." || task == ".." {
		return cfn.Provisioned{}, fmt.Errorf("metadata %s: %q is not a task name", TaskMetadata, task)
	}
	path := filepath.Join(d.Dist, task, "bootstrap")
	if _, err := os.Stat(path); err != nil {
		return cfn.Provisioned{}, fmt.Errorf("function code of task %s: %w (run make build first)", task, err)
	}
	name, err := r.Str("FunctionName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		switch {
		case d.NameByTask:
			name = task
		case r.Previous != nil:
			name = r.Previous.Ref // an update replaces the code in place
		default:
			name = cfn.PhysicalName(r, 64)
		}
	}
	role, err := r.RequiredStr("Role")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	handler, err := r.Str("Handler")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	cfg := FunctionConfig{Name: name, Path: path, Role: role, Handler: handler, MaxConcurrency: d.MaxConcurrency}
	if secs, ok, err := r.Int("Timeout"); err != nil {
		return cfn.Provisioned{}, err
	} else if ok {
		cfg.Timeout = time.Duration(secs) * time.Second
	}
	if mb, ok, err := r.Int("MemorySize"); err != nil {
		return cfn.Provisioned{}, err
	} else if ok {
		cfg.MemoryMB = mb
	}
	if n, ok, err := r.Int("ReservedConcurrentExecutions"); err != nil {
		return cfn.Provisioned{}, err
	} else if ok {
		if n < 1 {
			return cfn.Provisioned{}, fmt.Errorf("property ReservedConcurrentExecutions: %d: the sandbox runs no function with no concurrency", n)
		}
		cfg.MaxConcurrency = n
	}
	env, err := r.Object("Environment")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if vars, ok := env["Variables"].(map[string]any); ok {
		cfg.Env = map[string]string{}
		for k, v := range vars {
			sv, ok := v.(string)
			if !ok {
				return cfn.Provisioned{}, fmt.Errorf("property Environment.Variables.%s: expected a string, got %T", k, v)
			}
			cfg.Env[k] = sv
		}
	}
	if len(d.Env) > 0 {
		if cfg.Env == nil {
			cfg.Env = map[string]string{}
		}
		maps.Copy(cfg.Env, d.Env)
	}
	if lc, err := r.Object("LoggingConfig"); err != nil {
		return cfn.Provisioned{}, err
	} else if g, ok := lc["LogGroup"].(string); ok {
		cfg.LogGroup = g
	}
	if err := s.Register(cfg); err != nil {
		return cfn.Provisioned{}, err
	}
	return cfn.Provisioned{Ref: name, Attrs: map[string]string{"Arn": s.functionARN(r.Region, name)}}, nil
}

// createURLResource gives a function its URL (AuthType AWS_IAM; the
// sandbox serves BUFFERED URLs of $LATEST only). Ref and Fn::GetAtt
// FunctionArn are the function's ARN; Fn::GetAtt FunctionUrl is
// https://<url-id>.lambda-url.<region>.on.aws/, which an update keeps.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-url.html
func (s *Service) createURLResource(r cfn.Resource) (cfn.Provisioned, error) {
	target, err := r.RequiredStr("TargetFunctionArn")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	auth, err := r.RequiredStr("AuthType")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	qualifier, err := r.Str("Qualifier")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if mode, err := r.Str("InvokeMode"); err != nil {
		return cfn.Provisioned{}, err
	} else if mode != "" && mode != "BUFFERED" {
		return cfn.Provisioned{}, fmt.Errorf("property InvokeMode: the sandbox serves BUFFERED function URLs only, not %s", mode)
	}
	id := ""
	if r.Previous != nil {
		id, _, _ = parseURLHost(strings.TrimSuffix(strings.TrimPrefix(r.Previous.Attrs["FunctionUrl"], "https://"), "/"))
	}
	u, err := s.CreateURL(r.Region, target, auth, qualifier, id)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("function URL of %s: %w", target, err)
	}
	arn := s.functionARN(u.Region, u.Function)
	return cfn.Provisioned{Ref: arn, Attrs: map[string]string{"FunctionArn": arn, "FunctionUrl": u.URL()}}, nil
}

// createPermissionResource adds a statement to a function's resource-based
// policy, as AddPermission does, with every property the resource takes:
// Action, FunctionName, Principal, SourceArn, SourceAccount,
// PrincipalOrgID, EventSourceToken, FunctionUrlAuthType and
// InvokedViaFunctionUrl. The statement id is generated, as CloudFormation
// does; Ref is it.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-permission.html
func (s *Service) createPermissionResource(r cfn.Resource) (cfn.Provisioned, error) {
	var p Permission
	var fn string
	for _, f := range []struct {
		name     string
		into     *string
		required bool
	}{
		{"Action", &p.Action, true}, {"FunctionName", &fn, true}, {"Principal", &p.Principal, true},
		{"SourceArn", &p.SourceArn, false}, {"SourceAccount", &p.SourceAccount, false}, {"PrincipalOrgID", &p.PrincipalOrgID, false},
		{"EventSourceToken", &p.EventSourceToken, false}, {"FunctionUrlAuthType", &p.FunctionURLAuthType, false},
	} {
		v, err := r.Str(f.name)
		if err == nil && f.required && v == "" {
			err = fmt.Errorf("property %s: required", f.name)
		}
		if err != nil {
			return cfn.Provisioned{}, err
		}
		*f.into = v
	}
	via, err := r.Str("InvokedViaFunctionUrl")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	p.InvokedViaFunctionURL = via == "true"
	// A function ARN with a qualifier grants that version or alias.
	if parts := strings.Split(fn, ":"); len(parts) == 8 && parts[0] == "arn" {
		fn, p.Qualifier = strings.Join(parts[:7], ":"), parts[7]
	}
	p.StatementID = cfn.PhysicalName(r, 100)
	if r.Previous != nil {
		p.StatementID = r.Previous.Ref
	}
	if _, err := s.AddPermission(r.Region, fn, p, r.Previous != nil); err != nil {
		return cfn.Provisioned{}, fmt.Errorf("permission on %s: %w", fn, err)
	}
	return cfn.Provisioned{Ref: p.StatementID, Attrs: map[string]string{"Id": p.StatementID}}, nil
}

// createLogGroupResource records a log group. Ref is its name; Fn::GetAtt
// Arn is "arn:aws:logs:<region>:<account>:log-group:<name>:*".
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-loggroup.html
func (s *Service) createLogGroupResource(r cfn.Resource) (cfn.Provisioned, error) {
	name, err := r.Str("LogGroupName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		name = cfn.PhysicalName(r, 512)
		if r.Previous != nil {
			name = r.Previous.Ref
		}
	}
	days, _, err := r.Int("RetentionInDays")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	g := LogGroup{Name: name, ARN: fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", r.Partition, r.Region, r.Account, name), RetentionDays: days}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logGroups[name]; ok && r.Previous == nil {
		return cfn.Provisioned{}, fmt.Errorf("ResourceAlreadyExistsException: the specified log group already exists: %s", name)
	}
	if s.logGroups == nil {
		s.logGroups = map[string]LogGroup{}
	}
	s.logGroups[name] = g
	return cfn.Provisioned{Ref: name, Attrs: map[string]string{"Arn": g.ARN}}, nil
}

var _ cfn.Provisioner = (*Service)(nil)
