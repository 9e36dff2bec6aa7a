package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/testing/snpplatform"
)

// TestVerifyCommand covers "attestd verify" on real evidence: verified,
// expired, accepted within grace, wrong type, unsupported type, and a
// runtime-data mismatch named as the server names it.
func TestVerifyCommandCases(t *testing.T) {
	quote := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote")
	coll := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2025-07-01T00:00:00Z"}, verifyExitOK, `"x-ms-sgx-tcb-status": "ConfigurationAndSWHardeningNeeded"`, ""},
		{[]string{"--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2025-08-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: tcb_info.expired:"},
		{[]string{"--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2025-08-01T00:00:00Z", "--grace", "720h"}, verifyExitOK, `"x-ms-sgx-collateral-grace-used": "tcb_info,qe_identity,pck_crl"`, ""},
		{[]string{"--type", "OpenEnclave", "--evidence", quote, "--collateral", coll}, verifyExitRejected, "", "verification failed: oe_report.parse"},
		{[]string{"--type", "Tpm", "--evidence", quote, "--collateral", coll}, verifyExitUsage, "", "--type must be"},
		{[]string{"--type", "SgxEnclave", "--evidence", quote}, verifyExitUsage, "", "--collateral is required"},
		{[]string{"--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2025-07-01T00:00:00Z", "--runtime-data", coll}, verifyExitRejected, "", "verification failed: runtimedata.binding:"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := verifyCmd(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", c.args, code, out.String(), errb.String())
		}
		if code == verifyExitOK {
			var m map[string]any
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Errorf("stdout is not JSON: %v", err)
			}
		}
	}
}

// TestVerifyInitTime: "attestd verify --init-time-data FILE" checks that
// SHA-256 of the file is CONFIGID[0:32] through the pipeline's own binding
// (instance.Bind), naming the check exactly as the server does
// (inittimedata.binding), and prints the KSS claims.
func TestVerifyInitTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	coll, err := bundle.MarshalQVLJSON(p.Collateral())
	if err != nil {
		t.Fatal(err)
	}
	init := []byte(`{"mode":"prod"}`)
	o := sgxplatform.QuoteOptions{ConfigSVN: 5}
	o.BindInitTime(init)
	kss, err := p.Quote(o)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--at", now.Format(time.RFC3339), "--collateral", write("coll.json", coll), "--roots", write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Roots()[0].Raw}))}
	kssPath, plainPath := write("kss.bin", kss), write("plain.bin", plain)
	initPath, otherPath := write("init.json", init), write("other.bin", []byte("other"))
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"bound", []string{"--evidence", kssPath, "--init-time-data", initPath}, verifyExitOK,
			[]string{`"x-ms-sgx-config-id": "` + hex.EncodeToString(o.ConfigID[:]) + `"`, `"x-ms-sgx-config-svn": 5`}, ""},
		{"no init-time data", []string{"--evidence", kssPath}, verifyExitOK, []string{`"x-ms-sgx-config-svn": 5`}, ""},
		{"unbound", []string{"--evidence", kssPath, "--init-time-data", otherPath}, verifyExitRejected, nil, "verification failed: inittimedata.binding:"},
		{"non-KSS", []string{"--evidence", plainPath, "--init-time-data", initPath}, verifyExitRejected, nil, "verification failed: inittimedata.binding:"},
		{"runtime", []string{"--evidence", plainPath, "--runtime-data", otherPath}, verifyExitRejected, nil, "verification failed: runtimedata.binding:"},
		{"missing file", []string{"--evidence", kssPath, "--init-time-data", filepath.Join(dir, "nope")}, verifyExitUsage, nil, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := verifyCmd(context.Background(), append(append([]string{}, base...), c.args...), &out, &errb)
			if code != c.code || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("code %d stderr %q, want %d %q", code, errb.String(), c.code, c.stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %s:\n%s", s, out.String())
				}
			}
		})
	}
}

// TestVerifySevSnpVm: "attestd verify --type SevSnpVm" over the real SEV-SNP
// vectors in every envelope, certificates inside the evidence or given by
// --collateral (any shape), a test platform with --roots, and refusals that
// name their check.
func TestVerifySevSnpVm(t *testing.T) {
	sc := "vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/"
	gs := "vectors/go-sev-guest/verify/testdata/"
	tr := "vectors/trustee-verifier/deps/verifier/test_data/snp/"
	dir := t.TempDir()
	p, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Sign(snpplatform.Report{Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	maa := write("maa.json", snpplatform.MAAReport(raw, p.ChainPEM(false), nil))
	bare := write("bare.bin", raw)
	roots := write("roots.pem", p.RootsPEM())
	vcek := write("vcek.pem", p.ChainPEM(false))
	kdsDir := filepath.Join(dir, "kds")
	os.Mkdir(kdsDir, 0o755)
	os.WriteFile(filepath.Join(kdsDir, "some-vcek.der"), p.VCEK(), 0o644)

	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--evidence", testenv.Shared(t, sc+"snp_report.bin"), "--collateral", testenv.Shared(t, sc+"uvm_host_amd_certificate.json"), "--at", "2026-01-01T00:00:00Z"}, verifyExitOK, `"x-ms-sevsnpvm-microcode-svn": 115`, ""},
		{[]string{"--evidence", testenv.Shared(t, "vectors/veraison-sevsnp/scheme/sevsnp/test/evidence/sevsnp-tsm-report.json"), "--at", "2026-01-01T00:00:00Z"}, verifyExitOK, `"x-ms-sevsnpvm-product": "Genoa"`, ""},
		{[]string{"--evidence", testenv.Shared(t, "vectors/virtee-sev/tests/certs_data/report_milan.hex"), "--collateral", testenv.Shared(t, "vectors/virtee-sev/tests/certs_data/vcek_milan.der"), "--at", "2024-01-01T00:00:00Z"}, verifyExitOK, `"x-ms-attestation-type": "sevsnpvm"`, ""},
		{[]string{"--evidence", testenv.Shared(t, tr+"test-vlek-report.bin"), "--collateral", testenv.Shared(t, tr+"test-vlek.der"), "--at", "2025-06-01T00:00:00Z"}, verifyExitOK, `"x-ms-sevsnpvm-signing-key": "VLEK"`, ""},
		{[]string{"--evidence", testenv.Shared(t, tr+"test-vlek-report.bin"), "--collateral", testenv.Shared(t, tr+"test-vlek.der"), "--at", "2026-01-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: snp.endorsement.expired:"},
		{[]string{"--evidence", testenv.Shared(t, gs+"attestation.bin"), "--at", "2023-01-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: snp.endorsement.missing:"},
		{[]string{"--evidence", testenv.Shared(t, gs+"attestation.bin"), "--collateral", testenv.Shared(t, "vectors/virtee-sev/tests/certs_data/vcek_milan.der"), "--at", "2024-01-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: snp.report.signature:"},
		{[]string{"--evidence", maa, "--roots", roots}, verifyExitOK, `"x-ms-sevsnpvm-report-version": 3`, ""},
		{[]string{"--evidence", maa}, verifyExitRejected, "", "verification failed: snp.endorsement.chain:"},
		{[]string{"--evidence", bare, "--roots", roots, "--collateral", vcek}, verifyExitOK, `"x-ms-sevsnpvm-vmpl": 0`, ""},
		{[]string{"--evidence", bare, "--roots", roots, "--collateral", kdsDir}, verifyExitOK, `"x-ms-sevsnpvm-vmpl": 0`, ""},
		{[]string{"--evidence", bare, "--roots", roots, "--collateral", vcek, "--runtime-data", roots}, verifyExitRejected, "", "verification failed: runtimedata.binding:"},
		{[]string{"--evidence", roots}, verifyExitRejected, "", "verification failed: snp.parse:"},
		{[]string{"--evidence", bare, "--grace", "1h"}, verifyExitUsage, "", "SGX only"},
	}
	for _, c := range cases {
		args := append([]string{"--type", "SevSnpVm"}, c.args...)
		var out, errb bytes.Buffer
		code := verifyCmd(context.Background(), args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", c.args, code, out.String(), errb.String())
		}
	}
}
