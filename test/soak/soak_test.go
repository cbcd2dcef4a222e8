//go:build soak

// Package soak runs the sandbox with Auth0 tenants mailing through SES and
// SORACOM groups pushing, for a long time, and fails if its open file
// descriptors or memory grow. `make soak` runs it (15 minutes); it is not
// in CI. TestSoakShort is the same for two minutes, for a local check.
// With -args -soak.heapprofile=<dir> it writes heap profiles after the
// warm-up and at the end, to find what grew.
package soak

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

func TestSoak(t *testing.T)      { soak(t, 15*time.Minute, 30*time.Second) }
func TestSoakShort(t *testing.T) { soak(t, 2*time.Minute, 10*time.Second) }

// sample is the process's open file descriptors and memory at one time, and
// the traffic so far.
type sample struct {
	at         time.Duration
	fds        int
	rssKB      int
	heapBytes  uint64
	mail, push int   // sent so far
	calls      int64 // the call log's newest sequence number
}

func soak(t *testing.T, length, every time.Duration) {
	if *heapProfileDir != "" {
		runtime.MemProfileRate = 4096 // fine enough to see small records that add up
	}
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
	traffic := func() (mail, push int) {
		for i := range 3 {
			tn, _ := sb.Auth0.Tenant(fmt.Sprintf("tenant-%d", i))
			mail += tn.View().Mail.Sent
		}
		for _, o := range sb.Soracom.Operators() {
			for _, g := range o.Groups() {
				push += g.Push.Sent
			}
		}
		return mail, push
	}
	start := time.Now()
	var samples []sample
	take := func() {
		// Memory the process holds, not what the collector has yet to get
		// to or to give back: FreeOSMemory collects, then returns the freed
		// pages, so RSS is what is live (heap, stacks, runtime) and two
		// samples compare whatever the GC's phase.
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mail, push := traffic()
		samples = append(samples, sample{at: time.Since(start).Round(time.Second), fds: openFDs(t), rssKB: rssKB(t), heapBytes: m.HeapAlloc,
			mail: mail, push: push, calls: sb.Server.Calls().Last()})
	}
	time.Sleep(every) // warm-up: connection pools, first mails and pushes
	start = time.Now()
	take()
	heapProfile(t, "start")
	for time.Since(start) < length {
		time.Sleep(every)
		take()
	}
	heapProfile(t, "end")
	for _, s := range samples {
		t.Logf("t=%-6v fds=%-4d rss=%dKB heap=%dKB mails=%d pushes=%d calls=%d", s.at, s.fds, s.rssKB, s.heapBytes/1024, s.mail, s.push, s.calls)
	}
	first, end := samples[0], samples[len(samples)-1]
	t.Logf("over %v: %d mails sent, %d pushes sent, %d calls logged (the log holds the newest %d, evicted %d)",
		end.at, end.mail-first.mail, end.push-first.push, end.calls-first.calls, sandbox.CallLogCapacity, sb.Server.Calls().Evicted())
	// Flat memory proves nothing if the traffic stopped: every interval
	// must have mailed and pushed.
	for i, s := range samples[1:] {
		if prev := samples[i]; s.mail <= prev.mail || s.push <= prev.push {
			t.Fatalf("the traffic stopped between %v and %v: mails %d → %d, pushes %d → %d", prev.at, s.at, prev.mail, s.mail, prev.push, s.push)
		}
	}
	// The peak, not the last sample: leaked descriptors can be closed late
	// by finalizers, and a leak that peaks and drops still kills a sandbox
	// that reaches its limit first.
	peak := first
	for _, s := range samples[1:] {
		peak.at = s.at
		peak.fds, peak.rssKB, peak.heapBytes = max(peak.fds, s.fds), max(peak.rssKB, s.rssKB), max(peak.heapBytes, s.heapBytes)
	}
	// Flat: after the warm-up, descriptors within 10 (idle connections
	// come and go), RSS and heap within 50% and 32 MiB of the first sample.
	// The sandbox's records of its traffic are bounded and may fill during
	// the soak: the call log (sandbox.CallLogCapacity calls, about 12 MiB;
	// at the soak's ~235 calls a second it fills in 7 minutes), SES's kept
	// mail (ses.Keep, about 3 MiB, full in 90 s), IoT's last 1,000
	// publishes (under 1 MiB): about 16 MiB in all, so 32 MiB holds them
	// with room for the runtime, while a leak of the audit's 11 MiB a
	// minute exceeds it within 3 minutes, and one of 2.2 MiB a minute
	// within the 15 of `make soak`.
	if peak.fds > first.fds+10 {
		t.Errorf("open file descriptors grew from %d to a peak of %d over %v", first.fds, peak.fds, peak.at)
	}
	if peak.rssKB > first.rssKB*3/2+32*1024 {
		t.Errorf("RSS grew from %dKB to %dKB over %v", first.rssKB, peak.rssKB, peak.at)
	}
	if peak.heapBytes > first.heapBytes*3/2+32<<20 {
		t.Errorf("Go heap grew from %dKB to %dKB over %v", first.heapBytes/1024, peak.heapBytes/1024, peak.at)
	}
}

// heapProfileDir is where heapProfile writes; empty, it writes nothing.
var heapProfileDir = flag.String("soak.heapprofile", "", "a directory for heap profiles after the warm-up and at the end")

// heapProfile writes the heap profile to <-soak.heapprofile>/heap-<name>.pprof
// when that directory is set: `go tool pprof -top -diff_base heap-start.pprof
// heap-end.pprof` shows what grew over the soak.
func heapProfile(t *testing.T, name string) {
	dir := *heapProfileDir
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, "heap-"+name+".pprof"))
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatalf("heap profile: %v", err)
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
