package dcap_test

import (
	"crypto/sha256"
	"encoding/hex"
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
