package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestCollateralSumsMemo: the digests memoised per collateral set follow
// the set actually passed: reusing a shared set hits the memo, another set
// (or a fresh copy) gets its own digests, never the previous ones.
func TestCollateralSumsMemo(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	v := verifierFor(t, p, 0)
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hexOf := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	shared := p.Collateral()
	other := p.Collateral()
	other.RootCACRL = append([]byte(nil), other.RootCACRL...) // same bytes, new set
	for _, c := range []struct {
		name string
		coll *collateral.Collateral
	}{{"shared", shared}, {"shared again", shared}, {"copy", other}} {
		coll := c.coll
		r, err := verifyBytes(v, quote, coll)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Hashes.TCBInfo != hexOf(coll.TCBInfo) || r.Hashes.TCBInfoCRL != hexOf(coll.RootCACRL) || r.Hashes.QEIdentityCert != hexOf(coll.QEIdentityIssuerChain) || r.Hashes.Quote != hexOf(quote) {
			t.Errorf("%s: hashes %+v do not match the collateral", c.name, r.Hashes)
		}
	}
	if s := v.lastSums.Load(); s == nil || s.coll != other {
		t.Error("memo does not hold the last set")
	}
	// A different platform's collateral through the same verifier: its own
	// digests (and it is rejected, its chain ends at another root).
	p2 := newPlatform(t, sgxplatform.Options{})
	c2 := p2.Collateral()
	if _, err := verifyBytes(v, quote, c2); err == nil {
		t.Fatal("collateral under another root accepted")
	}
	if s := v.sums(c2); s.hashes.TCBInfo != hexOf(c2.TCBInfo) {
		t.Error("memo returned stale digests for a new set")
	}
}
