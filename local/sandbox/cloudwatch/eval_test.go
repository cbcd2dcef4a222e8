package cloudwatch

import (
	"testing"
	"time"
)

func TestExpressions(t *testing.T) {
	t.Parallel()
	vals := map[string]datapoint{"failed": {2, true}, "timedOut": {1, true}, "aborted": {}, "none": {}, "m1": {6, true}}
	// The rule for missing datapoints is AWS's (expr.go's binop.eval):
	// a missing value beside a datapoint is 0; no datapoint on any side is
	// none; a division by zero drops the datapoint.
	cases := []struct {
		expr string
		want float64
		ok   bool
	}{
		{"failed + timedOut", 3, true},
		{"failed + timedOut + aborted", 3, true}, // aborted treated as 0
		{"aborted + failed", 2, true},
		{"aborted - failed", -2, true},
		{"failed * aborted", 0, true},
		{"aborted + none", 0, false}, // no series has a datapoint here
		{"aborted * 5", 0, false},    // a number does not make one
		{"-aborted", 0, false},
		{"FILL(aborted, 0) + failed", 2, true},
		{"FILL(aborted, 0) + FILL(none, 0)", 0, true},
		{"FILL(none, 7)", 7, true},
		{"FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)", 3, true},
		{"m1 / failed * 2", 6, true},
		{"m1 / aborted", 0, false},          // aborted is 0 here: divided by zero, dropped
		{"m1 - failed - timedOut", 3, true}, // left-associative
		{"(m1 - failed) * -1", -4, true},
		{"m1 / 0", 0, false},
		{"2 + 3 * 4", 14, true},
	}
	for _, c := range cases {
		e, err := parseExpr(c.expr)
		if err != nil {
			t.Errorf("parse %q: %v", c.expr, err)
			continue
		}
		if got := e.eval(vals).point(); got.ok != c.ok || (got.ok && got.v != c.want) {
			t.Errorf("%q = %v %v, want %v %v", c.expr, got.v, got.ok, c.want, c.ok)
		}
	}
	for _, bad := range []string{"failed +", "ANOMALY_DETECTION_BAND(m1)", "FILL(m1)", "(m1", "M1 + 1", "m1 $ 2"} {
		if _, err := parseExpr(bad); err == nil {
			t.Errorf("parse %q accepted", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 4, 37, 0, 0, time.UTC)
	p := func(v float64) datapoint { return datapoint{v, true} }
	var miss datapoint
	cases := []struct {
		name    string
		missing string
		m, n    int
		points  []datapoint
		prior   string
		want    string
	}{
		{"one breach of one", "notBreaching", 1, 1, []datapoint{p(1)}, OK, Alarm},
		{"below threshold", "notBreaching", 1, 1, []datapoint{p(0)}, Alarm, OK},
		{"missing, notBreaching", "notBreaching", 1, 1, []datapoint{miss}, InsufficientData, OK},
		{"missing, breaching", "breaching", 1, 1, []datapoint{miss}, OK, Alarm},
		{"missing, missing", "missing", 1, 1, []datapoint{miss}, OK, InsufficientData},
		{"missing, ignore keeps the state", "ignore", 1, 1, []datapoint{miss}, Alarm, Alarm},
		{"2 of 3 with one", "notBreaching", 2, 3, []datapoint{p(1), p(0), miss}, OK, OK},
		{"2 of 3 with two", "notBreaching", 2, 3, []datapoint{p(1), miss, p(5)}, OK, Alarm},
	}
	for _, c := range cases {
		a := &MetricAlarm{Name: "a", Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold", TreatMissingData: c.missing,
			EvaluationPeriods: c.n, DatapointsToAlarm: c.m, Period: 300, State: c.prior}
		if got, reason, _ := decide(a, c.points, now); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, reason, c.want)
		}
	}
	a := &MetricAlarm{Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold", TreatMissingData: "notBreaching", EvaluationPeriods: 1, DatapointsToAlarm: 1, Period: 300}
	if _, reason, _ := decide(a, []datapoint{p(1)}, now); reason != "Threshold Crossed: 1 out of the last 1 datapoints [1.0 (06/12/26 04:35:00)] was greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition)." {
		t.Errorf("reason %q", reason)
	}
}

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	tru, fls := true, false
	stat := &MetricStat{Period: 300, Stat: "Sum"}
	cases := map[string]MetricAlarm{
		"no operator":         {Name: "a", EvaluationPeriods: 1, MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum"},
		"anomaly band":        {Name: "a", EvaluationPeriods: 1, ComparisonOperator: "LessThanLowerOrGreaterThanUpperThreshold", MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum"},
		"both metric kinds":   {Name: "a", EvaluationPeriods: 1, ComparisonOperator: "GreaterThanThreshold", MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum", Metrics: []MetricQuery{{ID: "m1", MetricStat: stat}}},
		"two return data":     {Name: "a", EvaluationPeriods: 1, ComparisonOperator: "GreaterThanThreshold", Metrics: []MetricQuery{{ID: "m1", MetricStat: stat, ReturnData: &tru}, {ID: "e1", Expression: "m1"}}},
		"unknown id":          {Name: "a", EvaluationPeriods: 1, ComparisonOperator: "GreaterThanThreshold", Metrics: []MetricQuery{{ID: "m1", MetricStat: stat, ReturnData: &fls}, {ID: "e1", Expression: "m1 + m2"}}},
		"more M than N":       {Name: "a", EvaluationPeriods: 1, DatapointsToAlarm: 2, ComparisonOperator: "GreaterThanThreshold", MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum"},
		"bad missing":         {Name: "a", EvaluationPeriods: 1, TreatMissingData: "sometimes", ComparisonOperator: "GreaterThanThreshold", MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum"},
		"no evaluation count": {Name: "a", ComparisonOperator: "GreaterThanThreshold", MetricName: "m", Namespace: "n", Period: 60, Statistic: "Sum"},
	}
	for name, a := range cases {
		if err := validate(&a); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
