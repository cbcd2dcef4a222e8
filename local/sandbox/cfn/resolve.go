package cfn

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The intrinsic functions of the CloudFormation User Guide's "Intrinsic
// function reference" that the resolver answers, and the rule functions
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html).
// goformation (github.com/awslabs/goformation/v7) parses templates but
// resolves neither Fn::GetAtt nor any pseudo parameter but its defaults, so
// the deployer resolves intrinsics here, against what it has created.

// noValue is AWS::NoValue: the property or list item it stands in is removed.
type noValue struct{}

// resolver resolves intrinsics against a stack being created.
type resolver struct {
	pseudo     map[string]string
	params     map[string]any // string, or []any of strings for list types
	conditions map[string]any // raw, from the template
	mappings   map[string]any
	declared   map[string]string       // every resource in the template: logical id → type
	created    map[string]*Provisioned // what exists so far
	skipped    map[string]bool         // record-and-skip resources: a placeholder answers for them
	skipValue  func(id, attr string) string
	region     string

	condCache map[string]bool
	condBusy  map[string]bool
}

func isIntrinsic(k string) bool { return k == "Ref" || strings.HasPrefix(k, "Fn::") }

// resolve returns v with every intrinsic function replaced by its value.
func (r *resolver) resolve(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if isIntrinsic(k) {
					return r.call(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			if _, drop := rv.(noValue); !drop {
				out[k] = rv
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			if _, drop := rv.(noValue); !drop {
				out = append(out, rv)
			}
		}
		return out, nil
	}
	return v, nil
}

func (r *resolver) call(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("template error: Ref takes a name, not %s", show(arg))
		}
		return r.ref(name)
	case "Fn::GetAtt":
		id, attr, err := r.getAttArgs(arg)
		if err != nil {
			return nil, err
		}
		return r.getAtt(id, attr)
	case "Fn::Join":
		return r.join(arg)
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::Select":
		return r.sel(arg)
	case "Fn::Split":
		return r.split(arg)
	case "Fn::If":
		return r.ifFn(arg)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Contains":
		return r.cond(map[string]any{fn: arg})
	case "Fn::GetAZs":
		region, err := r.str(arg)
		if err != nil {
			return nil, fmt.Errorf("template error: Fn::GetAZs: %w", err)
		}
		if region == "" {
			region = r.region
		}
		return []any{region + "a", region + "b", region + "c"}, nil
	case "Fn::Base64":
		s, err := r.str(arg)
		if err != nil {
			return nil, fmt.Errorf("template error: Fn::Base64: %w", err)
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::FindInMap":
		return r.findInMap(arg)
	case "Fn::ToJsonString":
		v, err := r.resolve(arg)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("template error: Fn::ToJsonString: %w", err)
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("template error: the sandbox's deployer does not support %s", fn)
}

// ref answers Ref: a pseudo parameter, a parameter, or a resource's Ref.
func (r *resolver) ref(name string) (any, error) {
	switch name {
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::NotificationARNs":
		return []any{}, nil
	}
	if v, ok := r.pseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if _, ok := r.declared[name]; ok {
		if r.skipped[name] {
			return r.skipValue(name, ""), nil
		}
		p, ok := r.created[name]
		if !ok {
			return nil, fmt.Errorf("template error: %s is referenced before it is created", name)
		}
		return p.Ref, nil
	}
	return nil, fmt.Errorf("template format error: Unresolved resource dependencies [%s] in the Resources block of the template", name)
}

func (r *resolver) getAttArgs(arg any) (id, attr string, err error) {
	switch x := arg.(type) {
	case string: // "Logical.Attr"
		id, attr, ok := strings.Cut(x, ".")
		if ok && id != "" && attr != "" {
			return id, attr, nil
		}
	case []any:
		if len(x) == 2 {
			id, ok := x[0].(string)
			a, err := r.str(x[1]) // the attribute may be a Ref to a parameter
			if ok && err == nil && a != "" {
				return id, a, nil
			}
		}
	}
	return "", "", fmt.Errorf("template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute; got %s", show(arg))
}

// getAtt answers Fn::GetAtt from what the resource's provisioner returned.
func (r *resolver) getAtt(id, attr string) (string, error) {
	if _, ok := r.declared[id]; !ok {
		return "", fmt.Errorf("template error: instance of Fn::GetAtt references undefined resource %s", id)
	}
	if r.skipped[id] {
		return r.skipValue(id, attr), nil
	}
	p, ok := r.created[id]
	if !ok {
		return "", fmt.Errorf("template error: %s is referenced before it is created", id)
	}
	v, ok := p.Attrs[attr]
	if !ok {
		return "", fmt.Errorf("template error: resource %s does not support attribute type %s in Fn::GetAtt", id, attr)
	}
	return v, nil
}

func (r *resolver) args(fn string, arg any, n int) ([]any, error) {
	l, ok := arg.([]any)
	if !ok || len(l) != n {
		return nil, fmt.Errorf("template error: %s takes a list of %d arguments, not %s", fn, n, show(arg))
	}
	return l, nil
}

// str resolves v to a string.
func (r *resolver) str(v any) (string, error) {
	rv, err := r.resolve(v)
	if err != nil {
		return "", err
	}
	switch x := rv.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("expected a string, got %s", show(rv))
}

// list resolves v to a list.
func (r *resolver) list(v any) ([]any, error) {
	rv, err := r.resolve(v)
	if err != nil {
		return nil, err
	}
	l, ok := rv.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list, got %s", show(rv))
	}
	return l, nil
}

func (r *resolver) join(arg any) (any, error) {
	a, err := r.args("Fn::Join", arg, 2)
	if err != nil {
		return nil, err
	}
	delim, ok := a[0].(string)
	if !ok {
		return nil, fmt.Errorf("template error: Fn::Join's delimiter must be a string, not %s", show(a[0]))
	}
	items, err := r.list(a[1])
	if err != nil {
		return nil, fmt.Errorf("template error: Fn::Join: %w", err)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		s, err := r.str(it)
		if err != nil {
			return nil, fmt.Errorf("template error: Fn::Join item %d: %w", i, err)
		}
		parts[i] = s
	}
	return strings.Join(parts, delim), nil
}

// subPart is a piece of an Fn::Sub string: literal text or a ${Var}.
type subPart struct {
	text  string
	isVar bool
}

// parseSub splits an Fn::Sub string: ${Name}, ${Logical.Attr}, and
// ${!Literal} which stands for the text ${Literal}.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-sub.html
func parseSub(s string) ([]subPart, error) {
	var parts []subPart
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break // no closing brace: the rest is text
		}
		if i > 0 {
			parts = append(parts, subPart{text: s[:i]})
		}
		inner := s[i+2 : i+j]
		switch {
		case strings.HasPrefix(inner, "!"):
			parts = append(parts, subPart{text: "${" + inner[1:] + "}"})
		case strings.TrimSpace(inner) == "":
			return nil, fmt.Errorf("template error: Fn::Sub: empty variable in %q", s)
		default:
			parts = append(parts, subPart{text: strings.TrimSpace(inner), isVar: true})
		}
		s = s[i+j+1:]
	}
	if s != "" {
		parts = append(parts, subPart{text: s})
	}
	return parts, nil
}

func (r *resolver) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch x := arg.(type) {
	case string:
		tmpl = x
	case []any:
		if len(x) != 2 {
			return nil, fmt.Errorf("template error: Fn::Sub takes a string or [string, {variables}], not %s", show(arg))
		}
		s, ok := x[0].(string)
		m, ok2 := x[1].(map[string]any)
		if !ok || !ok2 {
			return nil, fmt.Errorf("template error: Fn::Sub takes a string or [string, {variables}], not %s", show(arg))
		}
		tmpl, vars = s, m
	default:
		return nil, fmt.Errorf("template error: Fn::Sub takes a string or [string, {variables}], not %s", show(arg))
	}
	parts, err := parseSub(tmpl)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, p := range parts {
		if !p.isVar {
			b.WriteString(p.text)
			continue
		}
		var v any
		if given, ok := vars[p.text]; ok {
			v, err = r.resolve(given)
		} else if id, attr, ok := strings.Cut(p.text, "."); ok && !strings.HasPrefix(p.text, "AWS::") {
			v, err = r.getAtt(id, attr)
		} else {
			v, err = r.ref(p.text)
		}
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("template error: Fn::Sub: ${%s} is %s, not a string", p.text, show(v))
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (r *resolver) sel(arg any) (any, error) {
	a, err := r.args("Fn::Select", arg, 2)
	if err != nil {
		return nil, err
	}
	is, err := r.str(a[0])
	if err != nil {
		return nil, fmt.Errorf("template error: Fn::Select index: %w", err)
	}
	i, err := strconv.Atoi(is)
	if err != nil {
		return nil, fmt.Errorf("template error: Fn::Select index %q is not a number", is)
	}
	l, err := r.list(a[1])
	if err != nil {
		return nil, fmt.Errorf("template error: Fn::Select: %w", err)
	}
	if i < 0 || i >= len(l) {
		return nil, fmt.Errorf("template error: Fn::Select cannot select nonexistent value at index %d", i)
	}
	return l[i], nil
}

func (r *resolver) split(arg any) (any, error) {
	a, err := r.args("Fn::Split", arg, 2)
	if err != nil {
		return nil, err
	}
	delim, ok := a[0].(string)
	if !ok || delim == "" {
		return nil, fmt.Errorf("template error: Fn::Split's delimiter must be a non-empty string, not %s", show(a[0]))
	}
	s, err := r.str(a[1])
	if err != nil {
		return nil, fmt.Errorf("template error: Fn::Split: %w", err)
	}
	var out []any
	for _, p := range strings.Split(s, delim) {
		out = append(out, p)
	}
	return out, nil
}

func (r *resolver) ifFn(arg any) (any, error) {
	a, err := r.args("Fn::If", arg, 3)
	if err != nil {
		return nil, err
	}
	name, ok := a[0].(string)
	if !ok {
		return nil, fmt.Errorf("template error: Fn::If's first argument names a condition, not %s", show(a[0]))
	}
	c, err := r.condition(name)
	if err != nil {
		return nil, err
	}
	if c {
		return r.resolve(a[1])
	}
	return r.resolve(a[2])
}

func (r *resolver) findInMap(arg any) (any, error) {
	a, err := r.args("Fn::FindInMap", arg, 3)
	if err != nil {
		return nil, err
	}
	var keys [3]string
	for i := range a {
		if keys[i], err = r.str(a[i]); err != nil {
			return nil, fmt.Errorf("template error: Fn::FindInMap: %w", err)
		}
	}
	m, _ := r.mappings[keys[0]].(map[string]any)
	top, _ := m[keys[1]].(map[string]any)
	v, ok := top[keys[2]]
	if !ok {
		return nil, fmt.Errorf("template error: Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
	}
	return v, nil
}

// condition evaluates a named condition of the Conditions section, once.
func (r *resolver) condition(name string) (bool, error) {
	if v, ok := r.condCache[name]; ok {
		return v, nil
	}
	raw, ok := r.conditions[name]
	if !ok {
		return false, fmt.Errorf("template format error: Unresolved dependencies [%s]: no such condition", name)
	}
	if r.condBusy[name] {
		return false, fmt.Errorf("template format error: Circular dependency between conditions: %s refers to itself", name)
	}
	r.condBusy[name] = true
	defer delete(r.condBusy, name)
	v, err := r.cond(raw)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	r.condCache[name] = v
	return v, nil
}

// cond evaluates a condition expression: Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, {"Condition": name}, and the rule function Fn::Contains.
func (r *resolver) cond(v any) (bool, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, arg := range m {
			switch k {
			case "Condition":
				name, ok := arg.(string)
				if !ok {
					return false, fmt.Errorf("template error: Condition names a condition, not %s", show(arg))
				}
				return r.condition(name)
			case "Fn::Equals":
				a, err := r.args(k, arg, 2)
				if err != nil {
					return false, err
				}
				x, err := r.str(a[0])
				if err != nil {
					return false, fmt.Errorf("template error: Fn::Equals: %w", err)
				}
				y, err := r.str(a[1])
				if err != nil {
					return false, fmt.Errorf("template error: Fn::Equals: %w", err)
				}
				return x == y, nil
			case "Fn::Not":
				a, err := r.args(k, arg, 1)
				if err != nil {
					return false, err
				}
				c, err := r.cond(a[0])
				return !c, err
			case "Fn::And", "Fn::Or":
				a, ok := arg.([]any)
				if !ok || len(a) < 2 || len(a) > 10 {
					return false, fmt.Errorf("template error: %s takes 2 to 10 conditions, not %s", k, show(arg))
				}
				for _, e := range a {
					c, err := r.cond(e)
					if err != nil {
						return false, err
					}
					if c == (k == "Fn::Or") {
						return c, nil
					}
				}
				return k == "Fn::And", nil
			case "Fn::Contains":
				a, err := r.args(k, arg, 2)
				if err != nil {
					return false, err
				}
				l, err := r.list(a[0])
				if err != nil {
					return false, fmt.Errorf("template error: Fn::Contains: %w", err)
				}
				x, err := r.str(a[1])
				if err != nil {
					return false, fmt.Errorf("template error: Fn::Contains: %w", err)
				}
				return slices.ContainsFunc(l, func(e any) bool { return e == x }), nil
			case "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll":
				return false, fmt.Errorf("template error: the sandbox's deployer does not support the rule function %s", k)
			}
		}
	}
	rv, err := r.resolve(v)
	if err != nil {
		return false, err
	}
	switch x := rv.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("template error: a condition must be true or false, not %s", show(rv))
}

// refs lists the names v refers to, in order of appearance: Ref names,
// Fn::GetAtt resources and Fn::Sub variables (without the attribute), so
// the deployer can order resources and refuse names the template lacks.
func refs(v any) ([]string, error) {
	var out []string
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			if len(x) == 1 {
				if arg, ok := x["Ref"]; ok {
					if s, ok := arg.(string); ok {
						out = append(out, s)
						return nil
					}
				}
				if arg, ok := x["Fn::GetAtt"]; ok {
					switch a := arg.(type) {
					case string:
						id, _, _ := strings.Cut(a, ".")
						out = append(out, id)
						return nil
					case []any:
						if len(a) > 0 {
							if id, ok := a[0].(string); ok {
								out = append(out, id)
							}
							return walk(a[1:])
						}
					}
				}
				if arg, ok := x["Fn::Sub"]; ok {
					tmpl, vars := "", map[string]any{}
					switch a := arg.(type) {
					case string:
						tmpl = a
					case []any:
						if len(a) == 2 {
							tmpl, _ = a[0].(string)
							vars, _ = a[1].(map[string]any)
							if err := walk(a[1]); err != nil {
								return err
							}
						}
					}
					parts, err := parseSub(tmpl)
					if err != nil {
						return err
					}
					for _, p := range parts {
						if !p.isVar {
							continue
						}
						if _, given := vars[p.text]; given {
							continue
						}
						name := p.text
						if id, _, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
							name = id
						}
						out = append(out, name)
					}
					return nil
				}
			}
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(v)
	return out, err
}

// show is a value as an error message quotes it.
func show(v any) string {
	if _, ok := v.(noValue); ok {
		return "AWS::NoValue"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
