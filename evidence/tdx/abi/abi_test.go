package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	tdxabi "github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/attestd/attestd/internal/testenv"
)

// realQuotes are the real TD quotes of the shared vectors (vectors/README.md).
var realQuotes = []struct {
	file     string
	version  uint16
	bodyType uint16
	hex      bool
}{
	{"vectors/dcap-qvl/sample/tdx_quote", 4, BodyTypeTD10, false},
	{"vectors/go-tdx-guest/testing/testdata/tdx_prod_quote_SPR_E4.dat", 4, BodyTypeTD10, false},
	{"vectors/automata-dcap-rs/data/quote_tdx_00806f050000.dat", 4, BodyTypeTD10, false},
	{"vectors/go-tdx-guest/testing/testdata/ccel/cos-113-tdx-quote.dat", 4, BodyTypeTD10, false},
	{"vectors/openenclave-tdx/tests/host_verify/data/tdx_quote_v5.bin", 5, BodyTypeTD15, false},
	{"vectors/openenclave-tdx/tests/host_verify/data/tdx_quote-moduleupdate-seamldr5.dat", 5, BodyTypeTD15, false},
	{"vectors/go-tdx-guest/testing/testdata/quote_v5_sample.dat", 5, 0, false},
}

func readQuote(t *testing.T, file string) []byte {
	b := testenv.ReadShared(t, file)
	if s := strings.TrimSpace(string(b)); len(s) > 0 && strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		d, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return b
}

// TestRealQuotes parses every real TD quote, checks the layout facts and the
// exact round trip, and for v4 cross-checks every field with go-tdx-guest's
// parser.
func TestRealQuotes(t *testing.T) {
	for _, c := range realQuotes {
		t.Run(c.file, func(t *testing.T) {
			b := readQuote(t, c.file)
			q, err := ParseQuote(b)
			if err != nil {
				t.Fatal(err)
			}
			if q.Header.Version != c.version || (c.bodyType != 0 && q.BodyType != c.bodyType) {
				t.Fatalf("version %d body type %d, want %d/%d", q.Header.Version, q.BodyType, c.version, c.bodyType)
			}
			pem, err := q.PCKChainPEM()
			if err != nil || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
				t.Fatalf("PCK chain: %v", err)
			}
			out, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Fatal("round trip differs")
			}
			n, _ := bodySize(q.BodyType)
			if off := q.SignedSize() - n + 520; !bytes.Equal(out[off:off+64], q.Body.ReportData[:]) {
				t.Fatal("REPORTDATA is not at body offset 520")
			}
			if c.version != 4 {
				return
			}
			p, err := tdxabi.QuoteToProto(b)
			if err != nil {
				t.Fatalf("go-tdx-guest: %v", err)
			}
			g := p.(*pb.QuoteV4)
			gb := g.GetTdQuoteBody()
			for _, f := range []struct {
				name      string
				ours, its []byte
			}{
				{"tee_tcb_svn", q.Body.TEETCBSVN[:], gb.GetTeeTcbSvn()},
				{"mrseam", q.Body.MRSeam[:], gb.GetMrSeam()},
				{"mrsignerseam", q.Body.MRSignerSeam[:], gb.GetMrSignerSeam()},
				{"seam_attributes", q.Body.SEAMAttributes[:], gb.GetSeamAttributes()},
				{"td_attributes", q.Body.TDAttributes[:], gb.GetTdAttributes()},
				{"xfam", q.Body.XFAM[:], gb.GetXfam()},
				{"mrtd", q.Body.MRTD[:], gb.GetMrTd()},
				{"mrconfigid", q.Body.MRConfigID[:], gb.GetMrConfigId()},
				{"mrowner", q.Body.MROwner[:], gb.GetMrOwner()},
				{"mrownerconfig", q.Body.MROwnerConfig[:], gb.GetMrOwnerConfig()},
				{"rtmr0", q.Body.RTMR[0][:], gb.GetRtmrs()[0]},
				{"rtmr3", q.Body.RTMR[3][:], gb.GetRtmrs()[3]},
				{"report_data", q.Body.ReportData[:], gb.GetReportData()},
				{"qe_vendor_id", q.Header.QEVendorID[:], g.GetHeader().GetQeVendorId()},
				{"signature", q.Signature, g.GetSignedData().GetSignature()},
				{"attestation_key", q.AttestationKey, g.GetSignedData().GetEcdsaAttestationKey()},
				{"qe_report_signature", q.QE.QEReportSignature, g.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReportSignature()},
				{"qe_auth_data", q.QE.QEAuthData, g.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeAuthData().GetData()},
				{"pck_chain", pem, g.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()},
			} {
				if !bytes.Equal(f.ours, f.its) {
					t.Errorf("%s: ours %x, go-tdx-guest %x", f.name, f.ours, f.its)
				}
			}
		})
	}
}

// minimalQuote builds a structurally valid quote of the version and body
// type with empty QE auth data and a tiny "PCK chain".
func minimalQuote(version, bodyType uint16) []byte {
	q := &Quote{
		Header:         Header{Version: version, AttestationKeyType: AttestationKeyECDSAP256, TEEType: TEETypeTDX},
		BodyType:       bodyType,
		Signature:      make([]byte, 64),
		AttestationKey: make([]byte, 64),
		CertType:       CertQEReportCertDat,
		QE:             &QEReportCertData{QEReport: make([]byte, QEReportSize), QEReportSignature: make([]byte, 64), CertType: CertPCKChain, CertData: []byte("-----BEGIN CERTIFICATE-----")},
	}
	q.Body.RTMR[2][0] = 0x42
	q.Body.MRServiceTD[0] = 7
	b, err := q.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// TestMalformed: every structural fault is refused with a reason, and an
// SGX quote is told apart (ErrNotTDX).
func TestMalformed(t *testing.T) {
	v4 := minimalQuote(4, BodyTypeTD10)
	v5 := minimalQuote(5, BodyTypeTD15)
	set := func(b []byte, off int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], v)
		return c
	}
	u32 := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	sigOff := HeaderSize + TDReport10Size
	cases := []struct {
		name  string
		b     []byte
		want  string
		notTD bool
	}{
		{"empty", nil, "header", false},
		{"short header", v4[:47], "header", false},
		{"sgx v3", set(v4, 0, 3), "version 3", true},
		{"sgx tee type", set(v4, 4, 0), "TEE type", true},
		{"version 6", set(v4, 0, 6), "version 6", false},
		{"key type", set(v4, 2, 3), "attestation key type", false},
		{"truncated body", v4[:HeaderSize+100], "TD report body", false},
		{"no signature length", v4[:sigOff+2], "signature data length", false},
		{"signature length too big", set(v4, sigOff, u32(1<<31)...), "signature data", false},
		{"signature length short", set(v4, sigOff, u32(100)...), "", false},
		{"cert size beyond", set(v4, sigOff+4+128+2, u32(1<<30)...), "certification data", false},
		{"v5 sgx body", set(v5, HeaderSize, 1), "SGX enclave report", true},
		{"v5 body type 9", set(v5, HeaderSize, 9), "body type 9", false},
		{"v5 wrong size", set(v5, HeaderSize+2, u32(584)...), "descriptor says 584", false},
		{"v5 truncated descriptor", v5[:HeaderSize+3], "body size", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseQuote(c.b)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if errors.Is(err, ErrNotTDX) != c.notTD {
				t.Errorf("ErrNotTDX %v, want %v (%v)", errors.Is(err, ErrNotTDX), c.notTD, err)
			}
		})
	}
	// Bytes after the signature data are kept (round trip), not interpreted.
	q, err := ParseQuote(append(bytes.Clone(v4), 0, 'x', 0))
	if err != nil || string(q.Extra) != "\x00x\x00" {
		t.Fatalf("extra bytes: %v %+v", err, q)
	}
	// The v5 1.5 body round-trips its own fields.
	q, err = ParseQuote(v5)
	if err != nil || q.Body.MRServiceTD[0] != 7 || q.Body.RTMR[2][0] != 0x42 || q.SignedSize() != HeaderSize+6+TDReport15Size {
		t.Fatalf("v5: %v %+v", err, q)
	}
	// A v4 quote cannot carry a TDX 1.5 body.
	q.Header.Version = 4
	if _, err := q.Marshal(); err == nil {
		t.Fatal("v4 with a 1.5 body marshalled")
	}
}

// TestAttributes decodes the TD attribute bits MAA reports.
func TestAttributes(t *testing.T) {
	var r TDReport
	binary.LittleEndian.PutUint64(r.TDAttributes[:], TDAttrDebug|TDAttrSEPTVEDisable|TDAttrPerfmon)
	if !r.Debug() || r.Attributes()&TDAttrKeyLocker != 0 || r.Attributes()&TDAttrSEPTVEDisable == 0 {
		t.Fatalf("attributes %x", r.TDAttributes)
	}
	if r.TDAttributes[7] != 0x80 || r.TDAttributes[3] != 0x10 || r.TDAttributes[0] != 1 {
		t.Fatalf("bit layout %x", r.TDAttributes)
	}
}

// TestParseQuoteCopy: the quote and its raw bytes share one copy of the
// input, never the input itself, and the quote's slices are
// capacity-limited (appending to one cannot overwrite the next field).
func TestParseQuoteCopy(t *testing.T) {
	for _, c := range realQuotes {
		t.Run(c.file, func(t *testing.T) {
			b := readQuote(t, c.file)
			orig := bytes.Clone(b)
			q, raw, err := ParseQuoteCopy(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, b) || &raw[0] == &b[0] {
				t.Fatal("raw is not a copy of b")
			}
			for i := range b {
				b[i] ^= 0xff
			}
			if out, _ := q.Marshal(); !bytes.Equal(out, orig) || !bytes.Equal(raw, orig) {
				t.Fatal("the quote or raw changed with the input buffer")
			}
			fields := [][]byte{q.Signature, q.AttestationKey, q.CertData, q.Extra}
			if q.QE != nil {
				fields = append(fields, q.QE.QEReport, q.QE.QEReportSignature, q.QE.QEAuthData, q.QE.CertData)
			}
			for _, s := range fields {
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
