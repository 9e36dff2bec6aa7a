package snp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/internal/testenv"
)

const sidecar = "vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/"

func sidecarEvidence(t *testing.T) *abi.Evidence {
	t.Helper()
	ev, err := abi.Parse(testenv.ReadShared(t, sidecar+"snp_report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := abi.Certificates(testenv.ReadShared(t, sidecar+"uvm_host_amd_certificate.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev.Certs = c
	return ev
}

// realTokenClaims reads the claims of the real MAA SevSnpVm token.
func realTokenClaims(t *testing.T) map[string]any {
	t.Helper()
	tok := strings.TrimSpace(string(testenv.ReadShared(t, "samples/azure-samples/maa.jwt.verifier.dotnet_sev-snp-jwt.txt")))
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case string:
		return "string"
	case int64, float64, int:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// TestClaimsMatchRealToken: every x-ms-sevsnpvm-* claim of a real MAA token
// is produced, with the same JSON type and, for hex, the same length.
func TestClaimsMatchRealToken(t *testing.T) {
	v, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	vd, err := v.Verify(context.Background(), sidecarEvidence(t), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, c := range Claims(vd) {
		got[c.Type] = c.Value
	}
	real := realTokenClaims(t)
	var names []string
	for k := range real {
		if strings.HasPrefix(k, "x-ms-sevsnpvm-") || k == "x-ms-attestation-type" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) < 17 {
		t.Fatalf("real token has only %d SNP claims", len(names))
	}
	for _, k := range names {
		g, ok := got[k]
		if !ok {
			t.Errorf("claim %s missing", k)
			continue
		}
		if jsonKind(g) != jsonKind(real[k]) {
			t.Errorf("%s: %s, real token %s", k, jsonKind(g), jsonKind(real[k]))
		}
		if rs, ok := real[k].(string); ok && len(rs) != len(g.(string)) && k != "x-ms-attestation-type" {
			t.Errorf("%s: %d characters, real token %d", k, len(g.(string)), len(rs))
		}
	}
	if got["x-ms-attestation-type"] != "sevsnpvm" {
		t.Fatal("attestation type")
	}
	// The sidecar's THIM bundle states tcbm 7308000000000003: microcode
	// 0x73, SNP 8, TEE 0, bootloader 3 — the VCEK's TCB.
	want := map[string]any{"x-ms-sevsnpvm-microcode-svn": int64(0x73), "x-ms-sevsnpvm-snpfw-svn": int64(8), "x-ms-sevsnpvm-tee-svn": int64(0), "x-ms-sevsnpvm-bootloader-svn": int64(3)}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
}

func TestCompliance(t *testing.T) {
	ev := sidecarEvidence(t)
	id := fmt.Sprintf("%x", ev.Report.GetIdKeyDigest())
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		rules []ComplianceRule
		want  string
	}{
		{"none", nil, ""},
		{"id key match", []ComplianceRule{{Status: "azure-compliant-cvm", IDKeyDigests: []string{id}}}, "azure-compliant-cvm"},
		{"id key other", []ComplianceRule{{Status: "azure-compliant-cvm", IDKeyDigests: []string{strings.Repeat("00", 48)}}}, ""},
		{"uvm required, none verified", []ComplianceRule{{Status: "azure-compliant-uvm", UVMEndorsed: true}}, ""},
		{"first match wins", []ComplianceRule{{Status: "a", UVMEndorsed: true}, {Status: "b"}}, "b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := New(Options{Compliance: c.rules})
			if err != nil {
				t.Fatal(err)
			}
			vd, err := v.Verify(context.Background(), ev, now)
			if err != nil {
				t.Fatal(err)
			}
			if vd.Compliance != c.want {
				t.Fatalf("compliance %q, want %q", vd.Compliance, c.want)
			}
		})
	}
	if _, err := New(Options{Compliance: []ComplianceRule{{Status: "x", IDKeyDigests: []string{"ABC"}}}}); err == nil {
		t.Fatal("bad digest accepted")
	}
}

func TestACIWithUVMEndorsement(t *testing.T) {
	report := testenv.ReadShared(t, sidecar+"snp_report.bin")
	thim := testenv.ReadShared(t, sidecar+"uvm_host_amd_certificate.json")
	end := testenv.ReadShared(t, sidecar+"body.uvm_reference_info.bin")
	enc := base64.URLEncoding
	e, _ := json.Marshal(map[string][]string{"Uvm": {enc.EncodeToString(end)}})
	body, _ := json.Marshal(map[string]string{"SnpReport": enc.EncodeToString(report), "VcekCertChain": enc.EncodeToString(thim), "Endorsements": enc.EncodeToString(e)})
	ev, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	// Without configured UVM roots the endorsement is refused, not ignored.
	v, _ := New(Options{})
	if _, err := v.Verify(context.Background(), ev, now); err == nil || !strings.Contains(err.Error(), "snp.uvm.chain") {
		t.Fatalf("got %v, want snp.uvm.chain", err)
	}

	root := msRootFromEndorsement(t, end)
	v, err = New(Options{UVM: uvmOptions(root), Compliance: []ComplianceRule{{Status: "azure-compliant-uvm", UVMEndorsed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	vd, err := v.Verify(context.Background(), ev, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, c := range Claims(vd) {
		got[c.Type] = c.Value
	}
	if got["x-ms-compliance-status"] != "azure-compliant-uvm" || got[ClaimUVMFeed] != "ContainerPlat-AMD-UVM" || got[ClaimUVMSVN] == "" {
		t.Fatalf("claims %v", got)
	}
	// RequireUVM refuses a report without one.
	v, _ = New(Options{RequireUVM: true})
	if _, err := v.Verify(context.Background(), sidecarEvidence(t), now); err == nil || !strings.Contains(err.Error(), string(CheckUVMRequired)) {
		t.Fatalf("got %v", err)
	}
}
