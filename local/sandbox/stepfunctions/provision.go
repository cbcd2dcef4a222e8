package stepfunctions

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

const typeStateMachine = "AWS::StepFunctions::StateMachine"

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{typeStateMachine} }

// Create implements cfn.Provisioner: CreateStateMachine from
// DefinitionString (or Definition) with DefinitionSubstitutions filled in,
// RoleArn and StateMachineName (CloudFormation's generated name if none);
// LoggingConfiguration and TracingConfiguration are recorded. Ref is the
// ARN; Fn::GetAtt gives Arn and Name.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html
func (s *Service) Create(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	if r.Type != typeStateMachine {
		return cfn.Provisioned{}, fmt.Errorf("stepfunctions: no provisioner for %s", r.Type)
	}
	name, err := r.Str("StateMachineName")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		name = cfn.PhysicalName(r, 80)
		if r.Previous != nil {
			name = r.Previous.Attrs["Name"]
		}
	}
	role, err := r.RequiredStr("RoleArn")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if typ, err := r.Str("StateMachineType"); err != nil {
		return cfn.Provisioned{}, err
	} else if typ != "" && typ != "STANDARD" {
		return cfn.Provisioned{}, fmt.Errorf("property StateMachineType: the sandbox runs STANDARD state machines only, not %s", typ)
	}
	if _, ok := r.Properties["DefinitionS3Location"]; ok {
		return cfn.Provisioned{}, fmt.Errorf("property DefinitionS3Location: the sandbox has no S3; give DefinitionString or Definition")
	}
	def, err := r.Str("DefinitionString")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if def == "" {
		doc, err := r.Document("Definition")
		if err != nil {
			return cfn.Provisioned{}, err
		}
		if doc == nil {
			return cfn.Provisioned{}, fmt.Errorf("property DefinitionString: required (or Definition)")
		}
		def = string(doc)
	}
	raw, err := r.Object("DefinitionSubstitutions")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	subs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		switch v := raw[k].(type) {
		case string:
			subs[k] = v
		case float64, bool:
			subs[k] = fmt.Sprint(v)
		default:
			return cfn.Provisioned{}, fmt.Errorf("property DefinitionSubstitutions.%s: expected a string, number or boolean, got %T", k, v)
		}
	}
	def, err = Substitute(def, subs)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("property DefinitionSubstitutions: %w", err)
	}
	var logging, tracing json.RawMessage
	for prop, dst := range map[string]*json.RawMessage{"LoggingConfiguration": &logging, "TracingConfiguration": &tracing} {
		if doc, err := r.Document(prop); err != nil {
			return cfn.Provisioned{}, err
		} else if doc != nil {
			*dst = doc
		}
	}
	// A stack update replaces the definition in place (UpdateStateMachine).
	sm, err := s.create(ctx, name, def, role, r.Previous != nil)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	s.mu.Lock()
	sm.Logging, sm.Tracing = logging, tracing
	s.mu.Unlock()
	s.srv.MarkDirty()
	return cfn.Provisioned{Ref: sm.ARN, Attrs: map[string]string{"Arn": sm.ARN, "Name": sm.Name}}, nil
}

var _ cfn.Provisioner = (*Service)(nil)
