package sandbox_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// lastHeaders keeps the headers of the last response an SDK client got.
type lastHeaders struct {
	mu sync.Mutex
	h  http.Header
}

func (l *lastHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		l.mu.Lock()
		l.h = resp.Header.Clone()
		l.mu.Unlock()
	}
	return resp, err
}

// Every response carries the sandbox's now in X-Sandbox-Clock, which moves
// with the clock, while Date stays real: SDKs derive clock skew from Date,
// and a skewed signature would be refused.
func TestClockHeader(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	rec := &lastHeaders{}
	cfg := sb.Config(t)
	cfg.HTTPClient = &http.Client{Transport: rec}
	client := sts.NewFromConfig(cfg)

	admin := func(method, path, body string) http.Header {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, sb.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.Header
	}
	aws := func() http.Header {
		t.Helper()
		if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.h
	}
	near := func(t *testing.T, got, want time.Time, what string) {
		t.Helper()
		if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("%s = %v, want about %v", what, got, want)
		}
	}
	check := func(t *testing.T, h http.Header, ahead time.Duration) {
		t.Helper()
		raw := h.Get(sandbox.ClockHeader)
		clock, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil || !strings.HasSuffix(raw, "Z") {
			t.Fatalf("%s: %q (%v), want RFC 3339 in UTC", sandbox.ClockHeader, raw, err)
		}
		near(t, clock, time.Now().Add(ahead), sandbox.ClockHeader)
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			t.Fatalf("Date %q: %v", h.Get("Date"), err)
		}
		near(t, date, time.Now(), "Date")
	}

	for _, tc := range []struct {
		name  string
		move  string // POST /_sandbox/clock body, "" for none
		ahead time.Duration
	}{
		{"at real time", "", 0},
		{"three days ahead", `{"advance":"72h"}`, 72 * time.Hour},
		{"ten days ahead", `{"advance":"168h"}`, 240 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.move != "" {
				// The answer to the move already shows the moved clock.
				check(t, admin(http.MethodPost, "/_sandbox/clock", tc.move), tc.ahead)
			}
			check(t, admin(http.MethodGet, "/_sandbox/health", ""), tc.ahead)
			check(t, admin(http.MethodDelete, "/_sandbox/calls", ""), tc.ahead) // 204: no body written
			check(t, aws(), tc.ahead)
		})
	}
}
