package cloudwatch

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{"AWS::CloudWatch::Alarm"} }

// Create implements cfn.Provisioner: AWS::CloudWatch::Alarm, on one metric
// (MetricName, Namespace, Dimensions, Statistic, Period) or on Metrics with
// a math expression. Ref is the alarm name; GetAtt Arn.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-alarm.html
func (s *Service) Create(_ context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	var p struct {
		AlarmName               string
		AlarmDescription        string
		ActionsEnabled          *bool
		AlarmActions            []string
		OKActions               []string
		InsufficientDataActions []string
		ComparisonOperator      string
		DatapointsToAlarm       int
		Dimensions              []Dimension
		EvaluationPeriods       int
		MetricName              string
		Namespace               string
		Period                  int
		Statistic               string
		ExtendedStatistic       string
		Metrics                 []MetricQuery
		Threshold               *float64
		ThresholdMetricId       string
		TreatMissingData        string
	}
	b, err := json.Marshal(r.Properties)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("properties: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return cfn.Provisioned{}, fmt.Errorf("properties: %w", err)
	}
	switch {
	case p.ExtendedStatistic != "":
		return cfn.Provisioned{}, fmt.Errorf("ExtendedStatistic: the sandbox evaluates Statistic only")
	case p.ThresholdMetricId != "" || p.Threshold == nil:
		return cfn.Provisioned{}, fmt.Errorf("Threshold/ThresholdMetricId: the sandbox evaluates a static Threshold only")
	}
	if p.AlarmName == "" {
		p.AlarmName = generatedName(r)
	}
	a := MetricAlarm{Name: p.AlarmName, Region: r.Region, Description: p.AlarmDescription, ActionsEnabled: p.ActionsEnabled == nil || *p.ActionsEnabled,
		AlarmActions: p.AlarmActions, OKActions: p.OKActions, InsufficientDataActions: p.InsufficientDataActions,
		MetricName: p.MetricName, Namespace: p.Namespace, Statistic: p.Statistic, Dimensions: p.Dimensions, Period: p.Period,
		Metrics: p.Metrics, EvaluationPeriods: p.EvaluationPeriods, DatapointsToAlarm: p.DatapointsToAlarm,
		Threshold: *p.Threshold, ComparisonOperator: p.ComparisonOperator, TreatMissingData: p.TreatMissingData}
	made, err := s.PutAlarm(a)
	if err != nil {
		return cfn.Provisioned{}, fmt.Errorf("AlarmName %s: %w", p.AlarmName, err)
	}
	return cfn.Provisioned{Ref: made.Name, Attrs: map[string]string{"Arn": made.ARN}}, nil
}

// generatedName is CloudFormation's name for an alarm without one:
// "<stack>-<logical id>-<random>".
func generatedName(r cfn.Resource) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return r.StackName + "-" + r.LogicalID + "-" + string(b)
}

var _ cfn.Provisioner = (*Service)(nil)
