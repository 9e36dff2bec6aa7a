package dcap

import "sync"

// Bounds of one verification cache besides its entry count
// (Options.CacheEntries). Keys are the exact bytes that were verified, so
// their size is bounded too: a PCK chain is ~4 KB of PEM, and a chain padded
// with the whitespace or NULs the PEM parser accepts between blocks must not
// let an attacker pin megabytes per entry.
const (
	// maxCacheKey is the largest key cached: a larger input is verified on
	// every call, never stored (a real PCK chain is ~4 KB, a signing chain ~2 KB).
	maxCacheKey = 32 << 10
	// maxCacheBytes bounds the sum of the key bytes of one cache.
	maxCacheBytes = 8 << 20
)

// cache is a small bounded map from the exact bytes of what was verified to
// the verified value. The key is the bytes themselves, not a digest of them:
// two inputs share an entry only if they are equal byte for byte, and a
// lookup costs a map hash and one comparison instead of a SHA-256 of a ~4 KB
// chain on every quote (a Go map lookup with a string(b) conversion does not
// allocate). When full it evicts arbitrary entries: the working set of
// collateral is tiny (a few FMSPCs, a handful of chains), so eviction is a
// safety bound against unbounded growth from hostile distinct inputs, not a
// hit-rate optimisation.
type cache[V any] struct {
	mu    sync.RWMutex
	m     map[string]V
	max   int // entries
	bytes int // sum of len(key) over m
}

func newCache[V any](max int) *cache[V] {
	return &cache[V]{m: make(map[string]V), max: max}
}

func (c *cache[V]) get(k []byte) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[string(k)]
	return v, ok
}

// put stores v under a copy of k; a key longer than maxCacheKey is not stored.
func (c *cache[V]) put(k []byte, v V) {
	if len(k) > maxCacheKey {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(k)]; ok {
		c.m[string(k)] = v
		return
	}
	for old := range c.m {
		if len(c.m) < c.max && c.bytes+len(k) <= maxCacheBytes {
			break
		}
		c.bytes -= len(old)
		delete(c.m, old)
	}
	c.m[string(k)] = v
	c.bytes += len(k)
}

// len returns the number of entries (tests).
func (c *cache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
