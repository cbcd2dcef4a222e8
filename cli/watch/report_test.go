package watch

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

const succeededOutput = `{
  "input": {"user": "app", "targets": [{"type":"secret","name":"app","secretId":"app/key"},{"type":"soracom","name":"funnel","connection":"keyrotator/connections/soracom","credentialPrefix":"f"}]},
  "plan": {"user": "app", "oldKeyId": "AKIAOLD", "targets": [{"type":"secret","name":"app"},{"type":"soracom","name":"funnel"}], "changes": ["x"]},
  "key": {"keyId": "AKIANEW"},
  "receipts": [
    {"target": "app", "type": "secret", "where": "arn:aws:secretsmanager:us-east-1:1:secret:app/key-AbC", "previousKeyId": "AKIAOLD", "newKeyId": "AKIANEW"},
    {"target": "funnel", "type": "soracom", "where": "SORACOM operator OP1", "previousKeyId": "AKIAOLD", "newKeyId": "AKIANEW",
     "soracom": {"newCredential": "f-20260301", "groups": [{"groupId": "g1", "name": "sensors", "namespace": "SoracomFunnel", "from": "f-20251201", "to": "f-20260301"}]}}
  ],
  "verify": {"attempt": 1, "unused": true, "evidence": "no use of old key AKIAOLD since the cut-over", "freshness": "checked 7.0 days after the cut-over"}
}`

func TestReportSucceeded(t *testing.T) {
	e := &Ended{Execution: &sfn.DescribeExecutionOutput{ExecutionArn: aws.String("arn:x"), Status: types.ExecutionStatusSucceeded, Output: aws.String(succeededOutput)}}
	r := NewReport(e, []Key{{ID: "AKIANEW", Status: "Active"}})
	var b bytes.Buffer
	r.Write(&b)
	for _, want := range []string{
		"keys of app:\n  before: AKIAOLD (Active)\n  after:  AKIANEW (Active)\n",
		"  app         arn:aws:secretsmanager:us-east-1:1:secret:app/key-AbC: AKIAOLD → AKIANEW\n",
		"group sensors (SoracomFunnel): f-20251201 → f-20260301",
		"verification (check 1): no use of old key AKIAOLD since the cut-over",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if got, want := r.Line(), "rotation succeeded: user=app old=AKIAOLD (deleted) new=AKIANEW (active) targets=2/2"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	// Succeeded, but the old key is still there: not the job done.
	r = NewReport(e, []Key{{ID: "AKIAOLD", Status: "Inactive"}, {ID: "AKIANEW", Status: "Active"}})
	if got := r.Line(); got != "rotation failed: the old key AKIAOLD is still there" {
		t.Errorf("Line = %q", got)
	}
}

func TestReportFailedFromHistory(t *testing.T) {
	// The run failed at Distribute: its output is empty, the history has
	// the data NotifyFailure was given; a Map iteration's output is not it.
	data := `{"input":{"user":"app","targets":[{},{}]},"plan":{"user":"app","oldKeyId":"AKIAOLD","targets":[{},{}]},"key":{"keyId":"AKIANEW"},
	  "failure":{"Distribute":{"Error":"TargetFailed","Cause":"target \"tenant\" failed: 401"}}}`
	events := []types.HistoryEvent{
		{Id: 1, Type: types.HistoryEventTypeMapIterationStarted},
		{Id: 2, Type: types.HistoryEventTypeTaskStateExited, StateExitedEventDetails: &types.StateExitedEventDetails{Name: aws.String("UpdateSecret"), Output: aws.String(`{"target":"app","newKeyId":"AKIANEW"}`)}},
		{Id: 3, Type: types.HistoryEventTypeMapIterationFailed},
		{Id: 4, Type: types.HistoryEventTypeTaskStateEntered, StateEnteredEventDetails: &types.StateEnteredEventDetails{Name: aws.String("NotifyFailure")}},
		{Id: 5, Type: types.HistoryEventTypeTaskStateExited, StateExitedEventDetails: &types.StateExitedEventDetails{Name: aws.String("NotifyFailure"), Output: aws.String(data)}},
		{Id: 6, Type: types.HistoryEventTypeFailStateEntered, StateEnteredEventDetails: &types.StateEnteredEventDetails{Name: aws.String("Failed")}},
		{Id: 7, Type: types.HistoryEventTypeExecutionFailed},
	}
	e := &Ended{Execution: &sfn.DescribeExecutionOutput{ExecutionArn: aws.String("arn:x"), Status: types.ExecutionStatusFailed,
		Error: aws.String("TargetFailed"), Cause: aws.String("tenant refused the client credentials")}, History: events}
	r := NewReport(e, []Key{{ID: "AKIAOLD", Status: "Active"}, {ID: "AKIANEW", Status: "Active"}})
	if r.FailedState != "Distribute" || r.User != "app" || r.Targets != 2 || r.NewKeyID != "AKIANEW" {
		t.Errorf("report = %+v", r)
	}
	if got, want := r.Line(), "rotation failed: FAILED at Distribute: TargetFailed: tenant refused the client credentials"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	var b bytes.Buffer
	r.Write(&b)
	if !strings.Contains(b.String(), "none updated (of 2)") {
		t.Errorf("report:\n%s", b.String())
	}
}

func TestReportDryRun(t *testing.T) {
	out := `{"dryRun":true,"plan":{"user":"app","dryRun":true,"oldKeyId":"AKIAOLD","targets":[{}],"changes":["create a new access key for IAM user app","write it into secret app/key"]}}`
	e := &Ended{Execution: &sfn.DescribeExecutionOutput{Status: types.ExecutionStatusSucceeded, Output: aws.String(out), Input: aws.String(`{"user":"app"}`)}}
	r := NewReport(e, []Key{{ID: "AKIAOLD", Status: "Active"}})
	var b bytes.Buffer
	r.Write(&b)
	if !strings.Contains(b.String(), "  2. write it into secret app/key\n") {
		t.Errorf("dry run report:\n%s", b.String())
	}
	if got, want := r.Line(), "dry run succeeded: user=app changes=2 (none made)"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
}

// An issue's report says issue, not rotate: its line, its dry run and its
// keys (no old key before; the new one after).
func TestReportIssue(t *testing.T) {
	out := `{"input":{"user":"app","issue":true},"plan":{"user":"app","issue":true,"oldKeyId":"","targets":[{}]},"key":{"keyId":"AKIANEW"},
		"receipts":[{"target":"app","type":"secret","where":"arn:app","previousKeyId":"","newKeyId":"AKIANEW"}],"promote":{"lockReleased":true}}`
	e := &Ended{Execution: &sfn.DescribeExecutionOutput{Status: types.ExecutionStatusSucceeded, Output: aws.String(out), Input: aws.String(`{"user":"app","issue":true}`)}}
	r := NewReport(e, []Key{{ID: "AKIANEW", Status: "Active"}})
	if got, want := r.Line(), "issue succeeded: user=app new=AKIANEW (active) targets=1/1"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	var b bytes.Buffer
	r.Write(&b)
	if s := b.String(); !strings.Contains(s, "before: no active key (an issue)") || !strings.Contains(s, "no key → AKIANEW") {
		t.Errorf("report:\n%s", s)
	}
	dry := `{"dryRun":true,"plan":{"user":"app","dryRun":true,"issue":true,"targets":[{}],"changes":["issue a new access key for IAM user app"]}}`
	r = NewReport(&Ended{Execution: &sfn.DescribeExecutionOutput{Status: types.ExecutionStatusSucceeded, Output: aws.String(dry), Input: aws.String(`{"user":"app","issue":true}`)}}, nil)
	b.Reset()
	r.Write(&b)
	if !strings.Contains(b.String(), "dry run of an issue to app: 1 changes") || r.Line() != "dry run of an issue succeeded: user=app changes=1 (none made)" {
		t.Errorf("dry run of an issue: %q\n%s", r.Line(), b.String())
	}
	failed := &Ended{Execution: &sfn.DescribeExecutionOutput{Status: types.ExecutionStatusFailed, Error: aws.String("KeyLimitReached"), Cause: aws.String("two keys"), Input: aws.String(`{"user":"app","issue":true}`)}}
	if got := NewReport(failed, nil).Line(); !strings.HasPrefix(got, "issue failed: ") {
		t.Errorf("a failed issue's line: %q", got)
	}
}
