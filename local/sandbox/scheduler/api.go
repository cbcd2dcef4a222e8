package scheduler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Route implements sandbox.Router: GET /schedules/{Name} is GetSchedule,
// GET /schedules is ListSchedules.
// https://docs.aws.amazon.com/scheduler/latest/APIReference/API_GetSchedule.html
func (s *Service) Route(r *http.Request) (action, resource string, ok bool) {
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/schedules")
	if !found || r.Method != http.MethodGet {
		return "", "", false
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return "ListSchedules", "", true
	}
	name, err := url.PathUnescape(rest)
	if err != nil || strings.Contains(name, "/") {
		return "", "", false
	}
	return "GetSchedule", name, true
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	q := c.HTTP.URL.Query()
	switch c.Action {
	case "GetSchedule":
		sc, err := s.Get(q.Get("groupName"), c.Resource)
		if err != nil {
			return nil, err
		}
		c.Touch("AWS::Scheduler::Schedule", sc.ARN)
		c.RequestParameters(map[string]any{"name": sc.Name, "groupName": sc.Group})
		return raw(scheduleJSON(sc))
	case "ListSchedules":
		return s.list(c, q)
	}
	return nil, sandbox.Errorf(404, "UnknownOperationException", "Unknown operation %s", c.Action)
}

func raw(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &sandbox.Raw{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// scheduleJSON is GetSchedule's answer.
func scheduleJSON(sc Schedule) map[string]any {
	out := map[string]any{
		"Arn": sc.ARN, "Name": sc.Name, "GroupName": sc.Group, "State": sc.State,
		"ScheduleExpression": sc.Expression, "ScheduleExpressionTimezone": sc.Timezone,
		"FlexibleTimeWindow": sc.FlexibleTimeWindow, "Target": sc.Target,
		"CreationDate": sandbox.EpochTime(sc.Created), "LastModificationDate": sandbox.EpochTime(sc.Modified),
		"ActionAfterCompletion": "NONE",
	}
	if sc.Description != "" {
		out["Description"] = sc.Description
	}
	if sc.ActionAfterCompletion != "" {
		out["ActionAfterCompletion"] = sc.ActionAfterCompletion
	}
	if sc.StartDate != nil {
		out["StartDate"] = sandbox.EpochTime(*sc.StartDate)
	}
	if sc.EndDate != nil {
		out["EndDate"] = sandbox.EpochTime(*sc.EndDate)
	}
	return out
}

// list is ListSchedules: filtered by GroupName (the query's ScheduleGroup),
// NamePrefix and State, paged by MaxResults (1–100) and NextToken.
// https://docs.aws.amazon.com/scheduler/latest/APIReference/API_ListSchedules.html
func (s *Service) list(c *sandbox.Call, q url.Values) (any, error) {
	maxResults := 100
	if v := q.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, validation("1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", v)
		}
		maxResults = n
	}
	if st := q.Get("State"); st != "" && st != Enabled && st != Disabled {
		return nil, validation("1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]", st)
	}
	var items []map[string]any
	for _, sc := range s.Schedules() {
		if sc.Region != c.Region ||
			(q.Get("ScheduleGroup") != "" && sc.Group != q.Get("ScheduleGroup")) ||
			(q.Get("NamePrefix") != "" && !strings.HasPrefix(sc.Name, q.Get("NamePrefix"))) ||
			(q.Get("State") != "" && sc.State != q.Get("State")) {
			continue
		}
		items = append(items, map[string]any{
			"Arn": sc.ARN, "Name": sc.Name, "GroupName": sc.Group, "State": sc.State,
			"CreationDate": sandbox.EpochTime(sc.Created), "LastModificationDate": sandbox.EpochTime(sc.Modified),
			"Target": map[string]string{"Arn": sc.Target.Arn},
		})
	}
	start := 0
	if tok := q.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(items) {
			return nil, validation("Invalid NextToken")
		}
		start = n
	}
	end := min(len(items), start+maxResults)
	out := map[string]any{"Schedules": append([]map[string]any{}, items[start:end]...)}
	if end < len(items) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return raw(out)
}

var _ sandbox.Router = (*Service)(nil)
