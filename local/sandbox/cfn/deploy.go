package cfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// BootstrapVersionParameter is the SSM parameter in which `cdk bootstrap`
// records its version, and which every CDK template's BootstrapVersion
// parameter names; CheckBootstrapVersion asserts it is not 1 to 5.
// https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
const BootstrapVersionParameter = "/cdk-bootstrap/hnb659fds/version"

// CurrentBootstrapVersion is the bootstrap version the sandbox pretends its
// account has when the deployer is not told otherwise: the sandbox has no
// SSM, so an AWS::SSM::Parameter::Value parameter is looked up in
// Options.SSM, whose default holds this. It is a recent version of CDK's
// bootstrap template, which the CheckBootstrapVersion rule accepts; a
// deploy given "5" fails the rule as CloudFormation would.
const CurrentBootstrapVersion = "28"

// Template is a parsed CloudFormation template (JSON).
type Template struct {
	typed      *cloudformation.Template // Parameters and Outputs, typed by goformation
	conditions map[string]any
	mappings   map[string]any
	rules      map[string]rule
	resources  map[string]rawResource
}

type rawResource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
	Metadata   map[string]any `json:"Metadata"`
	DependsOn  any            `json:"DependsOn"` // a name or a list of names
	Condition  string         `json:"Condition"`
}

type rule struct {
	RuleCondition any `json:"RuleCondition"`
	Assertions    []struct {
		Assert            any    `json:"Assert"`
		AssertDescription string `json:"AssertDescription"`
	} `json:"Assertions"`
}

// ParseFile reads a JSON template.
func ParseFile(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return t, nil
}

// Parse reads a JSON template. goformation types its Parameters and
// Outputs; the rest is kept as JSON for the resolver.
func Parse(b []byte) (*Template, error) {
	var raw struct {
		Parameters json.RawMessage        `json:"Parameters"`
		Outputs    json.RawMessage        `json:"Outputs"`
		Conditions map[string]any         `json:"Conditions"`
		Mappings   map[string]any         `json:"Mappings"`
		Rules      map[string]rule        `json:"Rules"`
		Resources  map[string]rawResource `json:"Resources"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("template format error: %w", err)
	}
	if len(raw.Resources) == 0 {
		return nil, errors.New("template format error: at least one Resources member must be defined")
	}
	head := map[string]json.RawMessage{}
	if raw.Parameters != nil {
		head["Parameters"] = raw.Parameters
	}
	if raw.Outputs != nil {
		head["Outputs"] = raw.Outputs
	}
	hb, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	typed, err := goformation.ParseJSONWithOptions(hb, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("template format error: %w", err)
	}
	for id, r := range raw.Resources {
		if r.Type == "" {
			return nil, fmt.Errorf("template format error: [/Resources/%s] Every Resources object must contain a Type member", id)
		}
	}
	return &Template{typed: typed, conditions: raw.Conditions, mappings: raw.Mappings, rules: raw.Rules, resources: raw.Resources}, nil
}

// Options say where and how a stack is deployed.
type Options struct {
	StackName string // default "keyrotator"
	// Region, Account and Partition are the stack's pseudo parameters.
	// The sandbox deploys in its own region and account: the caller passes
	// the server's (a template that hard-codes another region keeps its
	// literal ARNs, as it would in AWS).
	Region, Account, Partition string
	// Parameters are given values; a parameter without one takes its Default.
	Parameters map[string]string
	// SSM holds the Parameter Store values that AWS::SSM::Parameter::Value
	// parameters name (the sandbox has no SSM). nil: just the CDK bootstrap
	// version, CurrentBootstrapVersion.
	SSM map[string]string
	// Provisioners create the resources; two for one type is an error.
	Provisioners []Provisioner
	// Skip lists resource types to record and skip, provisioner or not (a
	// test harness that must not run a template's schedules): a Ref or
	// Fn::GetAtt of a skipped resource answers a placeholder ARN. A type
	// no provisioner handles and Skip does not name fails the deploy,
	// naming the type.
	Skip []string
	// Caller is who deploys (Resource.Caller).
	Caller sandbox.Principal
	// Previous is the stack as an earlier deploy left it (Stacks): the
	// deploy is then an update, each resource's Previous set. Resources
	// the template no longer has are left, not deleted.
	Previous *Stack
	Logger   *slog.Logger
}

// Stack is a deployed stack.
type Stack struct {
	Name      string             `json:"name"`
	ID        string             `json:"id"`
	Region    string             `json:"region"`
	Account   string             `json:"account"`
	Partition string             `json:"partition"`
	Outputs   map[string]string  `json:"outputs"` // by output name; a list joined with ","
	Resources map[string]Created `json:"resources"`
	Order     []string           `json:"order"`             // logical ids, in creation order
	Skipped   []string           `json:"skipped,omitempty"` // logical ids record-and-skipped (Options.Skip)
}

// Created is one resource of a deployed stack.
type Created struct {
	Type string
	Provisioned
	Skipped bool
	// Properties and Metadata are as resolved and handed to the provisioner.
	Properties map[string]any
	Metadata   map[string]any
}

// OfType lists the stack's resources of a type, by logical id.
func (s *Stack) OfType(typ string) []string {
	var ids []string
	for _, id := range s.Order {
		if s.Resources[id].Type == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

var stackName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// Deploy creates t's resources, in dependency order, each by the
// Provisioner of its type, and returns the stack. Unlike CloudFormation it
// does not roll back: a failed deploy leaves what it made, and the error
// names the resource that failed and why.
func Deploy(ctx context.Context, t *Template, opts Options) (*Stack, error) {
	if opts.StackName == "" {
		opts.StackName = "keyrotator"
	}
	if !stackName.MatchString(opts.StackName) {
		return nil, fmt.Errorf("stack name %q: must start with a letter and hold only letters, digits and hyphens (128 at most)", opts.StackName)
	}
	if opts.Partition == "" {
		opts.Partition = "aws"
	}
	if opts.Region == "" || opts.Account == "" {
		return nil, errors.New("deploy: the region and the account are required")
	}
	if opts.SSM == nil {
		opts.SSM = map[string]string{BootstrapVersionParameter: CurrentBootstrapVersion}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	byType := map[string]Provisioner{}
	for _, p := range opts.Provisioners {
		for _, typ := range p.Types() {
			if _, dup := byType[typ]; dup {
				return nil, fmt.Errorf("deploy: two provisioners for %s", typ)
			}
			byType[typ] = p
		}
	}
	id := fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/%s", opts.Partition, opts.Region, opts.Account, opts.StackName, sandbox.NewUUID())
	if opts.Previous != nil && opts.Previous.Name == opts.StackName {
		id = opts.Previous.ID // an update keeps the stack's id
	}
	stack := &Stack{
		Name: opts.StackName, Region: opts.Region, Account: opts.Account, Partition: opts.Partition,
		ID:        id,
		Outputs:   map[string]string{},
		Resources: map[string]Created{},
	}
	suffix := "amazonaws.com"
	if opts.Partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	r := &resolver{
		pseudo: map[string]string{
			"AWS::Region": opts.Region, "AWS::AccountId": opts.Account, "AWS::Partition": opts.Partition,
			"AWS::StackName": opts.StackName, "AWS::StackId": stack.ID, "AWS::URLSuffix": suffix,
		},
		conditions: t.conditions, mappings: t.mappings,
		declared: map[string]string{}, created: map[string]*Provisioned{}, skipped: map[string]bool{},
		region: opts.Region, condCache: map[string]bool{}, condBusy: map[string]bool{},
		skipValue: func(id, attr string) string {
			v := fmt.Sprintf("arn:%s:cloudformation:%s:%s:skipped/%s/%s", opts.Partition, opts.Region, opts.Account, opts.StackName, id)
			if attr != "" {
				v += "/" + attr
			}
			return v
		},
	}
	params, err := bindParameters(t.typed.Parameters, opts)
	if err != nil {
		return nil, err
	}
	r.params = params
	if err := checkRules(r, t.rules); err != nil {
		return nil, err
	}
	for id, res := range t.resources {
		r.declared[id] = res.Type
	}
	// Resources whose Condition is false are not created.
	included := map[string]bool{}
	for id, res := range t.resources {
		if res.Condition == "" {
			included[id] = true
			continue
		}
		c, err := r.condition(res.Condition)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", id, err)
		}
		included[id] = c
	}
	order, err := creationOrder(t.resources, included, r)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, typ := range opts.Skip {
		skip[typ] = true
	}
	var unhandled []string
	for _, id := range order {
		typ := t.resources[id].Type
		if byType[typ] == nil && !skip[typ] && !slices.Contains(unhandled, typ) {
			unhandled = append(unhandled, typ)
		}
	}
	if len(unhandled) > 0 {
		slices.Sort(unhandled)
		return nil, fmt.Errorf("deploy: the sandbox has no provisioner for %s", strings.Join(unhandled, ", "))
	}

	for _, id := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res := t.resources[id]
		if skip[res.Type] {
			r.skipped[id] = true
			stack.Resources[id] = Created{Type: res.Type, Skipped: true, Provisioned: Provisioned{Ref: r.skipValue(id, "")}}
			stack.Order = append(stack.Order, id)
			stack.Skipped = append(stack.Skipped, id)
			log.Info("resource skipped", "stack", opts.StackName, "logicalId", id, "type", res.Type)
			continue
		}
		props, err := r.resolve(orEmpty(res.Properties))
		if err != nil {
			return nil, fmt.Errorf("resource %s (%s): %w", id, res.Type, err)
		}
		meta, err := r.resolve(orEmpty(res.Metadata))
		if err != nil {
			return nil, fmt.Errorf("resource %s (%s) metadata: %w", id, res.Type, err)
		}
		pm, _ := props.(map[string]any)
		if err := typeCheck(id, res.Type, pm); err != nil {
			return nil, err
		}
		mm, _ := meta.(map[string]any)
		var prev *Provisioned
		if opts.Previous != nil {
			if old, ok := opts.Previous.Resources[id]; ok && old.Type == res.Type && !old.Skipped {
				prev = &old.Provisioned
			}
		}
		p, err := byType[res.Type].Create(ctx, Resource{
			LogicalID: id, Type: res.Type, Properties: pm, Metadata: mm,
			StackName: opts.StackName, Region: opts.Region, Account: opts.Account, Partition: opts.Partition,
			Caller: opts.Caller, Previous: prev,
		})
		if err != nil {
			return nil, fmt.Errorf("resource %s (%s): CREATE_FAILED: %w", id, res.Type, err)
		}
		r.created[id] = &p
		stack.Resources[id] = Created{Type: res.Type, Provisioned: p, Properties: pm, Metadata: mm}
		stack.Order = append(stack.Order, id)
		log.Info("resource created", "stack", opts.StackName, "logicalId", id, "type", res.Type, "ref", p.Ref)
	}

	for _, name := range slices.Sorted(maps.Keys(t.typed.Outputs)) {
		o := t.typed.Outputs[name]
		if o.Condition != nil {
			c, err := r.condition(*o.Condition)
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", name, err)
			}
			if !c {
				continue
			}
		}
		v, err := r.resolve(o.Value)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			stack.Outputs[name] = strings.Join(parts, ",")
		case string:
			stack.Outputs[name] = x
		default:
			stack.Outputs[name] = show(x)
		}
	}
	return stack, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// typeCheck holds the resolved properties against goformation's typed
// model of the resource type (from CloudFormation's resource specification):
// a property of the wrong shape fails here, as CloudFormation's validation
// would, before the provisioner sees it. Types goformation does not know
// pass.
func typeCheck(id, typ string, props map[string]any) error {
	if _, known := knownTypes()[typ]; !known {
		return nil
	}
	b, err := json.Marshal(map[string]any{"Resources": map[string]any{id: map[string]any{"Type": typ, "Properties": props}}})
	if err != nil {
		return fmt.Errorf("resource %s (%s): %w", id, typ, err)
	}
	if _, err := goformation.ParseJSONWithOptions(b, &intrinsics.ProcessorOptions{NoProcess: true}); err != nil {
		return fmt.Errorf("resource %s (%s): properties do not fit the resource type: %w", id, typ, err)
	}
	return nil
}

// knownTypes are the resource types goformation models.
var knownTypes = sync.OnceValue(func() map[string]cloudformation.Resource { return cloudformation.AllResources() })

// bindParameters gives each parameter its value: given, else its Default;
// AWS::SSM::Parameter::Value types are looked up in opts.SSM; list types
// split on commas.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
func bindParameters(decl cloudformation.Parameters, opts Options) (map[string]any, error) {
	for name := range opts.Parameters {
		if _, ok := decl[name]; !ok {
			return nil, fmt.Errorf("parameters: [%s] do not exist in the template", name)
		}
	}
	out := map[string]any{}
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(decl)) {
		p := decl[name]
		v, ok := opts.Parameters[name]
		if !ok {
			if p.Default == nil {
				missing = append(missing, name)
				continue
			}
			v = fmt.Sprint(p.Default)
		}
		typ := p.Type
		if inner, ok := strings.CutPrefix(typ, "AWS::SSM::Parameter::Value<"); ok {
			val, found := opts.SSM[v]
			if !found {
				return nil, fmt.Errorf("parameter %s: unable to fetch parameters [%s] from parameter store for this account", name, v)
			}
			v, typ = val, strings.TrimSuffix(inner, ">")
		}
		if len(p.AllowedValues) > 0 && !slices.ContainsFunc(p.AllowedValues, func(a any) bool { return fmt.Sprint(a) == v }) {
			return nil, fmt.Errorf("parameter '%s' must be one of AllowedValues", name)
		}
		if p.AllowedPattern != nil {
			re, err := regexp.Compile("^(?:" + *p.AllowedPattern + ")$")
			if err != nil {
				return nil, fmt.Errorf("parameter %s: AllowedPattern: %w", name, err)
			}
			if !re.MatchString(v) {
				return nil, fmt.Errorf("parameter '%s' must match pattern %s", name, *p.AllowedPattern)
			}
		}
		if typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			var l []any
			for _, e := range strings.Split(v, ",") {
				l = append(l, strings.TrimSpace(e))
			}
			out[name] = l
			continue
		}
		out[name] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return out, nil
}

// checkRules evaluates the Rules section: a rule whose RuleCondition holds
// must have every assertion true, or the deploy fails with the assertion's
// description, as CloudFormation's does.
func checkRules(r *resolver, rules map[string]rule) error {
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		ru := rules[name]
		if ru.RuleCondition != nil {
			c, err := r.cond(ru.RuleCondition)
			if err != nil {
				return fmt.Errorf("rule %s: %w", name, err)
			}
			if !c {
				continue
			}
		}
		for _, a := range ru.Assertions {
			ok, err := r.cond(a.Assert)
			if err != nil {
				return fmt.Errorf("rule %s: %w", name, err)
			}
			if !ok {
				return fmt.Errorf("rule %s failed: %s", name, a.AssertDescription)
			}
		}
	}
	return nil
}

// creationOrder orders the included resources so each comes after every
// resource it names by Ref, Fn::GetAtt, Fn::Sub or DependsOn, ties broken
// by logical id; it refuses names the template lacks and cycles.
func creationOrder(resources map[string]rawResource, included map[string]bool, r *resolver) ([]string, error) {
	deps := map[string][]string{}
	for id, res := range resources {
		if !included[id] {
			continue
		}
		var names []string
		switch d := res.DependsOn.(type) {
		case nil:
		case string:
			names = append(names, d)
		case []any:
			for _, e := range d {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("template format error: resource %s: DependsOn lists names, not %s", id, show(e))
				}
				names = append(names, s)
			}
		default:
			return nil, fmt.Errorf("template format error: resource %s: DependsOn is a name or a list of names", id)
		}
		for _, n := range names {
			if _, ok := resources[n]; !ok {
				return nil, fmt.Errorf("template format error: Unresolved resource dependencies [%s] in the Resources block of the template (DependsOn of %s)", n, id)
			}
		}
		named, err := refs(map[string]any{"p": res.Properties, "m": res.Metadata})
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", id, err)
		}
		for _, n := range named {
			_, isPseudo := r.pseudo[n]
			_, isParam := r.params[n]
			_, isRes := resources[n]
			switch {
			case isRes:
				names = append(names, n)
			case isPseudo || isParam || n == "AWS::NoValue" || n == "AWS::NotificationARNs":
			default:
				return nil, fmt.Errorf("template format error: Unresolved resource dependencies [%s] in the Resources block of the template (in %s)", n, id)
			}
		}
		var kept []string
		for _, n := range names {
			if !included[n] {
				return nil, fmt.Errorf("template format error: resource %s depends on %s, whose condition is false", id, n)
			}
			if !slices.Contains(kept, n) {
				kept = append(kept, n)
			}
		}
		deps[id] = kept
	}
	// Kahn's algorithm, the ready set kept sorted.
	waiting := map[string]int{}
	users := map[string][]string{}
	for id, ds := range deps {
		waiting[id] = len(ds)
		for _, d := range ds {
			users[d] = append(users[d], id)
		}
	}
	var ready, order []string
	for id, n := range waiting {
		if n == 0 {
			ready = append(ready, id)
		}
	}
	slices.Sort(ready)
	for len(ready) > 0 {
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		for _, u := range users[id] {
			waiting[u]--
			if waiting[u] == 0 {
				i, _ := slices.BinarySearch(ready, u)
				ready = slices.Insert(ready, i, u)
			}
		}
	}
	if len(order) < len(deps) {
		var stuck []string
		for id, n := range waiting {
			if n > 0 {
				stuck = append(stuck, id)
			}
		}
		slices.Sort(stuck)
		return nil, fmt.Errorf("template format error: Circular dependency between resources: [%s]", strings.Join(stuck, ", "))
	}
	return order, nil
}
