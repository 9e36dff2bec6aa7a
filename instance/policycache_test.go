package instance

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/postgres"
	"github.com/attestd/attestd/store/postgres/pgtest"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// countingStore counts the policy reads of one replica's store and can run
// a hook inside a read, after the store has answered: the window in which
// another replica's change can commit between the read and the cache fill.
// It passes store.PolicyChanges through, so the instance caches over it.
type countingStore struct {
	store.Store
	pc        store.PolicyChanges
	gets      atomic.Int64
	mu        sync.Mutex
	afterRead func()
}

func (c *countingStore) GetPolicy(ctx context.Context, instance, typ string) (*store.Policy, error) {
	c.gets.Add(1)
	p, err := c.Store.GetPolicy(ctx, instance, typ)
	c.mu.Lock()
	hook := c.afterRead
	c.afterRead = nil
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return p, err
}

func (c *countingStore) PolicyEpoch() (uint64, bool)            { return c.pc.PolicyEpoch() }
func (c *countingStore) SyncPolicies(ctx context.Context) error { return c.pc.SyncPolicies(ctx) }

// twoHandles opens two handles of one database, as two replicas (or two
// processes on one SQLite file) hold them.
type twoHandles func(t *testing.T) (a, b store.Store)

func sqliteHandles(t *testing.T) (store.Store, store.Store) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var out [2]store.Store
	for i := range out {
		db, err := sqlite.Open(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out[i] = db
	}
	return out[0], out[1]
}

func postgresHandles(t *testing.T) (store.Store, store.Store) {
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn := srv.NewDatabase(t)
	var out [2]store.Store
	for i := range out {
		db, err := postgres.Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out[i] = db
	}
	return out[0], out[1]
}

// TestPolicyInForceCacheAcrossReplicas: replica A keeps the policy in force
// in memory; replica B (another handle on the same database) changes it.
// After the change is acknowledged and A's store has caught up with its
// notifications (SyncPolicies, which bounds what would otherwise be the
// notification latency), A must attest under B's policy — above all, must
// not keep a permissive policy after a restrictive one was set. Without
// invalidation (no epoch change on B's write, or the epoch read after the
// store instead of before) the restrictive steps below get a token.
func TestPolicyInForceCacheAcrossReplicas(t *testing.T) {
	const (
		permissive  = `version=1.0; authorizationrules{ => permit(); }; issuancerules{ => issue(type="which", value="permissive"); };`
		restrictive = `version=1.0; authorizationrules{ => deny(); };`
	)
	for _, backend := range []struct {
		name string
		open twoHandles
	}{
		{"sqlite two handles on one file", sqliteHandles},
		{"postgres two replicas", postgresHandles},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sa, sb := backend.open(t)
			ca := &countingStore{Store: sa, pc: sa.(store.PolicyChanges)}
			keys, a, b := twoReplicas(ctx, t, ca, sb)
			set := func(in *Instance, text string) {
				t.Helper()
				if _, err := in.SetPolicy(ctx, "SgxEnclave", text, Actor{Subject: "admin"}); err != nil {
					t.Fatal(err)
				}
			}
			caughtUp := func() {
				t.Helper()
				if err := ca.SyncPolicies(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// attest returns A's "which" claim, "denied", or the policy hash
			// for the default policy.
			attest := func() string {
				t.Helper()
				tok, err := tokenOf(a.Attest(ctx, attestReq(t, []byte("rt"), false)))
				if err != nil {
					if CodeOf(err) != CodePolicyEvaluationError {
						t.Fatalf("attest: %v", err)
					}
					return "denied"
				}
				c := e2eClaims(t, keys, tok)
				if w, ok := c["which"].(string); ok {
					return w
				}
				return c["x-ms-policy-hash"].(string)
			}
			want := func(step, got, want string) {
				t.Helper()
				if got != want {
					t.Fatalf("%s: replica A attested %q, want %q", step, got, want)
				}
			}
			def, _ := policy.Default("SgxEnclave")

			set(b, permissive)
			caughtUp()
			want("B set permissive", attest(), "permissive")
			reads := ca.gets.Load()
			for range 3 {
				want("permissive again", attest(), "permissive")
			}
			if n := ca.gets.Load() - reads; n != 0 {
				t.Fatalf("the policy in force was read from the store %d more times: not cached", n)
			}

			set(b, restrictive)
			caughtUp()
			want("B set restrictive after A cached permissive", attest(), "denied")

			set(a, permissive) // A's own write: in force at once, no catching up
			want("A set permissive", attest(), "permissive")
			set(a, restrictive)
			want("A set restrictive", attest(), "denied")

			if _, err := b.ResetPolicy(ctx, "SgxEnclave", "", Actor{Subject: "admin"}); err != nil {
				t.Fatal(err)
			}
			caughtUp()
			want("B reset", attest(), policy.Hash(def))

			// B's restrictive change commits while A is between its store
			// read (permissive) and its cache fill: the entry must not
			// outlive the change.
			set(a, permissive)
			ca.mu.Lock()
			ca.afterRead = func() {
				set(b, restrictive)
				caughtUp()
			}
			ca.mu.Unlock()
			want("read raced with B's restrictive change", attest(), "permissive") // the read came first
			want("after the race", attest(), "denied")
		})
	}
}

// e2eClaims verifies tok with keys and returns its claims.
func e2eClaims(t *testing.T, keys *token.KeySet, tok string) map[string]any {
	t.Helper()
	e := &env{keys: keys}
	return e.claims(t, tok)
}

// TestPolicyInForceCacheConcurrent: attestations on replica A run while
// replica B flips the policy; once B's last (restrictive) change is
// acknowledged and A has caught up, no attestation of A is permitted. Run
// with -race it also checks the cache's locking.
func TestPolicyInForceCacheConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sa, sb := sqliteHandles(t)
	_, a, b := twoReplicas(ctx, t, sa, sb)
	req := attestReq(t, []byte("rt"), false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Attest(ctx, req); err != nil && CodeOf(err) != CodePolicyEvaluationError {
					t.Errorf("attest: %v", err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		text := `version=1.0; authorizationrules{ => permit(); };`
		if i%2 == 1 {
			text = `version=1.0; authorizationrules{ => deny(); };`
		}
		if _, err := b.SetPolicy(ctx, "SgxEnclave", text, Actor{Subject: "admin"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sa.(store.PolicyChanges).SyncPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := a.Attest(ctx, req); CodeOf(err) != CodePolicyEvaluationError {
			t.Fatalf("after B's restrictive change was acknowledged and A caught up: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

// twoReplicas is two instances "t" on the stores sa and sb (two handles
// of one database), sharing one signing key set and a fake SGX verifier.
func twoReplicas(ctx context.Context, t *testing.T, sa, sb store.Store) (*token.KeySet, *Instance, *Instance) {
	t.Helper()
	keys, err := token.OpenKeySet(filepath.Join(t.TempDir(), "keys"), "https://attestd.test", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeVerifier{}
	replica := func(st store.Store) *Instance {
		in, err := New(ctx, Config{Name: "t", Mode: ModeAAD, Issuer: "https://attestd.test/tenants/t"},
			Options{Store: st, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: fake},
				Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	return keys, replica(sa), replica(sb)
}
