package verify

import (
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// FuzzParseCertificates fuzzes the PEM chain parser that reads the quote's
// certification data and the collateral issuer chains.
func FuzzParseCertificates(f *testing.F) {
	p, err := sgxplatform.New(sgxplatform.Options{Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	chain := p.PCKChainPEM()
	f.Add(chain)
	f.Add(append(append([]byte{}, chain...), 0))
	f.Add(p.Collateral().TCBInfoIssuerChain)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE----------BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseCertificates(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
	})
}

// FuzzVerifyQuote runs whole verifications of mutated test-platform quotes:
// nothing may panic, and nothing but the untouched quote may verify.
func FuzzVerifyQuote(f *testing.F) {
	p, err := sgxplatform.New(sgxplatform.Options{Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	v, err := New(Options{Roots: p.Roots(), Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	coll := p.Collateral()
	origCerts, err := ParseCertificates(p.PCKChainPEM())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(0), byte(0))
	f.Add(uint16(abi.ReportDataOffset), byte(1))
	f.Add(uint16(abi.QuoteFixedSize+600), byte(0x80))
	f.Fuzz(func(t *testing.T, off uint16, x byte) {
		b := append([]byte(nil), quote...)
		i := int(off) % len(b)
		b[i] ^= x
		q, err := abi.ParseQuote(b)
		if err != nil {
			return
		}
		_, err = v.Verify(b, q, coll)
		if x != 0 && err == nil {
			// A flip may only survive where nothing is signed: the PEM
			// text of the PCK chain (whitespace, the trailing NUL) as long as
			// the certificates it decodes to are unchanged.
			pemChain, _ := q.PCKChainPEM()
			got, err := ParseCertificates(pemChain)
			if err != nil || len(got) != len(origCerts) {
				t.Fatalf("flip %#x at %d verified with a different chain", x, i)
			}
			for k := range got {
				if !got[k].Equal(origCerts[k]) {
					t.Fatalf("flip %#x at %d verified with a different certificate %d", x, i, k)
				}
			}
		}
	})
}
