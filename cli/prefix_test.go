package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

type machinesFake []string

func (m machinesFake) ListStateMachines(context.Context, *sfn.ListStateMachinesInput, ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error) {
	out := &sfn.ListStateMachinesOutput{}
	for _, n := range m {
		out.StateMachines = append(out.StateMachines, sfntypes.StateMachineListItem{Name: aws.String(n), StateMachineArn: aws.String("arn:aws:states:us-east-1:111122223333:stateMachine:" + n)})
	}
	return out, nil
}

// recordsFake answers ListSecrets with every secret whose name starts with
// the filter (Secrets Manager's name filter is a prefix match).
type recordsFake struct{ names []string }

func (r recordsFake) ListSecrets(_ context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	out := &secretsmanager.ListSecretsOutput{}
	for _, n := range r.names {
		if strings.HasPrefix(n, in.Filters[0].Values[0]) {
			out.SecretList = append(out.SecretList, smtypes.SecretListEntry{Name: aws.String(n), ARN: aws.String("arn:" + n)})
		}
	}
	return out, nil
}

func (recordsFake) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{}, nil
}

// Two stacks in one account and region: the prefix picks the state machine
// and the records of one.
func TestPrefixPicksTheStack(t *testing.T) {
	t.Parallel()
	machines := machinesFake{"keyrotator", "kr2"}
	records := recordsFake{names: []string{"keyrotator/users/app", "kr2/users/iot", "kr2/users/app"}}
	for _, tc := range []struct {
		prefix, machine string
		users           []string
	}{
		{"", "keyrotator", []string{"app"}},
		{"kr2", "kr2", []string{"app", "iot"}},
	} {
		names := rotation.Names{Prefix: tc.prefix}
		arn, err := resolveMachine(context.Background(), machines, "", "", names)
		if err != nil || !strings.HasSuffix(arn, ":stateMachine:"+tc.machine) {
			t.Errorf("prefix %q: state machine %q, %v; want %s", tc.prefix, arn, err, tc.machine)
		}
		got, err := statusReader{secrets: records, names: names}.records(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.users) {
			t.Errorf("prefix %q: records %v, want users %v", tc.prefix, got, tc.users)
		}
		for _, u := range tc.users {
			if got[u] == nil || got[u].Name != names.Record(u) {
				t.Errorf("prefix %q: user %s's record %v, want %s", tc.prefix, u, got[u], names.Record(u))
			}
		}
	}
}

// --prefix, then $KEYROTATOR_PREFIX; a prefix no stack could have is a
// usage error before any call.
func TestPrefixFlagAndEnvironment(t *testing.T) {
	t.Parallel()
	a := &app{getenv: func(k string) string {
		if k == PrefixEnv {
			return "from-env"
		}
		return ""
	}}
	if got := a.names().StateMachine(); got != "from-env" {
		t.Errorf("environment: %q", got)
	}
	a.prefix = "from-flag"
	if got := a.names().StateMachine(); got != "from-flag" {
		t.Errorf("flag: %q", got)
	}
	var out, errOut bytes.Buffer
	if code := RunEnv(context.Background(), []string{"status", "--prefix", "no/slash"}, &out, &errOut, offline); code != ExitUsage || !strings.Contains(errOut.String(), "--prefix") {
		t.Errorf("--prefix no/slash: exit %d, want %d naming --prefix (%s)", code, ExitUsage, errOut.String())
	}
}
