package sandbox

import (
	"slices"
	"testing"
)

func TestFamilyHasOneInstancePerHeldAccount(t *testing.T) {
	t.Parallel()
	srv := New(Options{Account: "111122223333", Accounts: []string{"444455556666"}})
	f := NewFamily(srv.Account(), "own")
	made := 0
	newT := func(account string) string { made++; return "made:" + account }
	for _, tc := range []struct {
		account, want string
		ok            bool
	}{
		{"", "own", true},
		{"111122223333", "own", true},
		{"444455556666", "made:444455556666", true},
		{"444455556666", "made:444455556666", true}, // made once
		{"999988887777", "", false},                 // not held by the server
	} {
		got, ok := f.Get(srv, tc.account, newT)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.account, got, ok, tc.want, tc.ok)
		}
	}
	if made != 1 {
		t.Errorf("made %d instances, want 1", made)
	}
	if got := f.Members(); !slices.Equal(got, []string{"own", "made:444455556666"}) {
		t.Errorf("Members() = %q, want the server's own first", got)
	}
}
