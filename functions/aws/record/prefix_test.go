package record_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyrotator/keyrotator/functions/aws/record"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// Two stacks' stores in one account and region keep apart: each record and
// each lock is under its own prefix.
func TestStoresUnderTwoPrefixes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	sm := secretsmanager.NewFromConfig(sb.Config(t))
	def, kr2 := record.New(sm), record.NewIn(sm, rotation.Names{Prefix: "kr2"})
	if def.Name("app") != "keyrotator/users/app" || kr2.Name("app") != "kr2/users/app" {
		t.Fatalf("names %q %q", def.Name("app"), kr2.Name("app"))
	}
	const execA, execB = "arn:aws:states:us-east-1:111122223333:execution:keyrotator:a", "arn:aws:states:us-east-1:111122223333:execution:kr2:b"
	for _, c := range []struct {
		s    *record.Store
		exec string
	}{{def, execA}, {kr2, execB}} {
		if _, err := c.s.Ensure(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		// Each takes its own lock: the other stack's does not hold it.
		if _, err := c.s.Claim(ctx, "app", c.exec, "AKIAOLD", ""); err != nil {
			t.Fatalf("%s: Claim: %v", c.s.Name("app"), err)
		}
	}
	for _, name := range []string{"keyrotator/users/app", "kr2/users/app"} {
		if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if v, ok, err := kr2.Staged(ctx, "app", record.Pending); err != nil || !ok || v.Execution != execB {
		t.Errorf("kr2's lock: %+v %v %v, want held by %s", v, ok, err, execB)
	}
}
