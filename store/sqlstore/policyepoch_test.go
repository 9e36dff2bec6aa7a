package sqlstore

import (
	"testing"
	"time"
)

// TestPolicyEpochVouching: a DB vouches for its epoch only after its
// watch confirmed, stops at once when the watch is lost (and moves the
// epoch, so entries cached before are stale), and every change moves it.
func TestPolicyEpochVouching(t *testing.T) {
	d := New(nil, Dialect{Name: "test"}, time.Now)
	steps := []struct {
		name     string
		do       func()
		vouches  bool
		newEpoch bool
	}{
		{"before any confirmation", func() {}, false, false},
		{"confirmed now", func() { d.PolicyConfirmed(time.Now()) }, true, false},
		{"a change", d.PolicyChanged, true, true},
		{"an older confirmation does not move it back", func() { d.PolicyConfirmed(time.Now().Add(-time.Hour)) }, true, false},
		{"watch lost", d.PolicyWatchLost, false, true},
		{"confirmed too long ago", func() { d.PolicyConfirmed(time.Now().Add(-3 * time.Second)) }, false, false},
		{"confirmed again", func() { d.PolicyConfirmed(time.Now()) }, true, false},
	}
	prev, _ := d.PolicyEpoch()
	for _, st := range steps {
		st.do()
		e, ok := d.PolicyEpoch()
		if ok != st.vouches {
			t.Fatalf("%s: vouches %v, want %v", st.name, ok, st.vouches)
		}
		if (e != prev) != st.newEpoch {
			t.Fatalf("%s: epoch %d → %d, want a change: %v", st.name, prev, e, st.newEpoch)
		}
		prev = e
	}
	if ok, _ := d.ConfirmedSince(time.Now().Add(time.Hour)); ok {
		t.Fatal("ConfirmedSince a future time")
	}
	ok, ch := d.ConfirmedSince(time.Now())
	if ok {
		t.Fatal("ConfirmedSince now before a confirmation")
	}
	d.PolicyConfirmed(time.Now())
	select {
	case <-ch:
	default:
		t.Fatal("a confirmation did not wake ConfirmedSince's waiters")
	}
}
