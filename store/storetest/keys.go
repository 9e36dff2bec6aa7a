package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// testReseal: Reseal replaces every signing key's private part and every
// sealed instance secret the callback replaces, across instances, leaves
// the rest (plaintext secrets of earlier versions are not offered), and
// appends one audit entry per changed instance; a failing callback, or an
// invalid audit entry, writes nothing at all; a second pass that changes
// nothing writes nothing.
func testReseal(t *testing.T, s store.Store) {
	ctx := context.Background()
	ks := keyStore(t, s)
	rs, ok := s.(store.Resealer)
	if !ok {
		t.Fatalf("%T does not implement store.Resealer; every SQL backend must", s)
	}
	key := func(kid, private string) store.SigningKey {
		k := sk(kid, Base)
		k.Private = []byte(private)
		return k
	}
	for inst, keys := range map[string][]store.SigningKey{"a": {key("k1", "old:k1"), key("k2", "old:k2")}, "b": {key("k3", "old:k3")}, "c": {key("p", "ref:p")}} {
		if err := ks.ChangeSigningKeys(ctx, inst, store.KeyChange{Add: keys}, audit("keys.create", inst)); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(inst, name, v string) {
		t.Helper()
		if _, err := s.InstanceSecret(ctx, inst, name, func() ([]byte, error) { return []byte(v), nil }); err != nil {
			t.Fatal(err)
		}
	}
	secret("a", store.SealedSecretPrefix+"s", "old:s")
	secret("b", "plain", "plaintext")
	state := func() string {
		t.Helper()
		var out []string
		for _, inst := range []string{"a", "b", "c"} {
			rows, err := ks.SigningKeys(ctx, inst)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				out = append(out, inst+"/"+r.KID+"="+string(r.Private))
			}
		}
		for _, n := range []string{store.SealedSecretPrefix + "s", "plain"} {
			for _, inst := range []string{"a", "b"} {
				v, err := s.InstanceSecret(ctx, inst, n, func() ([]byte, error) { return nil, errors.New("absent") })
				if err == nil {
					out = append(out, inst+"/"+n+"="+string(v))
				}
			}
		}
		return fmt.Sprint(out)
	}
	auditFor := func(inst string, changed []store.SealedValue) store.AuditEntry {
		names := make([]string, 0, len(changed))
		for _, v := range changed {
			if v.Value != nil {
				t.Errorf("audit callback got the value of %s", v)
			}
			names = append(names, v.String())
		}
		return store.AuditEntry{At: Base, Actor: "tester", Action: "keys.rewrap", Target: inst, Detail: fmt.Sprint(names)}
	}
	var offered []string
	toNew := func(v store.SealedValue) ([]byte, error) {
		offered = append(offered, v.String())
		if rest, ok := strings.CutPrefix(string(v.Value), "old:"); ok {
			return []byte("new:" + rest), nil
		}
		return nil, nil
	}
	before := state()
	// A failure after some values were replaced rolls all of them back.
	calls := 0
	if _, err := rs.Reseal(ctx, func(v store.SealedValue) ([]byte, error) {
		if calls++; calls == 3 {
			return nil, errors.New("cannot open")
		}
		return toNew(v)
	}, auditFor); err == nil || !strings.Contains(err.Error(), "cannot open") {
		t.Fatalf("failing reseal: %v", err)
	}
	if _, err := rs.Reseal(ctx, toNew, func(string, []store.SealedValue) store.AuditEntry { return store.AuditEntry{} }); err == nil {
		t.Fatal("an audit entry without action was accepted")
	}
	if got := state(); got != before {
		t.Fatalf("failed reseals changed values:\n%s\nwant\n%s", got, before)
	}
	mustAudit(t, s, "a", "keys.create:a")
	offered = nil
	n, err := rs.Reseal(ctx, toNew, auditFor)
	if err != nil || n != 4 {
		t.Fatalf("reseal: %d %v", n, err)
	}
	want := "[a/k1=new:k1 a/k2=new:k2 b/k3=new:k3 c/p=ref:p a/sealed:s=new:s b/plain=plaintext]"
	if got := state(); got != want {
		t.Fatalf("after reseal:\n%s\nwant\n%s", got, want)
	}
	if fmt.Sprint(offered) != "[signing key k1 of a signing key k2 of a signing key k3 of b signing key p of c instance secret s of a]" {
		t.Fatalf("offered %v", offered)
	}
	e := mustAudit(t, s, "a", "keys.rewrap:a", "keys.create:a")
	if e[0].Detail != "[signing key k1 of a signing key k2 of a instance secret s of a]" {
		t.Fatalf("audit detail %q", e[0].Detail)
	}
	mustAudit(t, s, "b", "keys.rewrap:b", "keys.create:b")
	mustAudit(t, s, "c", "keys.create:c")
	if n, err := rs.Reseal(ctx, toNew, auditFor); err != nil || n != 0 {
		t.Fatalf("second reseal: %d %v", n, err)
	}
	mustAudit(t, s, "a", "keys.rewrap:a", "keys.create:a")
}

// RaceReseal runs Reseal on one handle while writers on others add
// signing keys to existing and new instances and create sealed secrets
// ("old:" values, as replicas still on the old KEK would): every call
// succeeds (no deadlock between the rewrap's locks and the writers'), and
// a last Reseal leaves no "old:" value behind.
func RaceReseal(t *testing.T, resealer store.Store, writers []store.Store, rounds int) {
	t.Helper()
	ctx := context.Background()
	rs, ok := resealer.(store.Resealer)
	if !ok {
		t.Fatalf("%T does not implement store.Resealer", resealer)
	}
	toNew := func(v store.SealedValue) ([]byte, error) {
		if rest, ok := strings.CutPrefix(string(v.Value), "old:"); ok {
			return []byte("new:" + rest), nil
		}
		return nil, nil
	}
	auditFor := func(inst string, _ []store.SealedValue) store.AuditEntry { return audit("keys.rewrap", inst) }
	key := func(kid string) store.SigningKey {
		k := sk(kid, Base)
		k.Private = []byte("old:" + kid)
		return k
	}
	var wg sync.WaitGroup
	errs := make(chan error, rounds*(2*len(writers)+1))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			if _, err := rs.Reseal(ctx, toNew, auditFor); err != nil {
				errs <- fmt.Errorf("reseal: %w", err)
			}
		}
	}()
	for w, s := range writers {
		ks := keyStore(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				kid := fmt.Sprintf("w%d-%d", w, i)
				if err := ks.ChangeSigningKeys(ctx, "shared", store.KeyChange{Unconditional: true, Add: []store.SigningKey{key(kid)}}, audit("keys.rotate", kid)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
				}
				inst := fmt.Sprintf("new-%d-%d", w, i)
				if err := ks.ChangeSigningKeys(ctx, inst, store.KeyChange{Add: []store.SigningKey{key(kid)}}, audit("keys.create", kid)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
				}
				if _, err := s.InstanceSecret(ctx, inst, store.SealedSecretPrefix+"s", func() ([]byte, error) { return []byte("old:" + inst), nil }); err != nil {
					errs <- fmt.Errorf("writer %d: secret: %w", w, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	left := 0
	if _, err := rs.Reseal(ctx, func(v store.SealedValue) ([]byte, error) {
		if strings.HasPrefix(string(v.Value), "old:") {
			left++
		}
		return toNew(v)
	}, auditFor); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Reseal(ctx, func(v store.SealedValue) ([]byte, error) {
		if !strings.HasPrefix(string(v.Value), "new:") {
			return nil, fmt.Errorf("%s is %q after the last reseal", v, v.Value)
		}
		return nil, nil
	}, auditFor); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d values written after the racing reseals committed", left)
}
