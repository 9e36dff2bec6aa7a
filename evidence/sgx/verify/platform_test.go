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

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newPlatform(t testing.TB, o sgxplatform.Options) *sgxplatform.Platform {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = testNow
	}
	p, err := sgxplatform.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func verifierFor(t testing.TB, p *sgxplatform.Platform, grace time.Duration) *Verifier {
	t.Helper()
	v, err := New(Options{Roots: p.Roots(), Now: func() time.Time { return testNow }, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func verifyBytes(v *Verifier, quote []byte, c *collateral.Collateral) (*Result, error) {
	q, err := abi.ParseQuote(quote)
	if err != nil {
		return nil, evidence.Errorf("quote.parse", "%v", err)
	}
	return v.Verify(quote, q, c)
}

func TestPlatformStatuses(t *testing.T) {
	cases := []struct {
		tcb, qe   pcs.TCBStatus
		adv       []string
		want      pcs.TCBStatus
		wantCheck string
	}{
		{pcs.UpToDate, pcs.UpToDate, nil, pcs.UpToDate, ""},
		{pcs.SWHardeningNeeded, pcs.UpToDate, []string{"INTEL-SA-00615"}, pcs.SWHardeningNeeded, ""},
		{pcs.ConfigurationNeeded, pcs.UpToDate, []string{"INTEL-SA-00289"}, pcs.ConfigurationNeeded, ""},
		{pcs.ConfigurationAndSWHardeningNeeded, pcs.UpToDate, []string{"INTEL-SA-00289", "INTEL-SA-00615"}, pcs.ConfigurationAndSWHardeningNeeded, ""},
		{pcs.OutOfDate, pcs.UpToDate, []string{"INTEL-SA-00334"}, pcs.OutOfDate, ""},
		{pcs.OutOfDateConfigurationNeeded, pcs.UpToDate, nil, pcs.OutOfDateConfigurationNeeded, ""},
		{pcs.UpToDate, pcs.OutOfDate, nil, pcs.OutOfDate, ""},
		{pcs.SWHardeningNeeded, pcs.OutOfDate, nil, pcs.OutOfDate, ""},
		{pcs.ConfigurationNeeded, pcs.OutOfDate, nil, pcs.OutOfDateConfigurationNeeded, ""},
		{pcs.ConfigurationAndSWHardeningNeeded, pcs.OutOfDate, nil, pcs.OutOfDateConfigurationNeeded, ""},
		{pcs.Revoked, pcs.UpToDate, nil, "", "tcb.revoked"},
		{pcs.UpToDate, pcs.Revoked, nil, "", "qe_identity.revoked"},
	}
	for _, version := range []int{3, 4} {
		for _, c := range cases {
			t.Run(string(c.tcb)+"/"+string(c.qe), func(t *testing.T) {
				p := newPlatform(t, sgxplatform.Options{QuoteVersion: version, TCBStatus: c.tcb, QEStatus: c.qe, AdvisoryIDs: c.adv})
				quote, err := p.Quote(sgxplatform.QuoteOptions{ProductID: 1})
				if err != nil {
					t.Fatal(err)
				}
				res, err := verifyBytes(verifierFor(t, p, 0), quote, p.Collateral())
				if c.wantCheck != "" {
					if evidence.CheckOf(err) != c.wantCheck {
						t.Fatalf("got %v, want check %s", err, c.wantCheck)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != c.want {
					t.Errorf("status %s, want %s", res.Status, c.want)
				}
				wantAdv := slices.Clone(c.adv)
				if c.qe == pcs.OutOfDate {
					wantAdv = append(wantAdv, "INTEL-SA-00999")
				}
				if !slices.Equal(res.AdvisoryIDs, wantAdv) {
					t.Errorf("advisories %v, want %v", res.AdvisoryIDs, wantAdv)
				}
			})
		}
	}
}

// signatureDataOffset returns where the QE report certification data starts
// in the signature data (v4 has a 6-byte type-6 header in front of it).
func qeOffset(version int) int {
	off := abi.QuoteFixedSize + 128
	if version == 4 {
		off += 6
	}
	return off
}

func TestTamperQuote(t *testing.T) {
	for _, version := range []int{3, 4} {
		p := newPlatform(t, sgxplatform.Options{QuoteVersion: version})
		v := verifierFor(t, p, 0)
		quote, err := p.Quote(sgxplatform.QuoteOptions{ProductID: 3, SVN: 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyBytes(v, quote, p.Collateral()); err != nil {
			t.Fatalf("v%d: untampered quote: %v", version, err)
		}
		cases := tamperCases(version)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := slices.Clone(quote)
				b[c.off] ^= 0x01
				_, err := verifyBytes(v, b, p.Collateral())
				if got := evidence.CheckOf(err); got != c.check {
					t.Fatalf("v%d flip at %d: got %v (check %q), want %q", version, c.off, err, got, c.check)
				}
			})
		}
	}
}

func TestTamperCollateralAndTrust(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	other := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { b = slices.Clone(b); b[i] ^= 1; return b }
	cases := []struct {
		name  string
		quote func() []byte
		coll  func(c *collateral.Collateral)
		v     func() *Verifier
		check string
	}{
		{name: "PCK CRL issuer chain of another CA", coll: func(c *collateral.Collateral) { c.PCKCRLIssuerChain = other.Collateral().PCKCRLIssuerChain }, check: "pck_crl.issuer_chain"},
		{name: "TCB info body", coll: func(c *collateral.Collateral) { c.TCBInfo = flip(c.TCBInfo, 20) }, check: "tcb_info.signature"},
		{name: "TCB info signature", coll: func(c *collateral.Collateral) { c.TCBInfoSignature = flip(c.TCBInfoSignature, 3) }, check: "tcb_info.signature"},
		{name: "QE identity body", coll: func(c *collateral.Collateral) { c.QEIdentity = flip(c.QEIdentity, 20) }, check: "qe_identity.signature"},
		{name: "QE identity signature", coll: func(c *collateral.Collateral) { c.QEIdentitySignature = flip(c.QEIdentitySignature, 40) }, check: "qe_identity.signature"},
		{name: "root CRL signature", coll: func(c *collateral.Collateral) { c.RootCACRL = flip(c.RootCACRL, len(c.RootCACRL)-3) }, check: "root_crl.signature"},
		{name: "PCK CRL signature", coll: func(c *collateral.Collateral) { c.PCKCRL = flip(c.PCKCRL, len(c.PCKCRL)-3) }, check: "pck_crl.signature"},
		{name: "PCK CRL from another CA", coll: func(c *collateral.Collateral) { c.PCKCRL = other.Collateral().PCKCRL }, check: "pck_crl.signature"},
		{name: "TCB signing chain of another root", coll: func(c *collateral.Collateral) {
			o := other.Collateral()
			c.TCBInfoIssuerChain, c.TCBInfo, c.TCBInfoSignature = o.TCBInfoIssuerChain, o.TCBInfo, o.TCBInfoSignature
		}, check: "tcb_info.issuer_chain"},
		{name: "TCB info signed by another key", coll: func(c *collateral.Collateral) { c.TCBInfoSignature = other.Collateral().TCBInfoSignature }, check: "tcb_info.signature"},
		{name: "missing QE identity", coll: func(c *collateral.Collateral) { c.QEIdentity = nil }, check: "qe_identity.missing"},
		{name: "swapped PCK chain (untrusted root)", quote: func() []byte {
			q, _ := p.QuoteStruct(sgxplatform.QuoteOptions{})
			q.QE.Certification.Data = other.PCKChainPEM()
			b, _ := q.Marshal()
			return b
		}, check: "pck_chain"},
		{name: "swapped PCK chain (trusted root, wrong PCK key)", quote: func() []byte {
			q, _ := p.QuoteStruct(sgxplatform.QuoteOptions{})
			q.QE.Certification.Data = other.PCKChainPEM()
			b, _ := q.Marshal()
			return b
		}, v: func() *Verifier {
			v, _ := New(Options{Roots: append(p.Roots(), other.Roots()...), Now: func() time.Time { return testNow }})
			return v
		}, check: "qe_report.signature"},
		{name: "TCB info chain of another trusted root", coll: func(c *collateral.Collateral) {
			o := other.Collateral()
			c.TCBInfoIssuerChain, c.TCBInfo, c.TCBInfoSignature = o.TCBInfoIssuerChain, o.TCBInfo, o.TCBInfoSignature
		}, v: func() *Verifier {
			v, _ := New(Options{Roots: append(p.Roots(), other.Roots()...), Now: func() time.Time { return testNow }})
			return v
		}, check: "tcb_info.issuer_chain"},
		{name: "Intel root only", v: func() *Verifier {
			v, _ := New(Options{Now: func() time.Time { return testNow }})
			return v
		}, check: "pck_chain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := quote
			if c.quote != nil {
				q = c.quote()
			}
			coll := p.Collateral()
			if c.coll != nil {
				c.coll(coll)
			}
			v := verifierFor(t, p, 0)
			if c.v != nil {
				v = c.v()
			}
			_, err := verifyBytes(v, q, coll)
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("got %v (check %q), want %q", err, got, c.check)
			}
		})
	}
}

func TestPlatformOptions(t *testing.T) {
	cases := []struct {
		name   string
		opts   sgxplatform.Options
		grace  time.Duration
		check  string
		grace2 []string
	}{
		{name: "revoked PCK", opts: sgxplatform.Options{RevokePCK: true}, check: "pck.revoked"},
		{name: "mismatched FMSPC", opts: sgxplatform.Options{TCBFMSPC: [6]byte{0x00, 0xa0, 0x67, 0x11, 0, 0}}, check: "tcb_info.fmspc_mismatch"},
		{name: "expired collateral", opts: sgxplatform.Options{ExpiredCollateral: true}, check: "tcb_info.expired"},
		{name: "expired collateral within grace", opts: sgxplatform.Options{ExpiredCollateral: true}, grace: 2 * time.Hour, grace2: []string{"tcb_info", "qe_identity", "root_crl", "pck_crl"}},
		{name: "expired collateral beyond grace", opts: sgxplatform.Options{ExpiredCollateral: true}, grace: 30 * time.Minute, check: "tcb_info.expired"},
		{name: "expired PCK CRL", opts: sgxplatform.Options{ExpiredPCKCRL: true}, check: "pck_crl.expired"},
		{name: "expired PCK CRL within grace", opts: sgxplatform.Options{ExpiredPCKCRL: true}, grace: 2 * time.Hour, grace2: []string{"pck_crl"}},
		{name: "revoked PCK CA", opts: sgxplatform.Options{RevokePCKCA: true}, check: "pck_ca.revoked"},
		{name: "revoked TCB signing cert", opts: sgxplatform.Options{RevokeTCBSigner: true}, check: "tcb_signing.revoked"},
		{name: "mismatched PCE ID", opts: sgxplatform.Options{TCBPCEID: &[2]byte{0, 1}}, check: "tcb_info.pceid_mismatch"},
		{name: "no matching TCB level", opts: sgxplatform.Options{NoMatchingTCBLevel: true}, check: "tcb.no_matching_level"},
		{name: "QE MRSIGNER", opts: sgxplatform.Options{QEIdentityMRSigner: &[32]byte{1}}, check: "qe_identity.mrsigner_mismatch"},
		{name: "QE ISVPRODID", opts: sgxplatform.Options{QEIdentityISVProdID: new(uint16)}, check: "qe_identity.isvprodid_mismatch"},
		{name: "QE MISCSELECT", opts: sgxplatform.Options{QEIdentityMiscSelect: func() *uint32 { v := uint32(1); return &v }()}, check: "qe_identity.miscselect_mismatch"},
		{name: "QE ATTRIBUTES", opts: sgxplatform.Options{QEIdentityAttributes: &[16]byte{0x13}}, check: "qe_identity.attributes_mismatch"},
		{name: "QE XFRM differs but is masked out", opts: sgxplatform.Options{QEIdentityAttributes: &[16]byte{0x11, 8: 0x00}}}, // the QE report has XFRM 0xe7; mask bytes 8..15 are 0
		{name: "QE ISVSVN below every level", opts: sgxplatform.Options{QEIdentityMinISVSVN: 9}, check: "qe_identity.no_matching_level"},
		{name: "platform CA", opts: sgxplatform.Options{PlatformCA: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPlatform(t, c.opts)
			quote, err := p.Quote(sgxplatform.QuoteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifyBytes(verifierFor(t, p, c.grace), quote, p.Collateral())
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("got %v (check %q), want %q", err, got, c.check)
			}
			if err == nil && !slices.Equal(res.GraceUsed, c.grace2) {
				t.Fatalf("grace used %v, want %v", res.GraceUsed, c.grace2)
			}
		})
	}
}

func TestTimeWindows(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, _ := p.Quote(sgxplatform.QuoteOptions{})
	for _, c := range []struct {
		at    time.Time
		check string
	}{
		{testNow.Add(-2 * time.Hour), "tcb_info.not_yet_valid"},
		{testNow.Add(31 * 24 * time.Hour), "tcb_info.expired"},
		{testNow.Add(2 * 365 * 24 * time.Hour), "tcb_info.expired"},
		{testNow.Add(29 * 24 * time.Hour), ""},
	} {
		v, _ := New(Options{Roots: p.Roots(), Now: func() time.Time { return c.at }})
		_, err := verifyBytes(v, quote, p.Collateral())
		if got := evidence.CheckOf(err); got != c.check {
			t.Errorf("at %s: got %v, want %q", c.at, err, c.check)
		}
	}
}

type tamperCase struct {
	name  string
	off   int
	check string
}

// tamperCases flips one bit in each signed region of a quote of the given
// version and names the check that must catch it.
func tamperCases(version int) []tamperCase {
	qe := qeOffset(version)
	return []tamperCase{
		{"header user data", 30, "quote.signature"},
		{"header QE SVN", 8, "quote.signature"},
		{"report body MRENCLAVE", abi.HeaderSize + 64, "quote.signature"},
		{"report body report data", abi.ReportDataOffset + 63, "quote.signature"},
		{"report body attributes", abi.HeaderSize + 48, "quote.signature"},
		{"quote signature", abi.QuoteFixedSize + 5, "quote.signature"},
		{"attestation key", abi.QuoteFixedSize + 64 + 7, "qe_report.binding"},
		{"QE report MRSIGNER", qe + 128, "qe_report.signature"},
		{"QE report data", qe + 320 + 40, "qe_report.signature"},
		{"QE report signature", qe + 384 + 10, "qe_report.signature"},
		{"QE auth data", qe + 384 + 64 + 2 + 5, "qe_report.binding"},
		{"PCK certificate", qe + 384 + 64 + 2 + 32 + 6 + 300, "pck_chain"},
	}
}

func TestTamperRealD1(t *testing.T) {
	vs := loadDCAPQVL(t, "vectors/dcap-qvl/sample/sgx_quote", "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	at := mustTime(t, "2025-07-01T00:00:00Z")
	if _, err := verifyAt(t, vs, at, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range tamperCases(3) {
		t.Run(c.name, func(t *testing.T) {
			b := slices.Clone(vs.quote)
			b[c.off] ^= 0x01
			_, err := verifyAt(t, vectorSet{b, vs.coll}, at, 0)
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("flip at %d: got %v (check %q), want %q", c.off, err, got, c.check)
			}
		})
	}
	flip := func(b []byte, i int) []byte { b = slices.Clone(b); b[i] ^= 1; return b }
	for _, c := range []struct {
		name  string
		mod   func(c collateral.Collateral) *collateral.Collateral
		check string
	}{
		{"TCB info", func(c collateral.Collateral) *collateral.Collateral { c.TCBInfo = flip(c.TCBInfo, 50); return &c }, "tcb_info.signature"},
		{"QE identity", func(c collateral.Collateral) *collateral.Collateral { c.QEIdentity = flip(c.QEIdentity, 50); return &c }, "qe_identity.signature"},
		{"root CRL", func(c collateral.Collateral) *collateral.Collateral {
			c.RootCACRL = flip(c.RootCACRL, len(c.RootCACRL)-2)
			return &c
		}, "root_crl.signature"},
		{"PCK CRL", func(c collateral.Collateral) *collateral.Collateral {
			c.PCKCRL = flip(c.PCKCRL, len(c.PCKCRL)-2)
			return &c
		}, "pck_crl.signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifyAt(t, vectorSet{vs.quote, c.mod(*vs.coll)}, at, 0)
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("got %v, want %q", err, c.check)
			}
		})
	}
	// The wrong root: the D1 chain against the test root only.
	p := newPlatform(t, sgxplatform.Options{})
	v, _ := New(Options{Roots: p.Roots(), Now: func() time.Time { return at }})
	q, _ := abi.ParseQuote(vs.quote)
	if _, err := v.Verify(vs.quote, q, vs.coll); evidence.CheckOf(err) != "pck_chain" {
		t.Fatalf("D1 under the test root: %v", err)
	}
}
