package verify

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/internal/testenv"
)

const (
	sidecar  = "vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/"
	gosev    = "vectors/go-sev-guest/verify/testdata/"
	virtee   = "vectors/virtee-sev/tests/certs_data/"
	veraison = "vectors/veraison-sevsnp/scheme/sevsnp/test/evidence/sevsnp-tsm-report.json"
	trustee  = "vectors/trustee-verifier/deps/verifier/test_data/snp/"
	azsnp    = "vectors/trustee-verifier/deps/verifier/test_data/az-snp-vtpm/"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// vector loads a report with the certificates beside it.
func vector(t *testing.T, report string, certs ...string) *abi.Evidence {
	t.Helper()
	ev, err := abi.Parse(testenv.ReadShared(t, report))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		cs, err := abi.Certificates(testenv.ReadShared(t, c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		ev.Certs = ev.Certs.Merge(cs)
	}
	return ev
}

func checkOf(err error) evidence.Check {
	var e *evidence.Error
	if errors.As(err, &e) {
		return e.Check
	}
	return ""
}

func TestRealReports(t *testing.T) {
	v, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		ev     func(t *testing.T) *abi.Evidence
		at     time.Time
		signer string
		line   string
		check  evidence.Check // "" = verifies
	}{
		{"aci sidecar (Milan, THIM bundle)", func(t *testing.T) *abi.Evidence {
			return vector(t, sidecar+"snp_report.bin", sidecar+"uvm_host_amd_certificate.json")
		}, at("2026-01-01T00:00:00Z"), "VCEK", "Milan", ""},
		{"go-sev-guest Milan", func(t *testing.T) *abi.Evidence { return vector(t, gosev+"attestation.bin", gosev+"vcek.testcer") }, at("2023-01-01T00:00:00Z"), "VCEK", "Milan", ""},
		{"virtee Milan hex", func(t *testing.T) *abi.Evidence { return vector(t, virtee+"report_milan.hex", virtee+"vcek_milan.der") }, at("2024-01-01T00:00:00Z"), "VCEK", "Milan", ""},
		{"veraison configfs-tsm Genoa v3", func(t *testing.T) *abi.Evidence { return vector(t, veraison) }, at("2026-01-01T00:00:00Z"), "VCEK", "Genoa", ""},
		{"trustee VCEK", func(t *testing.T) *abi.Evidence { return vector(t, trustee+"test-report.bin", trustee+"test-vcek.der") }, at("2024-01-01T00:00:00Z"), "VCEK", "Milan", ""},
		{"trustee VLEK in window", func(t *testing.T) *abi.Evidence {
			return vector(t, trustee+"test-vlek-report.bin", trustee+"test-vlek.der")
		}, at("2025-06-01T00:00:00Z"), "VLEK", "Milan", ""},
		{"trustee VLEK expired", func(t *testing.T) *abi.Evidence {
			return vector(t, trustee+"test-vlek-report.bin", trustee+"test-vlek.der")
		}, at("2026-01-01T00:00:00Z"), "", "", CheckEndorsementExpired},
		{"VCEK not yet valid", func(t *testing.T) *abi.Evidence { return vector(t, gosev+"attestation.bin", gosev+"vcek.testcer") }, at("2021-01-01T00:00:00Z"), "", "", CheckEndorsementNotYetValid},
		{"foreign VCEK", func(t *testing.T) *abi.Evidence { return vector(t, gosev+"attestation.bin", virtee+"vcek_milan.der") }, at("2024-01-01T00:00:00Z"), "", "", CheckSignature},
		{"no VCEK", func(t *testing.T) *abi.Evidence { return vector(t, gosev+"attestation.bin") }, at("2024-01-01T00:00:00Z"), "", "", CheckEndorsementMissing},
		{"tampered measurement", func(t *testing.T) *abi.Evidence {
			ev := vector(t, gosev+"attestation.bin", gosev+"vcek.testcer")
			ev.Raw = bytes.Clone(ev.Raw)
			ev.Raw[0x90] ^= 1
			return ev
		}, at("2023-01-01T00:00:00Z"), "", "", CheckSignature},
		{"invalid VCEK (trustee negative)", func(t *testing.T) *abi.Evidence {
			return vector(t, trustee+"test-report.bin", trustee+"test-vcek-invalid-new.der")
		}, at("2024-01-01T00:00:00Z"), "", "", "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := v.Verify(context.Background(), c.ev(t), c.at)
			if c.check != "" {
				if err == nil {
					t.Fatalf("verified, want check %s", c.check)
				}
				if got := checkOf(err); c.check != "*" && got != c.check || got == "" {
					t.Fatalf("check %q (%v), want %s", got, err, c.check)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Signer != c.signer || res.ProductLine != c.line {
				t.Fatalf("signer %s line %s, want %s %s", res.Signer, res.ProductLine, c.signer, c.line)
			}
		})
	}
}

func TestAzureHCLReports(t *testing.T) {
	// The SNP report inside an Azure CVM's HCL report (offset 0x20).
	v, _ := New(Options{})
	hcl := testenv.ReadShared(t, azsnp+"hcl-report.bin")
	ev, err := abi.Parse(hcl[0x20 : 0x20+1184])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := abi.Certificates(testenv.ReadShared(t, azsnp+"vcek.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ev.Certs = cs
	if _, err := v.Verify(context.Background(), ev, at("2026-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
}

func TestWrongProductRoots(t *testing.T) {
	var genoa []ProductRoots
	for _, r := range DefaultRoots() {
		if r.Line == "Genoa" {
			genoa = append(genoa, r)
		}
	}
	v, err := New(Options{Roots: genoa})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), vector(t, gosev+"attestation.bin", gosev+"vcek.testcer"), at("2023-01-01T00:00:00Z"))
	if checkOf(err) != CheckEndorsementChain {
		t.Fatalf("got %v, want %s", err, CheckEndorsementChain)
	}
	// A Milan ARK/ASK under the Genoa name does not help a Milan VCEK either.
	milanAsGenoa := DefaultRoots()[0]
	milanAsGenoa.Line = "Genoa"
	v, _ = New(Options{Roots: []ProductRoots{milanAsGenoa}})
	_, err = v.Verify(context.Background(), vector(t, gosev+"attestation.bin", gosev+"vcek.testcer"), at("2023-01-01T00:00:00Z"))
	if checkOf(err) != CheckEndorsementChain {
		t.Fatalf("got %v, want %s", err, CheckEndorsementChain)
	}
}

func TestZeroInstantRefused(t *testing.T) {
	v, _ := New(Options{})
	if _, err := v.Verify(context.Background(), vector(t, gosev+"attestation.bin", gosev+"vcek.testcer"), time.Time{}); err == nil {
		t.Fatal("zero instant accepted")
	}
}
