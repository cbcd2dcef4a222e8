package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{"AWS::Scheduler::Schedule"} }

// Create implements cfn.Provisioner: AWS::Scheduler::Schedule. Ref is the
// schedule's name; GetAtt Arn.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-scheduler-schedule.html
func (s *Service) Create(_ context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	var p struct {
		Name                       string
		GroupName                  string
		Description                string
		ScheduleExpression         string
		ScheduleExpressionTimezone string
		State                      string
		ActionAfterCompletion      string
		StartDate, EndDate         string
		FlexibleTimeWindow         *FlexibleTimeWindow
		Target                     *Target
	}
	b, err := json.Marshal(r.Properties)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("properties: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return cfn.Provisioned{}, fmt.Errorf("properties: %w", err)
	}
	switch {
	case p.ScheduleExpression == "":
		return cfn.Provisioned{}, fmt.Errorf("ScheduleExpression: required")
	case p.FlexibleTimeWindow == nil:
		return cfn.Provisioned{}, fmt.Errorf("FlexibleTimeWindow: required")
	case p.Target == nil:
		return cfn.Provisioned{}, fmt.Errorf("Target: required")
	}
	if p.Name == "" {
		p.Name = generatedName(r)
	}
	sc := Schedule{Name: p.Name, Group: p.GroupName, Region: r.Region, Description: p.Description,
		Expression: p.ScheduleExpression, Timezone: p.ScheduleExpressionTimezone, State: p.State,
		FlexibleTimeWindow: *p.FlexibleTimeWindow, Target: *p.Target, ActionAfterCompletion: p.ActionAfterCompletion}
	for _, d := range []struct {
		text string
		to   **time.Time
		name string
	}{{p.StartDate, &sc.StartDate, "StartDate"}, {p.EndDate, &sc.EndDate, "EndDate"}} {
		if d.text == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, d.text)
		if err != nil {
			return cfn.Provisioned{}, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.to = &t
	}
	made, err := s.CreateSchedule(sc)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("ScheduleExpression/Target: %w", err)
	}
	return cfn.Provisioned{Ref: made.Name, Attrs: map[string]string{"Arn": made.ARN}}, nil
}

// generatedName is CloudFormation's name for a schedule without one:
// "<stack>-<logical id>-<random>", at most 64 characters.
func generatedName(r cfn.Resource) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	prefix := r.StackName + "-" + r.LogicalID
	if len(prefix) > 64-13 {
		prefix = prefix[:64-13]
	}
	return prefix + "-" + string(b)
}

var _ cfn.Provisioner = (*Service)(nil)
