package verifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// KeyCacheOptions configure a KeyCache.
type KeyCacheOptions struct {
	// Fetch returns the issuer's current signing keys (its /certs).
	// Required.
	Fetch func(ctx context.Context) (*JWKS, error)
	// Source names where Fetch reads from (e.g. https://host/certs), for
	// error messages.
	Source string
	// Now is the clock for MaxAge and Cooldown. Required.
	Now func() time.Time
	// MaxAge is how long a fetched key set is used before it is fetched
	// again; 0 or less means until a token names an unknown kid. A bounded
	// age is what makes a key the issuer withdrew (retired, or removed
	// because it leaked) stop verifying: a kid is trusted while it is in
	// the last fetched /certs and only then.
	MaxAge time.Duration
	// Cooldown is the least time between two fetches caused by unknown
	// kids; 0 means none. A relying party that verifies tokens anyone can
	// send should set it, or each forged kid costs a request to the issuer.
	// Staged rotation (a new key is published before it signs) means a
	// legitimate new kid is normally already in the cache.
	Cooldown time.Duration
}

// KeyCache holds an issuer's signing keys between token verifications. It
// fetches them on first use, again after MaxAge, and once more when a token
// names a kid the cached set lacks (the issuer rotated). A kid that the
// latest fetch no longer lists is no longer trusted: the cache replaces the
// whole set, it never merges. Concurrent callers share one fetch. Safe for
// concurrent use.
type KeyCache struct {
	o KeyCacheOptions

	mu       sync.Mutex
	keys     *JWKS // nil until first fetched
	at       time.Time
	gen      uint64
	fetching chan struct{} // non-nil while a fetch is in flight
}

// NewKeyCache returns an empty cache.
func NewKeyCache(o KeyCacheOptions) (*KeyCache, error) {
	if o.Fetch == nil {
		return nil, errors.New("verifier: KeyCacheOptions.Fetch is required")
	}
	if o.Now == nil {
		return nil, errors.New("verifier: KeyCacheOptions.Now is required")
	}
	return &KeyCache{o: o}, nil
}

// Key returns the signing key named kid, fetching the key set as described
// on KeyCache. An unknown kid is a *ValidationError with ReasonUnknownKey; a
// failed fetch is returned as is (the issuer is unreachable: nothing was
// said about the token). When MaxAge has passed and the refetch fails the
// call fails too, closed: serving a stale set would keep trusting a key the
// issuer may have withdrawn for as long as it stays unreachable.
func (c *KeyCache) Key(ctx context.Context, kid string) (*SigningKey, error) {
	if kid == "" {
		return nil, Invalid(ReasonUnknownKey, "token header has no kid")
	}
	jwks, gen, err := c.load(ctx, func(keys *JWKS, _ uint64, at time.Time, now time.Time) bool {
		return keys == nil || (c.o.MaxAge > 0 && now.Sub(at) >= c.o.MaxAge)
	})
	if err != nil {
		return nil, err
	}
	if k := jwks.Lookup(kid); k != nil {
		return k, nil
	}
	// Unknown kid: refetch once, unless another caller already did since
	// our set was read, or the cooldown forbids it.
	jwks, _, err = c.load(ctx, func(_ *JWKS, g uint64, at time.Time, now time.Time) bool {
		return g == gen && now.Sub(at) >= c.o.Cooldown
	})
	if err != nil {
		return nil, err
	}
	if k := jwks.Lookup(kid); k != nil {
		return k, nil
	}
	return nil, Invalid(ReasonUnknownKey, "kid %q is not a signing key of %s", kid, c.o.Source)
}

// Keys returns the cached key set, fetching it if there is none or it is
// older than MaxAge.
func (c *KeyCache) Keys(ctx context.Context) (*JWKS, error) {
	k, _, err := c.load(ctx, func(keys *JWKS, _ uint64, at time.Time, now time.Time) bool {
		return keys == nil || (c.o.MaxAge > 0 && now.Sub(at) >= c.o.MaxAge)
	})
	return k, err
}

// load returns the cached set, or fetches a new one when need says so
// (evaluated under the lock, again after waiting for another caller's
// fetch), with the generation of the set returned.
func (c *KeyCache) load(ctx context.Context, need func(keys *JWKS, gen uint64, at, now time.Time) bool) (*JWKS, uint64, error) {
	for {
		c.mu.Lock()
		if !need(c.keys, c.gen, c.at, c.o.Now()) {
			k, g := c.keys, c.gen
			c.mu.Unlock()
			return k, g, nil
		}
		if wait := c.fetching; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.fetching = done
		c.mu.Unlock()

		k, err := c.o.Fetch(ctx)

		c.mu.Lock()
		c.fetching = nil
		close(done)
		if err != nil {
			c.mu.Unlock()
			return nil, 0, fmt.Errorf("fetching signing keys from %s: %w", c.o.Source, err)
		}
		if k == nil {
			k = &JWKS{}
		}
		c.keys, c.at = k, c.o.Now()
		c.gen++
		g := c.gen
		c.mu.Unlock()
		return k, g, nil
	}
}

// maxJWKSBytes caps a /certs body: real ones are a few KiB (five keys with
// three-certificate chains are 20 KiB).
const maxJWKSBytes = 1 << 20

// FetchJWKS returns a Fetch function that GETs url with hc and parses the
// answer as an MAA /certs document. Non-200 answers and bodies over 1 MiB
// are errors.
func FetchJWKS(hc *http.Client, url string) func(ctx context.Context) (*JWKS, error) {
	return func(ctx context.Context) (*JWKS, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxJWKSBytes {
			return nil, fmt.Errorf("answer exceeds %d bytes", maxJWKSBytes)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return ParseJWKS(b)
	}
}
