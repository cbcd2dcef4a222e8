package sandbox

import (
	"context"
	"maps"
	"net/http"
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

type internalHeaderKey struct{}

// WithInternalHeader returns ctx carrying HTTP headers for the request
// Server.Internal builds, where the callee reads an option from one (an
// asynchronous Lambda invoke: X-Amz-Invocation-Type: Event).
func WithInternalHeader(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, internalHeaderKey{}, h.Clone())
}

func internalHeader(ctx context.Context) http.Header {
	h, _ := ctx.Value(internalHeaderKey{}).(http.Header)
	return h.Clone()
}
