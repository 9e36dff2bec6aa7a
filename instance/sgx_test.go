package instance

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// TestAttestRealSGXQuote runs a real SGX quote (vector D1, dcap-qvl sample)
// through the whole pipeline with the real evidence/sgx verifier and its
// real collateral, verified as of an instant inside the collateral window.
func TestAttestRealSGXQuote(t *testing.T) {
	quote := testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote")
	coll, err := bundle.ParseQVLJSON(testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(coll)
	if err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	// The pipeline verifies at its clock (Request.Now); recorded evidence
	// is replayed as of its instant with the verify-at option.
	v, err := sgx.NewVerifier(sgx.Options{Collateral: src, VerifyAt: asOf, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(ctx, Config{Name: "default", Mode: ModeAAD, Issuer: "https://attestd.test"},
		Options{Store: db, Keys: keys, Logger: slog.New(slog.DiscardHandler),
			Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenOf(in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: quote}))
	if err != nil {
		t.Fatal(err)
	}
	c := (&env{keys: keys}).claims(t, tok)
	rd := hex.EncodeToString(quote[368 : 368+64])
	def, _ := policy.Default("SgxEnclave")
	if c["x-ms-sgx-report-data"] != rd || c["x-ms-attestation-type"] != "sgx" || c["tee"] != "sgx" ||
		c["x-ms-policy-hash"] != policy.Hash(def) || c["x-ms-sgx-mrenclave"] != c["sgx-mrenclave"] ||
		c["x-ms-sgx-tcbidentifier"] != "azuredefault" {
		t.Fatalf("claims %v", c)
	}
	if coll, _ := c["x-ms-sgx-collateral"].(map[string]any); len(coll) != 7 {
		t.Fatalf("x-ms-sgx-collateral %v", c["x-ms-sgx-collateral"])
	}

	// Runtime data must hash to the quote's report data: this quote's report
	// data is not a SHA-256 we can invert, so any runtime data fails binding.
	_, err = in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: quote, Runtime: &evidence.Data{Bytes: []byte("x")}})
	wantCode(t, err, CodeInvalidParameter)

	// A policy over the verifier's claims decides.
	deny := `version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==true] => deny(); => permit(); };`
	debug := c["x-ms-sgx-is-debuggable"] == true
	_, err = in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: quote, DraftPolicy: &deny})
	if debug {
		wantCode(t, err, CodePolicyEvaluationError)
	} else if err != nil {
		t.Fatal(err)
	}

	// Tampering with the quote body is caught by the verifier and named.
	bad := append([]byte(nil), quote...)
	bad[48+64] ^= 1 // MRENCLAVE
	_, err = in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: bad})
	wantCode(t, err, CodeInvalidParameter)
	if !errors.Is(err, evidence.Check("quote.signature")) {
		t.Fatalf("error does not name the failed check: %v", err)
	}
}
