package tdx_test

import (
	"bytes"
	"testing"

	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// FuzzParse: the verifier's Parse (quote, QE report, PCK chain location)
// never panics, and what it accepts is signed bytes cut from the input.
func FuzzParse(f *testing.F) {
	for _, b := range testenv.Seeds(f, d2Quote, "vectors/openenclave-tdx/tests/host_verify/data/tdx_quote_v5.bin") {
		f.Add(b)
	}
	p, err := tdxplatform.New(tdxplatform.Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range []tdxplatform.Quote{{}, {Version: 5}, {Version: 5, Body15: true}} {
		b, err := p.Mint(q)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := tdx.Parse(b)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, ev.DCAP.SignedBytes) || len(ev.DCAP.PCKChainPEM) == 0 && ev.Quote.QE == nil {
			t.Fatal("signed bytes are not the quote's prefix")
		}
	})
}
