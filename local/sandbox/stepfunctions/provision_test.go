package stepfunctions_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// The definition as CDK emits it: a DefinitionString Fn::Join of text and
// ARNs, with ${Name} placeholders left for DefinitionSubstitutions.
const machineTemplate = `{"Resources":{
 "Machine":{"Type":"AWS::StepFunctions::StateMachine","Properties":{
  "StateMachineName":"rot",
  "RoleArn":{"Fn::Sub":"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/states"},
  "DefinitionString":{"Fn::Join":["",["{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Result\":{\"topic\":\"${Topic}\",\"region\":\"",{"Ref":"AWS::Region"},"\"},\"End\":true}}}"]]},
  "DefinitionSubstitutions":{"Topic":{"Fn::Sub":"arn:aws:sns:${AWS::Region}:${AWS::AccountId}:alerts"}},
  "LoggingConfiguration":{"Level":"ALL","IncludeExecutionData":false},
  "TracingConfiguration":{"Enabled":true}}}},
 "Outputs":{"Arn":{"Value":{"Ref":"Machine"}},"Name":{"Value":{"Fn::GetAtt":["Machine","Name"]}}}}`

func TestProvisionStateMachine(t *testing.T) {
	t.Parallel()
	sb, c, sf := start(t)
	deploy := func(tpl string) (*cfn.Stack, error) {
		parsed, err := cfn.Parse([]byte(tpl))
		if err != nil {
			t.Fatal(err)
		}
		return cfn.Deploy(context.Background(), parsed, cfn.Options{Region: sb.Server.Region(), Account: sb.Server.Account(), Provisioners: []cfn.Provisioner{sf}})
	}
	st, err := deploy(machineTemplate)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	arn := st.Outputs["Arn"]
	if arn != "arn:aws:states:us-east-1:111122223333:stateMachine:rot" || st.Outputs["Name"] != "rot" {
		t.Errorf("outputs %v", st.Outputs)
	}
	d, err := c.DescribeStateMachine(context.Background(), &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if def := aws.ToString(d.Definition); !strings.Contains(def, `"topic":"arn:aws:sns:us-east-1:111122223333:alerts","region":"us-east-1"`) {
		t.Errorf("definition %s", def)
	}
	if aws.ToString(d.RoleArn) != "arn:aws:iam::111122223333:role/states" {
		t.Errorf("role %s", aws.ToString(d.RoleArn))
	}
	raw, err := sf.Snapshot()
	if err != nil || !strings.Contains(string(raw), `"logging":{"IncludeExecutionData":false,"Level":"ALL"}`) || !strings.Contains(string(raw), `"tracing":{"Enabled":true}`) {
		t.Errorf("logging and tracing not recorded: %v", err)
	}

	for _, bad := range []struct{ from, to, want string }{
		{`"Topic":{"Fn::Sub"`, `"Other":{"Fn::Sub"`, "no value for ${Topic}"},
		{`"StateMachineName":"rot",`, `"StateMachineName":"rot","StateMachineType":"EXPRESS",`, "STANDARD state machines only"},
		{`"StateMachineName":"rot",`, `"StateMachineName":"rot2","DefinitionS3Location":{"Bucket":"b","Key":"k"},`, "no S3"},
	} {
		if _, err := deploy(strings.Replace(machineTemplate, bad.from, bad.to, 1)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("deploy with %s: %v, want %q", bad.to, err, bad.want)
		}
	}
}
