package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/infra/config"
	"github.com/keyrotator/keyrotator/infra/rotator"
)

// The weekly audit: its schedule invokes the audit function, whose role may
// read every user's keys and tags and the credential report, and publish
// to the alert topic: nothing else.
func TestAuditDeployment(t *testing.T) {
	_, tmpl, rot := synth(t)
	if _, ok := rot.Functions[tasks.Audit.Function()]; !ok {
		t.Fatal("no audit function")
	}
	var found bool
	for _, res := range *tmpl.FindResources(jsii.String("AWS::Scheduler::Schedule"), nil) {
		var r struct{ Properties map[string]any }
		raw, _ := json.Marshal(res)
		_ = json.Unmarshal(raw, &r)
		props := r.Properties
		if props["ScheduleExpression"] != rotator.AuditSchedule {
			continue
		}
		found = true
		target := props["Target"].(map[string]any)
		b, _ := json.Marshal(target)
		if props["ScheduleExpressionTimezone"] != "Etc/UTC" || !strings.Contains(string(b), "RotatorAudit") || target["Input"] != "{}" || target["DeadLetterConfig"] == nil {
			t.Errorf("audit schedule %v", props)
		}
	}
	if !found {
		t.Errorf("no schedule %s", rotator.AuditSchedule)
	}
	var actions []string
	for id, res := range *tmpl.FindResources(jsii.String("AWS::IAM::Policy"), nil) {
		b, _ := json.Marshal(res)
		if !strings.Contains(string(b), "RotatorAuditRole") || strings.Contains(id, "Scheduler") {
			continue
		}
		var pol struct {
			Properties struct {
				PolicyDocument struct {
					Statement []struct {
						Action   any
						Resource any
					}
				}
			}
		}
		_ = json.Unmarshal(b, &pol)
		for _, s := range pol.Properties.PolicyDocument.Statement {
			switch a := s.Action.(type) {
			case string:
				actions = append(actions, a)
			case []any:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
		}
	}
	slices.Sort(actions)
	actions = slices.Compact(actions)
	want := []string{"iam:GenerateCredentialReport", "iam:GetAccessKeyLastUsed", "iam:GetCredentialReport", "iam:ListAccessKeys", "iam:ListUserTags",
		"kms:Decrypt", "kms:GenerateDataKey*", "logs:CreateLogStream", "logs:PutLogEvents", "sns:Publish",
		"sts:AssumeRole", // issue 15: the member accounts the rotations name (TestMemberAssumeRoleGrants holds it to their roles)
		"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
	if !slices.Equal(actions, want) {
		t.Errorf("the audit role may %v, want %v", actions, want)
	}
}

// With ownerTopics (edgeConfig has one: its synth is shared with the
// other tests), the Notify role may publish to exactly those topics
// (beside the alert topic), and the function knows them.
func TestOwnerTopicsGrant(t *testing.T) {
	const topic = "arn:aws:sns:ap-northeast-1:111122223333:team-a"
	_, tmpl, _ := synthWith(t, edgeConfig, nil)
	b, _ := json.Marshal(tmpl.ToJSON())
	var doc struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	_ = json.Unmarshal(b, &doc)
	var granted []string
	for id, r := range doc.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		raw, _ := json.Marshal(r.Properties)
		if strings.Contains(string(raw), topic) {
			granted = append(granted, id)
		}
	}
	if len(granted) != 1 || !strings.HasPrefix(granted[0], "RotatorNotifyRole") {
		t.Errorf("policies granting the owner topic: %v, want the Notify role's only", granted)
	}
	var env bool
	for id, r := range doc.Resources {
		if r.Type == "AWS::Lambda::Function" && strings.HasPrefix(id, "RotatorNotify") {
			raw, _ := json.Marshal(r.Properties["Environment"])
			env = strings.Contains(string(raw), `"OWNER_TOPICS":"`+topic+`"`)
		}
	}
	if !env {
		t.Error("the notify function has no OWNER_TOPICS")
	}
	if _, err := config.Parse([]byte(strings.Replace(testConfig, `{"runbookUrl"`, `{"ownerTopics":["team-a@example.com"],"runbookUrl"`, 1))); err == nil || !strings.Contains(err.Error(), "ownerTopics[0]") {
		t.Errorf("an e-mail address in ownerTopics: %v, want refused", err)
	}
}
