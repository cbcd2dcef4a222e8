// Package consumer is the application a rotation must not break: it reads
// its AWS key from a Secrets Manager secret, as the source posts' apps do,
// and calls AWS with it in a loop. Every call is counted; a key removed
// before the app moved off it shows up as a failed call.
package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// App is a simulated consumer of a rotated key.
type App struct {
	cfg      aws.Config // how the app reaches AWS and reads its secret
	secretID string
	every    time.Duration
	refresh  bool // false: keeps the key it first read (a consumer that was missed)
	hold     func() (release func())

	ok, failed atomic.Int64
	mu         sync.Mutex
	keyIDs     []string // every key id it used, in order
	lastErr    string
}

// New returns an app that reads secretID with cfg and calls STS every
// interval; refresh says whether it re-reads the secret before each call.
func New(cfg aws.Config, secretID string, every time.Duration, refresh bool) *App {
	return &App{cfg: cfg, secretID: secretID, every: every, refresh: refresh}
}

// HoldClock makes each read of the key and the call with it one instant of
// sandbox time: hold (a sandbox clock's Hold) is taken before the read and
// released after the call. Without it, another rotation's shortened Wait
// can move the sandbox clock days between the two, and the call is stamped
// long after the read — after its own rotation's cut-over and settle
// period, a use no application in AWS would make (see sandbox.Clock.Hold).
func (a *App) HoldClock(hold func() (release func())) *App {
	a.hold = hold
	return a
}

// Run calls AWS until ctx ends.
func (a *App) Run(ctx context.Context) {
	sm := secretsmanager.NewFromConfig(a.cfg)
	var id, secret string
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		release := func() {}
		if a.hold != nil {
			release = a.hold()
		}
		if id == "" || a.refresh {
			if nid, nsec, err := a.read(ctx, sm); err == nil {
				id, secret = nid, nsec
			} else if ctx.Err() == nil {
				a.fail(err)
			}
		}
		if id != "" {
			a.call(ctx, id, secret)
		}
		release()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) read(ctx context.Context, sm *secretsmanager.Client) (string, string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(a.secretID)})
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w", a.secretID, err)
	}
	var v struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		return "", "", fmt.Errorf("read %s: not JSON", a.secretID)
	}
	return v.AccessKeyID, v.SecretAccessKey, nil
}

func (a *App) call(ctx context.Context, id, secret string) {
	cfg := a.cfg.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	_, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if ctx.Err() != nil {
		return // stopping: not the key's fault
	}
	a.mu.Lock()
	if n := len(a.keyIDs); n == 0 || a.keyIDs[n-1] != id {
		a.keyIDs = append(a.keyIDs, id)
	}
	a.mu.Unlock()
	if err != nil {
		a.fail(fmt.Errorf("call with %s: %w", id, err))
		return
	}
	a.ok.Add(1)
}

func (a *App) fail(err error) {
	a.failed.Add(1)
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
}

// Stats is what the app saw.
type Stats struct {
	OK, Failed int64
	KeyIDs     []string // the keys it used, in order
	LastError  string
}

// Stats reports the calls so far.
func (a *App) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{OK: a.ok.Load(), Failed: a.failed.Load(), KeyIDs: append([]string(nil), a.keyIDs...), LastError: a.lastErr}
}
