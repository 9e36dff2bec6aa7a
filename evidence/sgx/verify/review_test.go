package verify

import (
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
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

// TestQEVendorID: QVL rejects quotes whose header does not name Intel's QE
// vendor ID (939A7233-F79C-4CA9-940A-0DB3957F0607), whatever else verifies.
func TestQEVendorID(t *testing.T) {
	for _, version := range []int{3, 4} {
		p := newPlatform(t, sgxplatform.Options{QuoteVersion: version})
		v := verifierFor(t, p, 0)
		q, err := p.QuoteStruct(sgxplatform.QuoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		q.Header.QEVendorID[15] ^= 1
		if err := p.Sign(q); err != nil { // a correctly signed quote from a non-Intel QE
			t.Fatal(err)
		}
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyBytes(v, b, p.Collateral()); evidence.CheckOf(err) != "quote.qe_vendor_id" {
			t.Fatalf("v%d: got %v, want check quote.qe_vendor_id", version, err)
		}
		if err := v.VerifyQuoteOnly(q); evidence.CheckOf(err) != "quote.qe_vendor_id" {
			t.Fatalf("v%d VerifyQuoteOnly: got %v, want check quote.qe_vendor_id", version, err)
		}
	}
}

// TestCollateralSignerRole: TCB info and QE identity must be signed by a TCB
// signing certificate, not by any certificate under the root (here the PCK
// CA, whose key signs PCK certificates and CRLs, never TCB documents).
func TestCollateralSignerRole(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  sgxplatform.Options
		check string
	}{
		{"TCB info signed by the PCK CA", sgxplatform.Options{TCBInfoSignedByPCKCA: true}, "tcb_info.issuer_chain"},
		{"QE identity signed by the PCK CA", sgxplatform.Options{QEIdentitySignedByPCKCA: true}, "qe_identity.issuer_chain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlatform(t, c.opts)
			quote, err := p.Quote(sgxplatform.QuoteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = verifyBytes(verifierFor(t, p, 0), quote, p.Collateral())
			if evidence.CheckOf(err) != c.check {
				t.Fatalf("got %v, want check %s", err, c.check)
			}
		})
	}
}

// TestQEVendorIDReal: the same check on a real Intel quote (D1); the vendor
// ID is caught by name, before the quote signature that also covers it.
func TestQEVendorIDReal(t *testing.T) {
	vs := loadDCAPQVL(t, "vectors/dcap-qvl/sample/sgx_quote", "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	at := mustTime(t, "2025-07-01T00:00:00Z")
	for _, off := range []int{12, 27} {
		b := slices.Clone(vs.quote)
		b[off] ^= 0x80
		_, err := verifyAt(t, vectorSet{b, vs.coll}, at, 0)
		if evidence.CheckOf(err) != "quote.qe_vendor_id" {
			t.Fatalf("flip at %d: got %v, want check quote.qe_vendor_id", off, err)
		}
	}
}

// TestQEMiscSelect: a QE whose MISCSELECT is not byte-symmetric (EXINFO,
// bit 0) matches a QE identity that lists it, and the mask is applied to the
// report's value before comparing.
func TestQEMiscSelect(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	for _, c := range []struct {
		name     string
		report   uint32
		identity *uint32
		check    string
	}{
		{"EXINFO listed", 1, u32(1), ""},
		{"EXINFO not listed", 1, nil, "qe_identity.miscselect_mismatch"},
		{"listed but not set", 0, u32(1), "qe_identity.miscselect_mismatch"},
		{"high bit listed", 0x80000000, u32(0x80000000), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlatform(t, sgxplatform.Options{QEMiscSelect: c.report, QEIdentityMiscSelect: c.identity})
			quote, err := p.Quote(sgxplatform.QuoteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = verifyBytes(verifierFor(t, p, 0), quote, p.Collateral())
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("got %v (check %q), want %q", err, got, c.check)
			}
		})
	}
}

// TestPCKLeafRole: the leaf of the quote's chain must be a PCK certificate
// (QVL 4.1.2.4.4: its CN contains "SGX PCK Certificate"), not any end-entity
// certificate a PCK CA might have issued.
func TestPCKLeafRole(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{PCKCommonName: "attestd TEST SGX something else"})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyBytes(verifierFor(t, p, 0), quote, p.Collateral()); evidence.CheckOf(err) != "pck_chain" {
		t.Fatalf("got %v, want check pck_chain", err)
	}
}

// TestWarmCacheStillChecks: everything a warm verifier caches (PCK chain,
// signing chains, verified CRLs, TCB info, QE identity) is re-checked against
// the clock of each verification and against the CRLs it is given now.
func TestWarmCacheStillChecks(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	v, err := New(Options{Roots: p.Roots(), Now: func() time.Time { return now }, Grace: 3 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyBytes(v, quote, p.Collateral()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		mod   func(o *sgxplatform.Options)
		check string
	}{
		{"PCK revoked by a newer PCK CRL", func(o *sgxplatform.Options) { o.RevokePCK = true }, "pck.revoked"},
		{"PCK CA revoked by a newer Root CA CRL", func(o *sgxplatform.Options) { o.RevokePCKCA = true }, "pck_ca.revoked"},
		{"TCB signer revoked by a newer Root CA CRL", func(o *sgxplatform.Options) { o.RevokeTCBSigner = true }, "tcb_signing.revoked"},
		{"newer TCB info: platform now Revoked", func(o *sgxplatform.Options) { o.TCBStatus = pcs.Revoked }, "tcb.revoked"},
		{"newer QE identity: QE now Revoked", func(o *sgxplatform.Options) { o.QEStatus = pcs.Revoked }, "qe_identity.revoked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			coll, err := p.CollateralWith(c.mod)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyBytes(v, quote, coll); evidence.CheckOf(err) != c.check {
				t.Fatalf("got %v, want check %s", err, c.check)
			}
			if _, err := verifyBytes(v, quote, p.Collateral()); err != nil { // the old set still verifies
				t.Fatal(err)
			}
		})
	}
	// Later instants with the same (cached) documents and chains: collateral
	// past nextUpdate is accepted only within the grace and says so; a PCK
	// certificate past its NotAfter (1 year) is rejected whatever the grace.
	now = testNow.Add(31 * 24 * time.Hour)
	res, err := verifyBytes(v, quote, p.Collateral())
	if err != nil || len(res.GraceUsed) != 4 {
		t.Fatalf("31 days later: %v, grace used %v", err, res)
	}
	now = testNow.Add(366 * 24 * time.Hour)
	if _, err := verifyBytes(v, quote, p.Collateral()); evidence.CheckOf(err) != "pck_chain.expired" {
		t.Fatalf("a year later: got %v, want check pck_chain.expired", err)
	}
	now = testNow.Add(-2 * 24 * time.Hour)
	if _, err := verifyBytes(v, quote, p.Collateral()); evidence.CheckOf(err) != "tcb_info.not_yet_valid" {
		t.Fatalf("before issue: got %v, want check tcb_info.not_yet_valid", err)
	}
}

// TestPCKChainShapes: only leaf ← PCK CA ← (a certificate with the pinned
// root key) is accepted; an intermediate in the root's place, a short chain
// or an extra certificate is not.
func TestPCKChainShapes(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	certs, err := ParseCertificates(p.PCKChainPEM())
	if err != nil {
		t.Fatal(err)
	}
	leaf, ca, root := pemCert(certs[0].Raw), pemCert(certs[1].Raw), pemCert(certs[2].Raw)
	v := verifierFor(t, p, 0)
	for _, c := range []struct {
		name  string
		chain []byte
		check string
	}{
		{"as minted", slices.Concat(leaf, ca, root), ""},
		{"intermediate as root", slices.Concat(leaf, ca, ca), "pck_chain"},
		{"no root", slices.Concat(leaf, ca), "pck_chain"},
		{"root twice", slices.Concat(leaf, ca, root, root), "pck_chain"},
		{"leaf under the root directly", slices.Concat(leaf, root, root), "pck_chain"},
		{"CA as leaf", slices.Concat(ca, root, root), "pck_chain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := p.QuoteStruct(sgxplatform.QuoteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			q.QE.Certification.Data = c.chain
			b, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyBytes(v, b, p.Collateral()); evidence.CheckOf(err) != c.check {
				t.Fatalf("got %v, want check %q", err, c.check)
			}
		})
	}
}

// TestCRLRoles: each CRL must come from the CA that issued the certificates
// it is checked against.
func TestCRLRoles(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := verifierFor(t, p, 0)
	for _, c := range []struct {
		name  string
		mod   func(c *collateral.Collateral)
		check string
	}{
		{"Root CA CRL as PCK CRL", func(c *collateral.Collateral) { c.PCKCRL = c.RootCACRL }, "pck_crl.issuer"},
		{"PCK CRL as Root CA CRL", func(c *collateral.Collateral) { c.RootCACRL = c.PCKCRL }, "root_crl.issuer"},
		{"TCB signing chain as PCK CRL issuer chain", func(c *collateral.Collateral) { c.PCKCRLIssuerChain = c.TCBInfoIssuerChain }, "pck_crl.issuer"},
		{"no Root CA CRL", func(c *collateral.Collateral) { c.RootCACRL = nil }, "root_crl.missing"},
		{"no PCK CRL", func(c *collateral.Collateral) { c.PCKCRL = nil }, "pck_crl.missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			coll := p.Collateral()
			c.mod(coll)
			if _, err := verifyBytes(v, quote, coll); evidence.CheckOf(err) != c.check {
				t.Fatalf("got %v, want check %s", err, c.check)
			}
		})
	}
}
