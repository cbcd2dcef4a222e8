package sandbox

import (
	"context"
	"maps"
)

type requestContextKey struct{}

// WithRequestContext returns ctx carrying IAM request-context keys for a
// call one AWS service makes to another on a customer's behalf (CloudWatch
// publishing an alarm: aws:SourceArn, aws:SourceAccount), so that an IAM
// evaluator can apply a resource policy's conditions to it. Server.Internal
// hands ctx to the callee: read it there with RequestContext.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
func WithRequestContext(ctx context.Context, keys map[string]string) context.Context {
	merged := maps.Clone(RequestContext(ctx))
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, keys)
	return context.WithValue(ctx, requestContextKey{}, merged)
}

// RequestContext is the keys WithRequestContext put in ctx (nil if none).
func RequestContext(ctx context.Context) map[string]string {
	m, _ := ctx.Value(requestContextKey{}).(map[string]string)
	return m
}
