package lambda_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	sblambda "github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

const functionTemplate = `{"Resources":{
 "Logs":{"Type":"AWS::Logs::LogGroup","Properties":{"RetentionInDays":90}},
 "Role":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}}},
 "Fn":{"Type":"AWS::Lambda::Function","Metadata":{"keyrotator:task":"echo"},"Properties":{
  "Code":{"S3Bucket":"cdk-assets","S3Key":"<asset-hash>"},"Handler":"bootstrap","Runtime":"provided.al2023",
  "Role":{"Fn::GetAtt":["Role","Arn"]},"Timeout":2,"MemorySize":256,"ReservedConcurrentExecutions":3,
  "Environment":{"Variables":{"GREETING":"from the template","TOPIC":{"Fn::Sub":"arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:t"}}},
  "LoggingConfig":{"LogFormat":"JSON","LogGroup":{"Ref":"Logs"}}}}},
 "Outputs":{"Arn":{"Value":{"Fn::GetAtt":["Fn","Arn"]}},"LogArn":{"Value":{"Fn::GetAtt":["Logs","Arn"]}}}}`

func dist(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "echo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(echoPath, filepath.Join(d, "echo", "bootstrap")); err != nil {
		t.Fatal(err)
	}
	return d
}

func deployFunction(t *testing.T, sb *sandboxtest.Sandbox, tpl string) (*cfn.Stack, error) {
	t.Helper()
	parsed, err := cfn.Parse([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	return cfn.Deploy(context.Background(), parsed, cfn.Options{StackName: "stk", Region: sb.Server.Region(), Account: sb.Server.Account(),
		Provisioners: []cfn.Provisioner{sb.IAM, sb.Lambda}})
}

func TestProvisionFunction(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	sb.Lambda.SetDeploySettings(sblambda.DeploySettings{Dist: dist(t), NameByTask: true, MaxConcurrency: 7, Env: map[string]string{"SANDBOX_KNOB": "3s"}})
	st, err := deployFunction(t, sb, functionTemplate)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if st.Resources["Fn"].Ref != "echo" || st.Outputs["Arn"] != "arn:aws:lambda:us-east-1:111122223333:function:echo" {
		t.Errorf("function %q, ARN %q", st.Resources["Fn"].Ref, st.Outputs["Arn"])
	}
	group := st.Resources["Logs"].Ref
	if !strings.HasPrefix(group, "stk-Logs-") || st.Outputs["LogArn"] != "arn:aws:logs:us-east-1:111122223333:log-group:"+group+":*" {
		t.Errorf("log group %q, ARN %q", group, st.Outputs["LogArn"])
	}
	if g, ok := sb.Lambda.LogGroups()[group]; !ok || g.RetentionDays != 90 {
		t.Errorf("log group recorded: %+v %v", g, ok)
	}
	var view sblambda.FunctionView
	for _, f := range sb.Lambda.Functions() {
		if f.Name == "echo" {
			view = f
		}
	}
	roleARN, _ := sb.IAM.RoleARN(st.Resources["Role"].Ref)
	if view.Role != roleARN || view.Timeout != 2 || view.MemoryMB != 256 || view.MaxConcurrency != 3 {
		t.Errorf("function as registered: %+v, want role %s, 2 s, 256 MB, 3 instances", view, roleARN)
	}

	if view.Env["TOPIC"] != "arn:aws:sns:us-east-1:111122223333:t" || view.Env["SANDBOX_KNOB"] != "3s" || view.Env["GREETING"] != "from the template" {
		t.Errorf("environment %v", view.Env)
	}
	r := echo(t, lambda.NewFromConfig(sb.Config(t)), map[string]any{"action": "whoami"})
	for k, want := range map[string]string{"GREETING": "from the template", "AWS_LAMBDA_LOG_GROUP_NAME": group, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"} {
		if r.Vars[k] != want {
			t.Errorf("%s = %q, want %q", k, r.Vars[k], want)
		}
	}
	if want := ":assumed-role/" + st.Resources["Role"].Ref + "/echo"; !strings.HasSuffix(r.Caller, want) {
		t.Errorf("the function runs as %q, want the execution role's session (…%s)", r.Caller, want)
	}
}

func TestProvisionFunctionRefusals(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	if _, err := deployFunction(t, sb, functionTemplate); err == nil || !strings.Contains(err.Error(), "no folder of built functions") {
		t.Errorf("deploy without a dist: %v", err)
	}
	sb.Lambda.SetDeploySettings(sblambda.DeploySettings{Dist: t.TempDir()})
	if _, err := deployFunction(t, sb, functionTemplate); err == nil || !strings.Contains(err.Error(), "function code of task echo") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("deploy without the task's build: %v", err)
	}
	sb.Lambda.SetDeploySettings(sblambda.DeploySettings{Dist: dist(t)})
	noTask := strings.Replace(functionTemplate, `"Metadata":{"keyrotator:task":"echo"},`, "", 1)
	if _, err := deployFunction(t, sb, strings.ReplaceAll(noTask, `"Logs"`, `"Logs2"`)); err == nil || !strings.Contains(err.Error(), "keyrotator:task") {
		t.Errorf("deploy without the task metadata: %v", err)
	}
	// Without NameByTask the name is CloudFormation's generated one.
	st, err := deployFunction(t, sb, strings.ReplaceAll(functionTemplate, `"Logs"`, `"Logs3"`))
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if name := st.Resources["Fn"].Ref; !strings.HasPrefix(name, "stk-Fn-") {
		t.Errorf("generated function name %q", name)
	}
}
