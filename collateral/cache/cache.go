// Package cache puts an in-memory, optionally disk-persisted cache in front
// of a collateral source of any family: Of[K, D] caches documents of type D
// by key K, and Cache is Of for Intel DCAP collateral sets (a
// collateral.Source in front of PCS, PCCS or a bundle). AMD KDS documents
// use Of through package kds.
//
// Freshness follows the documents themselves, as the family's
// collateral.Codec dates them: an entry is served as is until RefreshMargin
// before the end of its window (for an Intel set the first nextUpdate of TCB
// info, QE identity and CRLs, or an issuer certificate's NotAfter; for a CRL
// its nextUpdate). From then on every Get still returns the cached entry at
// once and one background fetch replaces it. If that fetch fails the old
// entry keeps being served — it is still valid — until the window really
// ends; after that Get fetches synchronously and returns the error if the
// fetch fails. A Final window (a VCEK: one chip and TCB have one
// certificate) is never refreshed. Concurrent misses share one fetch (single
// flight). Failures are remembered for RetryInterval (or the upstream's
// Retry-After, when longer) so a dead or rate-limiting source is not
// hammered. With MaxEntries set the least
// recently used entries are dropped beyond it.
//
// With Options.Dir set, every newly fetched document is written there as a
// collateral record (collateral.EncodeRecord: JSON naming the family and the
// key, the document as the codec's bytes; one file per key, named
// <key>.json, written atomically) and loaded again by New/NewOf, so a
// restart without network still has collateral. A record is loaded only
// under the key it names and only when the codec's Check accepts it;
// anything else in the directory (older cache formats included) is skipped
// and fetched again. Loaded documents are trusted no more than fetched ones:
// the verifier checks their signatures either way. Families may share a
// directory. An Intel cache directory is also a valid collateral bundle (see
// package bundle).
//
// Intel entries are keyed by the whole Request, TCBEvaluationDataNumber
// included: a TCB baseline is cached and refreshed on its own, persisted as
// <tee>-<fmspc>-<ca>-tcbeval<N>.json, and a source that answers a baseline
// request with documents of another number is an error, never an entry
// (collateral.Request.Serves).
//
// A hit costs one map lookup under a read lock and one clock read: no JSON,
// no I/O, no allocation. Returned documents are shared and must not be
// modified.
package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/attestd/attestd/collateral"
)

// Defaults for Options' zero values.
const (
	DefaultRefreshMargin = 24 * time.Hour
	DefaultRetryInterval = 5 * time.Minute
	DefaultFetchTimeout  = 2 * time.Minute
)

// Options configures a cache.
type Options struct {
	// Now is the clock. Required: the cache never reads the wall clock
	// itself, so tests and "verify as of" tools can drive it.
	Now func() time.Time
	// Dir persists fetched documents across restarts. Empty: memory only.
	Dir string
	// RefreshMargin is how long before the end of an entry's validity
	// window a background refresh starts. Zero: DefaultRefreshMargin.
	RefreshMargin time.Duration
	// RetryInterval is the least time between two fetches for one key
	// after a failed fetch, or after a fetch that brought nothing fresher.
	// Zero: DefaultRetryInterval.
	RetryInterval time.Duration
	// FetchTimeout bounds each fetch. Fetches run detached from the
	// caller's context (others may be waiting on them); a caller that gives
	// up stops waiting, not the fetch. Zero: DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxEntries bounds the number of keys kept (in memory and on disk);
	// beyond it the least recently used are dropped. Zero: unbounded.
	MaxEntries int
	// Logger gets refresh failures (warn) and fetches (debug). Nil: none.
	Logger *slog.Logger
	// Stats, when set, counts this cache's hits, misses and fetches and
	// reports what it holds (see Stats); the caches of one source share it.
	Stats *Stats
}

// Cache is a collateral.Source caching another one: Of keyed by
// collateral.Request, with collateral.DCAPCodec. Safe for concurrent use.
type Cache struct {
	*Of[collateral.Request, *collateral.Collateral]
}

var _ collateral.Source = (*Cache)(nil)

// New builds a cache over src and loads any collateral persisted in
// opts.Dir. Unreadable persisted files are logged and skipped: they can be
// fetched again.
func New(src collateral.Source, opts Options) (*Cache, error) {
	var fetch Fetch[collateral.Request, *collateral.Collateral]
	if src != nil {
		fetch = src.Get
	}
	o, err := NewOf(Config[collateral.Request, *collateral.Collateral]{
		Fetch:     fetch,
		Codec:     collateral.DCAPCodec,
		Normalize: collateral.Request.Normalize,
	}, opts)
	if err != nil {
		return nil, err
	}
	return &Cache{o}, nil
}

// Baselines implements collateral.BaselineLister with what the cache holds:
// the baselines of the collateral fetched so far for tee (the standard sets
// and every number asked for), newest first. It never asks the source, so
// a baseline nobody has used yet is not listed (PCS's signed
// tcbevaluationdatanumbers list is not consulted).
func (c *Cache) Baselines(_ context.Context, tee collateral.TEE) ([]collateral.Baseline, error) {
	var out []collateral.Baseline
	c.Range(func(r collateral.Request, col *collateral.Collateral) {
		if r.TEE != tee {
			return
		}
		if bl, err := collateral.BaselineOf(col, r.TCBEvaluationDataNumber == 0); err == nil {
			out = append(out, bl)
		}
	})
	return collateral.MergeBaselines(out), nil
}

var _ collateral.BaselineLister = (*Cache)(nil)
