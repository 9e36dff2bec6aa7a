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
	q, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	r, err := p.OEReport(sgxplatform.QuoteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	e, err := p.OEEvidence(sgxplatform.QuoteOptions{}, []abi.CustomClaim{{Name: "n", Value: []byte("v")}})
	if err != nil {
		f.Fatal(err)
	}
	// Each seed parses as the type it was made for (a parser that rejects
	// everything must not pass for one that never panics).
	for _, c := range []struct {
		b  []byte
		oe bool
	}{{q, false}, {r, true}, {e, true}} {
		typ := evidence.SgxEnclave
		if c.oe {
			typ = evidence.OpenEnclave
		}
		if _, err := Parse(typ, c.b); err != nil {
			f.Fatalf("seed of type %s does not parse: %v", typ, err)
		}
		f.Add(c.b, false)
		f.Add(c.b, true)
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
