package azureguest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
	tpmverify "github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/internal/testenv"
)

// tdxColl is real Intel collateral for FMSPC 00806f050000, the platform of
// the az-tdx-vtpm TD quote (PCK 2023-09-13).
const tdxColl = "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json"

var tdxTime = time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)

func tdxVerifier(t testing.TB) *Verifier {
	t.Helper()
	c, err := bundle.ParseQVLJSON(testenv.ReadShared(t, tdxColl))
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := tdx.New(tdx.Options{Collateral: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{TDX: tv})
}

// realTDXInfo is the AttestationInfo of the real Azure TDX CVM evidence.
func realTDXInfo(t testing.TB) *Evidence {
	t.Helper()
	var doc struct {
		Quote  trusteeQuote    `json:"tpm_quote"`
		Report json.RawMessage `json:"hcl_report"`
		TD     json.RawMessage `json:"td_quote"`
	}
	if err := json.Unmarshal(testenv.ReadShared(t, aztdx+"evidence-v0.json"), &doc); err != nil {
		t.Fatal(err)
	}
	rep, err := hcl.ParseReport(bytesList(t, doc.Report))
	if err != nil {
		t.Fatal(err)
	}
	ai := &envelope.AttestationInfo{ProtocolVersion: "2.0", Isolation: envelope.Isolation{Type: envelope.IsolationTdx, Proof: bytesList(t, doc.TD), RuntimeData: rep.RuntimeData}}
	return doc.Quote.evidence(t, ai)
}

// TestRealAzureTDXVTPM verifies the real Azure TDX CVM evidence: TD quote
// (Intel root, real collateral) → REPORTDATA binds the HCL runtime JSON →
// HCLAkPub signed the vTPM quote; broken links fail their named checks.
func TestRealAzureTDXVTPM(t *testing.T) {
	v := tdxVerifier(t)
	ctx := context.Background()
	p, err := v.VerifyPlatform(ctx, realTDXInfo(t), tdxTime)
	if err != nil {
		t.Fatal(err)
	}
	if p.TDX == nil || p.Runtime.VMConfig.VMUniqueID == "" || p.Quote.Mask == 0 {
		t.Fatalf("platform %+v", p)
	}
	snpEv := realInfo(t, "evidence-v0.json")
	runMutations(ctx, t, v, realTDXInfo, tdxTime, []mutation{
		{"quote of another VM", quoteOf(snpEv), tpmverify.CheckQuoteSignature},
		{"runtime JSON of another VM", func(ai *envelope.AttestationInfo) {
			ai.Isolation.RuntimeData = snpEv.Info.Isolation.RuntimeData
		}, CheckRuntimeBinding},
	})
	t.Run("TDX verifier disabled", func(t *testing.T) {
		if _, err := New(Options{}).VerifyPlatform(ctx, realTDXInfo(t), tdxTime); !errors.Is(err, CheckIsolation) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("collateral expired", func(t *testing.T) {
		_, err := v.VerifyPlatform(ctx, realTDXInfo(t), tdxTime.AddDate(1, 0, 0))
		if evidence.CheckOf(err) == "" {
			t.Fatalf("got %v, want a named check", err)
		}
	})
}

// TestTDXIsolationClaims: the hardware claims of a TDX CVM sit in
// x-ms-isolation-tee (tdx_*, its runtime JSON) and reach the policy as
// x-ms-isolation-tee.<claim>.
func TestTDXIsolationClaims(t *testing.T) {
	p, err := tdxVerifier(t).VerifyPlatform(context.Background(), realTDXInfo(t), tdxTime)
	if err != nil {
		t.Fatal(err)
	}
	vd := &Verified{Platform: p, Log: &eventlog.Log{}, EncKey: p.AK, ClientPayload: map[string]any{}}
	var tee map[string]any
	policy := map[string]any{}
	for _, c := range Claims(vd) {
		if c.Type == "x-ms-isolation-tee" {
			tee = c.Value.(map[string]any)
		}
		if c.PolicyOnly {
			policy[c.Type] = c.Value
		}
	}
	if tee["x-ms-attestation-type"] != "tdxvm" || tee["tdx_mrtd"] == nil || tee["x-ms-runtime"] == nil {
		t.Fatalf("x-ms-isolation-tee %v", tee)
	}
	if policy["x-ms-isolation-tee.x-ms-attestation-type"] != "tdxvm" || policy["x-ms-isolation-tee.tdx_mrtd"] != tee["tdx_mrtd"] {
		t.Fatalf("policy claims %v", policy)
	}
}
