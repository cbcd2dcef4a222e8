package sandbox

import (
	"context"
	"net"
	"time"
)

// ListenAgain listens on addr, the address a restored component had before
// a restart, trying again for up to patience: the process it restarts from
// may still be closing that listener. The caller falls back to a new port
// (and says so) when it stays taken.
func ListenAgain(ctx context.Context, addr string, patience time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(patience)
	for {
		l, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
