package cfn

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Helpers for provisioners reading a Resource's resolved Properties. Each
// error names the property, as CloudFormation's CREATE_FAILED reason does.

// Str is an optional string property ("" when absent). Numbers and
// booleans are given as CloudFormation passes them, as text.
func (r Resource) Str(name string) (string, error) {
	v, ok := r.Properties[name]
	if !ok || v == nil {
		return "", nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("property %s: expected a string, got %T", name, v)
}

// RequiredStr is a string property that must be present and non-empty.
func (r Resource) RequiredStr(name string) (string, error) {
	s, err := r.Str(name)
	if err == nil && s == "" {
		err = fmt.Errorf("property %s: required", name)
	}
	return s, err
}

// Int is an optional integer property; ok says whether it was given.
func (r Resource) Int(name string) (n int, ok bool, err error) {
	v, present := r.Properties[name]
	if !present || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case float64:
		if x != float64(int(x)) {
			return 0, true, fmt.Errorf("property %s: %v is not an integer", name, x)
		}
		return int(x), true, nil
	case string: // CloudFormation accepts numbers as strings
		n, err := strconv.Atoi(x)
		if err != nil {
			return 0, true, fmt.Errorf("property %s: %q is not an integer", name, x)
		}
		return n, true, nil
	}
	return 0, true, fmt.Errorf("property %s: expected an integer, got %T", name, v)
}

// Strings is an optional list-of-strings property.
func (r Resource) Strings(name string) ([]string, error) {
	v, ok := r.Properties[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("property %s: expected a list, got %T", name, v)
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("property %s[%d]: expected a string, got %T", name, i, e)
		}
		out = append(out, s)
	}
	return out, nil
}

// Object is an optional object property (nil when absent).
func (r Resource) Object(name string) (map[string]any, error) {
	v, ok := r.Properties[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("property %s: expected an object, got %T", name, v)
	}
	return m, nil
}

// Document is a JSON-document property (an IAM policy, a state machine
// definition given as an object), given either as an object or as a string
// holding JSON; it returns the JSON, nil when absent.
func (r Resource) Document(name string) (json.RawMessage, error) {
	v, ok := r.Properties[name]
	if !ok || v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("property %s: not a JSON document", name)
		}
		return json.RawMessage(s), nil
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("property %s: expected a JSON document, got %T", name, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("property %s: %w", name, err)
	}
	return b, nil
}

// Tags is a Tags property: a list of {Key, Value}, in order.
func (r Resource) Tags(name string) ([][2]string, error) {
	v, ok := r.Properties[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("property %s: expected a list of tags, got %T", name, v)
	}
	var out [][2]string
	for i, e := range l {
		m, _ := e.(map[string]any)
		k, ok1 := m["Key"].(string)
		val, ok2 := m["Value"].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("property %s[%d]: a tag is {Key, Value}", name, i)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}
