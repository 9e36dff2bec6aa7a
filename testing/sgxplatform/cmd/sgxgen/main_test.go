package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
// binds the runtime data it claims to (and, for the KSS enclaves, the
// init-time data, with the KSS claims manifest.json lists); without the root
// it is rejected.
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
	var m Manifest
	if err := json.Unmarshal(read("manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.KSS) != 6 {
		t.Errorf("manifest lists %d KSS files, want 6", len(m.KSS))
	}
	for _, tc := range []struct {
		file     string
		typ      evidence.Type
		runtime  string
		initTime string // "": not a KSS enclave
	}{
		{"sgx-quote-v3.bin", evidence.SgxEnclave, "runtime.bin", ""},
		{"sgx-quote-v4.bin", evidence.SgxEnclave, "runtime.json", ""},
		{"oe-report.bin", evidence.OpenEnclave, "runtime.bin", ""},
		{"oe-report-json.bin", evidence.OpenEnclave, "runtime.json", ""},
		{"oe-evidence.bin", evidence.OpenEnclave, "", ""},
		{"sgx-quote-v3-kss.bin", evidence.SgxEnclave, "runtime.bin", "inittime.bin"},
		{"sgx-quote-v4-kss.bin", evidence.SgxEnclave, "runtime.bin", "inittime.bin"},
		{"sgx-quote-v3-kss-json.bin", evidence.SgxEnclave, "runtime.json", "inittime.json"},
		{"sgx-quote-v4-kss-json.bin", evidence.SgxEnclave, "runtime.json", "inittime.json"},
		{"oe-report-kss.bin", evidence.OpenEnclave, "runtime.bin", "inittime.bin"},
		{"oe-report-kss-json.bin", evidence.OpenEnclave, "runtime.json", "inittime.json"},
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
			if _, err := intelOnly.Verify(context.Background(), req); evidence.CheckOf(err) != "pck_chain" {
				t.Errorf("without the test root: %v, want check pck_chain", err)
			}
			claims := map[string]any{}
			for _, c := range res.Claims {
				claims[c.Type] = c.Value
			}
			if claims[sgx.ClaimMREnclave] != hexOf(MREnclave[:]) {
				t.Error("mrenclave claim missing")
			}
			k, isKSS := m.KSS[tc.file]
			if isKSS != (tc.initTime != "") {
				t.Fatalf("manifest kss entry %v, want one: %v", isKSS, tc.initTime != "")
			}
			if !isKSS {
				for _, c := range []string{sgx.ClaimConfigID, sgx.ClaimConfigSVN, sgx.ClaimISVExtendedProductID, sgx.ClaimISVFamilyID} {
					if _, ok := claims[c]; ok {
						t.Errorf("%s on a non-KSS enclave", c)
					}
				}
				return
			}
			h := sha256Sum(read(tc.initTime))
			if k.InitTime != tc.initTime || string(res.InitTimeBinding[:32]) != string(h[:]) {
				t.Errorf("CONFIGID %x does not bind %s (manifest: %s)", res.InitTimeBinding, tc.initTime, k.InitTime)
			}
			want := map[string]any{
				sgx.ClaimConfigID: k.ConfigID, sgx.ClaimConfigSVN: int64(k.ConfigSVN),
				sgx.ClaimISVExtendedProductID: k.ISVExtendedProductID, sgx.ClaimISVFamilyID: k.ISVFamilyID,
			}
			for c, w := range want {
				if claims[c] != w {
					t.Errorf("%s = %v, manifest says %v", c, claims[c], w)
				}
			}
			if k.ConfigID[64:] != hexOf(ConfigIDUpper[:]) || k.ConfigSVN != int(ConfigSVN) {
				t.Errorf("manifest kss %+v", k)
			}
		})
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }
