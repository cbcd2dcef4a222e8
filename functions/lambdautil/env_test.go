package lambdautil

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// resolved is what a client built from a config ends up with: the fields a
// Lambda depends on.
type resolved struct {
	Region    string
	Creds     string // "id/secret/token", or "none"
	Endpoints map[string]string
}

func resolve(ctx context.Context, cfg aws.Config) resolved {
	r := resolved{Region: cfg.Region, Creds: "none", Endpoints: map[string]string{}}
	if cfg.Credentials != nil {
		if c, err := cfg.Credentials.Retrieve(ctx); err == nil {
			r.Creds = c.AccessKeyID + "/" + c.SecretAccessKey + "/" + c.SessionToken
		}
	}
	// Each client's BaseEndpoint after its own resolution (the SDK reads
	// AWS_ENDPOINT_URL_<SERVICE> here, through cfg.ConfigSources).
	for name, ep := range map[string]*string{
		"iam":            iam.NewFromConfig(cfg).Options().BaseEndpoint,
		"secretsmanager": secretsmanager.NewFromConfig(cfg).Options().BaseEndpoint,
		"sfn":            sfn.NewFromConfig(cfg).Options().BaseEndpoint,
		"sns":            sns.NewFromConfig(cfg).Options().BaseEndpoint,
		"sts":            sts.NewFromConfig(cfg).Options().BaseEndpoint,
		"cloudtrail":     cloudtrail.NewFromConfig(cfg).Options().BaseEndpoint,
	} {
		r.Endpoints[name] = aws.ToString(ep)
	}
	return r
}

// TestEnvResolvesAsLoadDefaultConfig holds Env to the SDK's own
// config.LoadDefaultConfig: for each environment, a child process (the
// SDK reads the process environment) builds both and the clients of every
// service keyrotator calls must resolve the same region, credentials and
// endpoint.
func TestEnvResolvesAsLoadDefaultConfig(t *testing.T) {
	t.Parallel()
	const sandbox = "http://127.0.0.1:4566"
	cases := map[string][]string{
		"the sandbox's Lambda": {"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=s3cr3t", "AWS_SESSION_TOKEN=tok", "AWS_ENDPOINT_URL=" + sandbox},
		"AWS's Lambda":         {"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=s3cr3t", "AWS_SESSION_TOKEN=tok"},
		"one service's endpoint over the global one": {"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=B",
			"AWS_ENDPOINT_URL=" + sandbox, "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:9999", "AWS_ENDPOINT_URL_SFN=http://127.0.0.1:9998"},
		"a service's endpoint only":         {"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=B", "AWS_ENDPOINT_URL_IAM=http://127.0.0.1:9997"},
		"configured endpoints ignored":      {"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=B", "AWS_ENDPOINT_URL=" + sandbox, "AWS_ENDPOINT_URL_IAM=http://127.0.0.1:9997", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true"},
		"AWS_DEFAULT_REGION only, no token": {"AWS_DEFAULT_REGION=ap-northeast-1", "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=B"},
		"no credentials":                    {"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + sandbox},
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir() // no shared config or credentials file
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestEnvChild$")
			cmd.Env = append([]string{"LAMBDAUTIL_ENV_CHILD=1", "HOME=" + home, "PATH=" + os.Getenv("PATH"),
				"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
				"AWS_EC2_METADATA_DISABLED=true"}, env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var got struct{ Ours, SDK resolved }
			line := out[:max(0, strings.IndexByte(string(out), '\n'))]
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("child's answer %q: %v", out, err)
			}
			a, _ := json.Marshal(got.Ours)
			b, _ := json.Marshal(got.SDK)
			if string(a) != string(b) {
				t.Errorf("Env resolves\n%s\nLoadDefaultConfig\n%s", a, b)
			}
			if got.Ours.Region == "" {
				t.Error("no region resolved")
			}
		})
	}
}

// TestEnvChild is the child of TestEnvResolvesAsLoadDefaultConfig: it
// prints both resolutions as one JSON line.
func TestEnvChild(t *testing.T) {
	if os.Getenv("LAMBDAUTIL_ENV_CHILD") != "1" {
		t.Skip("run by TestEnvResolvesAsLoadDefaultConfig")
	}
	ctx := t.Context()
	sdk, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ Ours, SDK resolved }{resolve(ctx, AWSConfig()), resolve(ctx, sdk)})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.Write(append(b, '\n'))
	os.Exit(0) // the line alone: no test framework output after it
}
