// Package cloudwatch is the sandbox's CloudWatch alarms (signing name
// monitoring): metric alarms, on one metric or on a metric math expression,
// that the sandbox EVALUATES on its clock from what its own services report
// — Step Functions' closed executions (AWS/States ExecutionsFailed,
// ExecutionsTimedOut, ExecutionsAborted, ExecutionsSucceeded by
// StateMachineArn) and SQS's visible messages (AWS/SQS
// ApproximateNumberOfMessagesVisible by QueueName). On a change of state
// the alarm runs its actions: an SNS topic is published to AS the service
// principal cloudwatch.amazonaws.com, with aws:SourceArn (the alarm) and
// aws:SourceAccount in the request's context, so a topic policy and a KMS
// key policy can be checked against it; a failed publish is kept in the
// alarm's history, as CloudWatch records it. DescribeAlarms and
// DescribeAlarmHistory answer over the Query protocol. Alarms are made by
// CloudFormation (AWS::CloudWatch::Alarm, provision.go).
package cloudwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

// Alarm states.
const (
	OK               = "OK"
	Alarm            = "ALARM"
	InsufficientData = "INSUFFICIENT_DATA"
)

// ServicePrincipal is who CloudWatch's alarm actions come from: the service
// itself, not a role (CloudTrail's userIdentity type AWSService). An IAM
// evaluator matches it against a policy's {"Service": ARN} principal.
var ServicePrincipal = sandbox.Principal{Type: "AWSService", ARN: "cloudwatch.amazonaws.com", UserName: "cloudwatch.amazonaws.com"}

// Service is the CloudWatch service.
type Service struct {
	srv *sandbox.Server

	mu      sync.Mutex
	st      state
	samples map[string][]sample // gauge samples by metric key, for past periods

	evalMu sync.Mutex // one evaluation at a time
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	subbed bool // told of Step Functions' closed executions
}

type state struct {
	Alarms map[string]*MetricAlarm `json:"alarms"` // by name
}

type sample struct {
	at time.Time
	v  float64
}

// MetricAlarm is an alarm, its state and its history.
type MetricAlarm struct {
	Name                    string        `json:"name"`
	ARN                     string        `json:"arn"`
	Region                  string        `json:"region"`
	Description             string        `json:"description,omitempty"`
	ActionsEnabled          bool          `json:"actionsEnabled"`
	AlarmActions            []string      `json:"alarmActions,omitempty"`
	OKActions               []string      `json:"okActions,omitempty"`
	InsufficientDataActions []string      `json:"insufficientDataActions,omitempty"`
	MetricName              string        `json:"metricName,omitempty"`
	Namespace               string        `json:"namespace,omitempty"`
	Statistic               string        `json:"statistic,omitempty"`
	Dimensions              []Dimension   `json:"dimensions,omitempty"`
	Period                  int           `json:"period,omitempty"`
	Metrics                 []MetricQuery `json:"metrics,omitempty"`
	EvaluationPeriods       int           `json:"evaluationPeriods"`
	DatapointsToAlarm       int           `json:"datapointsToAlarm,omitempty"`
	Threshold               float64       `json:"threshold"`
	ComparisonOperator      string        `json:"comparisonOperator"`
	TreatMissingData        string        `json:"treatMissingData,omitempty"`
	State                   string        `json:"state"`
	StateReason             string        `json:"stateReason"`
	StateReasonData         string        `json:"stateReasonData,omitempty"`
	StateUpdated            time.Time     `json:"stateUpdated"`
	ConfigUpdated           time.Time     `json:"configUpdated"`
	History                 []HistoryItem `json:"history,omitempty"`
}

// Dimension is a metric's dimension.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// MetricQuery is one entry of an alarm's Metrics: a metric (MetricStat) or
// an expression over the others' ids.
type MetricQuery struct {
	ID         string      `json:"Id"`
	Expression string      `json:"Expression,omitempty"`
	Label      string      `json:"Label,omitempty"`
	ReturnData *bool       `json:"ReturnData,omitempty"`
	MetricStat *MetricStat `json:"MetricStat,omitempty"`
	Period     int         `json:"Period,omitempty"`
}

// MetricStat is a metric with its period and statistic.
type MetricStat struct {
	Metric struct {
		MetricName string      `json:"MetricName"`
		Namespace  string      `json:"Namespace"`
		Dimensions []Dimension `json:"Dimensions,omitempty"`
	} `json:"Metric"`
	Period int    `json:"Period"`
	Stat   string `json:"Stat"`
}

// HistoryItem is an entry of DescribeAlarmHistory.
type HistoryItem struct {
	Timestamp time.Time `json:"timestamp"`
	Type      string    `json:"type"` // StateUpdate, Action, ConfigurationUpdate
	Summary   string    `json:"summary"`
	Data      string    `json:"data,omitempty"`
}

// New returns a CloudWatch without alarms; its evaluation loop runs until Close.
func New(srv *sandbox.Server) *Service {
	s := &Service{srv: srv, st: state{Alarms: map[string]*MetricAlarm{}}, samples: map[string][]sample{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	moved, stopWatch := srv.Clock().Watch()
	go func() {
		defer close(s.done)
		defer stopWatch()
		tick := time.NewTicker(time.Minute) // CloudWatch evaluates alarms every minute
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-moved:
			case <-s.wake:
			case <-tick.C:
			}
			s.Evaluate(context.Background())
			// While Waits flow the clock it moves many times a second; an
			// evaluation every few milliseconds of real time is enough.
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return s
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "monitoring", Namespace: "cloudwatch", Protocol: sandbox.Query,
		XMLNamespace: "http://monitoring.amazonaws.com/doc/2010-08-01/", EventSource: "monitoring.amazonaws.com"}
}

// Close implements sandbox.Closer.
func (s *Service) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.st)
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.Alarms == nil {
		st.Alarms = map[string]*MetricAlarm{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.poke()
	return nil
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// executions is what Step Functions tells CloudWatch (stepfunctions/metrics.go).
type executions interface {
	ExecutionsEnded(machine, status string, from, to time.Time) int
	OnExecutionEnd(func(stepfunctions.ExecutionEnd))
}

// queues is what SQS tells CloudWatch.
type queues interface {
	Visible(region, name string) (int, bool)
}

// subscribe asks Step Functions to say when an execution closes, once.
func (s *Service) subscribe() {
	svc, ok := s.srv.Service("states")
	ex, ok2 := svc.(executions)
	if !ok || !ok2 {
		return
	}
	s.mu.Lock()
	done := s.subbed
	s.subbed = true
	s.mu.Unlock()
	if !done {
		ex.OnExecutionEnd(func(stepfunctions.ExecutionEnd) { s.poke() })
	}
}

// PutAlarm adds or replaces an alarm (PutMetricAlarm's semantics: the state
// starts at INSUFFICIENT_DATA and is evaluated at once).
func (s *Service) PutAlarm(a MetricAlarm) (MetricAlarm, error) {
	if err := validate(&a); err != nil {
		return MetricAlarm{}, err
	}
	now := s.srv.Clock().Now()
	a.ARN = fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", a.Region, s.srv.Account(), a.Name)
	a.State, a.StateReason, a.StateUpdated, a.ConfigUpdated = InsufficientData, "Unchecked: Initial alarm creation", now, now
	a.History = []HistoryItem{{Timestamp: now, Type: "ConfigurationUpdate", Summary: fmt.Sprintf("Alarm %q created", a.Name)}}
	s.mu.Lock()
	cp := a
	s.st.Alarms[a.Name] = &cp
	s.mu.Unlock()
	s.subscribe()
	s.srv.MarkDirty()
	s.Evaluate(context.Background())
	return s.Alarm(a.Name)
}

// Alarm is an alarm by name, with its history.
func (s *Service) Alarm(name string) (MetricAlarm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.st.Alarms[name]
	if !ok {
		return MetricAlarm{}, sandbox.Errorf(404, "ResourceNotFound", "Alarm %s does not exist", name)
	}
	return a.copy(), nil
}

// Alarms lists every alarm, by name.
func (s *Service) Alarms() []MetricAlarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []MetricAlarm{}
	for _, a := range s.st.Alarms {
		out = append(out, a.copy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (a *MetricAlarm) copy() MetricAlarm {
	cp := *a
	cp.History = append([]HistoryItem(nil), a.History...)
	return cp
}

func validation(format string, args ...any) error {
	return sandbox.Errorf(400, "ValidationError", format, args...)
}

// validate checks an alarm as PutMetricAlarm would, and that the sandbox can
// evaluate it.
func validate(a *MetricAlarm) error {
	if a.Name == "" {
		return validation("AlarmName is required")
	}
	switch a.ComparisonOperator {
	case "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold":
	default:
		return validation("ComparisonOperator %q: the sandbox evaluates static thresholds only", a.ComparisonOperator)
	}
	if a.EvaluationPeriods < 1 {
		return validation("EvaluationPeriods must be at least 1")
	}
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	if a.DatapointsToAlarm > a.EvaluationPeriods {
		return validation("DatapointsToAlarm must be at most EvaluationPeriods")
	}
	switch a.TreatMissingData {
	case "":
		a.TreatMissingData = "missing"
	case "missing", "notBreaching", "breaching", "ignore":
	default:
		return validation("TreatMissingData %q", a.TreatMissingData)
	}
	if (a.MetricName != "") == (len(a.Metrics) > 0) {
		return validation("Exactly one of MetricName and Metrics must be given")
	}
	if a.MetricName != "" {
		if a.Namespace == "" || a.Period <= 0 || a.Statistic == "" {
			return validation("Namespace, Period and Statistic are required with MetricName")
		}
		return nil
	}
	returned, ids := 0, map[string]bool{}
	for _, m := range a.Metrics {
		ids[m.ID] = true
	}
	for _, m := range a.Metrics {
		if m.ReturnData == nil || *m.ReturnData {
			returned++
		}
		switch {
		case m.Expression != "":
			e, err := parseExpr(m.Expression)
			if err != nil {
				return validation("Metrics %s: Expression: %v", m.ID, err)
			}
			used := map[string]bool{}
			e.ids(used)
			for id := range used {
				if !ids[id] {
					return validation("Metrics %s: Expression names %s, which is no metric of the alarm", m.ID, id)
				}
			}
		case m.MetricStat != nil:
			if m.MetricStat.Period <= 0 || m.MetricStat.Stat == "" {
				return validation("Metrics %s: MetricStat needs Period and Stat", m.ID)
			}
			if a.Period == 0 {
				a.Period = m.MetricStat.Period
			}
		default:
			return validation("Metrics %s: Expression or MetricStat is required", m.ID)
		}
	}
	if returned != 1 {
		return validation("Exactly one element of the Metrics list should return data.")
	}
	if a.Period == 0 {
		a.Period = 300
	}
	return nil
}

// Evaluate evaluates every alarm now and runs the actions of those whose
// state changed. The loop calls it on every clock move, every closed
// execution and every minute; tests may call it too.
func (s *Service) Evaluate(ctx context.Context) {
	s.subscribe()
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	now := s.srv.Clock().Now()
	type change struct {
		name, old string
		alarm     MetricAlarm
		actions   []string
	}
	var changes []change
	s.mu.Lock()
	names := make([]string, 0, len(s.st.Alarms))
	for n := range s.st.Alarms {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		s.mu.Lock()
		a, ok := s.st.Alarms[n]
		var cp MetricAlarm
		if ok {
			cp = a.copy()
		}
		s.mu.Unlock()
		if !ok {
			continue
		}
		points := s.datapoints(&cp, now) // outside s.mu: it asks other services
		st, reason, data := decide(&cp, points, now)
		s.mu.Lock()
		a, ok = s.st.Alarms[n]
		if !ok || st == a.State {
			s.mu.Unlock()
			continue
		}
		old := a.State
		a.State, a.StateReason, a.StateReasonData, a.StateUpdated = st, reason, data, now
		a.History = append(a.History, HistoryItem{Timestamp: now, Type: "StateUpdate",
			Summary: fmt.Sprintf("Alarm updated from %s to %s", old, st),
			Data:    historyData(old, st, reason)})
		var acts []string
		if a.ActionsEnabled {
			switch st {
			case Alarm:
				acts = a.AlarmActions
			case OK:
				acts = a.OKActions
			default:
				acts = a.InsufficientDataActions
			}
		}
		changes = append(changes, change{name: n, old: old, alarm: a.copy(), actions: append([]string(nil), acts...)})
		s.mu.Unlock()
		s.srv.MarkDirty()
	}
	for _, c := range changes {
		for _, action := range c.actions {
			summary, err := s.act(ctx, c.alarm, c.old, action)
			item := HistoryItem{Timestamp: s.srv.Clock().Now(), Type: "Action", Summary: summary}
			if err != nil {
				item.Summary = fmt.Sprintf("Failed to execute action %s. Received error: %q", action, err.Error())
			}
			s.mu.Lock()
			if a, ok := s.st.Alarms[c.name]; ok {
				a.History = append(a.History, item)
			}
			s.mu.Unlock()
		}
	}
}

func historyData(old, st, reason string) string {
	b, _ := json.Marshal(map[string]any{"version": "1.0", "oldState": map[string]string{"stateValue": old},
		"newState": map[string]string{"stateValue": st, "stateReason": reason}})
	return string(b)
}

// datapoints are the alarm's values for its last EvaluationPeriods periods,
// the current (still open) one first. Periods are aligned to the period
// since the epoch, as CloudWatch aligns them.
func (s *Service) datapoints(a *MetricAlarm, now time.Time) []datapoint {
	p := time.Duration(a.Period) * time.Second
	cur := now.Truncate(p)
	out := make([]datapoint, a.EvaluationPeriods)
	for k := range out {
		start := cur.Add(-time.Duration(k) * p)
		if a.MetricName != "" {
			out[k] = s.metric(a.Region, a.Namespace, a.MetricName, a.Statistic, a.Dimensions, start, p, now)
			continue
		}
		vals := map[string]datapoint{}
		var exprs []MetricQuery
		for _, m := range a.Metrics {
			if m.MetricStat != nil {
				ms := m.MetricStat
				vals[m.ID] = s.metric(a.Region, ms.Metric.Namespace, ms.Metric.MetricName, ms.Stat, ms.Metric.Dimensions, start, p, now)
			} else {
				exprs = append(exprs, m)
			}
		}
		// Expressions may name each other: evaluate until nothing changes.
		for range exprs {
			for _, m := range exprs {
				e, err := parseExpr(m.Expression)
				if err != nil {
					continue
				}
				vals[m.ID] = e.eval(vals).point()
			}
		}
		for _, m := range a.Metrics {
			if m.ReturnData == nil || *m.ReturnData {
				out[k] = vals[m.ID]
			}
		}
	}
	return out
}

// stepFunctionsMetric maps AWS/States metric names to execution statuses.
var stepFunctionsMetric = map[string]string{
	"ExecutionsFailed": stepfunctions.Failed, "ExecutionsTimedOut": stepfunctions.TimedOut,
	"ExecutionsAborted": stepfunctions.Aborted, "ExecutionsSucceeded": stepfunctions.Succeeded,
}

// metric is one metric's datapoint for the period starting at start.
func (s *Service) metric(region, namespace, name, stat string, dims []Dimension, start time.Time, p time.Duration, now time.Time) datapoint {
	dim := func(n string) string {
		for _, d := range dims {
			if d.Name == n {
				return d.Value
			}
		}
		return ""
	}
	switch {
	case namespace == "AWS/States" && stepFunctionsMetric[name] != "" && dim("StateMachineArn") != "":
		svc, ok := s.srv.Service("states")
		ex, ok2 := svc.(executions)
		if !ok || !ok2 {
			return datapoint{}
		}
		n := ex.ExecutionsEnded(dim("StateMachineArn"), stepFunctionsMetric[name], start.Add(-time.Nanosecond), start.Add(p-time.Nanosecond))
		if n == 0 {
			// Step Functions publishes a datapoint only when an execution
			// closes so: a period without one has no datapoint.
			return datapoint{}
		}
		switch stat {
		case "Sum", "SampleCount":
			return datapoint{float64(n), true}
		}
		return datapoint{1, true} // each datapoint is 1: Maximum, Minimum, Average
	case namespace == "AWS/SQS" && name == "ApproximateNumberOfMessagesVisible" && dim("QueueName") != "":
		key := region + "/" + dim("QueueName")
		if !start.After(now) && now.Before(start.Add(p)) { // the open period: sample now
			if svc, ok := s.srv.Service("sqs"); ok {
				if q, ok := svc.(queues); ok {
					if v, ok := q.Visible(region, dim("QueueName")); ok {
						s.mu.Lock()
						s.samples[key] = append(trimSamples(s.samples[key], now), sample{now, float64(v)})
						s.mu.Unlock()
					}
				}
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var vs []float64
		for _, sm := range s.samples[key] {
			if !sm.at.Before(start) && sm.at.Before(start.Add(p)) {
				vs = append(vs, sm.v)
			}
		}
		return statOf(stat, vs)
	}
	return datapoint{}
}

// trimSamples keeps a day of samples.
func trimSamples(ss []sample, now time.Time) []sample {
	i := 0
	for i < len(ss) && now.Sub(ss[i].at) > 24*time.Hour {
		i++
	}
	return ss[i:]
}

func statOf(stat string, vs []float64) datapoint {
	if len(vs) == 0 {
		return datapoint{}
	}
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	switch stat {
	case "Sum":
		return datapoint{sum, true}
	case "Minimum":
		return datapoint{lo, true}
	case "Maximum":
		return datapoint{hi, true}
	case "SampleCount":
		return datapoint{float64(len(vs)), true}
	}
	return datapoint{sum / float64(len(vs)), true}
}

// decide is the alarm's state for its datapoints: ALARM when at least
// DatapointsToAlarm of them breach, missing ones counted per
// TreatMissingData.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
func decide(a *MetricAlarm, points []datapoint, now time.Time) (st, reason, data string) {
	breaching, missing := 0, 0
	var shown []string
	for i, d := range points {
		if !d.ok {
			missing++
			if a.TreatMissingData == "breaching" {
				breaching++
			}
			continue
		}
		if breaches(a.ComparisonOperator, d.v, a.Threshold) {
			breaching++
		}
		at := now.Truncate(time.Duration(a.Period) * time.Second).Add(-time.Duration(i*a.Period) * time.Second)
		shown = append(shown, fmt.Sprintf("%.1f (%s)", d.v, at.UTC().Format("02/01/06 15:04:05")))
	}
	n := len(points)
	op := operatorWords[a.ComparisonOperator]
	switch {
	case breaching >= a.DatapointsToAlarm:
		return Alarm, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was %s the threshold (%.1f) (minimum %d datapoint for OK -> ALARM transition).",
			breaching, n, strings.Join(shown, ", "), op, a.Threshold, a.DatapointsToAlarm), ""
	case missing == n && a.TreatMissingData == "missing":
		return InsufficientData, fmt.Sprintf("Insufficient Data: %d datapoint was unknown.", n), ""
	case missing == n && a.TreatMissingData == "ignore":
		return a.State, a.StateReason, a.StateReasonData
	case missing == n:
		return OK, fmt.Sprintf("Threshold Crossed: no datapoints were received for %d period and %d missing datapoint was treated as [NonBreaching].", n, n), ""
	}
	return OK, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was not %s the threshold (%.1f) (minimum %d datapoint for ALARM -> OK transition).",
		n-breaching, n, strings.Join(shown, ", "), op, a.Threshold, 1), ""
}

var operatorWords = map[string]string{
	"GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
	"LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to",
}

func breaches(op string, v, threshold float64) bool {
	switch op {
	case "GreaterThanOrEqualToThreshold":
		return v >= threshold
	case "GreaterThanThreshold":
		return v > threshold
	case "LessThanThreshold":
		return v < threshold
	}
	return v <= threshold
}

// regionNames are the names alarm notifications give regions.
var regionNames = map[string]string{
	"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
	"us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)",
	"ap-northeast-1": "Asia Pacific (Tokyo)", "ap-southeast-1": "Asia Pacific (Singapore)", "ap-southeast-2": "Asia Pacific (Sydney)",
}

// Notification is the JSON an alarm's SNS notification carries, in the
// shape AWS sends (AlarmName, NewStateValue, NewStateReason,
// StateChangeTime, Trigger…).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
func Notification(a MetricAlarm, old, account string) ([]byte, string) {
	region := regionNames[a.Region]
	if region == "" {
		region = a.Region
	}
	trigger := map[string]any{"Period": a.Period, "EvaluationPeriods": a.EvaluationPeriods, "DatapointsToAlarm": a.DatapointsToAlarm,
		"ComparisonOperator": a.ComparisonOperator, "Threshold": a.Threshold, "TreatMissingData": a.TreatMissingData,
		"EvaluateLowSampleCountPercentile": ""}
	if a.MetricName != "" {
		dims := []map[string]string{}
		for _, d := range a.Dimensions {
			dims = append(dims, map[string]string{"value": d.Value, "name": d.Name})
		}
		trigger["MetricName"], trigger["Namespace"], trigger["StatisticType"] = a.MetricName, a.Namespace, "Statistic"
		trigger["Statistic"], trigger["Unit"], trigger["Dimensions"] = strings.ToUpper(a.Statistic), nil, dims
	} else {
		ms := []map[string]any{}
		for _, m := range a.Metrics {
			e := map[string]any{"Id": m.ID, "ReturnData": m.ReturnData == nil || *m.ReturnData}
			if m.Expression != "" {
				e["Expression"], e["Label"] = m.Expression, m.Label
			} else {
				dims := []map[string]string{}
				for _, d := range m.MetricStat.Metric.Dimensions {
					dims = append(dims, map[string]string{"value": d.Value, "name": d.Name})
				}
				e["MetricStat"] = map[string]any{"Metric": map[string]any{"Dimensions": dims, "MetricName": m.MetricStat.Metric.MetricName,
					"Namespace": m.MetricStat.Metric.Namespace}, "Period": m.MetricStat.Period, "Stat": m.MetricStat.Stat}
			}
			ms = append(ms, e)
		}
		trigger["Metrics"] = ms
	}
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }
	var desc any
	if a.Description != "" {
		desc = a.Description
	}
	msg := map[string]any{
		"AlarmName": a.Name, "AlarmDescription": desc, "AWSAccountId": account,
		"AlarmConfigurationUpdatedTimestamp": stamp(a.ConfigUpdated),
		"NewStateValue":                      a.State, "NewStateReason": a.StateReason, "StateChangeTime": stamp(a.StateUpdated),
		"Region": region, "AlarmArn": a.ARN, "OldStateValue": old,
		"OKActions": nonNil(a.OKActions), "AlarmActions": nonNil(a.AlarmActions), "InsufficientDataActions": nonNil(a.InsufficientDataActions),
		"Trigger": trigger,
	}
	b, _ := json.Marshal(msg)
	subject := fmt.Sprintf("%s: %q in %s", a.State, a.Name, region)
	if len(subject) > 100 {
		subject = subject[:100]
	}
	return b, subject
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// act runs one alarm action: an SNS topic is published to as
// cloudwatch.amazonaws.com.
func (s *Service) act(ctx context.Context, a MetricAlarm, old, action string) (string, error) {
	if !strings.HasPrefix(action, "arn:aws:sns:") {
		return "", fmt.Errorf("the sandbox's CloudWatch runs SNS actions only, not %s", action)
	}
	body, subject := Notification(a, old, s.srv.Account())
	form := url.Values{"Action": {"Publish"}, "TopicArn": {action}, "Subject": {subject}, "Message": {string(body)}}
	// The conditions a topic policy written for CloudWatch checks:
	// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
	ctx = sandbox.WithRequestContext(ctx, map[string]string{"aws:SourceArn": a.ARN, "aws:SourceAccount": s.srv.Account()})
	if _, err := s.srv.Internal(ctx, "sns", "Publish", action, ServicePrincipal, []byte(form.Encode())); err != nil {
		return "", err
	}
	return "Successfully executed action " + action, nil
}

// Admin implements sandbox.Administered:
//
//	GET /alarms lists alarms with their states and histories;
//	POST /evaluate evaluates every alarm now.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /alarms", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Alarms())
	})
	m.HandleFunc("POST /evaluate", func(w http.ResponseWriter, r *http.Request) {
		s.Evaluate(r.Context())
		sandbox.WriteJSON(w, http.StatusOK, s.Alarms())
	})
	return m
}

var (
	_ sandbox.Snapshotter  = (*Service)(nil)
	_ sandbox.Closer       = (*Service)(nil)
	_ sandbox.Administered = (*Service)(nil)
)
