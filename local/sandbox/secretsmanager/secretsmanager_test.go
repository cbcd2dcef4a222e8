package secretsmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

func newClient(t *testing.T) (*sandboxtest.Sandbox, *sm.Client) {
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	return sb, sm.NewFromConfig(sb.Config(t), func(o *sm.Options) { o.RetryMaxAttempts = 1 })
}

// stages returns the version holding each stage, from DescribeSecret.
func stages(t *testing.T, c *sm.Client, id string) map[string]string {
	t.Helper()
	d, err := c.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	out := map[string]string{}
	for v, ss := range d.VersionIdsToStages {
		for _, s := range ss {
			out[s] = v
		}
	}
	return out
}

func value(t *testing.T, c *sm.Client, in *sm.GetSecretValueInput) string {
	t.Helper()
	out, err := c.GetSecretValue(context.Background(), in)
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	return aws.ToString(out.SecretString)
}

func TestCreateDescribeGet(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	created, err := c.CreateSecret(ctx, &sm.CreateSecretInput{
		Name: aws.String("app/creds"), SecretString: aws.String(`{"k":"v1"}`), Description: aws.String("app"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}},
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	arn := aws.ToString(created.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/creds-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:111122223333:secret:app/creds-")+6 {
		t.Fatalf("ARN %q", arn)
	}
	if created.VersionId == nil {
		t.Fatal("CreateSecret with a value returned no VersionId")
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("app/creds")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if !slices.Equal(d.VersionIdsToStages[aws.ToString(created.VersionId)], []string{"AWSCURRENT"}) || aws.ToString(d.Description) != "app" || len(d.Tags) != 1 {
		t.Fatalf("DescribeSecret: %+v", d)
	}
	if d.CreatedDate == nil || time.Since(*d.CreatedDate) > time.Minute || d.LastChangedDate == nil {
		t.Fatalf("dates: %v %v", d.CreatedDate, d.LastChangedDate)
	}
	for _, id := range []string{"app/creds", arn, arn[:len(arn)-7]} {
		if got := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String(id)}); got != `{"k":"v1"}` {
			t.Fatalf("GetSecretValue(%s) = %q", id, got)
		}
	}
	// Binary secrets and secrets without a value.
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte{0, 1, 2}}); err != nil {
		t.Fatalf("CreateSecret binary: %v", err)
	}
	b, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || !slices.Equal(b.SecretBinary, []byte{0, 1, 2}) || b.SecretString != nil {
		t.Fatalf("binary value: %v %+v", err, b)
	}
	empty, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")})
	if err != nil || empty.VersionId != nil {
		t.Fatalf("CreateSecret without value: %v %+v", err, empty)
	}
	_, err = c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("empty")})
	if apiCode(err) != "ResourceNotFoundException" || apiMessage(err) != "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT" {
		t.Fatalf("value of an empty secret: %v", err)
	}
	list, err := c.ListSecrets(ctx, &sm.ListSecretsInput{})
	if err != nil || len(list.SecretList) != 3 || aws.ToString(list.SecretList[0].Name) != "app/creds" {
		t.Fatalf("ListSecrets: %v %+v", err, list)
	}
	if len(list.SecretList[0].SecretVersionsToStages) != 1 {
		t.Fatalf("ListSecrets versions: %+v", list.SecretList[0].SecretVersionsToStages)
	}
}

func TestErrorsAsAWSWordsThem(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	created, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, code, message string
		call                func() error
	}{
		{"get unknown secret", "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("ghost")})
			return err
		}},
		{"describe unknown secret", "ResourceNotFoundException", "Secrets Manager can't find the specified secret.", func() error {
			_, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("arn:aws:secretsmanager:us-east-1:111122223333:secret:ghost-abcdef")})
			return err
		}},
		{"unknown stage", "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPENDING", func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s"), VersionStage: aws.String("AWSPENDING")})
			return err
		}},
		{"unknown version", "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: 00000000-0000-0000-0000-000000000000", func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s"), VersionId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		}},
		{"version and stage that do not meet", "InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId.", func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s"), VersionId: created.VersionId, VersionStage: aws.String("AWSPENDING")})
			return err
		}},
		{"create twice", "ResourceExistsException", "The operation failed because the secret s already exists.", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("y")})
			return err
		}},
		{"both values", "InvalidParameterException", "", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("y"), SecretBinary: []byte("y")})
			return err
		}},
		{"bad name", "InvalidParameterException", "", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("no spaces")})
			return err
		}},
		{"put without value", "InvalidRequestException", "", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s")})
			return err
		}},
		{"put to unknown secret", "ResourceNotFoundException", "", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("ghost"), SecretString: aws.String("z")})
			return err
		}},
		{"short token", "ValidationException", "", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("z"), ClientRequestToken: aws.String("short")})
			return err
		}},
		{"delete with both options", "InvalidParameterException", "", func() error {
			_, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("s"), ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7)})
			return err
		}},
		{"recovery window too short", "InvalidParameterException", "", func() error {
			_, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: aws.Int64(3)})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if apiCode(err) != tt.code || (tt.message != "" && apiMessage(err) != tt.message) {
				t.Fatalf("got %v, want %s: %s", err, tt.code, tt.message)
			}
		})
	}
}

// The first version of a secret created without a value is AWSCURRENT
// whatever VersionStages says, and DescribeSecret leaves out RotationEnabled
// for a secret never configured for rotation (both found by test/moto):
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
func TestFirstVersionIsCurrent(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	p, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("empty"), SecretString: aws.String("first"), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(p.VersionStages))
	if !slices.Equal(got, []string{"AWSCURRENT", "AWSPENDING"}) {
		t.Fatalf("first version's stages %v, want AWSCURRENT and AWSPENDING", got)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("empty")}); v != "first" {
		t.Fatalf("current value %q", v)
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("empty")})
	if err != nil {
		t.Fatal(err)
	}
	if d.RotationEnabled != nil {
		t.Fatalf("RotationEnabled = %v, want absent", *d.RotationEnabled)
	}
}

// The rotation's path: create → put AWSPENDING → promote → AWSPREVIOUS.
func TestStagingLabelTransitions(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	v1, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("rot"), SecretString: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	id1 := aws.ToString(v1.VersionId)
	p, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("rot"), SecretString: aws.String("two"), VersionStages: []string{"AWSPENDING"}})
	if err != nil || !slices.Equal(p.VersionStages, []string{"AWSPENDING"}) {
		t.Fatalf("put AWSPENDING: %v %+v", err, p)
	}
	id2 := aws.ToString(p.VersionId)
	if got := stages(t, c, "rot"); got["AWSCURRENT"] != id1 || got["AWSPENDING"] != id2 || got["AWSPREVIOUS"] != "" {
		t.Fatalf("after put pending: %v", got)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSPENDING")}); v != "two" {
		t.Fatalf("pending value %q", v)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("rot")}); v != "one" {
		t.Fatalf("current value %q", v)
	}

	// The rules AWS has for moving a label that is attached elsewhere.
	bad := []struct {
		name string
		in   sm.UpdateSecretVersionStageInput
		code string
	}{
		{"move without RemoveFromVersionId", sm.UpdateSecretVersionStageInput{VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(id2)}, "InvalidParameterException"},
		{"remove from the wrong version", sm.UpdateSecretVersionStageInput{VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(id2), RemoveFromVersionId: aws.String(id2)}, "InvalidParameterException"},
		{"remove AWSCURRENT outright", sm.UpdateSecretVersionStageInput{VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: aws.String(id1)}, "InvalidParameterException"},
		{"neither move nor remove", sm.UpdateSecretVersionStageInput{VersionStage: aws.String("AWSCURRENT")}, "InvalidParameterException"},
		{"move to an unknown version", sm.UpdateSecretVersionStageInput{VersionStage: aws.String("X"), MoveToVersionId: aws.String("nope")}, "ResourceNotFoundException"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.SecretId = aws.String("rot")
			if _, err := c.UpdateSecretVersionStage(ctx, &in); apiCode(err) != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}

	if _, err := c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(id2), RemoveFromVersionId: aws.String(id1)}); err != nil {
		t.Fatalf("promote: %v", err)
	}
	got := stages(t, c, "rot")
	if got["AWSCURRENT"] != id2 || got["AWSPREVIOUS"] != id1 || got["AWSPENDING"] != id2 {
		t.Fatalf("after promote: %v", got)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSPREVIOUS")}); v != "one" {
		t.Fatalf("previous value %q", v)
	}
	if _, err := c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSPENDING"),
		RemoveFromVersionId: aws.String(id2)}); err != nil {
		t.Fatalf("remove AWSPENDING: %v", err)
	}

	// A plain put moves AWSCURRENT again; the oldest version is left without
	// labels (deprecated) and listed only when asked.
	p3, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("rot"), SecretString: aws.String("three")})
	if err != nil || !slices.Equal(p3.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("put current: %v %+v", err, p3)
	}
	id3 := aws.ToString(p3.VersionId)
	if got := stages(t, c, "rot"); got["AWSCURRENT"] != id3 || got["AWSPREVIOUS"] != id2 || len(got) != 2 {
		t.Fatalf("after third put: %v", got)
	}
	ids := func(include bool) []string {
		out, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String("rot"), IncludeDeprecated: aws.Bool(include)})
		if err != nil {
			t.Fatalf("ListSecretVersionIds: %v", err)
		}
		var ids []string
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
		}
		sort.Strings(ids)
		return ids
	}
	want := []string{id2, id3}
	sort.Strings(want)
	if got := ids(false); !slices.Equal(got, want) {
		t.Fatalf("versions without deprecated: %v, want %v", got, want)
	}
	if got := ids(true); len(got) != 3 || !slices.Contains(got, id1) {
		t.Fatalf("versions with deprecated: %v", got)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("rot"), VersionId: aws.String(id1)}); v != "one" {
		t.Fatalf("deprecated version value %q", v)
	}
}

func TestClientRequestTokenIdempotency(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx := context.Background()
	const tok = "11111111-2222-3333-4444-555555555555"
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("idem"), SecretString: aws.String("a"), ClientRequestToken: aws.String(tok)}); err != nil {
		t.Fatal(err)
	}
	// A retried CreateSecret with the same token and value succeeds.
	again, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("idem"), SecretString: aws.String("a"), ClientRequestToken: aws.String(tok)})
	if err != nil || aws.ToString(again.VersionId) != tok {
		t.Fatalf("retried CreateSecret: %v %+v", err, again)
	}
	const tok2 = "22222222-2222-3333-4444-555555555555"
	put := func(v string) (*sm.PutSecretValueOutput, error) {
		return c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("idem"), SecretString: aws.String(v), ClientRequestToken: aws.String(tok2)})
	}
	first, err := put("b")
	if err != nil || aws.ToString(first.VersionId) != tok2 {
		t.Fatalf("put: %v %+v", err, first)
	}
	before := stages(t, c, "idem")
	second, err := put("b")
	if err != nil || aws.ToString(second.VersionId) != tok2 || !slices.Equal(second.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("same token, same value: %v %+v", err, second)
	}
	if after := stages(t, c, "idem"); after["AWSCURRENT"] != before["AWSCURRENT"] || after["AWSPREVIOUS"] != before["AWSPREVIOUS"] {
		t.Fatalf("an idempotent retry changed the stages: %v → %v", before, after)
	}
	_, err = put("c")
	if apiCode(err) != "ResourceExistsException" || strings.Contains(apiMessage(err), `"c"`) {
		t.Fatalf("same token, other value: %v", err)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("idem")}); v != "b" {
		t.Fatalf("value after refused put: %q", v)
	}
	// The SDK fills in a token when none is given: each put is a new version.
	p1, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("idem"), SecretString: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("idem"), SecretString: aws.String("d")})
	if err != nil || aws.ToString(p1.VersionId) == aws.ToString(p2.VersionId) {
		t.Fatalf("two puts without a token: %v %v %v", err, p1.VersionId, p2.VersionId)
	}
}

func TestDeleteAndRestore(t *testing.T) {
	t.Parallel()
	sb, c := newClient(t)
	ctx := context.Background()
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("gone"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil || d.DeletionDate == nil || time.Until(*d.DeletionDate) < 6*24*time.Hour {
		t.Fatalf("DeleteSecret: %v %+v", err, d)
	}
	if _, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("gone")}); apiCode(err) != "InvalidRequestException" {
		t.Fatalf("value of a deleted secret: %v", err)
	}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("gone")}); apiCode(err) != "InvalidRequestException" {
		t.Fatalf("create over a deleted secret: %v", err)
	}
	if l, _ := c.ListSecrets(ctx, &sm.ListSecretsInput{}); len(l.SecretList) != 0 {
		t.Fatalf("ListSecrets shows a deleted secret: %+v", l.SecretList)
	}
	if _, err := c.RestoreSecret(ctx, &sm.RestoreSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatalf("RestoreSecret: %v", err)
	}
	if v := value(t, c, &sm.GetSecretValueInput{SecretId: aws.String("gone")}); v != "x" {
		t.Fatalf("restored value %q", v)
	}
	// Past the recovery window (sandbox clock), the secret is gone for good.
	if _, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	sb.Server.Clock().Advance(8 * 24 * time.Hour)
	if _, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("gone")}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("after the recovery window: %v", err)
	}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("now"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("now"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("now"), SecretString: aws.String("y")}); err != nil {
		t.Fatalf("name reuse after force delete: %v", err)
	}
}

// syncBuffer is a log sink tests can read while the sandbox writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// I1: a secret's value is in no log, call record, CloudTrail event or error.
func TestSecretValuesNeverLeak(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	sb := sandboxtest.Start(t, fullsandbox.Options{Options: sandbox.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	c := sm.NewFromConfig(sb.Config(t), func(o *sm.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	values := []string{"s3cr3t-CREATE-9f1c2b", "s3cr3t-PENDING-77aa01", "s3cr3t-REFUSED-5e5e5e"}
	const tok = "33333333-2222-3333-4444-555555555555"
	var errs []string
	try := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("leak"), SecretString: aws.String(values[0])})
	try(err)
	_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("leak"), SecretString: aws.String(values[1]), ClientRequestToken: aws.String(tok), VersionStages: []string{"AWSPENDING"}})
	try(err)
	_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("leak"), SecretString: aws.String(values[2]), ClientRequestToken: aws.String(tok)})
	if apiCode(err) != "ResourceExistsException" {
		t.Fatalf("token reuse: %v", err)
	}
	errs = append(errs, err.Error())
	_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("leak"), SecretString: aws.String(values[2])})
	if err == nil {
		t.Fatal("CreateSecret twice succeeded")
	}
	errs = append(errs, err.Error())
	_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("leak 2"), SecretString: aws.String(values[2])})
	errs = append(errs, fmt.Sprint(err))
	for _, st := range []string{"AWSCURRENT", "AWSPENDING"} {
		_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("leak"), VersionStage: aws.String(st)})
		try(err)
	}

	sources := map[string][]byte{
		"call log":          get(t, sb.URL+"/_sandbox/calls"),
		"CloudTrail events": get(t, sb.URL+"/_sandbox/cloudtrail/events"),
		"sandbox log":       logs.Bytes(),
		"errors":            []byte(strings.Join(errs, "\n")),
	}
	if !bytes.Contains(sources["CloudTrail events"], []byte("PutSecretValue")) {
		t.Fatalf("CloudTrail did not record the puts: %s", sources["CloudTrail events"])
	}
	for name, b := range sources {
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("secret value %q found in the %s", v, name)
			}
		}
	}
}

// --state keeps secrets, their versions and stages across a restart.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: file}}
	sb := sandboxtest.Start(t, opts)
	c := sm.NewFromConfig(sb.Config(t))
	ctx := context.Background()
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("kept"), SecretString: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("kept"), SecretString: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	saved(t, opts.StateFile, `AWSPREVIOUS`)
	w2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for stage, want := range map[string]string{"AWSCURRENT": "v2", "AWSPREVIOUS": "v1"} {
		res, err := w2.Server.Internal(ctx, "secretsmanager", "GetSecretValue", "", w2.Admin.Principal, []byte(`{"SecretId":"kept","VersionStage":"`+stage+`"}`))
		if err != nil {
			t.Fatalf("%s after restart: %v", stage, err)
		}
		b, _ := json.Marshal(res)
		var out struct{ SecretString string }
		_ = json.Unmarshal(b, &out)
		if out.SecretString != want {
			t.Fatalf("%s after restart = %q, want %q", stage, out.SecretString, want)
		}
	}
}

// saved waits for the sandbox's own save loop to write want into the state
// file (calling SaveState beside it would race on the temporary file).
func saved(t *testing.T, file, want string) {
	t.Helper()
	for range 100 {
		if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("state file never held %q", want)
}

// bodies keeps every response body an SDK client reads.
type bodies struct {
	mu  sync.Mutex
	all []string
}

func (b *bodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.all = append(b.all, string(raw))
	b.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

func TestListSecrets(t *testing.T) {
	t.Parallel()
	sb, c := newClient(t)
	ctx := context.Background()
	seen := &bodies{}
	cfg := sb.Config(t)
	cfg.HTTPClient = &http.Client{Transport: seen}
	lister := sm.NewFromConfig(cfg, func(o *sm.Options) { o.RetryMaxAttempts = 1 })
	// Created a minute apart, in this order; the names sort otherwise.
	for _, s := range []struct{ name, description, tag string }{
		{"keyrotator/users/carol", "Key record of carol", "keyrotator"},
		{"app/aws-access-key", "The app's key", "app"},
		{"keyrotator/users/alice", "Key record of alice", "keyrotator"},
		{"keyrotator/connections/auth0-prod", "Auth0 tenant prod", "keyrotator"},
		{"Keyrotator/upper", "Another case", "other"},
	} {
		if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String("value-of-" + s.name),
			Description: aws.String(s.description), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String(s.tag)}}}); err != nil {
			t.Fatalf("CreateSecret %s: %v", s.name, err)
		}
		sb.Server.Clock().Advance(time.Minute)
	}
	if _, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("keyrotator/users/alice")}); err != nil {
		t.Fatal(err)
	}
	filter := func(key types.FilterNameStringType, values ...string) types.Filter {
		return types.Filter{Key: key, Values: values}
	}
	tests := []struct {
		name string
		in   sm.ListSecretsInput
		want []string // names, in order
		code string
	}{
		{"all, by creation date", sm.ListSecretsInput{},
			[]string{"keyrotator/users/carol", "app/aws-access-key", "keyrotator/connections/auth0-prod", "Keyrotator/upper"}, ""},
		{"name prefix, case-sensitive", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeName, "keyrotator/users/")}},
			[]string{"keyrotator/users/carol"}, ""},
		{"with planned deletion", sm.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true), Filters: []types.Filter{filter(types.FilterNameStringTypeName, "keyrotator/users/")}},
			[]string{"keyrotator/users/carol", "keyrotator/users/alice"}, ""},
		{"any of the values", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeName, "app/", "keyrotator/connections/")}},
			[]string{"app/aws-access-key", "keyrotator/connections/auth0-prod"}, ""},
		{"negated", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeName, "keyrotator/", "!keyrotator/users/")}},
			[]string{"keyrotator/connections/auth0-prod"}, ""},
		{"a name is not matched inside", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeName, "users")}}, nil, ""},
		{"description, not case-sensitive", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeDescription, "key RECORD")}},
			[]string{"keyrotator/users/carol"}, ""},
		{"every filter must match", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeTagValue, "keyrotator"), filter(types.FilterNameStringTypeName, "keyrotator/c")}},
			[]string{"keyrotator/connections/auth0-prod"}, ""},
		{"all: words, not case-sensitive", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeAll, "auth0 PROD")}},
			[]string{"keyrotator/connections/auth0-prod"}, ""},
		{"newest first", sm.ListSecretsInput{SortOrder: types.SortOrderTypeDesc},
			[]string{"Keyrotator/upper", "keyrotator/connections/auth0-prod", "app/aws-access-key", "keyrotator/users/carol"}, ""},
		{"unknown filter key", sm.ListSecretsInput{Filters: []types.Filter{filter("owner", "x")}}, nil, "ValidationException"},
		{"a value AWS does not allow", sm.ListSecretsInput{Filters: []types.Filter{filter(types.FilterNameStringTypeName, "a*")}}, nil, "ValidationException"},
		{"too many results asked", sm.ListSecretsInput{MaxResults: aws.Int32(101)}, nil, "ValidationException"},
		{"a made-up NextToken", sm.ListSecretsInput{NextToken: aws.String("bm9wZQ")}, nil, "InvalidNextTokenException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.MaxResults = cmpOr(in.MaxResults, aws.Int32(1)) // a page per secret: NextToken carries the rest
			var got []string
			p := sm.NewListSecretsPaginator(lister, &in)
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if tc.code != "" || err != nil {
					if apiCode(err) != tc.code {
						t.Fatalf("got %v, want %q", err, tc.code)
					}
					return
				}
				if len(page.SecretList) > int(*in.MaxResults) {
					t.Fatalf("a page of %d, MaxResults %d", len(page.SecretList), *in.MaxResults)
				}
				for _, e := range page.SecretList {
					got = append(got, aws.ToString(e.Name))
					if e.ARN == nil || e.CreatedDate == nil || e.LastChangedDate == nil || len(e.SecretVersionsToStages) != 1 || len(e.Tags) != 1 || e.Description == nil {
						t.Errorf("entry %+v: want ARN, dates, SecretVersionsToStages, Tags and Description", e)
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, b := range seen.all {
		if strings.Contains(b, "value-of-") || strings.Contains(b, "SecretString") {
			t.Fatalf("a ListSecrets answer holds a secret value: %s", b)
		}
	}
}

func cmpOr(v, def *int32) *int32 {
	if v != nil {
		return v
	}
	return def
}
