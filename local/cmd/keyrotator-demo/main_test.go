package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/targets/secret"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// TestDemoConnectionsTaggedAsTheStackDoes: the demo's connection secrets
// carry keyrotator:kind=connection, as infra tags every connection, so a
// `secret` target naming one is refused in the demo as in AWS.
func TestDemoConnectionsTaggedAsTheStackDoes(t *testing.T) {
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	cfg := sb.Config(t)
	old, err := seed(ctx, sb.Sandbox, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seedAuth0(ctx, sb.Sandbox, cfg, old); err != nil {
		t.Fatal(err)
	}
	if _, err := seedSoracom(ctx, sb.Sandbox, cfg, old); err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	for _, name := range []string{"keyrotator/connections/" + demoTenant, "keyrotator/connections/" + demoFunnel} {
		d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		kind := ""
		for _, tg := range d.Tags {
			if aws.ToString(tg.Key) == secret.Own {
				kind = aws.ToString(tg.Value)
			}
		}
		if kind != "connection" {
			t.Errorf("%s: tag %s = %q, want connection (tags %v)", name, secret.Own, kind, d.Tags)
		}
	}
}
