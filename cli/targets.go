package cli

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// listFields are the target fields that hold a list (rotation.Target's
// slices, by their JSON names, of whichever kind): the key may repeat.
var listFields = func() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeFor[rotation.Target]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Type.Kind() == reflect.Slice {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			out[name] = true
		}
	}
	return out
}()

// ParseTarget reads one --target: comma-separated key=value pairs named
// as in the input's JSON (functions/rotation/input.schema.json), e.g.
//
//	type=secret,name=app,secretId=app/aws-access-key
//	type=auth0,name=prod,connection=keyrotator/connections/auth0-prod,sesRegion=ap-northeast-1
//	type=soracom,name=funnel,connection=keyrotator/connections/soracom,credentialPrefix=aws-soracom-funnel
//	type=soracom,name=funk,connection=keyrotator/connections/soracom,credentialIds=cred-a,credentialIds=cred-b
//
// A list (credentialIds) takes one item per pair and may repeat; no other
// key may. A spec that starts with { is a JSON object, taken as it is. Fields
// are not checked here: the schema names what is wrong with the whole input.
func ParseTarget(spec string) (map[string]any, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "{") {
		var t map[string]any
		if err := json.Unmarshal([]byte(spec), &t); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", rotation.PlainJSONError(err))
		}
		return t, nil
	}
	if spec == "" {
		return nil, fmt.Errorf("empty: want type=…,name=…,…")
	}
	t := map[string]any{}
	for pair := range strings.SplitSeq(spec, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		if listFields[k] {
			ids, _ := t[k].([]string)
			t[k] = append(ids, v)
			continue
		}
		if _, dup := t[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		t[k] = v
	}
	return t, nil
}
