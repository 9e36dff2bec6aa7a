package dcap

import "github.com/attestd/attestd/collateral"

// MemoSet returns the collateral set whose digests v memoises (tests only).
func MemoSet(v *Verifier) *collateral.Collateral {
	if s := v.sumsMemo[v.sumsNext.Load()%sumSlots].Load(); s != nil {
		return s.coll
	}
	return nil
}

// MemoSets returns the collateral sets whose digests v memoises (tests only).
func MemoSets(v *Verifier) []*collateral.Collateral {
	var out []*collateral.Collateral
	for i := range v.sumsMemo {
		if s := v.sumsMemo[i].Load(); s != nil {
			out = append(out, s.coll)
		}
	}
	return out
}

// MemoHashes returns the digests v computes for c (tests only).
func MemoHashes(v *Verifier, c *collateral.Collateral) Hashes { return v.sums(c).hashes }

// ChainCacheEntries returns how many PCK and signing chains v caches (tests only).
func ChainCacheEntries(v *Verifier) (pck, signing int) { return v.pckChains.len(), v.signChains.len() }
