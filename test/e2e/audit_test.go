package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/keyrotator/keyrotator/functions/audit"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// invokeAudit invokes the weekly audit once as its schedule would, whatever
// it answers: a policy mutation test looks at the calls it made.
func (h *H) invokeAudit(t *testing.T) {
	t.Helper()
	fn := h.dep.Functions[tasks.Audit.Function()]
	if _, err := lambda.NewFromConfig(h.sb.Config(t)).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte("{}")}); err != nil {
		t.Fatalf("invoke the audit: %v", err)
	}
}

// auditTwice invokes the weekly audit's Lambda as its schedule does ({}),
// twice: the second time a user has a key newer than the credential
// report, which the audit reads by GetAccessKeyLastUsed. Each run must
// succeed, count the keys it was given, and publish its summary.
func (h *H) auditTwice(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cfg := h.sb.Config(t)
	fn := h.dep.Functions[tasks.Audit.Function()]
	invoke := func() audit.WeeklyResult {
		t.Helper()
		out, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte("{}")})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke the audit: %v %s %s", err, aws.ToString(out.FunctionError), out.Payload)
		}
		var r audit.WeeklyResult
		if err := json.Unmarshal(out.Payload, &r); err != nil || r.MessageID == "" || r.Keys == 0 {
			t.Fatalf("the audit answered %s (%v)", out.Payload, err)
		}
		return r
	}
	first := invoke()
	h.sb.User(t, "audit-late", 1) // after the report: not in it
	if _, err := iam.NewFromConfig(cfg).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(goldenUser)}); err != nil {
		t.Fatalf("a second key for %s: %v", goldenUser, err)
	}
	if second := invoke(); second.Keys != first.Keys+1 {
		t.Errorf("the second audit counted %d keys, want the first's %d and the new second key", second.Keys, first.Keys)
	}
}
