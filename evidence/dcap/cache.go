package dcap

import "sync"

// cache is a small bounded map from a SHA-256 key to a verified value. When
// full it evicts an arbitrary entry: the working set of collateral is tiny
// (a few FMSPCs, a handful of chains), so eviction is a safety bound against
// unbounded growth from hostile distinct inputs, not a hit-rate optimisation.
type cache[V any] struct {
	mu  sync.RWMutex
	m   map[[32]byte]V
	max int
}

func newCache[V any](max int) *cache[V] {
	return &cache[V]{m: make(map[[32]byte]V), max: max}
}

func (c *cache[V]) get(k [32]byte) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *cache[V]) put(k [32]byte, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}
