package ses_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/aws-sdk-go-v2/service/ses/types"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sessvc "github.com/keyrotator/keyrotator/local/sandbox/ses"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func email(from string, to ...string) *ses.SendEmailInput {
	return &ses.SendEmailInput{
		Source:      aws.String(from),
		Destination: &types.Destination{ToAddresses: to},
		Message: &types.Message{Subject: &types.Content{Data: aws.String("Welcome")},
			Body: &types.Body{Html: &types.Content{Data: aws.String("<p>hi</p>")}}},
	}
}

func TestSendRecordsTheKey(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // about the use, not IAM's reporting lag
	ctx := context.Background()
	key := sb.User(t, "auth0-mailer", 1)[0]
	c := ses.NewFromConfig(sb.ConfigAs(t, key.AccessKeyID, key.SecretAccessKey, ""))

	sent, err := c.SendEmail(ctx, email("noreply@example.com", "a@example.com", "b@example.com"))
	if err != nil || aws.ToString(sent.MessageId) == "" {
		t.Fatalf("SendEmail: %v", err)
	}
	raw := "From: Auth0 <noreply@example.com>\r\nTo: c@example.com\r\nCc: d@example.com\r\nSubject: =?UTF-8?Q?R=C3=A9initialiser?=\r\n\r\nbody\r\n"
	rawSent, err := c.SendRawEmail(ctx, &ses.SendRawEmailInput{RawMessage: &types.RawMessage{Data: []byte(raw)}})
	if err != nil {
		t.Fatalf("SendRawEmail: %v", err)
	}
	var all struct {
		Sent, Evicted int
		Messages      []sessvc.Mail
	}
	sb.AdminCall(t, http.MethodGet, "/ses/messages", nil, &all)
	got := all.Messages
	if len(got) != 2 || all.Sent != 2 || all.Evicted != 0 {
		t.Fatalf("messages: %+v", all)
	}
	if m := got[0]; m.ID != aws.ToString(sent.MessageId) || m.From != "noreply@example.com" || !slices.Equal(m.To, []string{"a@example.com", "b@example.com"}) ||
		m.Subject != "Welcome" || m.AccessKeyID != key.AccessKeyID || m.Region != "us-east-1" || m.Time.IsZero() {
		t.Fatalf("SendEmail record: %+v", m)
	}
	if m := got[1]; m.ID != aws.ToString(rawSent.MessageId) || m.From != "Auth0 <noreply@example.com>" || !slices.Equal(m.To, []string{"c@example.com", "d@example.com"}) ||
		m.Subject != "Réinitialiser" || m.AccessKeyID != key.AccessKeyID {
		t.Fatalf("SendRawEmail record: %+v", m)
	}
	var byKey struct{ Messages []sessvc.Mail }
	sb.AdminCall(t, http.MethodGet, "/ses/messages?accessKeyId="+sb.Admin.AccessKeyID, nil, &byKey)
	if len(byKey.Messages) != 0 {
		t.Fatalf("mail under the admin's key: %+v", byKey)
	}
	lu, err := iam.NewFromConfig(sb.Config(t)).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(key.AccessKeyID)})
	if err != nil || aws.ToString(lu.AccessKeyLastUsed.ServiceName) != "ses" || aws.ToString(lu.AccessKeyLastUsed.Region) != "us-east-1" {
		t.Fatalf("last used: %v %+v", err, lu)
	}
}

func TestErrorsAsAWSWordsThem(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := ses.NewFromConfig(sb.Config(t), func(o *ses.Options) { o.RetryMaxAttempts = 1 })
	many := make([]string, sessvc.MaxRecipients+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@example.com", i)
	}
	raw := func(s string, dest ...string) func() error {
		return func() error {
			_, err := c.SendRawEmail(ctx, &ses.SendRawEmailInput{RawMessage: &types.RawMessage{Data: []byte(s)}, Destinations: dest})
			return err
		}
	}
	send := func(in *ses.SendEmailInput) func() error {
		return func() error { _, err := c.SendEmail(ctx, in); return err }
	}
	noSource := email("", "a@example.com") // an empty Source: a missing one the SDK refuses itself
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"no source", send(noSource), "MessageRejected"},
		{"no destination", send(email("noreply@example.com")), "MessageRejected"},
		{"too many recipients", send(email("noreply@example.com", many...)), "InvalidParameterValue"},
		{"bad address", send(email("noreply@example.com", "nobody")), "InvalidParameterValue"},
		{"raw without From", raw("To: a@example.com\r\nSubject: s\r\n\r\nbody"), "MessageRejected"},
		{"raw without recipients", raw("From: a@example.com\r\nSubject: s\r\n\r\nbody"), "MessageRejected"},
		{"raw with explicit destinations", raw("From: a@example.com\r\nSubject: s\r\n\r\nbody", "b@example.com"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiCode(tt.call()); got != tt.code {
				t.Fatalf("got %q, want %q", got, tt.code)
			}
		})
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: filepath.Join(t.TempDir(), "state.json")}}
	sb := sandboxtest.Start(t, opts)
	if _, err := ses.NewFromConfig(sb.Config(t)).SendEmail(context.Background(), email("noreply@example.com", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	saved(t, opts.StateFile, `"Welcome"`)
	w2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := w2.Server.Service("ses")
	if got, sent := svc.(*sessvc.Service).Messages(); len(got) != 1 || sent != 1 || got[0].Subject != "Welcome" {
		t.Fatalf("mail after restart: %+v", got)
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

// SES keeps the newest Keep messages and counts every one it accepted: a
// tenant mailing for hours stays the same size, and a reader can tell that
// older mail is gone.
func TestKeepsTheNewestMail(t *testing.T) {
	t.Parallel()
	svc := sessvc.New(sandbox.New(sandbox.Options{}))
	for i := range sessvc.Keep + 5 {
		p := url.Values{"Source": {"no-reply@example.com"}, "Destination.ToAddresses.member.1": {"a@example.com"},
			"Message.Subject.Data": {fmt.Sprintf("mail %d", i)}, "Message.Body.Text.Data": {"body"}}
		if _, err := svc.Handle(context.Background(), &sandbox.Call{Action: "SendEmail", Params: p, AccessKeyID: "AKIAEXAMPLE"}); err != nil {
			t.Fatal(err)
		}
	}
	kept, sent := svc.Messages()
	if len(kept) != sessvc.Keep || sent != sessvc.Keep+5 || kept[0].Subject != "mail 5" || kept[len(kept)-1].Subject != fmt.Sprintf("mail %d", sessvc.Keep+4) {
		t.Fatalf("kept %d (from %q), sent %d; want the newest %d of %d", len(kept), kept[0].Subject, sent, sessvc.Keep, sessvc.Keep+5)
	}
}
