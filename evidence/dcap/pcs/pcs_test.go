package pcs

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// pckFromQuote cuts the PCK leaf certificate out of a quote's PEM chain.
func pckFromQuote(t testing.TB, rel string) *x509.Certificate {
	t.Helper()
	b := testenv.ReadShared(t, rel)
	blk, _ := pem.Decode(b[indexOf(b, "-----BEGIN"):])
	if blk == nil {
		t.Fatal("no PEM in quote")
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return 0
}

func TestRealPCKExtensions(t *testing.T) {
	cases := []struct {
		file, fmspc string
		platform    bool
	}{
		{"vectors/dcap-qvl/sample/sgx_quote", "00a067110000", false},
		{"vectors/mobilecoin-sgx/verifier/data/tests/hw_quote.dat", "00906ed50000", false},
		{"vectors/trustee-verifier/deps/verifier/test_data/occlum_quote.dat", "00606a000000", true},
	}
	for _, c := range cases {
		cert := pckFromQuote(t, c.file)
		e, err := ParsePCKExtensions(cert)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if e.FMSPCHex() != c.fmspc || e.PCEIDHex() != "0000" {
			t.Errorf("%s: FMSPC %s PCEID %s", c.file, e.FMSPCHex(), e.PCEIDHex())
		}
		if (e.PlatformInstanceID != nil) != c.platform || (e.Configuration != nil) != c.platform {
			t.Errorf("%s: platform-CA fields %v %v", c.file, e.PlatformInstanceID, e.Configuration)
		}
		for i, s := range e.TCB.CompSVN {
			if byte(s) != e.TCB.CPUSVN[i] {
				t.Errorf("%s: comp %d = %d but CPUSVN byte %d", c.file, i, s, e.TCB.CPUSVN[i])
			}
		}
	}
}

func TestPCKExtensionsRoundTrip(t *testing.T) {
	e := &PCKExtensions{PPID: make([]byte, 16), PCEID: [2]byte{0, 1}, FMSPC: [6]byte{1, 2, 3, 4, 5, 6}, SGXType: SGXTypeScalable}
	e.TCB.CompSVN = [16]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255}
	e.TCB.PCESVN = 13
	der, err := MarshalSGXExtensionValue(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSGXExtensionValue(der)
	if err != nil {
		t.Fatal(err)
	}
	if got.TCB != e.TCB || got.FMSPC != e.FMSPC || got.PCEID != e.PCEID || got.SGXType != e.SGXType {
		t.Fatalf("got %+v", got)
	}
}

func signedBody(t testing.TB, rel, member string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(testenv.ReadShared(t, rel), &m); err != nil {
		t.Fatal(err)
	}
	return m[member]
}

func TestRealTCBInfoAndQEIdentity(t *testing.T) {
	v2, err := ParseTCBInfo(signedBody(t, "vectors/automata-dcap-rs/data/tcbinfov2.json", "tcbInfo"))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || len(v2.Levels) == 0 || v2.Levels[0].Status != SWHardeningNeeded || v2.Levels[0].CompSVN[0] != 14 {
		t.Errorf("v2: %+v", v2)
	}
	v3, err := ParseTCBInfo(signedBody(t, "vectors/mobilecoin-sgx/verifier/data/tests/fmspc_00906ED50000_2023_07_12.json", "tcbInfo"))
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != 3 || v3.ID != "SGX" || v3.FMSPC != [6]byte{0, 0x90, 0x6e, 0xd5, 0, 0} {
		t.Errorf("v3: %+v", v3)
	}
	if _, err := ParseTCBInfo(signedBody(t, "vectors/automata-dcap-rs/data/tcbinfov3_00806f050000.json", "tcbInfo")); err == nil {
		t.Error("TDX TCB info accepted as SGX")
	}
	qe, err := ParseQEIdentity(signedBody(t, "vectors/automata-dcap-rs/data/qeidentityv2.json", "enclaveIdentity"))
	if err != nil {
		t.Fatal(err)
	}
	if qe.ISVProdID != 1 || qe.MiscSelectMask != 0xffffffff || len(qe.Levels) == 0 {
		t.Errorf("QE identity: %+v", qe)
	}
	if _, err := ParseQEIdentity(signedBody(t, "vectors/automata-dcap-rs/data/qeidentityv2_apiv4.json", "enclaveIdentity")); err == nil {
		t.Error("TD_QE identity accepted as the SGX QE")
	}
}

// seedFiles adds the signed body of each shared PCS response (or the file
// itself when it is a bare TCB info / QE identity document).
func seedFiles(f *testing.F, files ...string) {
	for i, b := range testenv.Seeds(f, files...) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			f.Fatalf("fuzz seed %s: %v", files[i], err)
		}
		added := false
		for _, k := range []string{"tcbInfo", "enclaveIdentity"} {
			if v, ok := m[k]; ok {
				f.Add([]byte(v))
				added = true
			}
		}
		if !added {
			f.Add(b)
		}
	}
}

func FuzzParseTCBInfo(f *testing.F) {
	f.Add([]byte(`{"id":"SGX","version":3,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","fmspc":"00906ED50000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[{"tcb":{"sgxtcbcomponents":[{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1},{"svn":1}],"pcesvn":1},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"UpToDate"}]}`))
	seedFiles(f, "vectors/automata-dcap-rs/data/tcbinfov2.json", "vectors/mobilecoin-sgx/verifier/data/tests/fmspc_00906ED50000_2023_07_12.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := ParseTCBInfo(b)
		if err != nil {
			return
		}
		if len(ti.Levels) == 0 || (ti.Version != 2 && ti.Version != 3) {
			t.Fatalf("accepted an invalid TCB info: %+v", ti)
		}
	})
}

func FuzzParseQEIdentity(f *testing.F) {
	f.Add([]byte(`{"id":"QE","version":2,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF","isvprodid":1,"tcbLevels":[{"tcb":{"isvsvn":8},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"UpToDate"}]}`))
	seedFiles(f, "vectors/automata-dcap-rs/data/qeidentityv2.json", "vectors/mobilecoin-sgx/verifier/data/tests/qe_identity.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQEIdentity(b)
		if err != nil {
			return
		}
		if q.ID != "QE" || len(q.Levels) == 0 {
			t.Fatalf("accepted an invalid QE identity: %+v", q)
		}
	})
}

func FuzzParseSGXExtensions(f *testing.F) {
	e := &PCKExtensions{PPID: make([]byte, 16), SGXType: SGXTypeStandard}
	der, err := MarshalSGXExtensionValue(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	e.PlatformInstanceID = make([]byte, 16)
	yes := true
	e.Configuration = &PlatformConfiguration{DynamicPlatform: &yes}
	if der, err = MarshalSGXExtensionValue(e); err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseSGXExtensionValue(b)
		if err != nil {
			return
		}
		if len(got.PPID) != 16 {
			t.Fatal("PPID length not enforced")
		}
		for _, s := range got.TCB.CompSVN {
			if s < 0 || s > 255 {
				t.Fatal("component SVN out of range")
			}
		}
		// What was accepted survives a round trip through the encoder.
		der, err := MarshalSGXExtensionValue(got)
		if err != nil {
			t.Fatalf("accepted extensions do not marshal: %v", err)
		}
		again, err := ParseSGXExtensionValue(der)
		if err != nil {
			t.Fatalf("re-encoded extensions do not parse: %v", err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip changed the extensions:\n got %+v\nwant %+v", again, got)
		}
	})
}
