package abi

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

const (
	sidecar   = "vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/"
	gosev     = "vectors/go-sev-guest/verify/testdata/"
	virtee    = "vectors/virtee-sev/tests/certs_data/"
	veraison  = "vectors/veraison-sevsnp/scheme/sevsnp/test/evidence/sevsnp-tsm-report.json"
	trusteeSN = "vectors/trustee-verifier/deps/verifier/test_data/snp/"
)

// maaJSON builds the "report" JSON exactly as the ACI sidecar does (padded
// base64url), or unpadded as MAA's examples.
func maaJSON(t *testing.T, report, chain, uvm []byte, padded bool) []byte {
	t.Helper()
	enc := base64.RawURLEncoding
	if padded {
		enc = base64.URLEncoding
	}
	m := map[string]string{"SnpReport": enc.EncodeToString(report), "VcekCertChain": enc.EncodeToString(chain)}
	if uvm != nil {
		e, _ := json.Marshal(map[string][]string{"Uvm": {enc.EncodeToString(uvm)}})
		m["Endorsements"] = enc.EncodeToString(e)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRealEvidence(t *testing.T) {
	sidecarReport := testenv.ReadShared(t, sidecar+"snp_report.bin")
	thimJSON := testenv.ReadShared(t, sidecar+"uvm_host_amd_certificate.json")
	thimPEM := testenv.ReadShared(t, sidecar+"uvm_host_amd_certificate.pem")
	uvm := testenv.ReadShared(t, sidecar+"body.uvm_reference_info.bin")
	virteeHex := testenv.ReadShared(t, virtee+"report_milan.hex")

	cases := []struct {
		name      string
		in        []byte
		format    Format
		version   uint32
		vcek, ark bool
		uvm       int
	}{
		{"aci sidecar padded, THIM JSON chain", maaJSON(t, sidecarReport, thimJSON, uvm, true), FormatMAA, 2, true, true, 1},
		{"maa unpadded, PEM chain", maaJSON(t, sidecarReport, thimPEM, nil, false), FormatMAA, 2, true, true, 0},
		{"raw", testenv.ReadShared(t, gosev+"attestation.bin"), FormatRaw, 2, false, false, 0},
		{"hex text", virteeHex, FormatHex, 2, false, false, 0},
		{"configfs-tsm", testenv.ReadShared(t, veraison), FormatConfigfsTSM, 3, true, true, 0},
		{"vlek report raw", testenv.ReadShared(t, trusteeSN+"test-vlek-report.bin"), FormatRaw, 3, false, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Parse(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Format != c.format || ev.Report.GetVersion() != c.version {
				t.Fatalf("format %s version %d, want %s %d", ev.Format, ev.Report.GetVersion(), c.format, c.version)
			}
			if (ev.Certs.VCEK != nil) != c.vcek || (ev.Certs.ARK != nil) != c.ark {
				t.Fatalf("certs: vcek %v ark %v, want %v %v", ev.Certs.VCEK != nil, ev.Certs.ARK != nil, c.vcek, c.ark)
			}
			if len(ev.UVMEndorsements) != c.uvm {
				t.Fatalf("%d UVM endorsements, want %d", len(ev.UVMEndorsements), c.uvm)
			}
			if c.uvm > 0 && !bytes.Equal(ev.UVMEndorsements[0], uvm) {
				t.Fatal("UVM endorsement not decoded to the sent bytes")
			}
			if len(ev.Raw) != 1184 {
				t.Fatalf("raw report %d bytes", len(ev.Raw))
			}
		})
	}
	// The hex and the raw form of one report parse to the same bytes.
	raw, _ := hex.DecodeString(strings.TrimSpace(string(virteeHex)))
	a, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse(virteeHex)
	if !bytes.Equal(a.Raw, b.Raw) {
		t.Fatal("hex and raw differ")
	}
}

func TestCertificatesClassify(t *testing.T) {
	vcek := testenv.ReadShared(t, gosev+"vcek.testcer")
	c, err := Certificates(vcek)
	if err != nil || c.VCEK == nil {
		t.Fatalf("DER VCEK: %v %v", c, err)
	}
	chain := testenv.ReadShared(t, "vectors/go-sev-guest/verify/trust/ask_ark_milan_vlek.pem")
	c, err = Certificates(chain)
	if err != nil || c.ASVK == nil || c.ARK == nil || c.ASK != nil {
		t.Fatalf("VLEK chain: asvk %v ark %v ask %v err %v", c.ASVK != nil, c.ARK != nil, c.ASK != nil, err)
	}
	twice := append(append([]byte{}, chain...), chain...)
	if _, err := Certificates(twice); err == nil {
		t.Fatal("two ARKs accepted")
	}
}

func TestParseRejects(t *testing.T) {
	report := testenv.ReadShared(t, gosev+"attestation.bin")
	bad := func(mut func([]byte) []byte) []byte { return mut(bytes.Clone(report)) }
	cases := map[string][]byte{
		"empty":              nil,
		"short":              report[:100],
		"json no members":    []byte(`{}`),
		"json dup":           []byte(`{"SnpReport":"AA","SnpReport":"AA"}`),
		"snpreport not b64":  []byte(`{"SnpReport":"@@@"}`),
		"snpreport short":    []byte(`{"SnpReport":"AAAA"}`),
		"tsm other provider": []byte(`{"outblob":"AA","provider":"tdx_guest"}`),
		"bad sig algo":       bad(func(b []byte) []byte { b[0x34] = 9; return b }),
		"huge":               make([]byte, MaxEvidence+1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(in)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want *abi.Error", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range testenv.Seeds(f, gosev+"attestation.bin", veraison, virtee+"report_milan.hex") {
		f.Add(s)
	}
	f.Add([]byte(`{"SnpReport":"AA","VcekCertChain":"AA","Endorsements":"e30"}`))
	f.Add([]byte(`{"outblob":"AA","auxblob":"AA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error not *abi.Error: %v", err)
			}
			return
		}
		if len(ev.Raw) != 1184 || ev.Report == nil {
			t.Fatal("parsed evidence without a report")
		}
	})
}

func FuzzCertificates(f *testing.F) {
	for _, s := range testenv.Seeds(f, gosev+"vcek.testcer", "vectors/go-sev-guest/verify/trust/ask_ark_milan.pem", sidecar+"uvm_host_amd_certificate.json") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Certificates(b)
		if err == nil && c.Empty() {
			t.Fatal("no error and no certificate")
		}
	})
}
