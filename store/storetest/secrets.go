package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

// testInstanceSecret: a secret is generated once, then read back unchanged;
// instances and names are separate; a failing generator stores nothing.
func testInstanceSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	calls := 0
	gen := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { calls++; return []byte(v), nil }
	}
	a, err := s.InstanceSecret(ctx, "inst", "k", gen("\x00first\xff"))
	if err != nil || !bytes.Equal(a, []byte("\x00first\xff")) {
		t.Fatalf("first InstanceSecret = %q, %v", a, err)
	}
	b, err := s.InstanceSecret(ctx, "inst", "k", gen("second"))
	if err != nil || !bytes.Equal(b, a) || calls != 1 {
		t.Fatalf("second InstanceSecret = %q, %v (generator calls %d): want the stored %q without generating", b, err, calls, a)
	}
	if c, err := s.InstanceSecret(ctx, "other", "k", gen("other")); err != nil || string(c) != "other" {
		t.Fatalf("other instance's secret = %q, %v", c, err)
	}
	if c, err := s.InstanceSecret(ctx, "inst", "k2", gen("k2")); err != nil || string(c) != "k2" {
		t.Fatalf("other name's secret = %q, %v", c, err)
	}
	boom := errors.New("no entropy")
	if _, err := s.InstanceSecret(ctx, "inst", "k3", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing generator: err = %v, want it wrapped", err)
	}
	if c, err := s.InstanceSecret(ctx, "inst", "k3", gen("k3")); err != nil || string(c) != "k3" {
		t.Fatalf("after a failed generation: %q, %v", c, err)
	}
	if _, err := s.InstanceSecret(ctx, "", "k", gen("x")); err == nil {
		t.Fatal("empty instance accepted")
	}
}

// testInstanceSecretRace: concurrent first uses (replicas starting
// together) all get one and the same stored value.
func testInstanceSecretRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.InstanceSecret(ctx, "inst", "race", func() ([]byte, error) { return []byte(fmt.Sprint("v", i)), nil })
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("caller %d got %q, caller 0 got %q: replicas disagree on the secret", i, got[i], got[0])
		}
	}
}

// testUseNonce: first use is fresh, a second use before expiry is a
// replay, instances are separate, an expired record is forgotten.
func testUseNonce(t *testing.T, s store.Store) {
	ctx := context.Background()
	now, later := Base, Base.Add(time.Hour)
	for _, tc := range []struct {
		name, instance, nonce string
		now, expires          time.Time
		fresh                 bool
	}{
		{"first use", "inst", "n1", now, later, true},
		{"replay", "inst", "n1", now, later, false},
		{"replay just before expiry", "inst", "n1", later.Add(-time.Nanosecond), later, false},
		{"other nonce", "inst", "n2", now, later, true},
		{"other instance", "other", "n1", now, later, true},
		{"short-lived record", "inst", "old", now, now.Add(time.Minute), true},
		{"forgotten once expired", "inst", "old", now.Add(time.Minute), later, true},
		{"then it is used", "inst", "old", now.Add(time.Minute), later, false},
	} {
		fresh, err := s.UseNonce(ctx, tc.instance, tc.nonce, tc.now, tc.expires)
		if err != nil || fresh != tc.fresh {
			t.Fatalf("%s: UseNonce(%s, %s) = %v, %v; want %v", tc.name, tc.instance, tc.nonce, fresh, err, tc.fresh)
		}
	}
	if _, err := s.UseNonce(ctx, "inst", "", now, later); err == nil {
		t.Fatal("empty nonce accepted")
	}
}
