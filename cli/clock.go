package cli

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ClockHeader is the header the sandbox puts on every response with its
// clock, which runs days ahead while a shortened Wait moves it. AWS sends
// none; then the server's clock is this machine's.
const ClockHeader = "X-Sandbox-Clock"

// serverClock is the workflow's notion of now: the last X-Sandbox-Clock
// seen, plus the real time since, or local time if none was ever seen.
// Wait progress and key ages are measured on it.
type serverClock struct {
	now func() time.Time // this machine's clock

	mu     sync.Mutex
	server time.Time // the last value seen
	seenAt time.Time // local time when it was seen
}

// Now is the server's time.
func (c *serverClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	local := c.now()
	if c.server.IsZero() {
		return local.UTC()
	}
	return c.server.Add(local.Sub(c.seenAt)).UTC()
}

// observe records a header value; it reports whether it could read it.
func (c *serverClock) observe(v string) bool {
	t, ok := parseClock(v)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.server) {
		return true // responses can arrive out of order: the clock only moves on
	}
	c.server, c.seenAt = t, c.now()
	return true
}

// parseClock reads RFC 3339 (the sandbox's format), HTTP dates, or Unix
// milliseconds.
func parseClock(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return t, true
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), true
	}
	return time.Time{}, false
}

// addMiddleware puts the clock reader on a client's stack (aws.Config's
// APIOptions): at the deserialize step, where the raw HTTP response is.
func (c *serverClock) addMiddleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("keyrotatorServerClock",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp != nil {
				c.observe(resp.Header.Get(ClockHeader))
			}
			return out, md, err
		}), middleware.After)
}
