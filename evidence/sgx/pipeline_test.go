package sgx_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/sgx/pcs"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// TestPipeline runs the real attest pipeline (instance, default policy,
// token) over the SGX verifier and the test platform: the claims reach the
// token as MAA shapes them, and a policy can decide on the TCB status and
// advisory IDs.
func TestPipeline(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now, TCBStatus: pcs.SWHardeningNeeded, AdvisoryIDs: []string{"INTEL-SA-00615", "INTEL-SA-00657"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: p.Source(), Roots: p.Roots(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "t", Mode: instance.ModeAAD, Issuer: "https://attestd.test"},
		instance.Options{Store: db, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v},
			Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rt := []byte(`{"jwk":{"kty":"EC"}}`)
	var rd [64]byte
	h := sha256Sum(rt)
	copy(rd[:], h[:])
	report, err := p.OEReport(sgxplatform.QuoteOptions{Debug: false, ProductID: 1, SVN: 2, ReportData: rd})
	if err != nil {
		t.Fatal(err)
	}

	tok, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, Runtime: &evidence.Data{Bytes: rt}})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := keys.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"x-ms-attestation-type": "sgx", "x-ms-sgx-is-debuggable": false, "x-ms-sgx-product-id": 1.0, "x-ms-sgx-svn": 2.0,
		"is-debuggable": false, "tee": "sgx", "svn": 2.0, // issued by the default policy
		"x-ms-sgx-tcb-status": "SWHardeningNeeded", "x-ms-sgx-ehd": base64.RawURLEncoding.EncodeToString(rt),
		"maa-ehd": base64.RawURLEncoding.EncodeToString(rt), "aas-ehd": base64.RawURLEncoding.EncodeToString(rt),
	}
	for k, want := range checks {
		if c[k] != want {
			t.Errorf("%s = %v, want %v", k, c[k], want)
		}
	}
	if adv, _ := json.Marshal(c["x-ms-sgx-advisory-ids"]); string(adv) != `["INTEL-SA-00615","INTEL-SA-00657"]` {
		t.Errorf("advisory ids %s", adv)
	}
	if coll, ok := c["x-ms-sgx-collateral"].(map[string]any); !ok || len(coll) != 7 {
		t.Errorf("x-ms-sgx-collateral %v", c["x-ms-sgx-collateral"])
	}
	for k := range c {
		if strings.HasPrefix(k, "$") {
			t.Errorf("policy-only claim %s in the token", k)
		}
	}

	// A policy deciding on the advisory IDs and the TCB status.
	deny := `version=1.0;authorizationrules{c:[type=="x-ms-sgx-advisory-ids", value=="INTEL-SA-00657"] => deny(); => permit();};issuancerules{};`
	if _, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, DraftPolicy: &deny}); err == nil || !strings.Contains(err.Error(), "Deny") {
		t.Errorf("advisory policy: %v", err)
	}
	allow := `version=1.0;authorizationrules{c:[type=="x-ms-sgx-tcb-status", value=="SWHardeningNeeded"] && d:[type=="$is-debuggable", value==false] => permit();};issuancerules{c:[type=="x-ms-sgx-advisory-ids"] => issue(type="adv", value=c.value);};`
	draft, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, DraftPolicy: &allow})
	if err != nil {
		t.Fatalf("status policy: %v", err)
	}
	parts := strings.Split(draft, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var dc map[string]any
	if err := json.Unmarshal(raw, &dc); err != nil {
		t.Fatal(err)
	}
	if adv, _ := json.Marshal(dc["adv"]); string(adv) != `["INTEL-SA-00615","INTEL-SA-00657"]` {
		t.Errorf("policy-issued advisories %s", adv)
	}
	// A rejected quote surfaces its check.
	bad := append([]byte(nil), report...)
	bad[16+100] ^= 1
	if _, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: bad}); err == nil || !strings.Contains(err.Error(), "quote.signature") {
		t.Errorf("tampered report: %v", err)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
