package sandbox

import (
	"maps"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is one of AWS's request-rate quotas as the sandbox enforces it:
// a token bucket per (account, region, service, action) on wall-clock
// time, Burst tokens deep, refilled at Rate a second. A call that finds
// its bucket empty is answered as AWS throttles it (RateLimitError), before
// the service sees it: it changes nothing, and the call log records it
// (CallRecord.RateLimited, CallLog.RateLimited).
//
// Real time, not the sandbox clock: the clock jumps through shortened
// waits, and a limit the clock refilled would never bite.
type RateLimit struct {
	Service string  `json:"service"`          // signing name: "iam", "cloudtrail", "states"
	Action  string  `json:"action,omitempty"` // "" is every action, each with a bucket of its own
	Burst   float64 `json:"burst"`            // whole tokens: a fraction is dropped
	Rate    float64 `json:"rate"`             // tokens a second
	// Source is where AWS says so (or, where AWS publishes no figure, why
	// this one).
	Source string `json:"source"`
}

// The figures AWS documents (or, for IAM, what the sandbox assumes: AWS
// publishes none), each with its page. DefaultRateLimits holds them.
var (
	// CloudTrailLookupEvents: "The rate of lookup requests is limited to
	// two per second, per account, per Region. If this limit is exceeded,
	// a throttling error occurs."
	// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html
	CloudTrailLookupEvents = RateLimit{Service: "cloudtrail", Action: "LookupEvents", Burst: 2, Rate: 2,
		Source: "https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html"}
	// StepFunctionsStartExecution: Standard workflows' StartExecution is a
	// token bucket per account and region, 1,300 deep refilled at 300 a
	// second in US East (N. Virginia), US West (Oregon) and Europe
	// (Ireland); 800 and 150 in the other regions (the sandbox's region is
	// us-east-1). "Quotas related to API action throttling":
	// https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-api-action-throttling-general
	StepFunctionsStartExecution = RateLimit{Service: "states", Action: "StartExecution", Burst: 1300, Rate: 300,
		Source: "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-api-action-throttling-general"}
	// IAMPerAction: IAM throttles with a token bucket per API whose size
	// and refill AWS does not publish (AWS Support, quoted in
	// https://github.com/hashicorp/terraform-provider-aws/issues/44853;
	// "Throttling: Rate exceeded, status code: 400",
	// https://repost.aws/knowledge-center/iam-sts-throttling-error). The
	// sandbox assumes 20 a second with a burst of 40 per account and
	// action: a guess, kept well above what one rotation's steps ask, so
	// that a fleet meets it only when its calls bunch up.
	IAMPerAction = RateLimit{Service: "iam", Burst: 40, Rate: 20,
		Source: "assumed (AWS publishes no IAM rate): https://repost.aws/knowledge-center/iam-sts-throttling-error"}
)

// DefaultRateLimits are the limits a sandbox enforces unless its Options
// say otherwise: every sandbox, so what the tests meet is what a deploy
// meets. Lambda's own limit is concurrency, not a rate: the Lambda
// service caps each function's instances (TooManyRequestsException, 429).
func DefaultRateLimits() []RateLimit {
	return []RateLimit{CloudTrailLookupEvents, StepFunctionsStartExecution, IAMPerAction}
}

// NoRateLimits as Options.RateLimits turns every limit off.
var NoRateLimits = []RateLimit{}

// RateLimitError is AWS's answer to a throttled call in the service's
// protocol: the Query protocol (IAM) 400 Throttling, a Sender fault; the
// JSON protocols (CloudTrail, Step Functions) 400 ThrottlingException;
// REST-JSON (Lambda) 429 TooManyRequestsException. Each is a code the
// SDKs' retryers count as a throttle (aws-sdk-go-v2's
// retry.DefaultThrottleErrorCodes).
func RateLimitError(p Protocol) *Error {
	switch p {
	case Query:
		return &Error{Status: 400, Code: "Throttling", Message: "Rate exceeded", Sender: true}
	case RESTJSON:
		return &Error{Status: 429, Code: "TooManyRequestsException", Message: "Rate exceeded", Sender: true}
	default:
		return &Error{Status: 400, Code: "ThrottlingException", Message: "Rate exceeded", Sender: true}
	}
}

type bucketKey struct{ account, region, service, action string }

// limiter holds the buckets of a server's rate limits.
type limiter struct {
	mu      sync.Mutex
	limits  []RateLimit
	now     func() time.Time
	buckets map[bucketKey]*rate.Limiter
	counts  map[string]int64 // "<service> <action>" → calls throttled
}

func newLimiter(limits []RateLimit) *limiter {
	if limits == nil {
		limits = DefaultRateLimits()
	}
	return &limiter{limits: limits, now: time.Now, buckets: map[bucketKey]*rate.Limiter{}, counts: map[string]int64{}}
}

// LimitFor is the limit of limits that applies to service's action, if
// any: one naming the action before one for the whole service. The
// sandbox enforces by it; a benchmark's floor reads limits by it too.
func LimitFor(limits []RateLimit, service, action string) (RateLimit, bool) {
	var whole *RateLimit
	for i, r := range limits {
		if r.Service != service {
			continue
		}
		if r.Action == action {
			return r, true
		}
		if r.Action == "" && whole == nil {
			whole = &limits[i]
		}
	}
	if whole != nil {
		return *whole, true
	}
	return RateLimit{}, false
}

// allow takes a token for a call of account and region; false is a
// throttle, counted.
func (l *limiter) allow(account, region, service, action string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := LimitFor(l.limits, service, action)
	if !ok || r.Rate <= 0 {
		return true
	}
	k := bucketKey{account, region, service, action}
	b, ok := l.buckets[k]
	if !ok {
		// golang.org/x/time/rate's token bucket: full at first, refilled
		// continuously at Rate, at most Burst deep.
		b = rate.NewLimiter(rate.Limit(r.Rate), int(r.Burst))
		l.buckets[k] = b
	}
	if !b.AllowN(l.now(), 1) {
		l.counts[service+" "+action]++
		return false
	}
	return true
}

// throttled is how many calls each API had throttled, by "<service> <action>".
func (l *limiter) throttled() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}

// RateLimits are the limits the server enforces.
func (s *Server) RateLimits() []RateLimit {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	return append([]RateLimit(nil), s.limits.limits...)
}

// SetRateLimits replaces the limits from now on (nil: the defaults,
// NoRateLimits: none); every bucket starts full again.
func (s *Server) SetRateLimits(limits []RateLimit) {
	if limits == nil {
		limits = DefaultRateLimits()
	}
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	s.limits.limits = append([]RateLimit(nil), limits...)
	s.limits.buckets = map[bucketKey]*rate.Limiter{}
}

// RateLimited is how many calls the rate limits have throttled since the
// server started, by "<service> <action>" (e.g. "cloudtrail
// LookupEvents"): what a benchmark reports. The call log's records say the
// same call by call (CallRecord.RateLimited) but evict old calls; these
// counters do not.
func (s *Server) RateLimited() map[string]int64 { return s.limits.throttled() }

// rateLimit answers c with a throttle if its bucket is empty. The account
// is the caller's (AWS counts a call against the account whose
// credentials signed it), the region the call's (IAM's: us-east-1).
func (s *Server) rateLimit(c *Call, info ServiceInfo) *Error {
	account := c.Principal.Account
	if account == "" {
		account = s.opts.Account
	}
	if s.limits.allow(account, c.Region, info.Name, c.Action) {
		return nil
	}
	c.rateLimited = true
	return RateLimitError(info.Protocol)
}
