// Package cache puts an in-memory, optionally disk-persisted cache in front
// of any collateral.Source (PCS, PCCS, a bundle).
//
// Freshness follows the collateral itself: an entry is served as is until
// RefreshMargin before the earliest end of its validity window (the first
// nextUpdate of TCB info, QE identity and CRLs, or an issuer certificate's
// NotAfter). From then on every Get still returns the cached entry at once
// and one background fetch replaces it. If that fetch fails the old entry
// keeps being served — it is still valid — until the window really ends;
// after that Get fetches synchronously and returns the error if the fetch
// fails. Concurrent misses share one fetch (single flight). Failures are
// remembered for RetryInterval so a dead source is not hammered.
//
// With Options.Dir set, every newly fetched set is written there (dcap-qvl
// JSON, one file per request, atomically) and loaded again by New, so a
// restart without network still has collateral. The directory is also a
// valid collateral bundle (see package bundle).
//
// Entries are keyed by the whole Request, TCBEvaluationDataNumber included:
// a TCB baseline is cached and refreshed on its own, persisted as
// <tee>-<fmspc>-<ca>-tcbeval<N>.json, and a source that answers a baseline
// request with documents of another number is an error, never an entry
// (collateral.Request.Serves). Loaded as a bundle, such a directory serves
// every baseline by number; its standard set is the most recently issued
// one, which may then be a baseline file.
//
// A hit costs one map lookup under a read lock and one clock read: no JSON,
// no I/O, no allocation. Returned *Collateral values are shared and must not
// be modified.
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/internal/atomicfile"
)

// Defaults for Options' zero values.
const (
	DefaultRefreshMargin = 24 * time.Hour
	DefaultRetryInterval = 5 * time.Minute
	DefaultFetchTimeout  = 2 * time.Minute
)

// Options configures a Cache.
type Options struct {
	// Now is the clock. Required: the cache never reads the wall clock
	// itself, so tests and "verify as of" tools can drive it.
	Now func() time.Time
	// Dir persists fetched collateral across restarts. Empty: memory only.
	Dir string
	// RefreshMargin is how long before the end of an entry's validity
	// window a background refresh starts. Zero: DefaultRefreshMargin.
	RefreshMargin time.Duration
	// RetryInterval is the least time between two fetches for one request
	// after a failed fetch, or after a fetch that brought nothing fresher.
	// Zero: DefaultRetryInterval.
	RetryInterval time.Duration
	// FetchTimeout bounds each fetch. Fetches run detached from the
	// caller's context (others may be waiting on them); a caller that gives
	// up stops waiting, not the fetch. Zero: DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Logger gets refresh failures (warn) and fetches (debug). Nil: none.
	Logger *slog.Logger
}

// Cache is a collateral.Source caching another one. Safe for concurrent use.
type Cache struct {
	src  collateral.Source
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	entries map[collateral.Request]*entry

	fmu     sync.Mutex
	flights map[collateral.Request]*flight

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ collateral.Source = (*Cache)(nil)

// entry is immutable once published, except nextAttempt.
type entry struct {
	c          *collateral.Collateral // nil when only a failure is cached
	refreshAt  time.Time              // expiry - margin
	expiry     time.Time              // Validity().NotAfter
	staleUntil time.Time              // an already-expired fetch result is served until then
	err        error                  // last fetch failure
	errUntil   time.Time              // err is returned without fetching until then
	// nextAttempt (unix ns) gates background refreshes: the first Get in
	// the refresh window moves it forward with a CAS and starts the fetch.
	nextAttempt atomic.Int64
}

type flight struct {
	done chan struct{}
	c    *collateral.Collateral
	err  error
}

// New builds a cache over src and loads any collateral persisted in
// opts.Dir. Unreadable persisted files are logged and skipped: they can be
// fetched again.
func New(src collateral.Source, opts Options) (*Cache, error) {
	if src == nil {
		return nil, errors.New("collateral cache: nil source")
	}
	if opts.Now == nil {
		return nil, errors.New("collateral cache: Options.Now is required")
	}
	if opts.RefreshMargin < 0 || opts.RetryInterval < 0 || opts.FetchTimeout < 0 {
		return nil, errors.New("collateral cache: negative duration in Options")
	}
	if opts.RefreshMargin == 0 {
		opts.RefreshMargin = DefaultRefreshMargin
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	c := &Cache{
		src: src, opts: opts, log: opts.Logger,
		entries: map[collateral.Request]*entry{},
		flights: map[collateral.Request]*flight{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("collateral cache: %w", err)
		}
		if err := c.loadDir(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Close stops background refreshes and waits for running fetches to end.
func (c *Cache) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *Cache) lookup(key collateral.Request) *entry {
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	return e
}

// Get returns cached collateral for req, fetching it on a miss, after
// expiry, or in the background when it is due for refresh.
func (c *Cache) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	now := c.opts.Now()
	// Callers normally pass normalized requests; try the raw key first so a
	// hit needs no normalization (which allocates).
	e := c.lookup(req)
	key := req
	if e == nil {
		n, err := req.Normalize()
		if err != nil {
			return nil, err
		}
		key = n
		if n != req {
			e = c.lookup(n)
		}
	}
	if e != nil {
		if e.c != nil && now.Before(e.refreshAt) {
			return e.c, nil
		}
		if e.c != nil && !now.After(e.expiry) {
			c.refreshInBackground(key, e, now)
			return e.c, nil
		}
		if e.c != nil && now.Before(e.staleUntil) {
			return e.c, nil // the source had nothing fresher a moment ago
		}
		if e.err != nil && now.Before(e.errUntil) {
			return nil, c.failure(key, e, e.err)
		}
	}
	f := c.startFlight(key)
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("collateral cache: waiting for %s: %w", key, ctx.Err())
	}
	if f.err != nil {
		return nil, c.failure(key, c.lookup(key), f.err)
	}
	return f.c, nil
}

// failure wraps a fetch error, saying when the cached copy expired if there
// was one.
func (c *Cache) failure(key collateral.Request, e *entry, err error) error {
	if e != nil && e.c != nil {
		return fmt.Errorf("collateral cache: cached collateral for %s expired at %s and fetching fresh collateral failed: %w",
			key, e.expiry.Format(time.RFC3339), err)
	}
	return fmt.Errorf("collateral cache: %s: %w", key, err)
}

func (c *Cache) refreshInBackground(key collateral.Request, e *entry, now time.Time) {
	next := e.nextAttempt.Load()
	if now.UnixNano() < next {
		return
	}
	if !e.nextAttempt.CompareAndSwap(next, now.Add(c.opts.RetryInterval).UnixNano()) {
		return // another caller won the race and is refreshing
	}
	c.startFlight(key)
}

// startFlight returns the fetch in progress for key, starting one if there
// is none.
func (c *Cache) startFlight(key collateral.Request) *flight {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if f, ok := c.flights[key]; ok {
		return f
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.wg.Add(1)
	go c.run(key, f)
	return f
}

func (c *Cache) run(key collateral.Request, f *flight) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.FetchTimeout)
	col, info, err := c.fetch(ctx, key)
	cancel()
	now := c.opts.Now()

	c.mu.Lock()
	old := c.entries[key]
	ne := &entry{}
	var persist bool
	if err != nil {
		if old != nil {
			ne.c, ne.refreshAt, ne.expiry, ne.staleUntil = old.c, old.refreshAt, old.expiry, old.staleUntil
		}
		ne.err, ne.errUntil = err, now.Add(c.opts.RetryInterval)
		ne.nextAttempt.Store(ne.errUntil.UnixNano())
	} else {
		ne.c, ne.expiry = col, info.Validity.NotAfter
		ne.refreshAt = ne.expiry.Add(-c.opts.RefreshMargin)
		if !now.Before(ne.refreshAt) {
			// Already due: the source has nothing fresher yet. Serve this
			// and ask again after RetryInterval, not on every Get.
			ne.nextAttempt.Store(now.Add(c.opts.RetryInterval).UnixNano())
			ne.staleUntil = now.Add(c.opts.RetryInterval)
		}
		persist = old == nil || old.c == nil || !same(old.c, col)
	}
	c.entries[key] = ne
	c.mu.Unlock()

	if err != nil {
		if old != nil && old.c != nil && !now.After(old.expiry) {
			c.log.Warn("collateral refresh failed; serving the cached copy", "request", key.String(),
				"valid_until", old.expiry, "err", err)
		} else {
			c.log.Warn("collateral fetch failed", "request", key.String(), "err", err)
		}
	} else {
		c.log.Debug("collateral fetched", "request", key.String(), "valid_until", ne.expiry)
		if persist {
			c.persist(key, col)
		}
	}

	f.c, f.err = col, err
	c.fmu.Lock()
	delete(c.flights, key)
	c.fmu.Unlock()
	close(f.done)
}

// fetch gets collateral from the source and checks it is usable for key;
// the Info it returns is what that check found (validity included).
func (c *Cache) fetch(ctx context.Context, key collateral.Request) (*collateral.Collateral, *collateral.Info, error) {
	col, err := c.src.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	info, err := col.Inspect()
	if err != nil {
		return nil, nil, fmt.Errorf("source returned unusable collateral: %w", err)
	}
	if info.Request != key.Default() {
		return nil, nil, fmt.Errorf("%w: source returned collateral for %s", collateral.ErrMalformed, info.Request)
	}
	// Entries are keyed by TCB evaluation data number too: a source must
	// not answer a baseline request with another baseline.
	if err := key.Serves(info); err != nil {
		return nil, nil, fmt.Errorf("source returned collateral that does not answer %s: %w", key, err)
	}
	return col, info, nil
}

func same(a, b *collateral.Collateral) bool {
	return bytes.Equal(a.TCBInfo, b.TCBInfo) && bytes.Equal(a.TCBInfoSignature, b.TCBInfoSignature) &&
		bytes.Equal(a.QEIdentity, b.QEIdentity) && bytes.Equal(a.QEIdentitySignature, b.QEIdentitySignature) &&
		bytes.Equal(a.PCKCRL, b.PCKCRL) && bytes.Equal(a.RootCACRL, b.RootCACRL) &&
		bytes.Equal(a.TCBInfoIssuerChain, b.TCBInfoIssuerChain) && bytes.Equal(a.QEIdentityIssuerChain, b.QEIdentityIssuerChain) &&
		bytes.Equal(a.PCKCRLIssuerChain, b.PCKCRLIssuerChain)
}

func fileName(key collateral.Request) string {
	if key.TCBEvaluationDataNumber != 0 {
		return fmt.Sprintf("%s-%s-%s-tcbeval%d.json", strings.ToLower(string(key.TEE)), key.FMSPC, key.CA, key.TCBEvaluationDataNumber)
	}
	return fmt.Sprintf("%s-%s-%s.json", strings.ToLower(string(key.TEE)), key.FMSPC, key.CA)
}

// keyOfFile returns the cache key a persisted file was written under: the
// request its content serves plus the TCB evaluation data number its name
// carries (checked against the documents).
func keyOfFile(path string, info *collateral.Info) (collateral.Request, error) {
	key := info.Request
	base := strings.TrimSuffix(filepath.Base(path), ".json")
	if i := strings.LastIndex(base, "-tcbeval"); i >= 0 {
		n, err := strconv.Atoi(base[i+len("-tcbeval"):])
		if err != nil || n <= 0 {
			return key, fmt.Errorf("file name %q has no valid TCB evaluation data number", filepath.Base(path))
		}
		key.TCBEvaluationDataNumber = n
	}
	return key, key.Serves(info)
}

func (c *Cache) persist(key collateral.Request, col *collateral.Collateral) {
	if c.opts.Dir == "" {
		return
	}
	b, err := bundle.MarshalQVLJSON(col)
	if err == nil {
		err = atomicfile.Write(filepath.Join(c.opts.Dir, fileName(key)), b, 0o600)
	}
	if err != nil {
		// The in-memory entry still serves; only a restart loses it.
		c.log.Warn("collateral cache: persisting failed", "request", key.String(), "err", err)
	}
}

func (c *Cache) loadDir() error {
	names, err := filepath.Glob(filepath.Join(c.opts.Dir, "*.json"))
	if err != nil {
		return fmt.Errorf("collateral cache: %w", err)
	}
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			c.log.Warn("collateral cache: skipping unreadable file", "path", p, "err", err)
			continue
		}
		col, err := bundle.ParseQVLJSON(b)
		if err != nil {
			c.log.Warn("collateral cache: skipping unusable file", "path", p, "err", err)
			continue
		}
		info, _ := col.Inspect() // ParseQVLJSON inspected it
		key, err := keyOfFile(p, info)
		if err != nil {
			c.log.Warn("collateral cache: skipping unusable file", "path", p, "err", err)
			continue
		}
		if old, ok := c.entries[key]; ok {
			oi, _ := old.c.Inspect()
			if !info.TCBInfo.IssueDate.After(oi.TCBInfo.IssueDate) {
				continue
			}
		}
		c.entries[key] = &entry{c: col, expiry: info.Validity.NotAfter, refreshAt: info.Validity.NotAfter.Add(-c.opts.RefreshMargin)}
	}
	return nil
}

// Baselines implements collateral.BaselineLister with what the cache holds:
// the baselines of the collateral fetched so far for tee (the standard sets
// and every number asked for), newest first. It never asks the source, so
// a baseline nobody has used yet is not listed (PCS's signed
// tcbevaluationdatanumbers list is not consulted).
func (c *Cache) Baselines(_ context.Context, tee collateral.TEE) ([]collateral.Baseline, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []collateral.Baseline
	for r, e := range c.entries {
		if r.TEE != tee || e.c == nil {
			continue
		}
		if bl, err := collateral.BaselineOf(e.c, r.TCBEvaluationDataNumber == 0); err == nil {
			out = append(out, bl)
		}
	}
	return collateral.MergeBaselines(out), nil
}

var _ collateral.BaselineLister = (*Cache)(nil)
