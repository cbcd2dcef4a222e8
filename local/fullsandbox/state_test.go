package fullsandbox_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
)

// --state keeps users, keys, the admin identity and the clock across restarts.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state.json")
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: file}}

	sb1, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb1.IAM.CreateUser("kept", "/", nil); err != nil {
		t.Fatal(err)
	}
	k, err := sb1.IAM.CreateAccessKey("kept")
	if err != nil {
		t.Fatal(err)
	}
	sb1.Server.Clock().Advance(72 * time.Hour)
	serveBriefly(t, sb1)

	sb2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if sb2.Admin.AccessKeyID != sb1.Admin.AccessKeyID {
		t.Errorf("admin key changed across restart: %s → %s", sb1.Admin.AccessKeyID, sb2.Admin.AccessKeyID)
	}
	keys, ok := sb2.IAM.Keys("kept")
	if !ok || len(keys) != 1 || keys[0].AccessKeyID != k.AccessKeyID {
		t.Fatalf("user's keys after restart: %v %+v", ok, keys)
	}
	if off := sb2.Server.Clock().Offset(); off < 72*time.Hour {
		t.Errorf("clock offset after restart: %s, want ≥ 72h", off)
	}
}

func serveBriefly(t *testing.T, sb *fullsandbox.Sandbox) {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Server.Serve(ctx, l) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
