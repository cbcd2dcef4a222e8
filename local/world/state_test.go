package world_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/world"
)

// --state keeps users, keys, the admin identity and the clock across restarts.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	opts := world.Options{Options: sandbox.Options{StateFile: file}}

	w1, err := world.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w1.IAM.CreateUser("kept", "/", nil); err != nil {
		t.Fatal(err)
	}
	k, err := w1.IAM.CreateAccessKey("kept")
	if err != nil {
		t.Fatal(err)
	}
	w1.Server.Clock().Advance(72 * time.Hour)
	serveBriefly(t, w1)

	w2, err := world.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if w2.Admin.AccessKeyID != w1.Admin.AccessKeyID {
		t.Errorf("admin key changed across restart: %s → %s", w1.Admin.AccessKeyID, w2.Admin.AccessKeyID)
	}
	keys, ok := w2.IAM.Keys("kept")
	if !ok || len(keys) != 1 || keys[0].AccessKeyID != k.AccessKeyID {
		t.Fatalf("user's keys after restart: %v %+v", ok, keys)
	}
	if off := w2.Server.Clock().Offset(); off < 72*time.Hour {
		t.Errorf("clock offset after restart: %s, want ≥ 72h", off)
	}
}

func serveBriefly(t *testing.T, w *world.World) {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Server.Serve(ctx, l) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
