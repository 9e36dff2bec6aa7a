package cache

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/collateral"
)

// Stats counts what the caches of one collateral source do (hits, misses,
// fetches and their failures, per document family) and reports what they
// hold, for the server's metrics and readiness probe. The caches of one
// source share it (Options.Stats; KDS has three families). Counting costs
// an atomic add on the hit path; a nil *Stats counts nothing.
type Stats struct {
	source    string
	readiness Readiness

	mu       sync.Mutex
	families map[string]*counts
	holders  []func(now time.Time) Holding
}

// Readiness says when a source's collateral makes the server not ready.
type Readiness struct {
	// Required: the server cannot attest its types without this source, so
	// stale collateral of it makes /readyz fail. Unset, the state is only
	// reported (metrics and the probe's checks) and never fails it.
	Required bool
	// MaxExpired is how long a document may be past its validity window,
	// its refresh failing, before the source counts as stale. Zero: at once.
	MaxExpired time.Duration
}

// NewStats returns the Stats of the source named source (a label: "sgx",
// "snp", …).
func NewStats(source string, r Readiness) *Stats {
	return &Stats{source: source, readiness: r, families: map[string]*counts{}}
}

// Source is the name NewStats was given.
func (s *Stats) Source() string { return s.source }

// Readiness is the rule NewStats was given.
func (s *Stats) Readiness() Readiness { return s.readiness }

type counts struct {
	hits, misses, fetchOK, fetchFailed atomic.Uint64
}

// register is called by NewOf: counts for family and the cache's holding.
func (s *Stats) register(family string, holding func(now time.Time) Holding) *counts {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.families[family]
	if c == nil {
		c = &counts{}
		s.families[family] = c
	}
	s.holders = append(s.holders, holding)
	return c
}

func (c *counts) hit() {
	if c != nil {
		c.hits.Add(1)
	}
}

func (c *counts) miss() {
	if c != nil {
		c.misses.Add(1)
	}
}

func (c *counts) fetched(err error) {
	if c == nil {
		return
	}
	if err != nil {
		c.fetchFailed.Add(1)
	} else {
		c.fetchOK.Add(1)
	}
}

// Holding is what one cache holds at an instant.
type Holding struct {
	Family string
	// Documents is the number of documents held; Expired of them are past
	// their validity window (not refreshed yet, or their refresh failed),
	// Stale of those the last refresh failed for, transiently (the source
	// was unavailable), for longer than Readiness.MaxExpired.
	Documents, Expired, Stale int
	// Failing is the number of keys never fetched whose last fetch failed
	// transiently within the retry interval: requests for them fail now.
	Failing int
	// OldestFetch is when the least recently fetched document was fetched
	// (or loaded from disk, for persisted ones: the file's time); zero
	// without documents.
	OldestFetch time.Time
	// NextExpiry is the earliest end of a validity window among the
	// documents not yet expired; zero when there is none (or every window
	// is final, like a VCEK's).
	NextExpiry time.Time
}

// FamilyStatus is one family's counters and holding.
type FamilyStatus struct {
	Holding
	// Hits are Gets answered from the cache; Misses are Gets that waited
	// for a fetch. FetchesOK and FetchFailures count fetches (misses,
	// refreshes in the background and retries).
	Hits, Misses, FetchesOK, FetchFailures uint64
}

// Status reports every family of the source as of now, sorted by family.
func (s *Stats) Status(now time.Time) []FamilyStatus {
	s.mu.Lock()
	holders := slices.Clone(s.holders)
	fams := make(map[string]*counts, len(s.families))
	for k, v := range s.families {
		fams[k] = v
	}
	s.mu.Unlock()
	byFamily := map[string]*FamilyStatus{}
	for name, c := range fams {
		byFamily[name] = &FamilyStatus{Holding: Holding{Family: name}, Hits: c.hits.Load(), Misses: c.misses.Load(),
			FetchesOK: c.fetchOK.Load(), FetchFailures: c.fetchFailed.Load()}
	}
	for _, h := range holders {
		hd := h(now)
		fs := byFamily[hd.Family]
		if fs == nil {
			continue
		}
		fs.Documents += hd.Documents
		fs.Expired += hd.Expired
		fs.Stale += hd.Stale
		fs.Failing += hd.Failing
		fs.OldestFetch = earliest(fs.OldestFetch, hd.OldestFetch)
		fs.NextExpiry = earliest(fs.NextExpiry, hd.NextExpiry)
	}
	out := make([]FamilyStatus, 0, len(byFamily))
	for _, fs := range byFamily {
		out = append(out, *fs)
	}
	slices.SortFunc(out, func(a, b FamilyStatus) int { return strings.Compare(a.Family, b.Family) })
	return out
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// ErrStale is the readiness failure of a required source.
var ErrStale = errors.New("collateral stale")

// Ready returns nil when the source's collateral is usable as of now, or
// an error wrapping ErrStale that names the families with stale documents
// or failing keys. A source not Required is always ready: its state is
// only reported. Expired documents nobody has asked for again are not
// stale (an idle server refreshes on the next request; failing readiness
// for them would keep traffic, and so the refresh, away for ever), nor are
// keys the source does not know (a client asking for a platform nobody
// has must not take the server out of the load balancer).
func (s *Stats) Ready(now time.Time) error {
	if s == nil || !s.readiness.Required {
		return nil
	}
	var bad []string
	for _, fs := range s.Status(now) {
		if fs.Stale > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d document(s) expired more than %s ago, refresh failing", fs.Family, fs.Stale, s.readiness.MaxExpired))
		}
		if fs.Failing > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d key(s) without collateral, source unavailable", fs.Family, fs.Failing))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrStale, s.source, strings.Join(bad, "; "))
	}
	return nil
}

// holding is what c holds as of now (for Stats).
func (c *Of[K, D]) holding(now time.Time) Holding {
	h := Holding{Family: c.codec.Family()}
	var maxExpired time.Duration
	if c.opts.Stats != nil {
		maxExpired = c.opts.Stats.readiness.MaxExpired
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.entries {
		// Only a recent failure counts (within the retry interval): once it
		// has passed, the next Get fetches again, and an idle server must
		// not stay not-ready for want of the traffic that would refresh it.
		failingNow := e.err != nil && collateral.Transient(e.err) && now.Before(e.errUntil)
		if !e.ok {
			if failingNow {
				h.Failing++
			}
			continue
		}
		h.Documents++
		h.OldestFetch = earliest(h.OldestFetch, e.fetched)
		if e.expiry.Equal(never) {
			continue
		}
		if now.After(e.expiry) {
			h.Expired++
			if failingNow && now.Sub(e.expiry) > maxExpired {
				h.Stale++
			}
			continue
		}
		h.NextExpiry = earliest(h.NextExpiry, e.expiry)
	}
	return h
}
