package lambdautil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// named has one error of every named type, by its name: the test below
// checks that it lists exactly rotation.ErrorNames.
var named = map[string]error{
	"InvalidInput":       &rotation.InvalidInput{Field: "user", Reason: "missing"},
	"UserNotFound":       &rotation.UserNotFound{User: "alice"},
	"KeyLimitReached":    &rotation.KeyLimitReached{User: "alice", Keys: []string{"AKIA1 (Active)", "AKIA2 (Active)"}},
	"RotationInProgress": &rotation.RotationInProgress{User: "alice", Execution: "arn:x"},
	"TargetFailed":       &rotation.TargetFailed{Target: "app", Reason: "gone"},
	"OldKeyStillInUse":   &rotation.OldKeyStillInUse{KeyID: "AKIA1", Evidence: "ses"},
	"ApprovalRejected":   &rotation.ApprovalRejected{By: "bob", Reason: "no"},
	"Retryable":          &rotation.Retryable{Reason: "slow"},
	"AccessDenied":       &rotation.AccessDenied{Service: "IAM", Action: "DeleteAccessKey", Code: "AccessDenied"},
	"Internal":           &rotation.Internal{Reason: "bug"},
	"OrphanUnconfirmed":  &rotation.OrphanUnconfirmed{User: "alice", KeyID: "AKIA2", Attempt: "arn:x CreateKey attempt 1"},
	"RequestUnsigned":    &rotation.RequestUnsigned{Execution: "app-20260301T030000Z"},
	"RequestForged":      &rotation.RequestForged{Reason: "it was signed for another execution"},
	"ApprovalForged":     &rotation.ApprovalForged{What: "a 20-byte JSON object"},                                                                           // issue 14
	"MemberAccessDenied": &rotation.MemberAccessDenied{Account: "222233334444", Role: "arn:aws:iam::222233334444:role/keyrotator-member", Task: "validate"}, // issue 15
}

func TestNamedCoversErrorNames(t *testing.T) {
	t.Parallel()
	var got []string
	for n, err := range named {
		if ErrorType(err) != n {
			t.Errorf("%s has errorType %s", n, ErrorType(err))
		}
		got = append(got, n)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(rotation.ErrorNames))
	if !slices.Equal(got, want) {
		t.Fatalf("the test's named errors %v, rotation.ErrorNames %v: add the new name to both (and to firstNamed)", got, want)
	}
}

// operation wraps err as the SDK returns a failed call: an OperationError
// naming the service and operation.
func operation(service, op string, err error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op, Err: err}
}

func status(code int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: err}}
}

// kind is a leaf error and the name it must leave the Lambda with.
type kind struct {
	name string
	err  error
	want string
	says []string // what the named error's message must say
}

func kinds() []kind {
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::111122223333:assumed-role/keyrotator-deleteoldkey/x is not authorized to perform: iam:DeleteAccessKey on resource: user alice because no identity-based policy allows the iam:DeleteAccessKey action"}
	ks := []kind{
		{"iam denied", operation("IAM", "DeleteAccessKey", status(403, denied)), "AccessDenied", []string{"IAM DeleteAccessKey", "on user alice", "iam:DeleteAccessKey"}},
		{"secretsmanager denied", operation("Secrets Manager", "PutSecretValue", status(400, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"})), "AccessDenied", []string{"Secrets Manager PutSecretValue", "secretsmanager:PutSecretValue"}},
		{"sns denied", operation("SNS", "Publish", &smithy.GenericAPIError{Code: "AuthorizationError"}), "AccessDenied", []string{"sns:Publish"}},
		{"ec2 denied", operation("EC2", "DescribeRegions", &smithy.GenericAPIError{Code: "UnauthorizedOperation"}), "AccessDenied", []string{"ec2:DescribeRegions"}},
		{"throttling", operation("IAM", "ListAccessKeys", &smithy.GenericAPIError{Code: "Throttling"}), "Retryable", []string{"ListAccessKeys"}},
		{"json throttling", operation("CloudTrail", "LookupEvents", &smithy.GenericAPIError{Code: "ThrottlingException"}), "Retryable", nil},
		{"too many requests", &smithy.GenericAPIError{Code: "TooManyRequestsException"}, "Retryable", nil},
		{"503", operation("IAM", "CreateAccessKey", status(503, errors.New("unavailable"))), "Retryable", nil},
		{"500 service fault code", &smithy.GenericAPIError{Code: "ServiceUnavailable"}, "Retryable", nil},
		{"request timeout code", &smithy.GenericAPIError{Code: "RequestTimeout"}, "Retryable", nil},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "Retryable", nil},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, "Retryable", nil},
		{"unexpected EOF", &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}, "Retryable", nil},
		{"deadline", context.DeadlineExceeded, "Retryable", nil},
		{"canceled", context.Canceled, "Retryable", nil},
		{"no such entity", operation("IAM", "GetUser", status(404, &smithy.GenericAPIError{Code: "NoSuchEntity"})), "Internal", []string{"NoSuchEntity"}},
		{"two-key quota", &smithy.GenericAPIError{Code: "LimitExceeded"}, "Internal", nil}, // IAM's key quota is not a throttle
		{"403 without a code", status(403, errors.New("forbidden")), "Internal", []string{"forbidden"}},
		{"plain", errors.New("record has no AWSPENDING version"), "Internal", []string{"record has no AWSPENDING version"}},
		{"json", &json.SyntaxError{}, "Internal", nil},
	}
	for n, err := range named {
		ks = append(ks, kind{"named " + n, err, n, []string{err.Error()}})
	}
	return ks
}

// wrappings put a leaf 0..3 levels deep, with fmt.Errorf %w and errors.Join.
var wrappings = []struct {
	name string
	wrap func(error) error
}{
	{"as is", func(e error) error { return e }},
	{"%w", func(e error) error { return fmt.Errorf("delete key AKIA1: %w", e) }},
	{"%w %w", func(e error) error { return fmt.Errorf("step: %w", fmt.Errorf("call: %w", e)) }},
	{"%w %w %w", func(e error) error { return fmt.Errorf("a: %w", fmt.Errorf("b: %w", fmt.Errorf("c: %w", e))) }},
	{"join", func(e error) error { return errors.Join(e) }},
	{"join after a plain error", func(e error) error { return errors.Join(errors.New("first"), e) }},
	{"%w of a join", func(e error) error { return fmt.Errorf("release: %w", errors.Join(errors.New("x"), e)) }},
	{"join of %w %w", func(e error) error {
		return errors.Join(errors.New("cleanup"), fmt.Errorf("a: %w", fmt.Errorf("b: %w", e)))
	}},
	{"two %w in one Errorf", func(e error) error { return fmt.Errorf("%w; then %w", errors.New("first"), e) }},
}

// Finding 4 (issue 11): every error a handler returns leaves the Lambda as
// one of rotation.ErrorNames, whatever wraps it; never errorString,
// wrapError or joinError.
func TestNameGivesEveryErrorAName(t *testing.T) {
	t.Parallel()
	for _, k := range kinds() {
		for _, w := range wrappings {
			t.Run(k.name+"/"+w.name, func(t *testing.T) {
				got := Name(w.wrap(k.err))
				typ := ErrorType(got)
				if !slices.Contains(rotation.ErrorNames, typ) {
					t.Fatalf("errorType %s is not in rotation.ErrorNames (%v)", typ, got)
				}
				if typ != k.want {
					t.Fatalf("errorType %s, want %s (%v)", typ, k.want, got)
				}
				if u := errors.Unwrap(got); u != nil {
					t.Errorf("the named error wraps %v: Step Functions must see the type itself", u)
				}
				for _, s := range k.says {
					if !strings.Contains(got.Error(), s) {
						t.Errorf("%q does not say %q", got.Error(), s)
					}
				}
			})
		}
	}
	if Name(nil) != nil {
		t.Fatal("nil stays nil")
	}
}

// The first named error in the chain wins, depth first as errors.As goes.
func TestNamePrefersTheFirstNamedError(t *testing.T) {
	t.Parallel()
	tf := &rotation.TargetFailed{Target: "app", Reason: "x"}
	err := errors.Join(fmt.Errorf("a: %w", tf), &rotation.Retryable{Reason: "y"})
	if got := Name(err); got != error(tf) { //nolint:errorlint // the very value in the chain, not an equal one
		t.Fatalf("got %v, want the TargetFailed", got)
	}
}

// The handler boundary: a returned error, an event that does not decode
// and a panic all leave named, and the one log line says the errorType.
func TestHandlerNamesWhatLeaves(t *testing.T) {
	t.Parallel()
	type in struct {
		User string `json:"user"`
	}
	tests := []struct {
		name    string
		event   string
		run     func(context.Context, in) (string, error)
		want    string
		wantLog string
	}{
		{"ok", `{"user":"alice"}`, func(_ context.Context, i in) (string, error) { return i.User, nil }, "", `"msg":"task done"`},
		{"wrapped denial", `{"user":"alice"}`, func(context.Context, in) (string, error) {
			return "", fmt.Errorf("delete key: %w", operation("IAM", "DeleteAccessKey", &smithy.GenericAPIError{Code: "AccessDenied"}))
		}, "AccessDenied", `"errorType":"AccessDenied"`},
		{"plain", `{"user":"alice"}`, func(context.Context, in) (string, error) { return "", errors.New("boom") }, "Internal", `"errorType":"Internal"`},
		{"bad event", `{"user":42}`, func(context.Context, in) (string, error) { return "", nil }, "Internal", "decode the event"},
		{"panic", `{}`, func(context.Context, in) (string, error) { panic("nil map") }, "Internal", "panic: nil map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := Handler(slog.New(slog.NewJSONHandler(&logs, nil)), "task", tt.run, func(i in, _ string) []any { return []any{"user", i.User} })
			_, err := h(context.Background(), json.RawMessage(tt.event))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || ErrorType(err) != tt.want {
				t.Fatalf("err %v (%T), want a %s", err, err, tt.want)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || strings.Count(logs.String(), "\n") != 1 {
				t.Errorf("want one log line saying %s, got:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}
