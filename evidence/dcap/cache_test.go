package dcap

import (
	"bytes"
	"testing"
)

// TestCacheKeyIsEveryByte: an entry is found only by its exact bytes. Every
// one-byte change of the key, at every position, and every prefix or
// extension of it misses (a key of a truncated digest or of part of the
// input would share entries).
func TestCacheKeyIsEveryByte(t *testing.T) {
	c := newCache[int](16)
	key := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\nMIIE\n"), 40)
	c.put(key, 1)
	if v, ok := c.get(key); !ok || v != 1 {
		t.Fatalf("get(key) = %d, %v; want 1, true", v, ok)
	}
	for i := range key {
		for _, d := range []byte{0x01, 0x80, 0xff} {
			k := bytes.Clone(key)
			k[i] ^= d
			if v, ok := c.get(k); ok {
				t.Fatalf("key with byte %d ^ %#x found entry %d", i, d, v)
			}
		}
	}
	for _, k := range [][]byte{key[:len(key)-1], key[1:], append(bytes.Clone(key), 0), append(bytes.Clone(key), '\n'), nil} {
		if v, ok := c.get(k); ok {
			t.Fatalf("key of %d bytes (not the stored %d) found entry %d", len(k), len(key), v)
		}
	}
	// The cache holds its own copy: changing the caller's slice after put
	// changes nothing.
	key[0] ^= 1
	if _, ok := c.get(key); ok {
		t.Fatal("the cache aliases the caller's key slice")
	}
}

// TestCacheKeyParts: cacheKey length-prefixes each part, so moving bytes
// from one part to the next gives another key.
func TestCacheKeyParts(t *testing.T) {
	a := cacheKey(nil, []byte("ab"), []byte("c"))
	b := cacheKey(nil, []byte("a"), []byte("bc"))
	if bytes.Equal(a, b) {
		t.Fatalf("cacheKey(ab, c) == cacheKey(a, bc) == %x", a)
	}
}

// TestCacheBounds: the entry count, the total key bytes and the size of one
// key are bounded, whatever is put.
func TestCacheBounds(t *testing.T) {
	c := newCache[int](8)
	for i := range 100 {
		c.put([]byte{byte(i), byte(i >> 8)}, i)
		if n := c.len(); n > 8 {
			t.Fatalf("after %d puts: %d entries, max 8", i+1, n)
		}
	}
	c.put(make([]byte, maxCacheKey+1), 1)
	if _, ok := c.get(make([]byte, maxCacheKey+1)); ok {
		t.Fatalf("a key of %d bytes (> maxCacheKey) was stored", maxCacheKey+1)
	}
	big := newCache[int](1 << 20)
	for i := range 2 * maxCacheBytes / maxCacheKey {
		k := make([]byte, maxCacheKey)
		k[0], k[1] = byte(i), byte(i>>8)
		big.put(k, i)
		if big.bytes > maxCacheBytes {
			t.Fatalf("after %d puts of %d-byte keys: %d key bytes, max %d", i+1, maxCacheKey, big.bytes, maxCacheBytes)
		}
	}
	total := 0
	for k := range big.m {
		total += len(k)
	}
	if total != big.bytes {
		t.Fatalf("byte count %d, keys hold %d", big.bytes, total)
	}
}
