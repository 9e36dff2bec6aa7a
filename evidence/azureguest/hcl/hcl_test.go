package hcl

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

const vectors = "vectors/trustee-verifier/deps/verifier/test_data/"

// TestRealReports parses the real SNP and TDX HCL reports and checks that
// REPORT_DATA[0:32] is SHA-256 of the runtime JSON, whose HCLAkPub parses.
func TestRealReports(t *testing.T) {
	for _, c := range []struct {
		file string
		typ  ReportType
		hw   int
	}{
		{"az-snp-vtpm/hcl-report.bin", TypeSNP, HWReportSize},
		{"az-tdx-vtpm/hcl-report.bin", TypeTDX, TDReportSize},
	} {
		t.Run(c.file, func(t *testing.T) {
			r, err := ParseReport(testenv.ReadShared(t, vectors+c.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != c.typ || len(r.HWReport) != c.hw || r.HashType != HashSHA256 {
				t.Fatalf("type %v, %d bytes, hash %d", r.Type, len(r.HWReport), r.HashType)
			}
			rd, err := ReportData(r.Type, r.HWReport)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(r.RuntimeData)
			if !bytes.Equal(rd[:32], sum[:]) {
				t.Fatalf("REPORT_DATA %x, SHA-256(runtime) %x", rd[:32], sum)
			}
			rt, err := ParseRuntime(r.RuntimeData)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Key(KeyAK); err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Key(KeyEK); err != nil {
				t.Fatal(err)
			}
			if rt.VMConfig.VMUniqueID == "" || !rt.VMConfig.TPMEnabled {
				t.Fatalf("vm-configuration %+v", rt.VMConfig)
			}
		})
	}
}

// synthetic builds an HCL report around runtime.
func synthetic(typ ReportType, runtime []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, RequestDataOffset+requestDataHeader+len(runtime))
	le.PutUint32(b, Magic)
	le.PutUint32(b[4:], 2)
	le.PutUint32(b[8:], uint32(len(b)))
	rd := b[RequestDataOffset:]
	le.PutUint32(rd, uint32(requestDataHeader+len(runtime)))
	le.PutUint32(rd[4:], 1)
	le.PutUint32(rd[8:], uint32(typ))
	le.PutUint32(rd[12:], uint32(HashSHA256))
	le.PutUint32(rd[16:], uint32(len(runtime)))
	copy(rd[requestDataHeader:], runtime)
	return b
}

func TestParseReportRefusals(t *testing.T) {
	good := synthetic(TypeSNP, []byte(`{"keys":[]}`))
	if _, err := ParseReport(good); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:100] }},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"report_size beyond the bytes", func(b []byte) []byte { le.PutUint32(b[8:], uint32(len(b)+1)); return b }},
		{"data_size beyond the report", func(b []byte) []byte { le.PutUint32(b[RequestDataOffset:], 1<<20); return b }},
		{"variable size beyond data", func(b []byte) []byte { le.PutUint32(b[RequestDataOffset+16:], 1<<20); return b }},
		{"report type", func(b []byte) []byte { le.PutUint32(b[RequestDataOffset+8:], 9); return b }},
		{"hash type", func(b []byte) []byte { le.PutUint32(b[RequestDataOffset+12:], 7); return b }},
		{"too large", func(b []byte) []byte { return append(b, make([]byte, MaxReport)...) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseReport(c.mutate(bytes.Clone(good))); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRuntimeKeys(t *testing.T) {
	for _, c := range []struct {
		name, doc string
	}{
		{"no keys", `{"keys":[]}`},
		{"two AKs", `{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"AA"},{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"AA"}]}`},
		{"EC", `{"keys":[{"kid":"HCLAkPub","kty":"EC"}]}`},
		{"short modulus", `{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"AQAB"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt, err := ParseRuntime([]byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Key(KeyAK); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for _, bad := range []string{`[]`, `null`, `{"keys":7}`, `{`} {
		if _, err := ParseRuntime([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzParseReport: no panic, bounded output, and a parsed report's
// runtime data lies inside the input.
func FuzzParseReport(f *testing.F) {
	f.Add(synthetic(TypeSNP, []byte(`{"keys":[]}`)))
	f.Add(synthetic(TypeTDX, []byte(`{}`)))
	if d := testenv.SharedDir(); d != "" {
		for _, p := range []string{"az-snp-vtpm/hcl-report.bin", "az-tdx-vtpm/hcl-report.bin"} {
			f.Add(testenv.ReadShared(f, vectors+p))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		if !bytes.Contains(b, r.RuntimeData) || len(r.HWReport) > HWReportSize {
			t.Fatal("parsed data not from the input")
		}
		if _, err := ReportData(r.Type, r.HWReport); err != nil {
			t.Fatal(err)
		}
		if rt, err := ParseRuntime(r.RuntimeData); err == nil {
			_, _ = rt.Key(KeyAK)
		}
		// Round trip: what parsed re-encodes to a report that parses alike.
		m, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseReport(m)
		if err != nil {
			t.Fatalf("re-encoded report refused: %v", err)
		}
		if r2.Type != r.Type || r2.HashType != r.HashType || !bytes.Equal(r2.RuntimeData, r.RuntimeData) || !bytes.Equal(r2.HWReport, r.HWReport) {
			t.Fatal("round trip differs")
		}
	})
}
