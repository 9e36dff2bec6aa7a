package cache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
)

var (
	t0  = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	key = collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: collateral.CAProcessor}
)

// pki is a throw-away CA hierarchy named like Intel's, so synthetic
// collateral with chosen dates passes Inspect. Signatures are never checked
// by the cache, so the documents' signatures are zeros.
type pki struct {
	rootKey, caKey    *ecdsa.PrivateKey
	root, ca, signer  *x509.Certificate
	chainTCB, chainCA []byte
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	k := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p := &pki{rootKey: k(), caKey: k()}
	signerKey := k()
	mk := func(serial int64, cn string, pub any, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2049, 1, 1, 0, 0, 0, 0, time.UTC),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	p.root = mk(1, "Test SGX Root CA", &p.rootKey.PublicKey, nil, p.rootKey)
	p.ca = mk(2, "Test SGX PCK Processor CA", &p.caKey.PublicKey, p.root, p.rootKey)
	p.signer = mk(3, "Test SGX TCB Signing", &signerKey.PublicKey, p.root, p.rootKey)
	enc := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	p.chainTCB, p.chainCA = enc(p.signer, p.root), enc(p.ca, p.root)
	return p
}

func (p *pki) crl(t testing.TB, issuer *x509.Certificate, k *ecdsa.PrivateKey, from, to time.Time) []byte {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: from, NextUpdate: to}, issuer, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// collateralValid returns an SGX set for key whose every item is valid from..to;
// tag makes sets with equal dates distinguishable.
func (p *pki) collateralValid(t testing.TB, from, to time.Time, tag int) *collateral.Collateral {
	f, u := from.Format(time.RFC3339), to.Format(time.RFC3339)
	return &collateral.Collateral{
		PCKCRLIssuerChain:     p.chainCA,
		RootCACRL:             p.crl(t, p.root, p.rootKey, from, to),
		PCKCRL:                p.crl(t, p.ca, p.caKey, from, to),
		TCBInfoIssuerChain:    p.chainTCB,
		TCBInfo:               []byte(fmt.Sprintf(`{"id":"SGX","version":3,"issueDate":"%s","nextUpdate":"%s","fmspc":"00a067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":%d,"tcbLevels":[]}`, f, u, tag)),
		TCBInfoSignature:      make([]byte, 64),
		QEIdentityIssuerChain: p.chainTCB,
		QEIdentity:            []byte(fmt.Sprintf(`{"id":"QE","version":2,"issueDate":"%s","nextUpdate":"%s","tcbEvaluationDataNumber":%d,"tcbLevels":[]}`, f, u, tag)),
		QEIdentitySignature:   make([]byte, 64),
	}
}

// fakeSource answers from a function and counts calls.
type fakeSource struct {
	calls atomic.Int32
	fn    func(ctx context.Context, req collateral.Request) (*collateral.Collateral, error)
}

func (s *fakeSource) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	s.calls.Add(1)
	return s.fn(ctx, req)
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newCache(t testing.TB, src collateral.Source, clk *clock, dir string) *Cache {
	t.Helper()
	c, err := New(src, Options{Now: clk.Now, Dir: dir, RefreshMargin: 24 * time.Hour, RetryInterval: 5 * time.Minute, FetchTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHit(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
	clk := &clock{t: t0.Add(time.Hour)}
	c := newCache(t, src, clk, "")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		got, err := c.Get(ctx, key)
		if err != nil || got != v1 {
			t.Fatalf("Get #%d = %p, %v", i, got, err)
		}
	}
	// A request spelled differently is the same entry.
	if got, err := c.Get(ctx, collateral.Request{TEE: "sgx", FMSPC: "00A067110000", CA: "processor"}); err != nil || got != v1 {
		t.Fatalf("Get(upper-case FMSPC) = %v", err)
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("source called %d times, want 1", n)
	}
	if _, err := c.Get(ctx, collateral.Request{TEE: "SEV", FMSPC: "00a067110000", CA: "processor"}); err == nil {
		t.Error("invalid request accepted")
	}
}

func TestRefreshBeforeNextUpdate(t *testing.T) {
	p := newPKI(t)
	end := t0.Add(30 * 24 * time.Hour)
	v1 := p.collateralValid(t, t0, end, 1)
	v2 := p.collateralValid(t, end.Add(-48*time.Hour), end.Add(28*24*time.Hour), 2)
	var next atomic.Pointer[collateral.Collateral]
	next.Store(v1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return next.Load(), nil }}
	clk := &clock{t: t0}
	c := newCache(t, src, clk, "")
	ctx := context.Background()
	if _, err := c.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	next.Store(v2)
	// 25 hours before the end: outside the 24-hour margin, no refresh.
	clk.Set(end.Add(-25 * time.Hour))
	if got, _ := c.Get(ctx, key); got != v1 || src.calls.Load() != 1 {
		t.Fatalf("refreshed too early (calls %d)", src.calls.Load())
	}
	// 23 hours before: the old entry is returned at once and one
	// background refresh replaces it.
	clk.Set(end.Add(-23 * time.Hour))
	for i := 0; i < 5; i++ {
		if got, err := c.Get(ctx, key); err != nil || got != v1 {
			t.Fatalf("Get in the refresh window = %p, %v; want the cached entry", got, err)
		}
	}
	c.wg.Wait()
	if n := src.calls.Load(); n != 2 {
		t.Errorf("source called %d times, want 2 (one refresh)", n)
	}
	if got, _ := c.Get(ctx, key); got != v2 {
		t.Error("refreshed collateral not served")
	}
}

func TestSingleFlight(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	release := make(chan struct{})
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		<-release
		return v1, nil
	}}
	c := newCache(t, src, &clock{t: t0}, "")
	const n = 32
	var wg sync.WaitGroup
	results := make(chan *collateral.Collateral, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Get(context.Background(), key)
			if err != nil {
				t.Error(err)
			}
			results <- got
		}()
	}
	// Wait until the one flight has reached the source. (Callers that are
	// not yet parked join the same flight or find the entry.)
	deadline := time.Now().Add(10 * time.Second)
	for src.calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fetch started")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let more callers pile onto the flight
	close(release)
	wg.Wait()
	close(results)
	for got := range results {
		if got != v1 {
			t.Fatal("a caller got something else")
		}
	}
	if calls := src.calls.Load(); calls != 1 {
		t.Errorf("source called %d times for %d concurrent misses, want 1", calls, n)
	}
}

func TestCallerCancelDoesNotCancelFetch(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	release := make(chan struct{})
	src := &fakeSource{fn: func(ctx context.Context, _ collateral.Request) (*collateral.Collateral, error) {
		select {
		case <-release:
			return v1, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	c := newCache(t, src, &clock{t: t0}, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, key); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with cancelled ctx = %v", err)
	}
	close(release)
	c.wg.Wait()
	if got, err := c.Get(context.Background(), key); err != nil || got != v1 || src.calls.Load() != 1 {
		t.Fatalf("the abandoned fetch was not cached: %v, calls %d", err, src.calls.Load())
	}
}

func TestPersistence(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	dir := t.TempDir()
	clk := &clock{t: t0}
	online := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
	c1 := newCache(t, online, clk, dir)
	if _, err := c1.Get(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	if _, err := os.Stat(filepath.Join(dir, "sgx-00a067110000-processor.json")); err != nil {
		t.Fatalf("not persisted: %v", err)
	}
	// No temporary files are left behind.
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("leftover files %v", m)
	}

	// A restart without network still serves the persisted collateral.
	offline := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		return nil, &collateral.UnavailableError{Source: "test", Err: errors.New("network unreachable")}
	}}
	clk.Add(time.Hour)
	c2 := newCache(t, offline, clk, dir)
	got, err := c2.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("offline restart: %v", err)
	}
	if !got.Equal(v1) {
		t.Error("persisted collateral differs")
	}
	if offline.calls.Load() != 0 {
		t.Error("offline source was called on a hit")
	}
	// The cache directory is itself a collateral bundle.
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

func TestStaleOnError(t *testing.T) {
	p := newPKI(t)
	end := t0.Add(30 * 24 * time.Hour)
	v1 := p.collateralValid(t, t0, end, 1)
	down := errors.New("PCS down")
	var fail atomic.Bool
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		if fail.Load() {
			return nil, &collateral.UnavailableError{Source: "pcs test", Err: down}
		}
		return v1, nil
	}}
	clk := &clock{t: t0}
	c := newCache(t, src, clk, "")
	ctx := context.Background()
	if _, err := c.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	// In the refresh window the failing refresh is invisible to callers.
	clk.Set(end.Add(-2 * time.Hour))
	if got, err := c.Get(ctx, key); err != nil || got != v1 {
		t.Fatalf("Get = %v", err)
	}
	c.wg.Wait()
	if src.calls.Load() != 2 {
		t.Fatalf("calls %d, want 2", src.calls.Load())
	}
	// Within RetryInterval no new attempt is made; after it, one is.
	clk.Add(time.Minute)
	if got, err := c.Get(ctx, key); err != nil || got != v1 {
		t.Fatalf("Get = %v", err)
	}
	c.wg.Wait()
	if src.calls.Load() != 2 {
		t.Errorf("retried before RetryInterval (calls %d)", src.calls.Load())
	}
	clk.Add(5 * time.Minute)
	if got, err := c.Get(ctx, key); err != nil || got != v1 {
		t.Fatalf("Get = %v", err)
	}
	c.wg.Wait()
	if src.calls.Load() != 3 {
		t.Errorf("no retry after RetryInterval (calls %d)", src.calls.Load())
	}
	// At the very end of the window the old entry is still served.
	clk.Set(end)
	if got, err := c.Get(ctx, key); err != nil || got != v1 {
		t.Fatalf("Get at nextUpdate = %v", err)
	}
	c.wg.Wait()
	// After it, the refresh failure surfaces.
	clk.Set(end.Add(time.Second))
	_, err := c.Get(ctx, key)
	var ue *collateral.UnavailableError
	if err == nil || !errors.As(err, &ue) || !errors.Is(err, down) || !strings.Contains(err.Error(), "expired at "+end.Format(time.RFC3339)) {
		t.Fatalf("Get after expiry = %v, want the fetch error naming the expiry", err)
	}
	// The source recovers: the next attempt after RetryInterval succeeds.
	fail.Store(false)
	before := src.calls.Load()
	if _, err := c.Get(ctx, key); err == nil {
		t.Error("error not remembered for RetryInterval")
	}
	if src.calls.Load() != before {
		t.Error("source hammered within RetryInterval")
	}
	clk.Add(6 * time.Minute)
	if got, err := c.Get(ctx, key); err != nil || got != v1 {
		t.Fatalf("Get after recovery = %v", err)
	}
}

func TestNotFoundIsRemembered(t *testing.T) {
	src := &fakeSource{fn: func(_ context.Context, r collateral.Request) (*collateral.Collateral, error) {
		return nil, fmt.Errorf("%w: no TCB info for FMSPC %s", collateral.ErrNotFound, r.FMSPC)
	}}
	clk := &clock{t: t0}
	c := newCache(t, src, clk, "")
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), key); !errors.Is(err, collateral.ErrNotFound) {
			t.Fatalf("Get = %v, want ErrNotFound", err)
		}
	}
	if src.calls.Load() != 1 {
		t.Errorf("calls %d, want 1", src.calls.Load())
	}
	clk.Add(5 * time.Minute)
	c.Get(context.Background(), key)
	if src.calls.Load() != 2 {
		t.Errorf("calls %d after RetryInterval, want 2", src.calls.Load())
	}
}

func TestRejectsWrongCollateral(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
	c := newCache(t, src, &clock{t: t0}, "")
	other := collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110001", CA: collateral.CAProcessor}
	if _, err := c.Get(context.Background(), other); err == nil || !strings.Contains(err.Error(), "source returned collateral for SGX FMSPC 00a067110000") {
		t.Fatalf("Get = %v", err)
	}
}

// TestExpiredFetchIsServedBriefly: a source that only has expired
// collateral (an old bundle) is asked again after RetryInterval, not on
// every Get, and its collateral is returned for the verifier to judge.
func TestExpiredFetchIsServedBriefly(t *testing.T) {
	p := newPKI(t)
	old := p.collateralValid(t, t0.Add(-60*24*time.Hour), t0.Add(-30*24*time.Hour), 1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return old, nil }}
	clk := &clock{t: t0}
	c := newCache(t, src, clk, "")
	for i := 0; i < 3; i++ {
		if got, err := c.Get(context.Background(), key); err != nil || got != old {
			t.Fatalf("Get = %v", err)
		}
	}
	if src.calls.Load() != 1 {
		t.Errorf("calls %d, want 1", src.calls.Load())
	}
	clk.Add(5 * time.Minute)
	c.Get(context.Background(), key)
	if src.calls.Load() != 2 {
		t.Errorf("calls %d after RetryInterval, want 2", src.calls.Load())
	}
}

func TestNewValidates(t *testing.T) {
	src := &fakeSource{}
	if _, err := New(src, Options{}); err == nil {
		t.Error("missing Now accepted")
	}
	if _, err := New(nil, Options{Now: time.Now}); err == nil {
		t.Error("nil source accepted")
	}
	// A corrupt persisted file is skipped, not fatal.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sgx-00a067110000-processor.json"), []byte("{garbage"), 0o600)
	c, err := New(src, Options{Now: time.Now, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// BenchmarkGetHit measures the hot path: a cached, fresh entry.
func BenchmarkGetHit(b *testing.B) {
	p := newPKI(b)
	v1 := p.collateralValid(b, t0, t0.Add(30*24*time.Hour), 1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
	clk := &clock{t: t0}
	c := newCache(b, src, clk, "")
	ctx := context.Background()
	if _, err := c.Get(ctx, key); err != nil {
		b.Fatal(err)
	}
	now := clk.Now()
	c.opts.Now = func() time.Time { return now }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetHitSerial is the hot path without contention.
func BenchmarkGetHitSerial(b *testing.B) {
	p := newPKI(b)
	v1 := p.collateralValid(b, t0, t0.Add(30*24*time.Hour), 1)
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) { return v1, nil }}
	clk := &clock{t: t0}
	c := newCache(b, src, clk, "")
	ctx := context.Background()
	if _, err := c.Get(ctx, key); err != nil {
		b.Fatal(err)
	}
	c.opts.Now = func() time.Time { return t0 }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
