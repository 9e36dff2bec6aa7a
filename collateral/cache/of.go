package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/internal/atomicfile"
)

// Fetch gets the document for one key from the source behind a cache.
type Fetch[K comparable, D any] func(ctx context.Context, key K) (D, error)

// Config is what NewOf needs besides Options: where documents come from and
// how the family's documents are checked, dated and persisted.
type Config[K comparable, D any] struct {
	Fetch Fetch[K, D]
	Codec collateral.Codec[K, D]
	// Normalize, when set, maps a key to its canonical form. It runs only
	// on a miss of the key as given, so a hit costs no normalization.
	Normalize func(K) (K, error)
}

// Of is a cache of one document family keyed by K: refresh before the
// window ends, single flight, stale on error, a bounded size, persistence
// through the family's Codec. See the package doc. Safe for concurrent use.
type Of[K comparable, D any] struct {
	fetchFn   Fetch[K, D]
	codec     collateral.Codec[K, D]
	normalize func(K) (K, error)
	opts      Options
	log       *slog.Logger
	counts    *counts // nil without Options.Stats

	mu      sync.RWMutex
	entries map[K]*entry[D]

	fmu     sync.Mutex
	flights map[K]*flight[D]

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// entry is immutable once published, except nextAttempt and lastUsed.
type entry[D any] struct {
	ok         bool      // doc holds a document (not only a cached failure)
	doc        D         //
	refreshAt  time.Time // expiry - margin (never for a Final window)
	expiry     time.Time // Window.NotAfter (never for a Final window)
	staleUntil time.Time // an already-expired fetch result is served until then
	err        error     // last fetch failure
	errUntil   time.Time // err is returned without fetching until then
	// nextAttempt (unix ns) gates background refreshes: the first Get in
	// the refresh window moves it forward with a CAS and starts the fetch.
	nextAttempt atomic.Int64
	// lastUsed (unix s) orders entries for eviction when MaxEntries is set.
	lastUsed atomic.Int64
	// fetched is when doc was fetched (for a persisted one: its file's
	// modification time), for Stats' age.
	fetched time.Time
}

type flight[D any] struct {
	done chan struct{}
	doc  D
	err  error
}

// never is the refresh time and expiry of a Final window.
var never = time.Unix(math.MaxInt64/2, 0)

// NewOf builds a cache of one document family and loads the family's
// records persisted in opts.Dir (records of other families and unreadable
// files are skipped: they can be fetched again).
func NewOf[K comparable, D any](cfg Config[K, D], opts Options) (*Of[K, D], error) {
	if cfg.Fetch == nil {
		return nil, errors.New("collateral cache: nil source")
	}
	if cfg.Codec == nil {
		return nil, errors.New("collateral cache: nil codec")
	}
	if opts.Now == nil {
		return nil, errors.New("collateral cache: Options.Now is required")
	}
	if opts.RefreshMargin < 0 || opts.RetryInterval < 0 || opts.FetchTimeout < 0 || opts.MaxEntries < 0 {
		return nil, errors.New("collateral cache: negative value in Options")
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
	c := &Of[K, D]{
		fetchFn: cfg.Fetch, codec: cfg.Codec, normalize: cfg.Normalize, opts: opts, log: opts.Logger,
		entries: map[K]*entry[D]{},
		flights: map[K]*flight[D]{},
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
	c.counts = opts.Stats.register(cfg.Codec.Family(), c.holding)
	return c, nil
}

// Close stops background refreshes and waits for running fetches to end.
func (c *Of[K, D]) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *Of[K, D]) lookup(key K) *entry[D] {
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	return e
}

// Get returns the cached document for key, fetching it on a miss, after
// expiry, or in the background when it is due for refresh.
func (c *Of[K, D]) Get(ctx context.Context, key K) (D, error) {
	var zero D
	now := c.opts.Now()
	e := c.lookup(key)
	if e == nil && c.normalize != nil {
		n, err := c.normalize(key)
		if err != nil {
			return zero, err
		}
		if n != key {
			key = n
			e = c.lookup(n)
		}
	}
	if e != nil {
		if c.opts.MaxEntries > 0 {
			e.touch(now)
		}
		if e.ok && now.Before(e.refreshAt) {
			c.counts.hit()
			return e.doc, nil
		}
		if e.ok && !now.After(e.expiry) {
			c.refreshInBackground(key, e, now)
			c.counts.hit()
			return e.doc, nil
		}
		if e.ok && now.Before(e.staleUntil) {
			c.counts.hit()
			return e.doc, nil // the source had nothing fresher a moment ago
		}
		if e.err != nil && now.Before(e.errUntil) {
			c.counts.miss()
			return zero, c.failure(key, e, e.err)
		}
	}
	c.counts.miss()
	// Even a caller that has already given up starts the fetch: others
	// will want the document, and a fetch is detached from callers.
	f := c.startFlight(key)
	select {
	case <-f.done:
	case <-ctx.Done():
		return zero, fmt.Errorf("collateral cache: waiting for %v: %w", key, ctx.Err())
	}
	if f.err != nil {
		return zero, c.failure(key, c.lookup(key), f.err)
	}
	return f.doc, nil
}

func (e *entry[D]) touch(now time.Time) {
	if s := now.Unix(); e.lastUsed.Load() != s {
		e.lastUsed.Store(s)
	}
}

// failure wraps a fetch error, saying when the cached copy expired if there
// was one.
func (c *Of[K, D]) failure(key K, e *entry[D], err error) error {
	if e != nil && e.ok {
		return fmt.Errorf("collateral cache: cached collateral for %v expired at %s and fetching fresh collateral failed: %w",
			key, e.expiry.Format(time.RFC3339), err)
	}
	return fmt.Errorf("collateral cache: %v: %w", key, err)
}

func (c *Of[K, D]) refreshInBackground(key K, e *entry[D], now time.Time) {
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
func (c *Of[K, D]) startFlight(key K) *flight[D] {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if f, ok := c.flights[key]; ok {
		return f
	}
	f := &flight[D]{done: make(chan struct{})}
	c.flights[key] = f
	c.wg.Add(1)
	go c.run(key, f)
	return f
}

func (c *Of[K, D]) run(key K, f *flight[D]) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.FetchTimeout)
	doc, w, err := c.fetch(ctx, key)
	cancel()
	now := c.opts.Now()
	c.counts.fetched(err)

	c.mu.Lock()
	old := c.entries[key]
	ne := &entry[D]{}
	ne.lastUsed.Store(now.Unix())
	var persist bool
	if err != nil {
		if old != nil {
			ne.ok, ne.doc, ne.refreshAt, ne.expiry, ne.staleUntil, ne.fetched = old.ok, old.doc, old.refreshAt, old.expiry, old.staleUntil, old.fetched
		}
		ne.err, ne.errUntil = err, now.Add(retryAfter(err, c.opts.RetryInterval))
		ne.nextAttempt.Store(ne.errUntil.UnixNano())
	} else {
		ne.ok, ne.doc, ne.fetched = true, doc, now
		c.setWindow(ne, w)
		if !now.Before(ne.refreshAt) {
			// Already due: the source has nothing fresher yet. Serve this
			// and ask again after RetryInterval, not on every Get.
			ne.nextAttempt.Store(now.Add(c.opts.RetryInterval).UnixNano())
			ne.staleUntil = now.Add(c.opts.RetryInterval)
		}
		persist = old == nil || !old.ok || !c.same(old.doc, doc)
	}
	c.entries[key] = ne
	evicted := c.evictLocked(key)
	c.mu.Unlock()

	if err != nil {
		if old != nil && old.ok && !now.After(old.expiry) {
			c.log.Warn("collateral refresh failed; serving the cached copy", "family", c.codec.Family(),
				"key", c.codec.KeyName(key), "valid_until", old.expiry, "err", err)
		} else {
			c.log.Warn("collateral fetch failed", "family", c.codec.Family(), "key", c.codec.KeyName(key), "err", err)
		}
	} else {
		c.log.Debug("collateral fetched", "family", c.codec.Family(), "key", c.codec.KeyName(key), "valid_until", ne.expiry)
		if persist {
			c.persist(key, doc)
		}
	}
	for _, k := range evicted {
		c.unpersist(k)
	}

	f.doc, f.err = doc, err
	c.fmu.Lock()
	delete(c.flights, key)
	c.fmu.Unlock()
	close(f.done)
}

// retryAfter is how long a failure is remembered: RetryInterval, or the
// upstream's Retry-After when it asks for longer (AMD KDS does when it rate
// limits: asking again sooner only prolongs the ban).
func retryAfter(err error, interval time.Duration) time.Duration {
	var ue *collateral.UnavailableError
	if errors.As(err, &ue) && ue.RetryAfter > interval {
		return ue.RetryAfter
	}
	return interval
}

func (c *Of[K, D]) setWindow(e *entry[D], w collateral.Window) {
	if w.Final {
		e.expiry, e.refreshAt = never, never
		return
	}
	e.expiry = w.NotAfter
	e.refreshAt = w.NotAfter.Add(-c.opts.RefreshMargin)
}

// evictLocked drops the least recently used entries (never keep) while the
// cache holds more than MaxEntries, and returns their keys. c.mu is held.
func (c *Of[K, D]) evictLocked(keep K) []K {
	var out []K
	for c.opts.MaxEntries > 0 && len(c.entries) > c.opts.MaxEntries {
		var (
			victim K
			oldest int64 = math.MaxInt64
			found  bool
		)
		for k, e := range c.entries {
			if k == keep {
				continue
			}
			if u := e.lastUsed.Load(); u < oldest {
				victim, oldest, found = k, u, true
			}
		}
		if !found {
			break
		}
		delete(c.entries, victim)
		out = append(out, victim)
	}
	return out
}

// fetch gets a document from the source and checks it answers key; the
// window it returns is what that check found.
func (c *Of[K, D]) fetch(ctx context.Context, key K) (D, collateral.Window, error) {
	doc, err := c.fetchFn(ctx, key)
	if err != nil {
		var zero D
		return zero, collateral.Window{}, err
	}
	w, err := c.codec.Check(key, doc)
	if err != nil {
		var zero D
		return zero, collateral.Window{}, fmt.Errorf("source returned %w", err)
	}
	return doc, w, nil
}

// same compares two documents by their encoding, so an unchanged refresh
// is not written to disk again.
func (c *Of[K, D]) same(a, b D) bool {
	ea, err1 := c.codec.Encode(a)
	eb, err2 := c.codec.Encode(b)
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}

func (c *Of[K, D]) path(key K) string {
	return filepath.Join(c.opts.Dir, c.codec.KeyName(key)+".json")
}

func (c *Of[K, D]) persist(key K, doc D) {
	if c.opts.Dir == "" {
		return
	}
	b, err := collateral.EncodeRecord(c.codec, key, doc)
	if err == nil {
		err = atomicfile.Write(c.path(key), b, 0o600)
	}
	if err != nil {
		// The in-memory entry still serves; only a restart loses it.
		c.log.Warn("collateral cache: persisting failed", "family", c.codec.Family(), "key", c.codec.KeyName(key), "err", err)
	}
}

func (c *Of[K, D]) unpersist(key K) {
	if c.opts.Dir == "" {
		return
	}
	if err := os.Remove(c.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("collateral cache: removing an evicted record failed", "key", c.codec.KeyName(key), "err", err)
	}
}

// loadDir loads the family's records. A record is used only when its file
// name is the canonical name of the key inside it (a renamed file is not
// served under another key) and the codec's Check accepts its document for
// that key; everything else, old cache formats included, is skipped and
// will be fetched again.
func (c *Of[K, D]) loadDir() error {
	names, err := filepath.Glob(filepath.Join(c.opts.Dir, "*.json"))
	if err != nil {
		return fmt.Errorf("collateral cache: %w", err)
	}
	for _, p := range names {
		if c.opts.MaxEntries > 0 && len(c.entries) >= c.opts.MaxEntries {
			c.log.Warn("collateral cache: more persisted records than MaxEntries; the rest are skipped", "dir", c.opts.Dir)
			break
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() > collateral.MaxRecordSize {
			c.log.Warn("collateral cache: skipping unusable file", "path", p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			c.log.Warn("collateral cache: skipping unreadable file", "path", p, "err", err)
			continue
		}
		key, doc, w, err := collateral.DecodeRecord(c.codec, b)
		if errors.Is(err, collateral.ErrOtherFamily) {
			continue // another family's cache sharing the directory
		}
		if err != nil {
			c.log.Warn("collateral cache: skipping unusable file", "path", p, "err", err)
			continue
		}
		if filepath.Base(p) != c.codec.KeyName(key)+".json" {
			c.log.Warn("collateral cache: skipping a record filed under another name", "path", p, "key", c.codec.KeyName(key))
			continue
		}
		e := &entry[D]{ok: true, doc: doc, fetched: st.ModTime()}
		c.setWindow(e, w)
		e.lastUsed.Store(st.ModTime().Unix())
		c.entries[key] = e
	}
	return nil
}

// Range calls fn for every cached document (not cached failures), in no
// particular order, under the cache's read lock: fn must not call the
// cache.
func (c *Of[K, D]) Range(fn func(K, D)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, e := range c.entries {
		if e.ok {
			fn(k, e.doc)
		}
	}
}

// Len is the number of entries (documents and cached failures).
func (c *Of[K, D]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
