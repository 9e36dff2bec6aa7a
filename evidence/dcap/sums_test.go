package dcap_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/testing/dcapfake"
)

// TestCollateralSumsMemo: the digests memoised per collateral set follow
// the set actually passed: reusing a shared set hits the memo, another set
// (or a fresh copy) gets its own digests, never the previous ones.
func TestCollateralSumsMemo(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	hexOf := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	shared := f.coll(t, dcapfake.Docs{})
	other := *shared
	other.RootCACRL = append([]byte(nil), other.RootCACRL...) // same bytes, new set
	for _, c := range []struct {
		name string
		coll *collateral.Collateral
	}{{"shared", shared}, {"shared again", shared}, {"copy", &other}} {
		r, err := f.v.Verify(testNow, &dcap.Evidence{Quote: f.q}, c.coll)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Hashes.TCBInfo != hexOf(c.coll.TCBInfo) || r.Hashes.TCBInfoCRL != hexOf(c.coll.RootCACRL) || r.Hashes.QEIdentityCert != hexOf(c.coll.QEIdentityIssuerChain) || r.Hashes.Quote != hexOf(f.q.Raw) {
			t.Errorf("%s: hashes %+v do not match the collateral", c.name, r.Hashes)
		}
	}
	if dcap.MemoSet(f.v) != &other {
		t.Error("memo does not hold the last set")
	}
	// A different PKI's collateral through the same verifier: its own
	// digests (and it is rejected, its chains end at another root).
	f2 := newFixture(t, dcapfake.Options{}, dcap.SGX)
	c2 := f2.coll(t, dcapfake.Docs{})
	if _, err := f.v.Verify(testNow, &dcap.Evidence{Quote: f.q}, c2); err == nil {
		t.Fatal("collateral under another root accepted")
	}
	if h := dcap.MemoHashes(f.v, c2); h.TCBInfo != hexOf(c2.TCBInfo) {
		t.Error("memo returned stale digests for a new set")
	}
}

// TestCollateralSumsMemoSets: the digests of several sets are memoised at
// once (quotes of a few platforms interleaved all hit), each set's own, and
// the memo holds a bounded number of sets however many pass through.
func TestCollateralSumsMemoSets(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	hexOf := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	base := f.coll(t, dcapfake.Docs{})
	var sets []*collateral.Collateral
	for range 20 {
		c := *base
		c.TCBInfo = append([]byte(nil), base.TCBInfo...)
		sets = append(sets, &c)
	}
	a, b := sets[0], sets[1]
	for _, c := range []*collateral.Collateral{a, b, a, b} {
		if _, err := f.v.Verify(testNow, &dcap.Evidence{Quote: f.q}, c); err != nil {
			t.Fatal(err)
		}
	}
	held := dcap.MemoSets(f.v)
	if len(held) != 2 || !slices.Contains(held, a) || !slices.Contains(held, b) {
		t.Fatalf("after A B A B: memo holds %d sets (A %v, B %v); want exactly A and B", len(held), slices.Contains(held, a), slices.Contains(held, b))
	}
	for _, c := range sets {
		if h := dcap.MemoHashes(f.v, c); h.TCBInfo != hexOf(c.TCBInfo) || h.PCKCRL != hexOf(c.PCKCRL) {
			t.Fatal("memo returned digests that are not the set's")
		}
	}
	if n := len(dcap.MemoSets(f.v)); n == 0 || n > 8 {
		t.Fatalf("after %d sets the memo holds %d; want 1..8", len(sets), n)
	}
}
