package tdx_test

import (
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// TestConformance runs the verifier conformance suite (evidence/verifiertest,
// issue 8) against the TDX verifier with a test TDX platform.
func TestConformance(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h, err := tdxplatform.NewHarness(now)
	if err != nil {
		t.Fatal(err)
	}
	p, foreign := h.Platform, h.Foreign
	runtime := []byte(`{"keys":[]}`)
	mint := func(t testing.TB, pl *tdxplatform.Platform, debug bool) []byte {
		t.Helper()
		q := tdxplatform.Quote{Debug: debug}
		q.BindRuntime(runtime)
		raw, err := pl.Mint(q)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	req := func(raw []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.TdxVm, Evidence: raw, Now: now, Runtime: &evidence.Data{Bytes: runtime, JSON: true}}
	}
	suite := h.Suite(h.Verifier)
	suite.Good = func(t testing.TB) *evidence.Request { return req(mint(t, p, false)) }
	suite.Bad = []verifiertest.Case{
		{Name: "tampered TD report", ParseOK: true, Checks: []evidence.Check{dcap.CheckQuoteSignature}, Request: func(t testing.TB) *evidence.Request {
			raw := mint(t, p, false)
			raw[48+100] ^= 1 // inside the signed TD report body
			return req(raw)
		}},
		{Name: "untrusted root", ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKChain}, Request: func(t testing.TB) *evidence.Request {
			return req(mint(t, foreign, false))
		}},
	}
	verifiertest.Run(t, suite)
}
