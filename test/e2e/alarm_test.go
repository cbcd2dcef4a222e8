package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// The alarm path tests deploy the alarms, not the schedules (a schedule
// would start rotations whenever a test's Waits move the clock).
var withAlarms = pipelinetest.Deploy{Skip: []string{"AWS::Scheduler::Schedule"}}

// alarmState is what the sandbox's CloudWatch admin API says of an alarm.
type alarmState struct {
	Name    string `json:"name"`
	ARN     string `json:"arn"`
	State   string `json:"state"`
	Reason  string `json:"stateReason"`
	History []struct {
		Type    string `json:"type"`
		Summary string `json:"summary"`
	} `json:"history"`
}

// executionsFailedAlarm is the name of the deployed alarm on the state
// machine's ExecutionsFailed metric: found by what it measures, not by its
// logical id.
func (h *H) executionsFailedAlarm() string {
	h.t.Helper()
	for _, id := range h.dep.Stack.OfType("AWS::CloudWatch::Alarm") {
		res := h.dep.Stack.Resources[id]
		b, _ := json.Marshal(res.Properties["Metrics"])
		if strings.Contains(string(b), `"MetricName":"ExecutionsFailed"`) && strings.Contains(string(b), h.dep.StateMachineARN) {
			return res.Ref
		}
	}
	h.t.Fatalf("the stack has no alarm on the state machine's ExecutionsFailed (deployed with the alarms?)")
	return ""
}

// alarm reads the named alarm from the sandbox's CloudWatch.
func (h *H) alarm(name string) alarmState {
	h.t.Helper()
	var all []alarmState
	h.sb.AdminCall(h.t, http.MethodGet, "/monitoring/alarms", nil, &all)
	for _, a := range all {
		if a.Name == name {
			return a
		}
	}
	h.t.Fatalf("no alarm %s among %d", name, len(all))
	return alarmState{}
}

// awaitAlarm waits until the alarm's state is want and, for ALARM, its
// history ends with the action the change ran (CloudWatch runs it after the
// state change; the alarms have no OK action).
func (h *H) awaitAlarm(name, want string) alarmState {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := h.alarm(name)
		if a.State == want && (want != "ALARM" || len(a.History) > 0 && a.History[len(a.History)-1].Type == "Action") {
			return a
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("alarm %s is %s (%s), want %s with its action run; history %+v", name, a.State, a.Reason, want, a.History)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failWithoutAlerts runs an execution that fails (its user does not exist)
// while neither of its own alerts can go out: the notify function's publish
// and the state machine's raw publish (NotifyFailureRaw) are refused.
func (h *H) failWithoutAlerts() *Result {
	h.t.Helper()
	for _, state := range []string{"NotifyFailure", "NotifyFailureRaw"} {
		h.sb.Fault(h.t, sandbox.Fault{Service: "sns", Action: "Publish", State: state, Status: 403, Code: "AuthorizationError", Times: -1,
			Message: "injected: the alert of state " + state + " cannot be published"})
	}
	r := h.Run(map[string]any{"user": "nobody", "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/x"}}})
	if r.Status != types.ExecutionStatusFailed {
		h.t.Fatalf("status %s %s: %s; want FAILED", r.Status, r.Error, r.Cause)
	}
	visited := r.Visited()
	if !slices.Contains(visited, "NotifyFailure") || !slices.Contains(visited, "NotifyFailureRaw") || slices.Contains(visited, "FailedRaw") {
		h.t.Fatalf("visited %v: want NotifyFailure, then NotifyFailureRaw failing (no FailedRaw)", visited)
	}
	return r
}

// The must-show of the alarm path (I4's last way to on-call): an execution
// fails and neither its alert nor its raw alert can be published; the
// alarm on the state machine's failures goes to ALARM and its notification
// — AWS's alarm JSON, naming the alarm — is what the topic's subscribers
// get, published by CloudWatch through the topic policy's Allow.
func TestAlarmReachesOnCallWhenTheAlertCannot(t *testing.T) {
	t.Parallel()
	h := StartDeploy(t, withAlarms)
	name := h.executionsFailedAlarm()
	h.awaitAlarm(name, "OK") // evaluated at deploy: no execution closed, 0 after FILL
	if msgs := h.topicMessages(); len(msgs) != 0 {
		t.Fatalf("%d messages on the topic before any failure", len(msgs))
	}

	r := h.failWithoutAlerts()
	a := h.awaitAlarm(name, "ALARM")
	if last := a.History[len(a.History)-1]; last.Summary != "Successfully executed action "+h.dep.AlertTopicARN {
		t.Errorf("the alarm's action: %q", last.Summary)
	}
	msgs := h.topicMessages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the topic, want the alarm's one: %+v", len(msgs), msgs)
	}
	if strings.Contains(msgs[0].Message, r.ARN) {
		t.Errorf("the execution's own alert went out: %s", msgs[0].Message)
	}
	if want := `ALARM: "` + name + `" in `; !strings.HasPrefix(msgs[0].Subject, want) {
		t.Errorf("subject %q, want %q…", msgs[0].Subject, want)
	}
	var n struct {
		AlarmName, AlarmArn, AlarmDescription, NewStateValue, OldStateValue, NewStateReason, AWSAccountId string
		AlarmActions                                                                                      []string
		Trigger                                                                                           struct{ Metrics []map[string]any }
	}
	if err := json.Unmarshal([]byte(msgs[0].Message), &n); err != nil {
		t.Fatalf("the message is not an alarm notification: %v\n%s", err, msgs[0].Message)
	}
	if n.AlarmName != name || n.AlarmArn != a.ARN || n.NewStateValue != "ALARM" || n.OldStateValue != "OK" || n.AWSAccountId != h.sb.Server.Account() ||
		!slices.Equal(n.AlarmActions, []string{h.dep.AlertTopicARN}) || len(n.Trigger.Metrics) != 4 {
		t.Errorf("notification %+v", n)
	}
	if !strings.Contains(n.AlarmDescription, "runbook") || !strings.Contains(n.NewStateReason, "Threshold Crossed") {
		t.Errorf("the notification does not say what crossed or where to look: %+v", n)
	}
	// The topic has subscribers for it to reach.
	var topics []snsTopic
	h.sb.AdminCall(t, http.MethodGet, "/sns/topics", nil, &topics)
	if i := slices.IndexFunc(topics, func(tp snsTopic) bool { return tp.ARN == h.dep.AlertTopicARN }); i < 0 || len(topics[i].Subscriptions) == 0 {
		t.Errorf("the alert topic is not there, or has no subscription: %+v", topics)
	}
}

// The reverse, issue 13's finding: without the topic policy's Allow for
// CloudWatch (EnforceSSL's policy replaces SNS's default one), the alarm's
// publish is refused, and the refusal is in the alarm's history. Only a
// sandbox that enforces IAM can show it.
func TestAlarmPublishRefusedWithoutTheTopicPolicyAllow(t *testing.T) {
	t.Parallel()
	opts := fullsandbox.Options{WaitScale: waitScale, EnforceIAM: true}
	d := withAlarms
	d.AnyUser = true
	d.Edit = withoutStatement("AWS::SNS::TopicPolicy", "AllowThisStacksAlarms")
	h := startIn(t, opts, d)
	name := h.executionsFailedAlarm()
	h.awaitAlarm(name, "OK")
	h.failWithoutAlerts()
	a := h.awaitAlarm(name, "ALARM")
	last := a.History[len(a.History)-1]
	refused := strings.Contains(last.Summary, "AuthorizationError") || strings.Contains(last.Summary, "AccessDenied") || strings.Contains(last.Summary, "not authorized")
	if !strings.HasPrefix(last.Summary, "Failed to execute action "+h.dep.AlertTopicARN) || !refused {
		t.Errorf("the alarm's action: %q, want a refusal (not authorized) of the publish to %s", last.Summary, h.dep.AlertTopicARN)
	}
	if msgs := h.topicMessages(); len(msgs) != 0 {
		t.Errorf("%d messages reached the topic: %+v", len(msgs), msgs)
	}
}

// withoutStatement is a template edit that removes the statement with sid
// from every resource of the type's PolicyDocument; it fails the test if
// there is none to remove.
func withoutStatement(typ, sid string) func(testing.TB, []byte) []byte {
	return func(t testing.TB, b []byte) []byte {
		t.Helper()
		var tpl map[string]any
		if err := json.Unmarshal(b, &tpl); err != nil {
			t.Fatalf("template: %v", err)
		}
		removed := 0
		resources, _ := tpl["Resources"].(map[string]any)
		for _, r := range resources {
			res, _ := r.(map[string]any)
			if res["Type"] != typ {
				continue
			}
			props, _ := res["Properties"].(map[string]any)
			doc, _ := props["PolicyDocument"].(map[string]any)
			stmts, _ := doc["Statement"].([]any)
			kept := stmts[:0:0]
			for _, s := range stmts {
				if m, _ := s.(map[string]any); m["Sid"] == sid {
					removed++
					continue
				}
				kept = append(kept, s)
			}
			if doc != nil {
				doc["Statement"] = kept
			}
		}
		if removed == 0 {
			t.Fatalf("the template has no statement %s in a %s", sid, typ)
		}
		out, err := json.Marshal(tpl)
		if err != nil {
			t.Fatalf("template: %v", err)
		}
		return out
	}
}

// snsTopic is a topic as the sandbox's SNS admin API lists it.
type snsTopic struct {
	ARN           string `json:"arn"`
	Subscriptions []any  `json:"subscriptions"`
}

// topicMessages are the messages the alert topic received, oldest first.
func (h *H) topicMessages() []snsMessage {
	h.t.Helper()
	var msgs []snsMessage
	h.sb.AdminCall(h.t, http.MethodGet, "/sns/messages?topic="+url.QueryEscape(h.dep.AlertTopicARN), nil, &msgs)
	return msgs
}
