package cloudwatch

import (
	"context"
	"strconv"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Handle implements sandbox.Service: DescribeAlarms and DescribeAlarmHistory
// over the Query protocol (the protocol of the aws-sdk-go-v2 CloudWatch
// client this workspace pins; later clients speak Smithy RPC v2 CBOR, which
// the sandbox does not).
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "DescribeAlarms":
		return s.describeAlarms(c)
	case "DescribeAlarmHistory":
		return s.describeAlarmHistory(c)
	}
	return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2010-08-01", c.Action)
}

type dimensionXML struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

type metricQueryXML struct {
	ID         string `xml:"Id"`
	Expression string `xml:"Expression,omitempty"`
	Label      string `xml:"Label,omitempty"`
	ReturnData bool   `xml:"ReturnData"`
	MetricStat *struct {
		Metric struct {
			Namespace  string         `xml:"Namespace"`
			MetricName string         `xml:"MetricName"`
			Dimensions []dimensionXML `xml:"Dimensions>member"`
		} `xml:"Metric"`
		Period int    `xml:"Period"`
		Stat   string `xml:"Stat"`
	} `xml:"MetricStat,omitempty"`
}

type alarmXML struct {
	AlarmName                          string           `xml:"AlarmName"`
	AlarmArn                           string           `xml:"AlarmArn"`
	AlarmDescription                   string           `xml:"AlarmDescription,omitempty"`
	AlarmConfigurationUpdatedTimestamp sandbox.ISOTime  `xml:"AlarmConfigurationUpdatedTimestamp"`
	ActionsEnabled                     bool             `xml:"ActionsEnabled"`
	OKActions                          []string         `xml:"OKActions>member"`
	AlarmActions                       []string         `xml:"AlarmActions>member"`
	InsufficientDataActions            []string         `xml:"InsufficientDataActions>member"`
	StateValue                         string           `xml:"StateValue"`
	StateReason                        string           `xml:"StateReason"`
	StateUpdatedTimestamp              sandbox.ISOTime  `xml:"StateUpdatedTimestamp"`
	StateTransitionedTimestamp         sandbox.ISOTime  `xml:"StateTransitionedTimestamp"`
	MetricName                         string           `xml:"MetricName,omitempty"`
	Namespace                          string           `xml:"Namespace,omitempty"`
	Statistic                          string           `xml:"Statistic,omitempty"`
	Dimensions                         []dimensionXML   `xml:"Dimensions>member"`
	Period                             int              `xml:"Period,omitempty"`
	EvaluationPeriods                  int              `xml:"EvaluationPeriods"`
	DatapointsToAlarm                  int              `xml:"DatapointsToAlarm"`
	Threshold                          float64          `xml:"Threshold"`
	ComparisonOperator                 string           `xml:"ComparisonOperator"`
	TreatMissingData                   string           `xml:"TreatMissingData"`
	Metrics                            []metricQueryXML `xml:"Metrics>member"`
}

func toXML(a MetricAlarm) alarmXML {
	x := alarmXML{AlarmName: a.Name, AlarmArn: a.ARN, AlarmDescription: a.Description,
		AlarmConfigurationUpdatedTimestamp: sandbox.ISOTime(a.ConfigUpdated), ActionsEnabled: a.ActionsEnabled,
		OKActions: a.OKActions, AlarmActions: a.AlarmActions, InsufficientDataActions: a.InsufficientDataActions,
		StateValue: a.State, StateReason: a.StateReason, StateUpdatedTimestamp: sandbox.ISOTime(a.StateUpdated),
		StateTransitionedTimestamp: sandbox.ISOTime(a.StateUpdated), EvaluationPeriods: a.EvaluationPeriods,
		DatapointsToAlarm: a.DatapointsToAlarm, Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator,
		TreatMissingData: a.TreatMissingData}
	if a.MetricName != "" {
		x.MetricName, x.Namespace, x.Statistic, x.Period = a.MetricName, a.Namespace, a.Statistic, a.Period
		for _, d := range a.Dimensions {
			x.Dimensions = append(x.Dimensions, dimensionXML(d))
		}
	}
	for _, m := range a.Metrics {
		q := metricQueryXML{ID: m.ID, Expression: m.Expression, Label: m.Label, ReturnData: m.ReturnData == nil || *m.ReturnData}
		if ms := m.MetricStat; ms != nil {
			q.MetricStat = &struct {
				Metric struct {
					Namespace  string         `xml:"Namespace"`
					MetricName string         `xml:"MetricName"`
					Dimensions []dimensionXML `xml:"Dimensions>member"`
				} `xml:"Metric"`
				Period int    `xml:"Period"`
				Stat   string `xml:"Stat"`
			}{Period: ms.Period, Stat: ms.Stat}
			q.MetricStat.Metric.Namespace, q.MetricStat.Metric.MetricName = ms.Metric.Namespace, ms.Metric.MetricName
			for _, d := range ms.Metric.Dimensions {
				q.MetricStat.Metric.Dimensions = append(q.MetricStat.Metric.Dimensions, dimensionXML(d))
			}
		}
		x.Metrics = append(x.Metrics, q)
	}
	return x
}

// describeAlarms filters by AlarmNames, AlarmNamePrefix, StateValue and
// ActionPrefix, paged by MaxRecords (1–100) and NextToken.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
func (s *Service) describeAlarms(c *sandbox.Call) (any, error) {
	names := sandbox.MemberValues(c.Params, "AlarmNames.member")
	prefix, state, actionPrefix := c.Params.Get("AlarmNamePrefix"), c.Params.Get("StateValue"), c.Params.Get("ActionPrefix")
	if len(names) > 0 && prefix != "" {
		return nil, validation("AlarmNames and AlarmNamePrefix cannot be given together")
	}
	switch state {
	case "", OK, Alarm, InsufficientData:
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]", state)
	}
	maxRecords := 50
	if v := c.Params.Get("MaxRecords"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, validation("MaxRecords must be between 1 and 100")
		}
		maxRecords = n
	}
	var match []alarmXML
	for _, a := range s.Alarms() {
		if a.Region != c.Region || (len(names) > 0 && !contains(names, a.Name)) || !strings.HasPrefix(a.Name, prefix) ||
			(state != "" && a.State != state) || (actionPrefix != "" && !anyPrefix(actionPrefix, a.AlarmActions, a.OKActions, a.InsufficientDataActions)) {
			continue
		}
		match = append(match, toXML(a))
	}
	start := 0
	if tok := c.Params.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(match) {
			return nil, sandbox.Errorf(400, "InvalidNextToken", "The service couldn't process the NextToken.")
		}
		start = n
	}
	end := min(len(match), start+maxRecords)
	out := struct {
		MetricAlarms    []alarmXML `xml:"MetricAlarms>member"`
		CompositeAlarms struct{}   `xml:"CompositeAlarms"`
		NextToken       string     `xml:"NextToken,omitempty"`
	}{MetricAlarms: match[start:end]}
	if end < len(match) {
		out.NextToken = strconv.Itoa(end)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// anyPrefix says whether an action of any list starts with prefix.
func anyPrefix(prefix string, lists ...[]string) bool {
	for _, l := range lists {
		for _, a := range l {
			if strings.HasPrefix(a, prefix) {
				return true
			}
		}
	}
	return false
}

func (s *Service) describeAlarmHistory(c *sandbox.Call) (any, error) {
	name, typ := c.Params.Get("AlarmName"), c.Params.Get("HistoryItemType")
	type itemXML struct {
		AlarmName       string          `xml:"AlarmName"`
		AlarmType       string          `xml:"AlarmType"`
		Timestamp       sandbox.ISOTime `xml:"Timestamp"`
		HistoryItemType string          `xml:"HistoryItemType"`
		HistorySummary  string          `xml:"HistorySummary"`
		HistoryData     string          `xml:"HistoryData,omitempty"`
	}
	out := struct {
		Items []itemXML `xml:"AlarmHistoryItems>member"`
	}{Items: []itemXML{}}
	for _, a := range s.Alarms() {
		if a.Region != c.Region || (name != "" && a.Name != name) {
			continue
		}
		for i := len(a.History) - 1; i >= 0; i-- { // newest first
			h := a.History[i]
			if typ == "" || h.Type == typ {
				out.Items = append(out.Items, itemXML{a.Name, "MetricAlarm", sandbox.ISOTime(h.Timestamp), h.Type, h.Summary, h.Data})
			}
		}
	}
	return out, nil
}
