package watch

import (
	"testing"
	"time"
)

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{12 * time.Millisecond, "12ms"},
		{3200 * time.Millisecond, "3.2s"},
		{7 * 24 * time.Hour, "7d"},
		{7*24*time.Hour - 20*time.Millisecond, "7d"}, // a Wait's exit lands a hair early or late
		{7*24*time.Hour + 20*time.Millisecond, "7d"},
		{26 * time.Hour, "26h0m0s"},
	}
	for _, tt := range tests {
		if got := Human(tt.d); got != tt.want {
			t.Errorf("Human(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
