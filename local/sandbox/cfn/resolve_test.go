package cfn

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func testResolver(t *testing.T) *resolver {
	t.Helper()
	return &resolver{
		pseudo: map[string]string{"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
			"AWS::StackName": "st", "AWS::URLSuffix": "amazonaws.com"},
		params:     map[string]any{"Env": "prod", "Zones": []any{"a", "b"}, "Count": "2"},
		conditions: map[string]any{"IsProd": jsonOf(t, `{"Fn::Equals":[{"Ref":"Env"},"prod"]}`), "IsDev": jsonOf(t, `{"Fn::Not":[{"Condition":"IsProd"}]}`), "Loop": jsonOf(t, `{"Fn::Not":[{"Condition":"Loop"}]}`)},
		mappings:   map[string]any{"M": map[string]any{"eu-west-1": map[string]any{"Ami": "ami-1"}}},
		declared:   map[string]string{"Topic": "AWS::SNS::Topic", "Role": "AWS::IAM::Role", "Later": "AWS::SNS::Topic"},
		created: map[string]*Provisioned{
			"Topic": {Ref: "arn:aws:sns:eu-west-1:123456789012:t", Attrs: map[string]string{"TopicName": "t"}},
			"Role":  {Ref: "r", Attrs: map[string]string{"Arn": "arn:aws:iam::123456789012:role/r", "RoleId": "AROA1"}},
		},
		skipped: map[string]bool{}, region: "eu-west-1",
		condCache: map[string]bool{}, condBusy: map[string]bool{},
	}
}

func jsonOf(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func TestResolve(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"plain", `{"a":[1,"x",true]}`, `{"a":[1,"x",true]}`},
		{"ref pseudo", `{"Ref":"AWS::Region"}`, `"eu-west-1"`},
		{"ref param", `{"Ref":"Env"}`, `"prod"`},
		{"ref list param", `{"Ref":"Zones"}`, `["a","b"]`},
		{"ref resource", `{"Ref":"Topic"}`, `"arn:aws:sns:eu-west-1:123456789012:t"`},
		{"no value drops key", `{"a":{"Ref":"AWS::NoValue"},"b":1}`, `{"b":1}`},
		{"no value drops item", `[{"Ref":"AWS::NoValue"},"x"]`, `["x"]`},
		{"getatt list", `{"Fn::GetAtt":["Role","Arn"]}`, `"arn:aws:iam::123456789012:role/r"`},
		{"getatt dotted", `{"Fn::GetAtt":"Role.RoleId"}`, `"AROA1"`},
		{"getatt attr by ref", `{"Fn::GetAtt":["Topic",{"Fn::Join":["",["Topic","Name"]]}]}`, `"t"`},
		{"join", `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::",{"Ref":"AWS::AccountId"},":root"]]}`, `"arn:aws:iam::123456789012:root"`},
		{"join list param", `{"Fn::Join":[",",{"Ref":"Zones"}]}`, `"a,b"`},
		{"join empty", `{"Fn::Join":["-",[]]}`, `""`},
		{"sub string", `{"Fn::Sub":"arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${Env}"}`, `"arn:aws:sns:eu-west-1:123456789012:prod"`},
		{"sub attr", `{"Fn::Sub":"role=${Role.Arn} topic=${Topic}"}`, `"role=arn:aws:iam::123456789012:role/r topic=arn:aws:sns:eu-west-1:123456789012:t"`},
		{"sub literal", `{"Fn::Sub":"${!Literal} and ${!AWS::Region} stay"}`, `"${Literal} and ${AWS::Region} stay"`},
		{"sub unclosed is text", `{"Fn::Sub":"a ${b"}`, `"a ${b"`},
		{"sub with map", `{"Fn::Sub":["${X}-${AWS::Region}",{"X":{"Fn::Select":[1,{"Ref":"Zones"}]}}]}`, `"b-eu-west-1"`},
		{"sub map shadows", `{"Fn::Sub":["${Env}",{"Env":"shadow"}]}`, `"shadow"`},
		{"select", `{"Fn::Select":["0",["x","y"]]}`, `"x"`},
		{"select split", `{"Fn::Select":[2,{"Fn::Split":[":","arn:aws:iam"]}]}`, `"iam"`},
		{"split", `{"Fn::Split":["/",{"Fn::Sub":"a/${Env}"}]}`, `["a","prod"]`},
		{"if true", `{"Fn::If":["IsProd","big","small"]}`, `"big"`},
		{"if false", `{"Fn::If":["IsDev","big",{"Ref":"AWS::NoValue"}]}`, `null`},
		{"if drops property", `{"Size":{"Fn::If":["IsDev",1,{"Ref":"AWS::NoValue"}]}}`, `{}`},
		{"equals", `{"Fn::Equals":[{"Ref":"Count"},"2"]}`, `true`},
		{"and or", `{"Fn::Or":[{"Fn::And":[{"Condition":"IsProd"},{"Condition":"IsDev"}]},{"Fn::Equals":["a","a"]}]}`, `true`},
		{"getazs", `{"Fn::GetAZs":""}`, `["eu-west-1a","eu-west-1b","eu-west-1c"]`},
		{"getazs ref", `{"Fn::Select":[1,{"Fn::GetAZs":{"Ref":"AWS::Region"}}]}`, `"eu-west-1b"`},
		{"find in map", `{"Fn::FindInMap":["M",{"Ref":"AWS::Region"},"Ami"]}`, `"ami-1"`},
		{"base64", `{"Fn::Base64":"hi"}`, `"aGk="`},
		{"to json", `{"Fn::ToJsonString":{"k":{"Ref":"Env"}}}`, `"{\"k\":\"prod\"}"`},
		{"two keys are no intrinsic", `{"Ref":"Env","x":1}`, `{"Ref":"Env","x":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := testResolver(t)
			got, err := r.resolve(jsonOf(t, c.in))
			if err != nil {
				t.Fatalf("resolve %s: %v", c.in, err)
			}
			if _, ok := got.(noValue); ok {
				got = nil
			}
			if want := jsonOf(t, c.want); !reflect.DeepEqual(got, want) {
				t.Errorf("resolve %s = %s, want %s", c.in, show(got), c.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"unknown ref", `{"Ref":"Nope"}`, "Unresolved resource dependencies [Nope]"},
		{"ref not a string", `{"Ref":["x"]}`, "Ref takes a name"},
		{"getatt undefined resource", `{"Fn::GetAtt":["Nope","Arn"]}`, "references undefined resource Nope"},
		{"getatt bad attribute", `{"Fn::GetAtt":["Role","Nope"]}`, "resource Role does not support attribute type Nope"},
		{"getatt of a parameter", `{"Fn::GetAtt":["Env","Arn"]}`, "references undefined resource Env"},
		{"getatt one argument", `{"Fn::GetAtt":["Role"]}`, "requires two non-empty parameters"},
		{"getatt no dot", `{"Fn::GetAtt":"Role"}`, "requires two non-empty parameters"},
		{"getatt not yet created", `{"Fn::GetAtt":["Later","Arn"]}`, "referenced before it is created"},
		{"sub unknown var", `{"Fn::Sub":"${Nope}"}`, "Unresolved resource dependencies [Nope]"},
		{"sub bad attribute", `{"Fn::Sub":"${Role.Nope}"}`, "does not support attribute type Nope"},
		{"sub list var", `{"Fn::Sub":"${Zones}"}`, "not a string"},
		{"sub empty var", `{"Fn::Sub":"${}"}`, "empty variable"},
		{"join not a list", `{"Fn::Join":[",","x"]}`, "expected a list"},
		{"join bad arity", `{"Fn::Join":[","]}`, "takes a list of 2 arguments"},
		{"join item not a string", `{"Fn::Join":[",",[{"a":1}]]}`, "item 0"},
		{"select out of range", `{"Fn::Select":[5,["x"]]}`, "nonexistent value at index 5"},
		{"select bad index", `{"Fn::Select":["x",["x"]]}`, "not a number"},
		{"split empty delimiter", `{"Fn::Split":["","x"]}`, "non-empty string"},
		{"if unknown condition", `{"Fn::If":["Nope",1,2]}`, "no such condition"},
		{"condition cycle", `{"Fn::If":["Loop",1,2]}`, "Circular dependency between conditions"},
		{"and one condition", `{"Fn::And":[{"Condition":"IsProd"}]}`, "takes 2 to 10 conditions"},
		{"condition not boolean", `{"Fn::Not":["maybe"]}`, "must be true or false"},
		{"unsupported function", `{"Fn::ImportValue":"x"}`, "does not support Fn::ImportValue"},
		{"missing mapping", `{"Fn::FindInMap":["M","us-east-1","Ami"]}`, "Unable to get mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := testResolver(t)
			got, err := r.resolve(jsonOf(t, c.in))
			if err == nil {
				t.Fatalf("resolve %s = %s, want an error containing %q", c.in, show(got), c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("resolve %s: error %q, want it to contain %q", c.in, err, c.want)
			}
		})
	}
}

func TestParseSub(t *testing.T) {
	t.Parallel()
	parts, err := parseSub("a${B}c${!D}${ E.F }")
	if err != nil {
		t.Fatal(err)
	}
	want := []subPart{{text: "a"}, {text: "B", isVar: true}, {text: "c"}, {text: "${D}"}, {text: "E.F", isVar: true}}
	if !reflect.DeepEqual(parts, want) {
		t.Errorf("parseSub = %+v, want %+v", parts, want)
	}
}

func TestRefs(t *testing.T) {
	t.Parallel()
	got, err := refs(jsonOf(t, `{"a":{"Ref":"A"},"b":[{"Fn::GetAtt":["B","Arn"]},{"Fn::GetAtt":"C.Arn"}],
		"c":{"Fn::Sub":["${D.Arn}-${X}-${AWS::Region}-${!E}",{"X":{"Ref":"F"}}]},"d":{"Fn::Join":["",[{"Ref":"G"}]]}}`))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, n := range got {
		set[n] = true
	}
	want := map[string]bool{"A": true, "B": true, "C": true, "D": true, "F": true, "AWS::Region": true, "G": true}
	if !reflect.DeepEqual(set, want) {
		t.Errorf("refs = %v, want %v", got, want)
	}
}
