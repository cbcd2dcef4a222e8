//go:build soak

// Package soak runs the sandbox with Auth0 tenants mailing through SES and
// SORACOM groups pushing, for a long time, and fails if its open file
// descriptors or memory grow. `make soak` runs it (15 minutes); it is not
// in CI. TestSoakShort is the same for two minutes, for a local check.
package soak

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

func TestSoak(t *testing.T)      { soak(t, 15*time.Minute, 30*time.Second) }
func TestSoakShort(t *testing.T) { soak(t, 2*time.Minute, 10*time.Second) }

// sample is the process's open file descriptors and memory at one time.
type sample struct {
	at        time.Duration
	fds       int
	rssKB     int
	heapBytes uint64
}

func soak(t *testing.T, length, every time.Duration) {
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	for i := range 3 {
		k := sb.User(t, fmt.Sprintf("mailer-%d", i), 1)[0]
		name := fmt.Sprintf("tenant-%d", i)
		if _, err := sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: name, ClientID: "cid-" + name, ClientSecret: "client-secret-" + name + "-0123456789",
			Provider: &sbauth0.Provider{Name: "ses", DefaultFromAddress: "no-reply@" + name + ".example.com", Credentials: map[string]any{
				"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey, "region": "ap-northeast-1"}}}); err != nil {
			t.Fatal(err)
		}
		p := sb.User(t, fmt.Sprintf("pusher-%d", i), 1)[0]
		op, err := sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{Name: "k", AuthKeyID: fmt.Sprintf("keyId-%d", i), AuthKey: fmt.Sprintf("secret-authkey-%d-0123456789", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := op.PutCredential("funnel", sbsoracom.CredentialInput{Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": p.AccessKeyID, "secretAccessKey": p.SecretAccessKey}}); err != nil {
			t.Fatal(err)
		}
		for g := range 5 {
			if _, err := op.AddGroup(sbsoracom.GroupConfig{Name: fmt.Sprintf("sensors-%d", g), Configuration: map[string]map[string]any{
				"SoracomFunnel": {"enabled": true, "credentialsId": "funnel", "contentType": "application/json",
					"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}},
			}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	var samples []sample
	take := func() {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		samples = append(samples, sample{at: time.Since(start).Round(time.Second), fds: openFDs(t), rssKB: rssKB(t), heapBytes: m.HeapAlloc})
	}
	time.Sleep(every) // warm-up: connection pools, first mails and pushes
	start = time.Now()
	take()
	for time.Since(start) < length {
		time.Sleep(every)
		take()
	}
	for _, s := range samples {
		t.Logf("t=%-6v fds=%-4d rss=%dKB heap=%dKB", s.at, s.fds, s.rssKB, s.heapBytes/1024)
	}
	mail, push := 0, 0
	for i := range 3 {
		tn, _ := sb.Auth0.Tenant(fmt.Sprintf("tenant-%d", i))
		mail += tn.View().Mail.Sent
	}
	for _, o := range sb.Soracom.Operators() {
		for _, g := range o.Groups() {
			push += g.Push.Sent
		}
	}
	t.Logf("over %v: %d mails sent, %d pushes sent", length, mail, push)
	if mail == 0 || push == 0 {
		t.Fatalf("nothing pushed: %d mails, %d pushes", mail, push)
	}
	// The peak, not the last sample: leaked descriptors can be closed late
	// by finalizers, and a leak that peaks and drops still kills a sandbox
	// that reaches its limit first.
	first, last := samples[0], samples[0]
	for _, s := range samples[1:] {
		last.at = s.at
		last.fds, last.rssKB, last.heapBytes = max(last.fds, s.fds), max(last.rssKB, s.rssKB), max(last.heapBytes, s.heapBytes)
	}
	// Flat: descriptors within 10 (idle connections come and go), RSS and
	// heap within 50% and 32 MiB of the first sample.
	if last.fds > first.fds+10 {
		t.Errorf("open file descriptors grew from %d to a peak of %d over %v", first.fds, last.fds, last.at)
	}
	if last.rssKB > first.rssKB*3/2+32*1024 {
		t.Errorf("RSS grew from %dKB to %dKB over %v", first.rssKB, last.rssKB, last.at)
	}
	if last.heapBytes > first.heapBytes*3/2+32<<20 {
		t.Errorf("Go heap grew from %dKB to %dKB over %v", first.heapBytes/1024, last.heapBytes/1024, last.at)
	}
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(es)
}

func rssKB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
