package verify

import (
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestChainCacheKinds: the verified-chain cache is keyed by the PEM bytes, and
// the same bytes can arrive both as a quote's PCK chain and as a collateral
// issuer chain. A chain verified in one role must never be served in the
// other: a quote carrying the (public) TCB signing chain after that chain was
// cached used to make Platform dereference nil PCK extensions (a panic any
// client could trigger), and a PCK chain delivered as a TCB info issuer chain
// used to skip the 2-certificate check.
func TestChainCacheKinds(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	coll := p.Collateral()

	t.Run("signing chain as PCK chain", func(t *testing.T) {
		v := verifierFor(t, p, 0)
		if _, err := verifyBytes(v, quote, coll); err != nil { // caches the TCB signing chain
			t.Fatal(err)
		}
		q, err := p.QuoteStruct(sgxplatform.QuoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		q.QE.Certification.Data = coll.TCBInfoIssuerChain
		if _, err := v.Platform(q); evidence.CheckOf(err) != "pck_chain" {
			t.Fatalf("Platform: got %v, want check pck_chain", err)
		}
		if err := v.VerifyQuoteOnly(q); evidence.CheckOf(err) != "pck_chain" {
			t.Fatalf("VerifyQuoteOnly: got %v, want check pck_chain", err)
		}
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyBytes(v, b, coll); evidence.CheckOf(err) != "pck_chain" {
			t.Fatalf("Verify: got %v, want check pck_chain", err)
		}
	})
	t.Run("PCK chain as signing chain", func(t *testing.T) {
		v := verifierFor(t, p, 0)
		q, err := abi.ParseQuote(quote)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Platform(q); err != nil { // caches the PCK chain
			t.Fatal(err)
		}
		c := p.Collateral()
		c.TCBInfoIssuerChain = q.QE.Certification.Data
		if _, err := verifyBytes(v, quote, c); evidence.CheckOf(err) != "tcb_info.issuer_chain" {
			t.Fatalf("got %v, want check tcb_info.issuer_chain", err)
		}
	})
}
