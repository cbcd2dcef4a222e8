package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/keyrotator/keyrotator/cli/schedule"
)

// checkSchedules finds each rotation's schedule (a schedule that invokes
// this stack's request endpoint, <prefix>-requestrun, with {"schedule":
// <name>, "input": …}, or, deployed before issue 14, starts this state
// machine with the rotation's input, which names it: "requestedBy":
// "schedule <name>", else its user) and checks it is in the
// state the config asks, with its next run. GetSchedule has no next-run
// field (https://docs.aws.amazon.com/scheduler/latest/APIReference/API_GetSchedule.html):
// doctor computes it from the expression in its time zone.
func (d *Doctor) checkSchedules(ctx context.Context, r *Report) {
	type found struct {
		out  *scheduler.GetScheduleOutput
		in   struct{ User, RequestedBy string }
		used bool
	}
	var mine []*found
	p := scheduler.NewListSchedulesPaginator(d.Schedules, &scheduler.ListSchedulesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.add(Finding{Check: "schedules", Subject: d.StateMachineARN, Status: NotChecked, Detail: "cannot list the schedules: " + errText(err),
				Fix: "attach the stack's OperatorPolicy (scheduler:ListSchedules, scheduler:GetSchedule)"})
			return
		}
		for _, s := range page.Schedules {
			if s.Target == nil || !d.isScheduleTarget(aws.ToString(s.Target.Arn)) {
				continue
			}
			out, err := d.Schedules.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: s.Name, GroupName: s.GroupName})
			if err != nil {
				r.add(Finding{Check: "schedules", Subject: aws.ToString(s.Name), Status: NotChecked, Detail: "cannot read it: " + errText(err),
					Fix: "attach the stack's OperatorPolicy (scheduler:GetSchedule)"})
				continue
			}
			f := &found{out: out}
			if out.Target != nil {
				var req struct {
					Schedule string          `json:"schedule"`
					Input    json.RawMessage `json:"input"`
				}
				raw := []byte(aws.ToString(out.Target.Input))
				if json.Unmarshal(raw, &req) == nil && req.Schedule != "" {
					raw = req.Input // requestrun's event: the rotation's input inside
				}
				_ = json.Unmarshal(raw, &f.in)
				if req.Schedule != "" {
					f.in.RequestedBy = "schedule " + req.Schedule // what requestrun signs
				}
			}
			mine = append(mine, f)
		}
	}
	now := d.Now()
	for _, rot := range d.Config.Rotations {
		if rot.Schedule == "sweep" { // issue 15: the fleet sweep starts it; it has no schedule of its own
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: "schedule of " + rot.Input.User, Status: Skipped, Detail: "started by the fleet sweep (schedule \"sweep\"): no schedule of its own"})
			continue
		}
		var sc *found
		for _, f := range mine {
			if !f.used && f.in.RequestedBy == "schedule "+rot.Name {
				sc = f
				break
			}
		}
		for _, f := range mine {
			if sc == nil && !f.used && f.in.User == rot.Input.User {
				sc = f
			}
		}
		subject := "schedule of " + rot.Input.User
		if sc == nil {
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: "no schedule starts this rotation",
				Fix: "deploy the stack from this config (make deploy CONFIG=…): infra makes one schedule per rotation"})
			continue
		}
		sc.used = true
		out := sc.out
		name := aws.ToString(out.Name)
		expr, tz := aws.ToString(out.ScheduleExpression), aws.ToString(out.ScheduleExpressionTimezone)
		subject = "schedule " + name
		sameZone := tz == rot.TimeZone || tz == "" && rot.TimeZone == "UTC"
		if expr != rot.Schedule || !sameZone {
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: Failed,
				Detail: fmt.Sprintf("deployed as %s %s, the config says %s %s", expr, tz, rot.Schedule, rot.TimeZone),
				Fix:    "redeploy the stack from this config (make deploy CONFIG=…)"})
			continue
		}
		switch {
		case out.State == schedtypes.ScheduleStateDisabled && rot.IsEnabled():
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: "DISABLED, while the config enables it: the key is not rotated",
				Fix: "enable it (aws scheduler update-schedule with --state ENABLED and its other settings) or redeploy the stack (make deploy); if it was disabled on purpose, set \"enabled\": false in the config"})
			continue
		case out.State == schedtypes.ScheduleStateDisabled:
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: Skipped, Detail: "disabled, as the config says"})
			continue
		case !rot.IsEnabled():
			r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: Failed, Detail: "ENABLED, while the config disables it",
				Fix: "redeploy the stack from this config (make deploy CONFIG=…)"})
			continue
		}
		r.add(Finding{Check: "schedules", Rotation: rot.Name, Subject: subject, Status: OK, Detail: "enabled, " + nextRun(expr, tz, out, now)})
	}
}

// isScheduleTarget says whether a schedule's target is this stack's: its
// request endpoint (<state machine name>-requestrun, the prefix's) or, in a
// stack deployed before it, the state machine itself.
func (d *Doctor) isScheduleTarget(arn string) bool {
	if arn == d.StateMachineARN {
		return true
	}
	machine := d.StateMachineARN[strings.LastIndex(d.StateMachineARN, ":")+1:]
	return strings.HasPrefix(arn, "arn:") && strings.HasSuffix(arn, ":function:"+machine+"-requestrun")
}

// nextRun says when a schedule runs next, in its time zone.
func nextRun(expr, tz string, out *scheduler.GetScheduleOutput, now time.Time) string {
	s, err := schedule.Parse(expr)
	if err != nil {
		return "next run not computed: " + err.Error()
	}
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return "next run not computed: time zone " + tz + ": " + err.Error()
	}
	after := now
	if out.StartDate != nil && out.StartDate.After(now) {
		after = *out.StartDate
	}
	// A rate schedule runs from its start (or creation) every rate.
	var last time.Time
	if out.StartDate != nil {
		last = *out.StartDate
	} else if out.CreationDate != nil {
		last = *out.CreationDate
	}
	next, ok := s.Next(after, loc, last)
	if !ok {
		return "next run not known"
	}
	if out.EndDate != nil && next.After(*out.EndDate) {
		return "no next run: its end date " + out.EndDate.Format(time.RFC3339) + " has passed"
	}
	return "next run " + next.In(loc).Format("2006-01-02 15:04 MST") + " (" + next.UTC().Format(time.RFC3339) + ")"
}
