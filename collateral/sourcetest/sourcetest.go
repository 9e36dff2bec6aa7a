// Package sourcetest is the conformance suite every collateral source must
// pass, whatever its family (Intel DCAP, AMD KDS) and kind (a bundle, a
// service client, a cache, a fallback), in the manner of vault's
// physical.ExerciseBackend: a source's test builds it in each upstream state
// and calls Exercise. The suite fixes the behaviour callers rely on:
//
//   - a served key answers a document the family's codec accepts for it;
//   - a key the source does not have is an error wrapping
//     collateral.ErrNotFound (and not ErrUnavailable: retrying will not help);
//   - a caller whose context is cancelled or times out gets ctx.Err()
//     promptly, even while the upstream hangs;
//   - an unreachable or failing upstream is collateral.ErrUnavailable, as a
//     *collateral.UnavailableError (never ErrNotFound: "down" is not "bad");
//   - documents outside their window (expired, not yet valid) are handled
//     the way the family says: served for the verifier to judge, or refused.
//
// It also has fixtures: DCAPFixture builds Intel collateral sets with chosen
// windows (unsigned: sources never check signatures).
package sourcetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
)

// Upstream is the state a harness puts the source's upstream in.
type Upstream int

const (
	// Up: the upstream serves what the fixture holds.
	Up Upstream = iota
	// Down: every upstream request fails (a 503, a refused connection).
	Down
	// Hang: upstream requests block until their context ends.
	Hang
)

func (u Upstream) String() string {
	return [...]string{"up", "down", "hang"}[u]
}

// Get is the lookup of the source under test for one key.
type Get[K comparable, D any] func(ctx context.Context, k K) (D, error)

// Family describes a source under test and the family's rules.
type Family[K comparable, D any] struct {
	// Open returns the source's Get with its upstream in state u, or nil
	// when the source has no such state (a bundle has no upstream: Down
	// and Hang return nil and those checks are skipped). Each call builds a
	// fresh source (a cold cache); cleanups go to t.Cleanup. A Hang upstream
	// must return once its request context ends.
	Open func(t testing.TB, u Upstream) Get[K, D]
	// Codec checks served documents (Check) and dates them.
	Codec collateral.Codec[K, D]
	// Now is the instant the fixture is built around.
	Now time.Time
	// Served is a key the source serves with a document valid at Now.
	Served K
	// Missing is a key the source has nothing for.
	Missing K
	// Expired and NotYetValid, when set, are keys whose documents' windows
	// end before Now / start after Now.
	Expired, NotYetValid *K
	// OutOfWindowServed is the family's rule for them: true, sources serve
	// them and the verifier judges (Intel DCAP, AMD KDS: a source must not
	// decide trust); false, sources refuse them.
	OutOfWindowServed bool
	// Timeout bounds "promptly". Zero: 5 s.
	Timeout time.Duration
}

// Exercise runs the suite.
func Exercise[K comparable, D any](t *testing.T, f Family[K, D]) {
	t.Helper()
	if f.Timeout == 0 {
		f.Timeout = 5 * time.Second
	}
	open := func(t *testing.T, u Upstream) Get[K, D] {
		t.Helper()
		g := f.Open(t, u)
		if g == nil {
			t.Skipf("the source has no %s upstream", u)
		}
		return g
	}
	t.Run("Served", func(t *testing.T) {
		get := open(t, Up)
		for i := 0; i < 2; i++ { // the second Get may be a cache hit
			d, err := get(context.Background(), f.Served)
			if err != nil {
				t.Fatalf("Get(%v) #%d: %v", f.Served, i+1, err)
			}
			w, err := f.Codec.Check(f.Served, d)
			if err != nil {
				t.Fatalf("Get(%v) #%d served a document that does not answer it: %v", f.Served, i+1, err)
			}
			if !w.Final && (f.Now.Before(w.NotBefore) || f.Now.After(w.NotAfter)) {
				t.Errorf("Get(%v): document valid %s .. %s, not at %s", f.Served, w.NotBefore, w.NotAfter, f.Now)
			}
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		get := open(t, Up)
		_, err := get(context.Background(), f.Missing)
		if !errors.Is(err, collateral.ErrNotFound) {
			t.Fatalf("Get(%v) = %v, want an error wrapping collateral.ErrNotFound", f.Missing, err)
		}
		if errors.Is(err, collateral.ErrUnavailable) {
			t.Errorf("Get(%v) = %v: not found must not be ErrUnavailable", f.Missing, err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		get := open(t, Up)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := within(t, f.Timeout, func() error { _, err := get(ctx, f.Served); return err })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with a cancelled context = %v, want context.Canceled", err)
		}
		if errors.Is(err, collateral.ErrUnavailable) || errors.Is(err, collateral.ErrNotFound) {
			t.Errorf("Get with a cancelled context = %v: the caller giving up is neither unavailable nor not found", err)
		}
	})
	t.Run("HangingUpstream", func(t *testing.T) {
		get := open(t, Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := within(t, f.Timeout, func() error { _, err := get(ctx, f.Served); return err })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get while the upstream hangs = %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, collateral.ErrUnavailable) {
			t.Errorf("Get while the upstream hangs = %v: the caller's deadline is not the upstream's failure", err)
		}
	})
	t.Run("Unavailable", func(t *testing.T) {
		get := open(t, Down)
		_, err := get(context.Background(), f.Served)
		var ue *collateral.UnavailableError
		if !errors.Is(err, collateral.ErrUnavailable) || !errors.As(err, &ue) || !collateral.Transient(err) {
			t.Fatalf("Get with the upstream down = %v, want a *collateral.UnavailableError", err)
		}
		if errors.Is(err, collateral.ErrNotFound) {
			t.Errorf("Get with the upstream down = %v: unavailable must not be ErrNotFound", err)
		}
		if ue.Source == "" {
			t.Errorf("UnavailableError names no source: %v", err)
		}
	})
	for _, c := range []struct {
		name string
		key  *K
		out  func(collateral.Window) bool
	}{
		{"Expired", f.Expired, func(w collateral.Window) bool { return f.Now.After(w.NotAfter) }},
		{"NotYetValid", f.NotYetValid, func(w collateral.Window) bool { return f.Now.Before(w.NotBefore) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.key == nil {
				t.Skip("no such key in the fixture")
			}
			get := open(t, Up)
			d, err := get(context.Background(), *c.key)
			if !f.OutOfWindowServed {
				if err == nil {
					t.Fatalf("Get(%v) served a document outside its window", *c.key)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%v) = %v; the family serves documents outside their window for the verifier to judge", *c.key, err)
			}
			w, err := f.Codec.Check(*c.key, d)
			if err != nil {
				t.Fatalf("Get(%v) served a document that does not answer it: %v", *c.key, err)
			}
			if !c.out(w) {
				t.Errorf("Get(%v): document valid %s .. %s is not %s at %s (the fixture is wrong)", *c.key, w.NotBefore, w.NotAfter, c.name, f.Now)
			}
		})
	}
}

// within runs fn and fails t if it does not return within d.
func within(t *testing.T, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Get did not return within %s", d)
		return nil
	}
}
