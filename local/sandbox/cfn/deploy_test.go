package cfn

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recorder provisions any of its types by recording the resource: its Ref
// is "ref:<id>" and every attribute "<attr>:<id>".
type recorder struct {
	types []string
	mu    sync.Mutex
	got   []Resource
}

func (p *recorder) Types() []string { return p.types }

func (p *recorder) Create(_ context.Context, r Resource) (Provisioned, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r)
	return Provisioned{Ref: "ref:" + r.LogicalID, Attrs: map[string]string{"Arn": "arn:" + r.LogicalID, "QueueName": "q:" + r.LogicalID, "FunctionUrl": "url:" + r.LogicalID}}, nil
}

func (p *recorder) created(id string) (Resource, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.got {
		if r.LogicalID == id {
			return r, true
		}
	}
	return Resource{}, false
}

func golden(t *testing.T) *Template {
	t.Helper()
	// go test runs in the package's folder.
	tpl, err := ParseFile(filepath.Join("..", "..", "..", "infra", "testdata", "template.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func goldenTypes(t *testing.T) []string {
	tpl := golden(t)
	var types []string
	for _, r := range tpl.resources {
		if !slices.Contains(types, r.Type) {
			types = append(types, r.Type)
		}
	}
	return types
}

func TestDeployGoldenTemplate(t *testing.T) {
	t.Parallel()
	rec := &recorder{types: goldenTypes(t)}
	st, err := Deploy(context.Background(), golden(t), Options{Region: "us-east-1", Account: "111122223333", Provisioners: []Provisioner{rec}})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if len(st.Order) != len(golden(t).resources) || len(st.Skipped) != 0 {
		t.Errorf("created %d resources (%d skipped), want all %d", len(st.Order), len(st.Skipped), len(golden(t).resources))
	}
	if got := st.Outputs["StateMachineArn"]; got != "ref:RotatorStateMachine14D84FCB" {
		t.Errorf("output StateMachineArn = %q", got)
	}
	pos := func(id string) int { return slices.Index(st.Order, id) }
	// DependsOn, GetAtt and Ref order: the role and its policy before the
	// function, every function before the state machine.
	for _, c := range [][2]string{
		{"RotatorCreatekeyRoleA2550433", "RotatorCreatekey31BB003D"},
		{"RotatorCreatekeyRoleDefaultPolicy1184541D", "RotatorCreatekey31BB003D"},
		{"RotatorCreatekey31BB003D", "RotatorStateMachine14D84FCB"},
		{"RotatorAlertKey89F637B3", "RotatorAlerts71AB48F1"},
	} {
		if pos(c[0]) < 0 || pos(c[0]) > pos(c[1]) {
			t.Errorf("%s created after %s", c[0], c[1])
		}
	}
	sm, _ := rec.created("RotatorStateMachine14D84FCB")
	subs, _ := sm.Properties["DefinitionSubstitutions"].(map[string]any)
	if subs["CreateKeyFunctionArn"] != "arn:RotatorCreatekey31BB003D" || subs["AlertTopicArn"] != "ref:RotatorAlerts71AB48F1" {
		t.Errorf("substitutions not resolved: %v", subs)
	}
	pol, _ := rec.created("RotatorCreatekeyRoleDefaultPolicy1184541D")
	b, _ := json.Marshal(pol.Properties)
	if strings.Contains(string(b), "Fn::") || strings.Contains(string(b), `"Ref"`) || !strings.Contains(string(b), "arn:aws:iam::111122223333:user/app-aws-user") {
		t.Errorf("policy not resolved: %s", b)
	}
	if pol.Region != "us-east-1" || pol.StackName != "keyrotator" || pol.Partition != "aws" {
		t.Errorf("resource context = %+v", pol)
	}
}

func TestDeployRefusesWhatItCannotMake(t *testing.T) {
	t.Parallel()
	types := goldenTypes(t)
	mine := slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s == "AWS::KMS::Key" || s == "AWS::SQS::Queue" })
	_, err := Deploy(context.Background(), golden(t), Options{Region: "us-east-1", Account: "111122223333", Provisioners: []Provisioner{&recorder{types: mine}}})
	if err == nil || !strings.Contains(err.Error(), "no provisioner for AWS::KMS::Key, AWS::SQS::Queue") {
		t.Fatalf("deploy without KMS and SQS: %v, want a refusal naming both", err)
	}
	rec := &recorder{types: mine}
	st, err := Deploy(context.Background(), golden(t), Options{Region: "us-east-1", Account: "111122223333", Provisioners: []Provisioner{rec}, Skip: []string{"AWS::KMS::Key", "AWS::SQS::Queue"}})
	if err != nil {
		t.Fatalf("deploy skipping KMS and SQS: %v", err)
	}
	// In the order of the deploy (dependencies first), which follows the
	// template: compared as a set.
	if want, got := []string{"RotatorAlertKey89F637B3", "RotatorMacKeyAEB3E6A2", "RotatorScheduleDeadLetters2608AB3E"}, slices.Sorted(slices.Values(st.Skipped)); !slices.Equal(got, want) {
		t.Errorf("skipped %v, want %v", st.Skipped, want)
	}
	topic, _ := rec.created("RotatorAlerts71AB48F1")
	if k, _ := topic.Properties["KmsMasterKeyId"].(string); !strings.Contains(k, "skipped/keyrotator/RotatorAlertKey89F637B3/Arn") {
		t.Errorf("a skipped resource's attribute = %q", k)
	}
}

func TestDeployRules(t *testing.T) {
	t.Parallel()
	opts := func(ssm map[string]string) Options {
		return Options{Region: "us-east-1", Account: "111122223333", Provisioners: []Provisioner{&recorder{types: goldenTypes(t)}}, SSM: ssm}
	}
	if _, err := Deploy(context.Background(), golden(t), opts(map[string]string{BootstrapVersionParameter: "5"})); err == nil || !strings.Contains(err.Error(), "rule CheckBootstrapVersion failed: CDK bootstrap stack version 6 required") {
		t.Errorf("deploy on bootstrap version 5: %v, want the rule's failure", err)
	}
	if _, err := Deploy(context.Background(), golden(t), opts(map[string]string{})); err == nil || !strings.Contains(err.Error(), "unable to fetch parameters [/cdk-bootstrap/hnb659fds/version]") {
		t.Errorf("deploy without the SSM parameter: %v", err)
	}
	if _, err := Deploy(context.Background(), golden(t), opts(map[string]string{BootstrapVersionParameter: "6"})); err != nil {
		t.Errorf("deploy on bootstrap version 6: %v", err)
	}
}

func parse(t *testing.T, s string) *Template {
	t.Helper()
	tpl, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tpl
}

func TestDeployTemplates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		template string
		params   map[string]string
		wantErr  string
		created  []string // in order
		outputs  map[string]string
	}{
		{
			name: "order by ref, getatt, sub and DependsOn",
			template: `{"Resources":{
				"A":{"Type":"T::A","Properties":{"X":{"Fn::Sub":"${B.Arn}"}}},
				"B":{"Type":"T::A","Properties":{"X":{"Ref":"C"}}},
				"C":{"Type":"T::A","DependsOn":"D"},
				"D":{"Type":"T::A"}},
				"Outputs":{"O":{"Value":{"Fn::GetAtt":["A","Arn"]}}}}`,
			created: []string{"D", "C", "B", "A"},
			outputs: map[string]string{"O": "arn:A"},
		},
		{
			name: "cycle",
			template: `{"Resources":{
				"A":{"Type":"T::A","Properties":{"X":{"Ref":"B"}}},
				"B":{"Type":"T::A","Properties":{"X":{"Fn::GetAtt":["C","Arn"]}}},
				"C":{"Type":"T::A","DependsOn":["A"]},
				"D":{"Type":"T::A"}}}`,
			wantErr: "Circular dependency between resources: [A, B, C]",
		},
		{
			name:     "self reference",
			template: `{"Resources":{"A":{"Type":"T::A","Properties":{"X":{"Fn::Sub":"${A}"}}}}}`,
			wantErr:  "Circular dependency between resources: [A]",
		},
		{
			name:     "unknown ref",
			template: `{"Resources":{"A":{"Type":"T::A","Properties":{"X":{"Ref":"Nope"}}}}}`,
			wantErr:  "Unresolved resource dependencies [Nope] in the Resources block of the template (in A)",
		},
		{
			name:     "unknown DependsOn",
			template: `{"Resources":{"A":{"Type":"T::A","DependsOn":"Nope"}}}`,
			wantErr:  "Unresolved resource dependencies [Nope]",
		},
		{
			name:     "bad GetAtt attribute",
			template: `{"Resources":{"A":{"Type":"T::A"},"B":{"Type":"T::A","Properties":{"X":{"Fn::GetAtt":["A","Nope"]}}}}}`,
			wantErr:  "resource B (T::A): template error: resource A does not support attribute type Nope in Fn::GetAtt",
		},
		{
			name:     "unknown type",
			template: `{"Resources":{"A":{"Type":"AWS::EC2::Instance"}}}`,
			wantErr:  "no provisioner for AWS::EC2::Instance",
		},
		{
			name: "conditions, parameters and pseudo parameters",
			template: `{"Parameters":{"Env":{"Type":"String","Default":"dev","AllowedValues":["dev","prod"]},"L":{"Type":"CommaDelimitedList","Default":"x, y"}},
				"Conditions":{"Prod":{"Fn::Equals":[{"Ref":"Env"},"prod"]}},
				"Resources":{"A":{"Type":"T::A","Condition":"Prod"},"B":{"Type":"T::A","Properties":{"N":{"Fn::Sub":"${AWS::StackName}-${AWS::Region}-${AWS::URLSuffix}"}}}},
				"Outputs":{"OA":{"Condition":"Prod","Value":{"Ref":"A"}},"OB":{"Value":{"Fn::Join":["|",[{"Fn::GetAtt":["B","Arn"]},{"Fn::Select":[1,{"Ref":"L"}]}]]}},"OL":{"Value":{"Ref":"L"}}}}`,
			created: []string{"B"},
			outputs: map[string]string{"OB": "arn:B|y", "OL": "x,y"},
		},
		{
			name: "given parameter",
			template: `{"Parameters":{"Env":{"Type":"String","Default":"dev","AllowedValues":["dev","prod"]}},
				"Conditions":{"Prod":{"Fn::Equals":[{"Ref":"Env"},"prod"]}},
				"Resources":{"A":{"Type":"T::A","Condition":"Prod"}},"Outputs":{"OA":{"Condition":"Prod","Value":{"Ref":"A"}}}}`,
			params:  map[string]string{"Env": "prod"},
			created: []string{"A"},
			outputs: map[string]string{"OA": "ref:A"},
		},
		{
			name:     "parameter outside AllowedValues",
			template: `{"Parameters":{"Env":{"Type":"String","AllowedValues":["dev","prod"]}},"Resources":{"A":{"Type":"T::A"}}}`,
			params:   map[string]string{"Env": "test"},
			wantErr:  "must be one of AllowedValues",
		},
		{
			name:     "parameter without a value",
			template: `{"Parameters":{"Env":{"Type":"String"}},"Resources":{"A":{"Type":"T::A"}}}`,
			wantErr:  "parameters: [Env] must have values",
		},
		{
			name:     "parameter the template lacks",
			template: `{"Resources":{"A":{"Type":"T::A"}}}`,
			params:   map[string]string{"Nope": "x"},
			wantErr:  "[Nope] do not exist in the template",
		},
		{
			name:     "depends on an excluded resource",
			template: `{"Conditions":{"No":{"Fn::Equals":["a","b"]}},"Resources":{"A":{"Type":"T::A","Condition":"No"},"B":{"Type":"T::A","DependsOn":"A"}}}`,
			wantErr:  "resource B depends on A, whose condition is false",
		},
		{
			name:     "a property of the wrong type",
			template: `{"Resources":{"F":{"Type":"AWS::Lambda::Function","Properties":{"Role":"r","Timeout":{"Fn::Join":["",["6","0"]]},"Code":{}}}}}`,
			wantErr:  "resource F (AWS::Lambda::Function): properties do not fit the resource type",
		},
		{
			name:     "a failed rule",
			template: `{"Parameters":{"V":{"Type":"String","Default":"3"}},"Rules":{"R":{"Assertions":[{"Assert":{"Fn::Not":[{"Fn::Contains":[["1","3"],{"Ref":"V"}]}]},"AssertDescription":"V must not be 1 or 3"}]}},"Resources":{"A":{"Type":"T::A"}}}`,
			wantErr:  "rule R failed: V must not be 1 or 3",
		},
		{
			name:     "a rule whose condition is false",
			template: `{"Parameters":{"V":{"Type":"String","Default":"3"}},"Rules":{"R":{"RuleCondition":{"Fn::Equals":[{"Ref":"AWS::Region"},"xx-1"]},"Assertions":[{"Assert":{"Fn::Equals":["a","b"]}}]}},"Resources":{"A":{"Type":"T::A"}}}`,
			created:  []string{"A"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{types: []string{"T::A", "AWS::Lambda::Function"}}
			st, err := Deploy(context.Background(), parse(t, c.template), Options{Region: "eu-west-1", Account: "123456789012", StackName: "st", Parameters: c.params, Provisioners: []Provisioner{rec}})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("deploy: %v, want an error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("deploy: %v", err)
			}
			if !slices.Equal(st.Order, c.created) {
				t.Errorf("created %v, want %v", st.Order, c.created)
			}
			for k, v := range c.outputs {
				if st.Outputs[k] != v {
					t.Errorf("output %s = %q, want %q", k, st.Outputs[k], v)
				}
			}
			if len(st.Outputs) != len(c.outputs) {
				t.Errorf("outputs %v, want %v", st.Outputs, c.outputs)
			}
			if b, ok := rec.created("B"); ok && c.name == "conditions, parameters and pseudo parameters" {
				if n := b.Properties["N"]; n != "st-eu-west-1-amazonaws.com" {
					t.Errorf("pseudo parameters: %v", n)
				}
			}
		})
	}
}

func TestParseRefusesBadTemplates(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`{`, `{"Resources":{}}`, `{"Resources":{"A":{"Properties":{}}}}`} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%s) = nil error", s)
		}
	}
	if _, err := os.Stat("/nonexistent"); err == nil {
		t.Skip()
	}
	if _, err := ParseFile("/nonexistent/template.json"); err == nil {
		t.Error("ParseFile of a missing file = nil error")
	}
}

func TestRedeployIsAnUpdate(t *testing.T) {
	t.Parallel()
	tpl := parse(t, `{"Resources":{"A":{"Type":"T::A"},"B":{"Type":"T::A","Properties":{"X":{"Ref":"A"}}}}}`)
	rec := &recorder{types: []string{"T::A"}}
	opts := Options{Region: "eu-west-1", Account: "123456789012", Provisioners: []Provisioner{rec}}
	first, err := Deploy(context.Background(), tpl, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.got {
		if r.Previous != nil {
			t.Errorf("a first deploy handed %s a previous resource", r.LogicalID)
		}
	}
	rec.got = nil
	opts.Previous = first
	second, err := Deploy(context.Background(), tpl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Errorf("stack id %s, then %s", first.ID, second.ID)
	}
	for _, r := range rec.got {
		if r.Previous == nil || r.Previous.Ref != "ref:"+r.LogicalID {
			t.Errorf("an update handed %s previous %+v", r.LogicalID, r.Previous)
		}
	}
	if len(rec.got) != 2 {
		t.Errorf("the update made %d resources, want 2", len(rec.got))
	}
}
