package secretsmanager_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

const secretsTemplate = `{"Resources":{
 "Conn":{"Type":"AWS::SecretsManager::Secret","Properties":{"Name":"keyrotator/connections/auth0-prod","Description":"fill in after deploy",
  "GenerateSecretString":{},"KmsKeyId":"alias/custom","Tags":[{"Key":"keyrotator:kind","Value":"connection"}]}},
 "Templated":{"Type":"AWS::SecretsManager::Secret","Properties":{"GenerateSecretString":{"SecretStringTemplate":"{\"user\":\"app\"}","GenerateStringKey":"password","PasswordLength":20,"ExcludePunctuation":true,"ExcludeCharacters":"0O"}}},
 "Given":{"Type":"AWS::SecretsManager::Secret","Properties":{"SecretString":{"Fn::Sub":"{\"region\":\"${AWS::Region}\"}"}}},
 "Empty":{"Type":"AWS::SecretsManager::Secret","Properties":{}}},
 "Outputs":{"Conn":{"Value":{"Ref":"Conn"}},"Templated":{"Value":{"Ref":"Templated"}},"Given":{"Value":{"Fn::GetAtt":["Given","Id"]}},"Empty":{"Value":{"Ref":"Empty"}}}}`

func TestProvisionSecrets(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	svc, _ := sb.Server.Service("secretsmanager")
	p := svc.(cfn.Provisioner)
	deploy := func(tpl string) (*cfn.Stack, error) {
		parsed, err := cfn.Parse([]byte(tpl))
		if err != nil {
			t.Fatal(err)
		}
		return cfn.Deploy(context.Background(), parsed, cfn.Options{StackName: "stk", Region: sb.Server.Region(), Account: sb.Server.Account(), Provisioners: []cfn.Provisioner{p}, Caller: sb.Admin.Principal})
	}
	st, err := deploy(secretsTemplate)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	ctx := context.Background()
	c := secretsmanager.NewFromConfig(sb.Config(t))
	value := func(id string) string {
		t.Helper()
		v, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue %s: %v", id, err)
		}
		return aws.ToString(v.SecretString)
	}
	conn := st.Outputs["Conn"]
	if !strings.HasPrefix(conn, "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyrotator/connections/auth0-prod-") {
		t.Errorf("Ref %q", conn)
	}
	pw := value(conn)
	var lower, upper, digit, punct bool
	for _, r := range pw {
		lower = lower || unicode.IsLower(r)
		upper = upper || unicode.IsUpper(r)
		digit = digit || unicode.IsDigit(r)
		punct = punct || strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)
	}
	if len(pw) != 32 || !lower || !upper || !digit || !punct {
		t.Errorf("a generated value of %d characters (lower %v, upper %v, digit %v, punctuation %v), want 32 of every kind", len(pw), lower, upper, digit, punct)
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(conn)})
	if err != nil || aws.ToString(d.Description) != "fill in after deploy" || aws.ToString(d.KmsKeyId) != "alias/custom" || len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "keyrotator:kind" {
		t.Errorf("DescribeSecret: %v %+v", err, d)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(value(st.Outputs["Templated"])), &doc); err != nil || doc["user"] != "app" || len(doc["password"]) != 20 || strings.ContainsAny(doc["password"], "0O!#$%") {
		t.Errorf("templated value: %v (a password of %d)", err, len(doc["password"]))
	}
	if !strings.Contains(st.Outputs["Templated"], ":secret:stk-Templated-") {
		t.Errorf("generated name: %s", st.Outputs["Templated"])
	}
	if v := value(st.Outputs["Given"]); v != `{"region":"us-east-1"}` {
		t.Errorf("SecretString = %s", v)
	}
	if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(st.Outputs["Empty"])}); err == nil {
		t.Error("a secret made without a value has one")
	}
	if _, err := deploy(`{"Resources":{"B":{"Type":"AWS::SecretsManager::Secret","Properties":{"SecretString":"x","GenerateSecretString":{}}}}}`); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both values: %v", err)
	}
	if _, err := deploy(`{"Resources":{"B":{"Type":"AWS::SecretsManager::Secret","Properties":{"Name":"keyrotator/connections/auth0-prod"}}}}`); err == nil || !strings.Contains(err.Error(), "ResourceExists") && !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a name taken: %v", err)
	}
}
