package cache

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
)

// TestStats: hits, misses and fetches are counted per family; the holding
// reports documents, their age and next expiry; a required source is not
// ready while a document is expired past MaxExpired with its refresh
// failing, or a key has no collateral because the source is unavailable,
// and ready again once the retry interval has passed (the next request
// fetches again) or the source recovers; a key the source does not know
// never makes it not ready; an optional source is never not ready.
func TestStats(t *testing.T) {
	clk := &clock{t: t0}
	var down atomic.Bool
	unavailable := &collateral.UnavailableError{Source: "test", Status: 503, Err: errors.New("down")}
	fetch := func(_ context.Context, k int) (doc, error) {
		if k < 0 {
			return doc{}, collateral.ErrNotFound
		}
		if down.Load() {
			return doc{}, unavailable
		}
		return doc{Key: k, NotBefore: clk.Now().Add(-time.Hour), NotAfter: clk.Now().Add(48 * time.Hour)}, nil
	}
	st := NewStats("sgx", Readiness{Required: true, MaxExpired: time.Hour})
	c, err := NewOf(Config[int, doc]{Codec: docCodec{}, Fetch: fetch}, Options{Now: clk.Now, RefreshMargin: time.Hour, RetryInterval: 10 * time.Minute, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	status := func() FamilyStatus {
		t.Helper()
		c.wg.Wait()
		s := st.Status(clk.Now())
		if len(s) != 1 || s[0].Family != "test-doc" {
			t.Fatalf("status %+v", s)
		}
		return s[0]
	}

	if s := status(); s.Documents != 0 || s.Hits != 0 || s.Misses != 0 || !s.OldestFetch.IsZero() || st.Ready(clk.Now()) != nil {
		t.Fatalf("empty: %+v %v", s, st.Ready(clk.Now()))
	}
	for _, k := range []int{1, 1, 1, 2} {
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	s := status()
	if s.Hits != 2 || s.Misses != 2 || s.FetchesOK != 2 || s.FetchFailures != 0 || s.Documents != 2 || s.Expired != 0 ||
		!s.OldestFetch.Equal(t0) || !s.NextExpiry.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("after 4 gets: %+v", s)
	}
	// Unknown to the source: a failure, but no reason to be unready.
	if _, err := c.Get(ctx, -1); !errors.Is(err, collateral.ErrNotFound) {
		t.Fatal(err)
	}
	if s := status(); s.FetchFailures != 1 || s.Failing != 0 || st.Ready(clk.Now()) != nil {
		t.Fatalf("not found: %+v %v", s, st.Ready(clk.Now()))
	}

	// The source goes down: a new key cannot be fetched → not ready until
	// the retry interval has passed.
	down.Store(true)
	if _, err := c.Get(ctx, 3); !collateral.Transient(err) {
		t.Fatal(err)
	}
	if s := status(); s.Failing != 1 || !errors.Is(st.Ready(clk.Now()), ErrStale) || !strings.Contains(st.Ready(clk.Now()).Error(), "test-doc: 1 key(s) without collateral") {
		t.Fatalf("down, new key: %+v %v", s, st.Ready(clk.Now()))
	}
	clk.Add(11 * time.Minute)
	if err := st.Ready(clk.Now()); err != nil {
		t.Fatalf("after the retry interval: %v", err)
	}

	// Documents expire unrefreshed: expired, not stale (nobody asked).
	clk.Set(t0.Add(50 * time.Hour))
	if s := status(); s.Expired != 2 || s.Stale != 0 || !s.NextExpiry.IsZero() || st.Ready(clk.Now()) != nil {
		t.Fatalf("idle expiry: %+v %v", s, st.Ready(clk.Now()))
	}
	// A request fails to refresh: within MaxExpired still ready, beyond it not.
	if _, err := c.Get(ctx, 1); err == nil {
		t.Fatal("expired document served while the source is down")
	}
	if s := status(); s.Expired != 2 || s.Stale != 1 || !errors.Is(st.Ready(clk.Now()), ErrStale) {
		t.Fatalf("refresh failing 2 h after expiry: %+v %v", s, st.Ready(clk.Now()))
	}
	// The source recovers: ready again.
	down.Store(false)
	clk.Add(11 * time.Minute)
	if _, err := c.Get(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := status(); s.Stale != 0 || s.Expired != 1 || st.Ready(clk.Now()) != nil {
		t.Fatalf("recovered: %+v %v", s, st.Ready(clk.Now()))
	}

	// Not required: reported, never unready.
	opt := NewStats("tdx", Readiness{})
	c3, err := NewOf(Config[int, doc]{Codec: docCodec{}, Fetch: func(context.Context, int) (doc, error) { return doc{}, unavailable }},
		Options{Now: clk.Now, Stats: opt})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Get(ctx, 1)
	c3.wg.Wait()
	if s := opt.Status(clk.Now()); len(s) != 1 || s[0].Failing != 1 || opt.Ready(clk.Now()) != nil {
		t.Fatalf("optional: %+v %v", s, opt.Ready(clk.Now()))
	}
	// Without Stats nothing is counted and nothing breaks.
	var none *Stats
	if none.Ready(clk.Now()) != nil {
		t.Fatal("nil Stats not ready")
	}
}

// BenchmarkGetHitStats compares the hot path with and without Stats (an
// atomic add per hit, shared by every goroutine): compare the two in one
// run, the ratio is what matters.
func BenchmarkGetHitStats(b *testing.B) {
	p := newPKI(b)
	v1 := p.collateralValid(b, t0, t0.Add(30*24*time.Hour), 1)
	for _, withStats := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "stats"}[withStats]
		b.Run(name, func(b *testing.B) {
			src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
			clk := &clock{t: t0}
			c := newCache(b, src, clk, "")
			if withStats {
				c.counts = NewStats("bench", Readiness{}).register("intel-dcap", c.holding)
			}
			ctx := context.Background()
			if _, err := c.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
			c.opts.Now = func() time.Time { return t0 }
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Get(ctx, key); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
