package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/sgx/verify"
)

// TestGeneratedMaterialVerifies: every generated quote/report verifies
// against the generated root and collateral with the server's verifier, and
// binds the runtime data it claims to; without the root it is rejected.
func TestGeneratedMaterialVerifies(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	roots, err := verify.ParseCertificates(read("root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(filepath.Join(dir, "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	trusting, err := sgx.NewVerifier(sgx.Options{Collateral: b, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	intelOnly, err := sgx.NewVerifier(sgx.Options{Collateral: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file    string
		typ     evidence.Type
		runtime string
	}{
		{"sgx-quote-v3.bin", evidence.SgxEnclave, "runtime.bin"},
		{"sgx-quote-v4.bin", evidence.SgxEnclave, "runtime.json"},
		{"oe-report.bin", evidence.OpenEnclave, "runtime.bin"},
		{"oe-report-json.bin", evidence.OpenEnclave, "runtime.json"},
		{"oe-evidence.bin", evidence.OpenEnclave, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			req := &evidence.Request{Type: tc.typ, Evidence: read(tc.file)}
			res, err := trusting.Verify(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.runtime != "" {
				h := sha256Sum(read(tc.runtime))
				if string(res.ReportData[:32]) != string(h[:]) {
					t.Errorf("report data does not bind %s", tc.runtime)
				}
			}
			found := false
			for _, c := range res.Claims {
				if c.Type == sgx.ClaimMREnclave && c.Value == hexOf(MREnclave[:]) {
					found = true
				}
			}
			if !found {
				t.Error("mrenclave claim missing")
			}
			if _, err := intelOnly.Verify(context.Background(), req); evidence.CheckOf(err) != "pck_chain" {
				t.Errorf("without the test root: %v, want check pck_chain", err)
			}
		})
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }
