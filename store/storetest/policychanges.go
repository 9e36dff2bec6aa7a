package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

// PolicyChanges checks the store.PolicyChanges contract on two handles of
// one database (two replicas, or two processes on one SQLite file): a's
// own policy writes move its epoch at once, b's writes move it once
// SyncPolicies returns, and a synchronised handle vouches for its epoch.
// A cache built on a store that failed it would serve a policy after it was
// replaced (the case that matters most: a permissive policy kept after a
// restrictive one was set).
func PolicyChanges(t *testing.T, a, b store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pa, ok := a.(store.PolicyChanges)
	if !ok {
		t.Fatalf("%T does not implement store.PolicyChanges", a)
	}
	sync := func(what string) uint64 {
		t.Helper()
		if err := pa.SyncPolicies(ctx); err != nil {
			t.Fatalf("%s: SyncPolicies: %v", what, err)
		}
		e, ok := pa.PolicyEpoch()
		if !ok {
			t.Fatalf("%s: PolicyEpoch does not vouch right after SyncPolicies", what)
		}
		return e
	}
	put := func(s store.Store, text string) {
		t.Helper()
		p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: text, Text: text, UpdatedAt: Base}
		if err := s.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set", Target: "SgxEnclave"}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name  string
		write func()
		sync  bool // a learns of the change through its watch
	}{
		{"own PutPolicy", func() { put(a, "permissive") }, false},
		{"own DeletePolicy", func() {
			if err := a.DeletePolicy(ctx, "inst", "SgxEnclave", store.AuditEntry{Action: "policy.reset"}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"other handle's PutPolicy", func() { put(b, "restrictive") }, true},
		{"other handle's PutPolicy again", func() { put(b, "more restrictive") }, true},
		{"other handle's DeletePolicy", func() {
			if err := b.DeletePolicy(ctx, "inst", "SgxEnclave", store.AuditEntry{Action: "policy.reset"}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"own failed PutPolicy", func() {
			p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "x", Text: "bad\x00", UpdatedAt: Base}
			if err := a.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set"}); err == nil {
				t.Fatal("PutPolicy of a text with NUL succeeded")
			}
		}, false},
	}
	for _, st := range steps {
		before := sync("before " + st.name)
		st.write()
		if st.sync {
			sync("after " + st.name)
		}
		if after, _ := pa.PolicyEpoch(); after == before {
			t.Fatalf("%s: the epoch did not change (%d): a cached policy would outlive the change", st.name, after)
		}
	}
}
