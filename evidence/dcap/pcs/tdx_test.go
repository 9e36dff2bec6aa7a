package pcs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/testenv"
)

// TestRealTDXTCBInfo reads the TDX TCB infos of the shared vectors (PCS
// responses from several sources and dates) and checks fields against the
// bytes as Intel served them.
func TestRealTDXTCBInfo(t *testing.T) {
	cases := []struct {
		file         string
		fmspc        string
		eval         int
		modules      []string // ids of tdxModuleIdentities, in order
		firstTDXComp [3]int   // tdxtcbcomponents[0..2] of level 0
	}{
		{"vectors/automata-dcap-rs/data/tcb_info_v3_tdx_0.json", "90c06f000000", 17, []string{"TDX_03", "TDX_01"}, [3]int{5, 0, 2}},
		{"vectors/automata-dcap-rs/data/tcbinfov3_00806f050000.json", "00806f050000", 17, nil, [3]int{}},
		{"vectors/go-tdx-guest/testing/testdata/sample_tcbinfo_response_v5", "90c06f000000", 18, nil, [3]int{}},
		{"vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response", "50806f000000", 0, nil, [3]int{}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body := signedBody(t, c.file, "tcbInfo")
			ti, err := ParseTDXTCBInfo(body)
			if err != nil {
				t.Fatal(err)
			}
			if ti.ID != IDTDX || ti.Version != 3 || ti.TDXModule == nil || len(ti.Levels) == 0 {
				t.Fatalf("got %+v", ti)
			}
			if got := strings.ToLower(hexOf(ti.FMSPC[:])); got != c.fmspc {
				t.Errorf("fmspc %s, want %s", got, c.fmspc)
			}
			if c.eval != 0 && ti.TCBEvaluationDataNumber != c.eval {
				t.Errorf("tcbEvaluationDataNumber %d, want %d", ti.TCBEvaluationDataNumber, c.eval)
			}
			if c.modules != nil {
				var ids []string
				for _, m := range ti.TDXModuleIdentities {
					ids = append(ids, m.ID)
					if len(m.Levels) == 0 {
						t.Errorf("module %s has no levels", m.ID)
					}
				}
				if strings.Join(ids, ",") != strings.Join(c.modules, ",") {
					t.Errorf("module identities %v, want %v", ids, c.modules)
				}
				l := ti.Levels[0].TDXCompSVN
				if [3]int{l[0], l[1], l[2]} != c.firstTDXComp {
					t.Errorf("level 0 tdxtcbcomponents %v, want prefix %v", l, c.firstTDXComp)
				}
			}
			// Cross-check every level against a plain decode of the same bytes.
			var raw struct {
				TCBLevels []struct {
					TCB struct {
						TDX []struct{ SVN int } `json:"tdxtcbcomponents"`
					} `json:"tcb"`
					TCBStatus string `json:"tcbStatus"`
				} `json:"tcbLevels"`
			}
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			for i, l := range raw.TCBLevels {
				for j, comp := range l.TCB.TDX {
					if ti.Levels[i].TDXCompSVN[j] != comp.SVN {
						t.Fatalf("level %d tdx comp %d: %d, want %d", i, j, ti.Levels[i].TDXCompSVN[j], comp.SVN)
					}
				}
				if string(ti.Levels[i].Status) != l.TCBStatus {
					t.Fatalf("level %d status %s, want %s", i, ti.Levels[i].Status, l.TCBStatus)
				}
			}
			// SGX and TDX parsers refuse each other's documents.
			if _, err := ParseTCBInfo(body); err == nil {
				t.Error("TDX TCB info accepted as SGX")
			}
		})
	}
	if _, err := ParseTDXTCBInfo(signedBody(t, "vectors/mobilecoin-sgx/verifier/data/tests/fmspc_00906ED50000_2023_07_12.json", "tcbInfo")); err == nil {
		t.Error("SGX TCB info v3 accepted as TDX")
	}
	if _, err := ParseTDXTCBInfo(signedBody(t, "vectors/automata-dcap-rs/data/tcbinfov2.json", "tcbInfo")); err == nil {
		t.Error("SGX TCB info v2 accepted as TDX")
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestRealTDQEIdentity(t *testing.T) {
	q, err := ParseTDQEIdentity(signedBody(t, "vectors/automata-dcap-rs/data/qeidentityv2_apiv4.json", "enclaveIdentity"))
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != IDTDQE || q.ISVProdID != 2 || q.Levels[0].ISVSVN != 4 || q.Levels[0].Status != UpToDate {
		t.Errorf("TD_QE identity: %+v", q)
	}
	if _, err := ParseTDQEIdentity(signedBody(t, "vectors/automata-dcap-rs/data/qeidentityv2.json", "enclaveIdentity")); err == nil {
		t.Error("SGX QE identity accepted as TD_QE")
	}
}

// minimalTDX is a small valid TDX TCB info built through the wire types.
func minimalTDX(t testing.TB, mod func(*TCBInfoJSON)) []byte {
	t.Helper()
	comps := func(svn int) []TCBComponentJSON {
		c := make([]TCBComponentJSON, 16)
		for i := range c {
			c[i].SVN = svn
		}
		return c
	}
	date := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	zero48 := strings.Repeat("00", 48)
	j := TCBInfoJSON{
		ID: IDTDX, Version: 3, IssueDate: "2025-01-01T00:00:00Z", NextUpdate: "2025-02-01T00:00:00Z",
		FMSPC: "90C06F000000", PCEID: "0000", TCBEvaluationDataNumber: 17,
		TDXModule: &TDXModuleJSON{MRSigner: zero48, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"},
		TDXModuleIdentities: []TDXModuleIdentityJSON{{ID: "TDX_01", MRSigner: zero48, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF",
			TCBLevels: []IdentityLevelJSON{NewIdentityLevel(4, date, UpToDate, nil), NewIdentityLevel(2, date, OutOfDate, []string{"INTEL-SA-1"})}}},
		TCBLevels: []TCBLevelJSON{{TCB: TCBJSON{SGXComponents: comps(2), TDXComponents: comps(3), PCESVN: 13},
			TCBDate: "2024-03-13T00:00:00Z", TCBStatus: "UpToDate"}},
	}
	if mod != nil {
		mod(&j)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTDXTCBInfoRoundTrip(t *testing.T) {
	ti, err := ParseTDXTCBInfo(minimalTDX(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if ti.Levels[0].TDXCompSVN[15] != 3 || ti.Levels[0].CompSVN[0] != 2 || ti.TDXModuleIdentities[0].Levels[1].AdvisoryIDs[0] != "INTEL-SA-1" {
		t.Fatalf("got %+v", ti)
	}
}

func TestTDXTCBInfoRefused(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*TCBInfoJSON)
		raw  func([]byte) []byte
		want string
	}{
		{name: "no tdxtcbcomponents", mod: func(j *TCBInfoJSON) { j.TCBLevels[0].TCB.TDXComponents = nil }, want: "tdxtcbcomponents missing"},
		{name: "15 tdx components", mod: func(j *TCBInfoJSON) { j.TCBLevels[0].TCB.TDXComponents = j.TCBLevels[0].TCB.TDXComponents[:15] }, want: "15 entries"},
		{name: "tdx svn out of range", mod: func(j *TCBInfoJSON) { j.TCBLevels[0].TCB.TDXComponents[3].SVN = 256 }, want: "tdxtcbcomponents[3]"},
		{name: "no tdxModule", mod: func(j *TCBInfoJSON) { j.TDXModule = nil }, want: "tdxModule missing"},
		{name: "short module mrsigner", mod: func(j *TCBInfoJSON) { j.TDXModule.MRSigner = "00" }, want: "tdxModule mrsigner"},
		{name: "bad module id", mod: func(j *TCBInfoJSON) { j.TDXModuleIdentities[0].ID = "SEAM_1" }, want: "want TDX_NN"},
		{name: "duplicate module id", mod: func(j *TCBInfoJSON) {
			j.TDXModuleIdentities = append(j.TDXModuleIdentities, j.TDXModuleIdentities[0])
		}, want: "duplicate id"},
		{name: "module level without isvsvn", mod: func(j *TCBInfoJSON) { j.TDXModuleIdentities[0].TCBLevels[0].TCB.ISVSVN = nil }, want: "isvsvn missing"},
		{name: "module without levels", mod: func(j *TCBInfoJSON) { j.TDXModuleIdentities[0].TCBLevels = nil }, want: "no tcbLevels"},
		{name: "version 2", mod: func(j *TCBInfoJSON) { j.Version = 2 }, want: `id "TDX", want none or SGX`},
		{name: "id SGX", mod: func(j *TCBInfoJSON) { j.ID = IDSGX }, want: "TDX TCB info needed"},
		{name: "duplicate member", raw: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"version":3`), []byte(`"version":3,"version":3`), 1)
		}, want: "duplicate member"},
		{name: "member differing only in case", raw: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"version":3`), []byte(`"version":3,"FMSPC":"000000000000"`), 1)
		}, want: "only in case"},
		{name: "no pcesvn", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`,"pcesvn":13`), nil, 1) }, want: "pcesvn missing"},
		{name: "trailing data", raw: func(b []byte) []byte { return append(b, '{', '}') }, want: "after the JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := minimalTDX(t, c.mod)
			if c.raw != nil {
				b = c.raw(b)
			}
			_, err := ParseTDXTCBInfo(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestSignedResponseRoundTrip(t *testing.T) {
	body := minimalTDX(t, nil)
	sig := bytes.Repeat([]byte{0xab}, 64)
	resp, err := MarshalTCBInfoResponse(body, sig)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseTCBInfoResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Body, body) || !bytes.Equal(d.Signature, sig) {
		t.Fatal("round trip changed the signed bytes")
	}
	for _, bad := range []string{`{"tcbInfo":{},"tcbInfo":{},"signature":""}`, `{"tcbInfo":[],"signature":"00"}`, `{"tcbInfo":{}}`, `{"tcbInfo":{},"signature":"abcd"}`} {
		if _, err := ParseTCBInfoResponse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParseTDXTCBInfo(f *testing.F) {
	f.Add(minimalTDX(f, nil))
	seedFiles(f, "vectors/automata-dcap-rs/data/tcb_info_v3_tdx_0.json", "vectors/automata-dcap-rs/data/tcb_info_v3_tdx_1.json",
		"vectors/automata-dcap-rs/data/tcbinfov3_00806f050000.json", "vectors/go-tdx-guest/testing/testdata/sample_tcbinfo_response_v5")
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := ParseTDXTCBInfo(b)
		if err != nil {
			return
		}
		if ti.ID != IDTDX || ti.Version != 3 || len(ti.Levels) == 0 || ti.TDXModule == nil {
			t.Fatalf("accepted an invalid TDX TCB info: %+v", ti)
		}
		for _, l := range ti.Levels {
			for _, s := range l.TDXCompSVN {
				if s < 0 || s > 255 {
					t.Fatalf("TDX component SVN %d out of range", s)
				}
			}
		}
		for _, m := range ti.TDXModuleIdentities {
			if len(m.Levels) == 0 || !strings.HasPrefix(m.ID, "TDX_") {
				t.Fatalf("accepted an invalid module identity %+v", m)
			}
		}
	})
}

func FuzzParseSignedResponse(f *testing.F) {
	resp, err := MarshalTCBInfoResponse(minimalTDX(f, nil), make([]byte, 64))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	for _, b := range testenv.Seeds(f, "vectors/automata-dcap-rs/data/tcb_info_v3_tdx_0.json", "vectors/automata-dcap-rs/data/qeidentityv2_apiv4.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (*SignedDocument, error){ParseTCBInfoResponse, ParseEnclaveIdentityResponse} {
			d, err := parse(b)
			if err != nil {
				continue
			}
			if len(d.Signature) != 64 || !json.Valid(d.Body) || !bytes.Contains(b, d.Body) {
				t.Fatalf("accepted a response whose signed body is not a verbatim JSON object: %q", d.Body)
			}
		}
	})
}
