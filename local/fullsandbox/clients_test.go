package fullsandbox_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// The sandbox must be accepted by clients we did not write: the AWS CLI and
// boto3 (both on the machine image) sign and parse on their own.

func TestAWSCLI(t *testing.T) {
	t.Parallel()
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed here: skipping the second-client check for it")
	}
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), aws, append(args, "--output", "json")...)
		cmd.Env = sb.Env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var v map[string]any
		if len(strings.TrimSpace(string(out))) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws %s: not JSON: %s", strings.Join(args, " "), out)
			}
		}
		return v
	}
	id := run("sts", "get-caller-identity")
	if id["Arn"] != "arn:aws:iam::111122223333:user/"+sb.Admin.Principal.UserName {
		t.Fatalf("get-caller-identity: %v", id)
	}
	run("iam", "create-user", "--user-name", "cli-user")
	key := run("iam", "create-access-key", "--user-name", "cli-user")["AccessKey"].(map[string]any)
	keys := run("iam", "list-access-keys", "--user-name", "cli-user")["AccessKeyMetadata"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["AccessKeyId"] != key["AccessKeyId"] {
		t.Fatalf("list-access-keys: %v", keys)
	}
	run("iam", "update-access-key", "--user-name", "cli-user", "--access-key-id", key["AccessKeyId"].(string), "--status", "Inactive")
	run("secretsmanager", "create-secret", "--name", "cli/app", "--secret-string", "cli-secret-value")
	got := run("secretsmanager", "get-secret-value", "--secret-id", "cli/app")
	if got["SecretString"] != "cli-secret-value" || !contains(got["VersionStages"], "AWSCURRENT") {
		t.Fatalf("get-secret-value: %v", got)
	}
	// An error from the sandbox reaches the CLI as AWS's code.
	cmd := exec.CommandContext(t.Context(), aws, "iam", "list-access-keys", "--user-name", "nobody")
	cmd.Env = sb.Env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NoSuchEntity") {
		t.Fatalf("list-access-keys for a missing user: err=%v out=%s", err, out)
	}
}

func TestBoto3(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed here: skipping the boto3 check")
	}
	if err := exec.CommandContext(t.Context(), py, "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 is not installed here: skipping the boto3 check")
	}
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // boto3 reads last-used at once: not about the lag
	script := `
import json, boto3, botocore
iam, sm, sts = boto3.client("iam"), boto3.client("secretsmanager"), boto3.client("sts")
out = {"arn": sts.get_caller_identity()["Arn"]}
iam.create_user(UserName="py-user")
k = iam.create_access_key(UserName="py-user")["AccessKey"]
iam.create_access_key(UserName="py-user")
try:
    iam.create_access_key(UserName="py-user")
except botocore.exceptions.ClientError as e:
    out["third"] = e.response["Error"]["Code"]
used = boto3.client("sts", aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"]).get_caller_identity()
out["used_arn"] = used["Arn"]
out["last_used"] = iam.get_access_key_last_used(AccessKeyId=k["AccessKeyId"])["AccessKeyLastUsed"]["ServiceName"]
sm.create_secret(Name="py/app", SecretString="v1")
v2 = sm.put_secret_value(SecretId="py/app", SecretString="v2", VersionStages=["AWSPENDING"])
cur = sm.describe_secret(SecretId="py/app")["VersionIdsToStages"]
out["pending"] = cur[v2["VersionId"]]
out["current"] = sm.get_secret_value(SecretId="py/app")["SecretString"] == "v1"
print(json.dumps(out))
`
	cmd := exec.CommandContext(t.Context(), py, "-c", script)
	cmd.Env = sb.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 output: %s", out)
	}
	want := map[string]any{
		"arn": "arn:aws:iam::111122223333:user/" + sb.Admin.Principal.UserName, "third": "LimitExceeded",
		"used_arn": "arn:aws:iam::111122223333:user/py-user", "last_used": "sts",
		"pending": []any{"AWSPENDING"}, "current": true,
	}
	for k, v := range want {
		if b1, _ := json.Marshal(got[k]); string(b1) != mustJSON(v) {
			t.Errorf("%s: got %s, want %s", k, b1, mustJSON(v))
		}
	}
}

func contains(list any, s string) bool {
	l, _ := list.([]any)
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
