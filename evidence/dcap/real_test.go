package dcap_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/internal/pemfile"
	"github.com/attestd/attestd/internal/testenv"
)

// tdxV4 cuts the DCAP part and the TD report's module fields out of a TDX
// quote v4 (Intel TDX DCAP Quoting Library API, "Quote Format v4"): header
// (48), TD report body (584), signature data length (4), signature (64),
// attestation key (64), certification data type 6 (QE report certification
// data): QE report (384), its signature (64), QE auth data (2 + n), then
// certification data type 5 (the PCK chain). Test-only: the TDX verifier owns
// the real parser.
func tdxV4(t *testing.T, b []byte) (*dcap.Quote, *dcap.TDXModuleReport) {
	t.Helper()
	const hdr, body = 48, 584
	if len(b) < hdr+body+4+128+6 || binary.LittleEndian.Uint16(b[0:2]) != 4 || binary.LittleEndian.Uint32(b[4:8]) != 0x81 {
		t.Fatal("not a TDX quote v4")
	}
	q := &dcap.Quote{Raw: b, SignedBytes: b[:hdr+body]}
	copy(q.QEVendorID[:], b[12:28])
	r := b[hdr+body+4:]
	q.Signature, q.AttestationKey = r[:64], r[64:128]
	r = r[128:]
	if binary.LittleEndian.Uint16(r) != 6 {
		t.Fatal("certification data is not QE report certification data")
	}
	r = r[6:]
	q.QEReportBytes, q.QEReportSignature = r[:384], r[384:448]
	rep, err := abi.ParseReportBody(q.QEReportBytes)
	if err != nil {
		t.Fatal(err)
	}
	q.QEReport = dcap.QEReport{MiscSelect: rep.MiscSelect, Attributes: rep.Attributes, MRSigner: rep.MRSigner, ISVProdID: rep.ISVProdID, ISVSVN: rep.ISVSVN, ReportData: rep.ReportData}
	r = r[448:]
	n := int(binary.LittleEndian.Uint16(r))
	q.QEAuthData, r = r[2:2+n], r[2+n:]
	if binary.LittleEndian.Uint16(r) != 5 {
		t.Fatal("no PCK chain")
	}
	size := int(binary.LittleEndian.Uint32(r[2:6]))
	q.PCKChainPEM = r[6 : 6+size]
	td := b[hdr : hdr+body]
	m := &dcap.TDXModuleReport{}
	copy(m.TEETCBSVN[:], td[0:16])
	copy(m.MRSignerSeam[:], td[64:112])
	copy(m.SEAMAttributes[:], td[112:120])
	return q, m
}

// TestRealTDX verifies real TDX quotes with their real collateral through
// the shared core, at an instant inside every window (README sets D2 and
// the dcap-qvl "outdated" sample).
func TestRealTDX(t *testing.T) {
	cases := []struct {
		quote, coll string
		at          string
		status      pcs.TCBStatus
		check       string // when the quote is refused
	}{
		{"vectors/dcap-qvl/sample/tdx_quote", "vectors/dcap-qvl/sample/tdx_quote_collateral.json", "2025-07-01T00:00:00Z", pcs.UpToDate, ""},
		// G1: signatures, chains, CRLs, the TCB info and the QE identity all
		// verify, but the PCK certificate's SGX components (3,3,2,2,2,1,0,2)
		// are below both TCB levels of this TCB info (5,5,2,2,3,1,0,3), so QVL's
		// level match finds none.
		{"vectors/go-tdx-guest/testing/testdata/tdx_prod_quote_SPR_E4.dat", "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json", "2023-06-25T00:00:00Z", "", dcap.CheckTCBNoLevel},
		// The platform's level is OutOfDate; its module (TDX_03) is UpToDate.
		{"vectors/automata-dcap-rs/data/quote_tdx_00806f050000.dat", "vectors/derived-dcapqvl-collateral/automata_00806f050000_2025-02.json", "2025-03-01T00:00:00Z", pcs.OutOfDate, ""},
		// GCP's TD against the 2026 baseline (eval 21): platform and module OutOfDate.
		{"vectors/go-tdx-guest/testing/testdata/ccel/cos-113-tdx-quote.dat", "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json", "2026-06-20T00:00:00Z", pcs.OutOfDate, ""},
	}
	for _, c := range cases {
		t.Run(c.quote, func(t *testing.T) {
			q, m := tdxV4(t, testenv.ReadShared(t, c.quote))
			coll, err := bundle.ParseQVLJSON(testenv.ReadShared(t, c.coll))
			if err != nil {
				t.Fatal(err)
			}
			v, err := dcap.New(dcap.Options{})
			if err != nil {
				t.Fatal(err)
			}
			at, _ := time.Parse(time.RFC3339, c.at)
			r, err := v.Verify(at, &dcap.Evidence{Quote: q, TEE: dcap.TDX, TDX: m}, coll)
			if c.check != "" {
				if checkOf(t, err) != c.check {
					t.Fatalf("got %v, want check %s", err, c.check)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != c.status {
				t.Errorf("status %s (platform %s, module %s, QE %s), want %s", r.Status, r.PlatformStatus, r.TDXModuleStatus, r.QEStatus, c.status)
			}
			// The same quote judged as SGX is refused at the TCB info parse:
			// its collateral is TDX's.
			if _, err := v.Verify(at, &dcap.Evidence{Quote: q, TEE: dcap.SGX}, coll); checkOf(t, err) != dcap.CheckTCBInfoParse {
				t.Errorf("as SGX: %v", err)
			}
			// A year later every window has closed.
			if _, err := v.Verify(at.AddDate(1, 0, 0), &dcap.Evidence{Quote: q, TEE: dcap.TDX, TDX: m}, coll); checkOf(t, err) != dcap.CheckTCBInfoExpired {
				t.Errorf("a year later: %v", err)
			}
		})
	}
}

// TestDefaultRoots: both of Intel's root certificates are trusted, they
// share one key, the first is the one Intel publishes today (dcap-qvl's
// TrustedRootCA.der), and the second is the one older quotes embed.
func TestDefaultRoots(t *testing.T) {
	r := dcap.DefaultRoots()
	if len(r) != 2 {
		t.Fatalf("%d default roots", len(r))
	}
	if !bytes.Equal(r[0].Raw, testenv.ReadShared(t, "vectors/dcap-qvl/src/TrustedRootCA.der")) {
		t.Error("first default root is not Intel's current Root CA certificate")
	}
	if !r[0].PublicKey.(*ecdsa.PublicKey).Equal(r[1].PublicKey) || bytes.Equal(r[0].Raw, r[1].Raw) {
		t.Error("the two roots must be two certificates of one key")
	}
	// The Azure OE sample's PCK chain ends at the 2018 certificate.
	b := testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/OpenEnclaveQuote.sgx_quote.bin")
	q, err := abi.ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := q.PCKChainPEM()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pemfile.ParseChain(chain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs[len(certs)-1].Raw, r[1].Raw) {
		t.Error("the Azure OE quote's root is not the embedded 2018 certificate")
	}
	v, err := dcap.New(dcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.PCKChain(chain); err != nil {
		t.Errorf("Azure OE PCK chain: %v", err)
	}
	for _, f := range []string{"intel_sgx_root_ca.pem", "intel_sgx_root_ca_2018.pem"} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}
