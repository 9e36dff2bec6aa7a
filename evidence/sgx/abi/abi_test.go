package abi

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

var realQuotes = []string{
	"vectors/dcap-qvl/sample/sgx_quote",
	"vectors/mobilecoin-sgx/verifier/data/tests/hw_quote.dat",
	"vectors/trustee-verifier/deps/verifier/test_data/occlum_quote.dat",
	"vectors/azure-sdk-cpp-oe/OpenEnclaveQuote.sgx_quote.bin",
	"vectors/azure-sdk-cpp-oe/OpenEnclaveNonDebugQuote.sgx_quote.bin",
}

func TestRealQuotesRoundTrip(t *testing.T) {
	for _, f := range realQuotes {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b := testenv.ReadShared(t, f)
			q, err := ParseQuote(b)
			if err != nil {
				t.Fatal(err)
			}
			if q.Header.Version != 3 || q.QE.Certification.Type != CertPCKChain {
				t.Errorf("version %d cert type %d", q.Header.Version, q.QE.Certification.Type)
			}
			out, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Fatal("marshal(parse(b)) != b")
			}
			if !bytes.Equal(q.SignedBytes(), b[:SignedSize]) {
				t.Fatal("signed bytes differ")
			}
			// The parsed quote must not alias the input.
			b[ReportDataOffset] ^= 0xff
			b[len(b)-10] ^= 0xff
			out2, _ := q.Marshal()
			if !bytes.Equal(out, out2) {
				t.Fatal("parsed quote aliases the input buffer")
			}
		})
	}
}

func TestTDXQuotesRejected(t *testing.T) {
	for _, f := range []string{"vectors/dcap-qvl/sample/tdx_quote", "vectors/automata-dcap-rs/data/quote_tdx_00806f050000.dat"} {
		b := testenv.ReadShared(t, f)
		if _, err := ParseQuote(b); !errors.Is(err, ErrTDX) {
			t.Errorf("%s: %v, want ErrTDX", f, err)
		}
	}
}

func TestOEReportRoundTrip(t *testing.T) {
	for _, f := range []string{"OpenEnclaveQuote", "OpenEnclaveNonDebugQuote"} {
		b := testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/"+f+".oe_report.bin")
		r, err := ParseOEReport(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("OE report round trip")
		}
		if !bytes.Equal(r.QuoteBytes, testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/"+f+".sgx_quote.bin")) {
			t.Fatal("quote differs from .sgx_quote.bin")
		}
	}
}

func TestParseErrors(t *testing.T) {
	q := testenv.ReadShared(t, realQuotes[0])
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), q...)) }
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", q[:47]},
		{"version 2", mut(func(b []byte) []byte { b[0] = 2; return b })},
		{"version 5", mut(func(b []byte) []byte { b[0] = 5; return b })},
		{"EPID key type", mut(func(b []byte) []byte { b[2] = 0; return b })},
		{"unknown TEE", mut(func(b []byte) []byte { b[4] = 7; return b })},
		{"reserved report body", mut(func(b []byte) []byte { b[HeaderSize+offReserved2] = 1; return b })},
		{"reserved QE report", mut(func(b []byte) []byte { b[QuoteFixedSize+128+offReserved4] = 1; return b })},
		{"trailing byte", append(append([]byte(nil), q...), 0)},
		{"truncated", q[:len(q)-1]},
		{"huge sig len", mut(func(b []byte) []byte { b[SignedSize+3] = 0x7f; return b })},
		{"auth data overflow", mut(func(b []byte) []byte { b[QuoteFixedSize+576] = 0xff; b[QuoteFixedSize+577] = 0xff; return b })},
	}
	for _, c := range cases {
		if _, err := ParseQuote(c.b); err == nil {
			t.Errorf("%s: parsed", c.name)
		}
	}
	if _, err := ParseOEReport(append([]byte{1, 0, 0, 0, 1, 0, 0, 0}, make([]byte, 8)...)); err == nil {
		t.Error("local OE report accepted")
	}
	if _, err := ParseOEReport(append(NewOEReport(q), 0)); err == nil {
		t.Error("OE report with wrong size accepted")
	}
}

func TestOEEvidenceAndClaims(t *testing.T) {
	q := testenv.ReadShared(t, realQuotes[0])
	claims := []CustomClaim{{"a", []byte("1")}, {"name with spaces", nil}, {"bin", []byte{0, 1, 2}}}
	buf := MarshalCustomClaims(claims)
	for _, version := range []uint32{OEAttestationHeaderV2, OEAttestationHeaderV3} {
		e := &OEEvidence{HeaderVersion: version, FormatID: oeFormatSGXECDSA(), QuoteBytes: q, CustomClaimsBuffer: buf}
		b := e.Marshal()
		got, err := ParseOEEvidence(b)
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if !bytes.Equal(got.Marshal(), b) || len(got.CustomClaims) != 3 || got.CustomClaims[1].Name != "name with spaces" || !bytes.Equal(got.CustomClaims[2].Value, []byte{0, 1, 2}) {
			t.Fatalf("v%d round trip: %+v", version, got.CustomClaims)
		}
	}
	bad := [][]byte{
		append(MarshalCustomClaims(nil)[:8], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // absurd count
		buf[:len(buf)-1],                    // truncated value
		append(append([]byte{}, buf...), 0), // trailing
	}
	noNul := MarshalCustomClaims([]CustomClaim{{"x", nil}})
	noNul[16+16+1] = 'y'
	bad = append(bad, noNul)
	for i, b := range bad {
		if _, err := ParseCustomClaims(b); err == nil {
			t.Errorf("bad claims %d parsed", i)
		}
	}
}

// TestParseQuoteCopy: the quote and its raw bytes share one copy of the
// input, never the input itself, and the quote's slices are
// capacity-limited (appending to one cannot overwrite the next field).
func TestParseQuoteCopy(t *testing.T) {
	for _, f := range realQuotes {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b := testenv.ReadShared(t, f)
			orig := bytes.Clone(b)
			q, raw, err := ParseQuoteCopy(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, b) {
				t.Fatal("raw != b")
			}
			if &raw[0] == &b[0] {
				t.Fatal("raw aliases the input")
			}
			for i := range b {
				b[i] ^= 0xff
			}
			if out, _ := q.Marshal(); !bytes.Equal(out, orig) || !bytes.Equal(raw, orig) {
				t.Fatal("the quote or raw changed with the input buffer")
			}
			for _, s := range [][]byte{q.Signature, q.AttestationKey, q.QE.QEReportSignature, q.QE.QEAuthData, q.QE.Certification.Data} {
				if cap(s) != len(s) {
					t.Fatalf("a %d-byte field has capacity %d", len(s), cap(s))
				}
			}
			_ = append(q.Signature, 0xAA)
			if !bytes.Equal(raw, orig) {
				t.Fatal("appending to the signature wrote into the quote's bytes")
			}
		})
	}
}
