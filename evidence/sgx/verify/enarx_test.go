package verify

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/internal/testenv"
)

// enarxEvidence is what Steward puts in CSR extension 1.3.6.1.4.1.58270.1.2:
// SEQUENCE { quote OCTET STRING, SEQUENCE { SEQUENCE OF SEQUENCE { url UTF8String, crl } },
// SEQUENCE { SEQUENCE OF certificate (TCB signing chain), tcbInfo response OCTET STRING } }.
type enarxEvidence struct {
	Quote []byte
	CRLs  struct {
		List []struct {
			URL string `asn1:"utf8"`
			CRL asn1.RawValue
		}
	}
	TCB struct {
		Chain   []asn1.RawValue
		TCBInfo []byte
	}
}

func loadEnarx(t *testing.T, file string) (*enarxEvidence, *x509.CertificateRequest) {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(testenv.ReadShared(t, "vectors/enarx-steward-sgx/crates/attestation/src/sgx/"+file))
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range csr.Extensions {
		if ext.Id.String() == "1.3.6.1.4.1.58270.1.2" {
			var e enarxEvidence
			if rest, err := asn1.Unmarshal(ext.Value, &e); err != nil || len(rest) != 0 {
				t.Fatalf("enarx evidence: %v (%d trailing)", err, len(rest))
			}
			return &e, csr
		}
	}
	t.Fatal("no Steward SGX extension")
	return nil, nil
}

// TestEnarxCSRQuotes verifies the enarx Steward evidence as far as it goes:
// it carries no QE identity, so full verification must stop at
// qe_identity.missing — after the quote, PCK chain, CRLs, TCB signing chain
// and TCB info signature have all verified — and the TCB level the PCK
// certificate matches is reported.
func TestEnarxCSRQuotes(t *testing.T) {
	cases := []struct {
		file, at, fmspc, ca, status string
	}{
		{"icelake.signed.tcb.crl.single.i5.csr", "2023-02-01T00:00:00Z", "00706e470000", "processor", "OutOfDate"},
		{"icelake.signed.tcb.crl.multi.xeon.csr", "2023-02-01T00:00:00Z", "00606a000000", "platform", "OutOfDate"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			e, csr := loadEnarx(t, c.file)
			q, err := abi.ParseQuote(e.Quote)
			if err != nil {
				t.Fatal(err)
			}
			at := mustTime(t, c.at)
			v, err := New(Options{Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyQuoteOnly(q); err != nil {
				t.Fatalf("quote: %v", err)
			}
			plat, err := v.Platform(q)
			if err != nil {
				t.Fatal(err)
			}
			if plat.FMSPC != c.fmspc || plat.CA != c.ca {
				t.Errorf("platform %s/%s", plat.FMSPC, plat.CA)
			}
			tcbDoc, err := collateral.ParseTCBInfoResponse(e.TCB.TCBInfo)
			if err != nil {
				t.Fatal(err)
			}
			tcbBody, tcbSig := tcbDoc.Body, tcbDoc.Signature
			var signChain []byte
			for _, c := range e.TCB.Chain {
				signChain = append(signChain, pemCert(c.FullBytes)...)
			}
			pckChain, _ := q.PCKChainPEM()
			certs, err := ParseCertificates(pckChain)
			if err != nil {
				t.Fatal(err)
			}
			coll := &collateral.Collateral{
				PCKCRLIssuerChain:  append(pemCert(certs[1].Raw), pemCert(certs[2].Raw)...),
				TCBInfoIssuerChain: signChain, TCBInfo: tcbBody, TCBInfoSignature: tcbSig,
				QEIdentityIssuerChain: signChain,
			}
			for _, crl := range e.CRLs.List {
				switch {
				case strings.HasSuffix(crl.URL, "IntelSGXRootCA.der"):
					coll.RootCACRL = crl.CRL.FullBytes
				case strings.Contains(crl.URL, "ca="+c.ca):
					coll.PCKCRL = crl.CRL.FullBytes
				}
			}
			_, err = v.Verify(e.Quote, q, coll)
			if evidence.CheckOf(err) != "qe_identity.missing" {
				t.Fatalf("got %v, want qe_identity.missing (everything before it verified)", err)
			}
			// Everything up to the QE identity verified; compute the platform level too.
			tcb, err := v.Core().TCBInfo(coll, mustChain(t, v, signChain).Leaf(), dcap.SGX)
			if err != nil {
				t.Fatal(err)
			}
			matched := false
			for _, l := range tcb.Levels {
				p := dcap.PlatformTCB{SGX: plat.Extensions.TCB.CompSVN, PCESVN: plat.Extensions.TCB.PCESVN}
				if p.AtLeast(&l) {
					matched = true
					if string(l.Status) != c.status {
						t.Errorf("platform TCB level %s, want %s", l.Status, c.status)
					}
					t.Logf("%s: platform TCB level %s %v (TCB info %s..%s); CSR key signed: %v", c.file, l.Status, l.AdvisoryIDs, tcb.IssueDate.Format(time.RFC3339), tcb.NextUpdate.Format(time.RFC3339), csr.CheckSignature() == nil)
					break
				}
			}
			if !matched || csr.CheckSignature() != nil {
				t.Error("no TCB level matched, or the CSR signature does not verify")
			}
		})
	}
}

func mustChain(t *testing.T, v *Verifier, pemChain []byte) *dcap.Chain {
	t.Helper()
	c, err := v.Core().SigningChain(pemChain, "test")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
