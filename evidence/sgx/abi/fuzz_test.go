package abi

import (
	"bytes"

	"github.com/attestd/attestd/internal/testenv"
	"testing"
)

// seedQuotes adds real quotes when the shared vectors exist (the fuzzers
// must still run in a user's clone, so a missing file is not an error).
func seedQuotes(f *testing.F) [][]byte {
	out := testenv.Seeds(f, "vectors/dcap-qvl/sample/sgx_quote", "vectors/trustee-verifier/deps/verifier/test_data/occlum_quote.dat")
	out = append(out, minimalQuote(3), minimalQuote(4))
	for _, b := range out {
		f.Add(b)
	}
	return out
}

// minimalQuote builds a structurally valid quote with empty auth and cert data.
func minimalQuote(version uint16) []byte {
	q := &Quote{
		Header:         Header{Version: version, AttestationKeyType: AttestationKeyECDSAP256},
		Signature:      make([]byte, 64),
		AttestationKey: make([]byte, 64),
		QE:             QEReportCertificationData{QEReportSignature: make([]byte, 64), Certification: CertificationData{Type: CertPCKChain}},
	}
	b, err := q.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzParseQuote(f *testing.F) {
	seedQuotes(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			return
		}
		out, err := q.Marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed quote: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("round trip differs")
		}
	})
}

func FuzzParseOEReport(f *testing.F) {
	for _, q := range seedQuotes(f) {
		f.Add(NewOEReport(q))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseOEReport(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("round trip differs")
		}
	})
}

func FuzzParseOEEvidence(f *testing.F) {
	for _, q := range seedQuotes(f) {
		f.Add(NewOEEvidence(q, MarshalCustomClaims([]CustomClaim{{"k", []byte("v")}})))
		f.Add(NewOEEvidence(q, nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseOEEvidence(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatal("round trip differs")
		}
	})
}

func FuzzParseCustomClaims(f *testing.F) {
	f.Add(MarshalCustomClaims([]CustomClaim{{"a", []byte("1")}, {"b", nil}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseCustomClaims(b)
		if err != nil || len(b) == 0 {
			return
		}
		if !bytes.Equal(MarshalCustomClaims(cs), b) {
			t.Fatal("round trip differs")
		}
	})
}
