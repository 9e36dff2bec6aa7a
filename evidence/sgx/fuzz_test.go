package sgx

import (
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// FuzzParse fuzzes the evidence dispatcher for both attestation types (raw
// quote, OE report, OE evidence with custom claims).
func FuzzParse(f *testing.F) {
	p, err := sgxplatform.New(sgxplatform.Options{Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	q, _ := p.Quote(sgxplatform.QuoteOptions{})
	r, _ := p.OEReport(sgxplatform.QuoteOptions{})
	e, _ := p.OEEvidence(sgxplatform.QuoteOptions{}, []abi.CustomClaim{{Name: "n", Value: []byte("v")}})
	for _, b := range [][]byte{q, r, e} {
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, oe bool) {
		typ := evidence.SgxEnclave
		if oe {
			typ = evidence.OpenEnclave
		}
		ev, err := Parse(typ, b)
		if err != nil {
			if evidence.CheckOf(err) == "" {
				t.Fatalf("parse error without a check name: %v", err)
			}
			return
		}
		if ev.Quote == nil || len(ev.QuoteBytes) < abi.QuoteFixedSize {
			t.Fatal("parsed evidence without a quote")
		}
	})
}
