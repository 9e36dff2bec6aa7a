package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

func keyStore(t *testing.T, s store.Store) store.KeyStore {
	t.Helper()
	ks, ok := s.(store.KeyStore)
	if !ok {
		t.Fatalf("%T does not implement store.KeyStore; every SQL backend must", s)
	}
	return ks
}

func sk(kid string, activate time.Time) store.SigningKey {
	return store.SigningKey{KID: kid, Certificate: []byte("cert-" + kid), Private: []byte("\x00sealed\xff" + kid), Created: Base, ActivateAt: activate}
}

// testSigningKeys: keys round-trip byte for byte in activation order; the
// IfNewest precondition refuses stale changes without writing anything,
// audit entry included; retire and purge apply; instances are isolated.
func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	ks := keyStore(t, s)
	if got, err := ks.SigningKeys(ctx, "inst"); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{IfNewest: "", Add: []store.SigningKey{sk("a", Base)}}, audit("keys.create", "a")); err != nil {
		t.Fatal(err)
	}
	// A second "first key" loses: the instance has one now.
	err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{IfNewest: "", Add: []store.SigningKey{sk("x", Base)}}, audit("keys.create", "x"))
	if !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("stale first key: %v, want ErrKeyConflict", err)
	}
	b := sk("b", Base.Add(time.Hour))
	b.RetireAt = Base.Add(48 * time.Hour)
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{IfNewest: "a", Add: []store.SigningKey{b},
		Retire: map[string]time.Time{"a": Base.Add(9 * time.Hour)}}, audit("keys.rotate", "b")); err != nil {
		t.Fatal(err)
	}
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{IfNewest: "a", Add: []store.SigningKey{sk("c", Base)}}, audit("keys.rotate", "c")); !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("stale rotation: %v", err)
	}
	got, err := ks.SigningKeys(ctx, "inst")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].KID != "a" || got[1].KID != "b" {
		t.Fatalf("keys %+v", got)
	}
	if string(got[0].Private) != "\x00sealed\xffa" || string(got[1].Certificate) != "cert-b" || !got[0].RetireAt.Equal(Base.Add(9*time.Hour)) ||
		!got[1].ActivateAt.Equal(Base.Add(time.Hour)) || !got[1].RetireAt.Equal(Base.Add(48*time.Hour)) || !got[0].Created.Equal(Base) {
		t.Fatalf("round trip: %+v", got)
	}
	mustAudit(t, s, "inst", "keys.rotate:b", "keys.create:a")
	if got, _ := ks.SigningKeys(ctx, "other"); len(got) != 0 {
		t.Fatalf("other instance sees %v", got)
	}
	// Activation of an existing key moves; of an unknown one is refused.
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{IfNewest: "b", Activate: map[string]time.Time{"b": Base.Add(2 * time.Hour)}}, audit("keys.activate", "b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := ks.SigningKeys(ctx, "inst"); !got[1].ActivateAt.Equal(Base.Add(2 * time.Hour)) {
		t.Fatalf("activation not moved: %+v", got[1])
	}
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{Unconditional: true, Activate: map[string]time.Time{"nope": Base}}, audit("keys.activate", "nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("activate unknown: %v", err)
	}
	// Retiring an unknown key changes nothing.
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{Unconditional: true, Retire: map[string]time.Time{"nope": Base}}, audit("keys.retire", "nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retire unknown: %v", err)
	}
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{Unconditional: true, Purge: []string{"a"}}, audit("keys.purge", "a")); err != nil {
		t.Fatal(err)
	}
	if got, _ := ks.SigningKeys(ctx, "inst"); len(got) != 1 || got[0].KID != "b" {
		t.Fatalf("after purge: %+v", got)
	}
	mustAudit(t, s, "inst", "keys.purge:a", "keys.activate:b", "keys.rotate:b", "keys.create:a")
	for _, bad := range []store.SigningKey{{KID: "", Certificate: []byte("c"), Private: []byte("p"), ActivateAt: Base}, {KID: "k", Private: []byte("p"), ActivateAt: Base},
		{KID: "k", Certificate: []byte("c"), ActivateAt: Base}, {KID: "k", Certificate: []byte("c"), Private: []byte("p")}} {
		if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{Unconditional: true, Add: []store.SigningKey{bad}}, audit("keys.import", "k")); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
}

// testSigningKeysRace: replicas that all see the same newest key and
// rotate at once end with exactly one new key.
func testSigningKeysRace(t *testing.T, s store.Store) {
	RaceSigningKeys(t, []store.KeyStore{keyStore(t, s)}, 6)
}

// RaceSigningKeys lets writers (handles of one database, as replicas hold
// them) race to add the first key and then to rotate it; exactly one of each
// round commits, the others get ErrKeyConflict.
func RaceSigningKeys(t *testing.T, writers []store.KeyStore, n int) {
	t.Helper()
	ctx := context.Background()
	newest := ""
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := sk(fmt.Sprintf("r%d-%d", round, i), Base.Add(time.Duration(round)*time.Hour))
				errs[i] = writers[i%len(writers)].ChangeSigningKeys(ctx, "race", store.KeyChange{IfNewest: newest, Add: []store.SigningKey{k}}, audit("keys.rotate", k.KID))
			}()
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				newest = fmt.Sprintf("r%d-%d", round, i)
			case !errors.Is(err, store.ErrKeyConflict):
				t.Fatalf("round %d writer %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers committed, want 1", round, won)
		}
	}
	got, err := writers[0].SigningKeys(ctx, "race")
	if err != nil || len(got) != 3 || got[2].KID != newest {
		t.Fatalf("keys after race: %+v %v", got, err)
	}
}
