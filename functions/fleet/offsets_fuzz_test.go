package fleet_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// FuzzOffsets checks Offsets for any users, window and firing: the same
// placement on every call and whatever the order the users come in (the
// sweep lists its accounts side by side, so the order varies), every
// start in [0, window) (all at 0 without a window), and each account's
// starts one in each of its equal slots.
func FuzzOffsets(f *testing.F) {
	f.Add("alice,bob,carol", ",510000000001", int64(120*time.Second), int64(0))
	f.Add("a", "", int64(1), int64(1))
	f.Add("x,y,z,w,v,u", "1,2,3", int64(math.MaxInt64), int64(-1))
	f.Add("x,y", "", int64(0), int64(7))
	f.Add("x,y,z", "a", int64(-5), int64(9e9))
	f.Add(strings.Repeat("u,", 50), "p,q", int64(3), int64(1))
	f.Fuzz(func(t *testing.T, names, accounts string, window, firedUnix int64) {
		seen := map[string]bool{}
		var users []fleet.User
		accts := strings.Split(accounts, ",")
		for i, n := range strings.Split(names, ",") {
			u := fleet.User{Name: n, Account: accts[i%len(accts)]}
			if k := rotation.UserKey(u.Account, u.Name); !seen[k] {
				seen[k] = true
				users = append(users, u)
			}
		}
		fired := time.Unix(firedUnix%(1<<40), 0)
		w := time.Duration(window)
		got := fleet.Offsets(fired, w, users)
		if len(got) != len(users) {
			t.Fatalf("%d offsets for %d users", len(got), len(users))
		}
		if again := fleet.Offsets(fired, w, users); !slices.Equal(got, again) {
			t.Fatalf("a second call placed the starts elsewhere: %v, then %v", got, again)
		}
		rev := slices.Clone(users)
		slices.Reverse(rev)
		back := fleet.Offsets(fired, w, rev)
		slices.Reverse(back)
		if !slices.Equal(got, back) {
			t.Fatalf("the users in the other order placed elsewhere: %v, then %v", got, back)
		}
		byAccount := map[string][]time.Duration{}
		for i, o := range got {
			if w <= 0 {
				if o != 0 {
					t.Fatalf("no window (%v): a start at %v, want 0", w, o)
				}
				continue
			}
			if o < 0 || o >= w {
				t.Fatalf("%v: a start at %v, outside [0, %v)", users[i], o, w)
			}
			byAccount[users[i].Account] = append(byAccount[users[i].Account], o)
		}
		for acct, os := range byAccount {
			slices.Sort(os)
			slot := float64(w) / float64(len(os))
			for i, o := range os {
				// A slot's ends as float64 products, give or take their rounding.
				lo, hi := float64(i)*slot, float64(i+1)*slot
				tol := max(1, hi*1e-12)
				if float64(o) < lo-tol || float64(o) > hi+tol {
					t.Fatalf("account %q: start %d of %d at %v, outside its slot [%v, %v)", acct, i, len(os), o, time.Duration(lo), time.Duration(hi))
				}
			}
		}
	})
}
