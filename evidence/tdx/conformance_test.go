package tdx_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// countingSource serves one collateral set and counts the fetches.
type countingSource struct {
	c *collateral.Collateral
	n atomic.Int64
}

func (s *countingSource) Get(ctx context.Context, _ collateral.Request) (*collateral.Collateral, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.n.Add(1)
	return s.c, nil
}

// TestConformance runs the verifier conformance suite (evidence/verifiertest,
// issue 8) against the TDX verifier with a test TDX platform.
func TestConformance(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := tdxplatform.New(tdxplatform.Options{PKI: dcapfake.Options{Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tdxplatform.New(tdxplatform.Options{PKI: dcapfake.Options{Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Collateral(dcapfake.Docs{})
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{c: c}
	v, err := tdx.New(tdx.Options{Collateral: src, Roots: p.Roots(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
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
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              func(t testing.TB) *evidence.Request { return req(mint(t, p, false)) },
		Expired:           now.Add(40 * 24 * time.Hour),
		ExpiredChecks:     []evidence.Check{dcap.CheckTCBInfoExpired, dcap.CheckQEIdentityExpired, dcap.CheckRootCRLExpired, dcap.CheckPCKCRLExpired},
		NotYetValid:       now.Add(-2 * time.Hour),
		NotYetValidChecks: []evidence.Check{dcap.CheckTCBInfoNotYetValid, dcap.CheckQEIdentityNotYetValid, dcap.CheckRootCRLNotYetValid, dcap.CheckPCKCRLNotYetValid, dcap.CheckPCKChainNotYetValid},
		Fetches:           func() int { return int(src.n.Load()) },
		Bad: []verifiertest.Case{
			{Name: "tampered TD report", ParseOK: true, Checks: []evidence.Check{dcap.CheckQuoteSignature}, Request: func(t testing.TB) *evidence.Request {
				raw := mint(t, p, false)
				raw[48+100] ^= 1 // inside the signed TD report body
				return req(raw)
			}},
			{Name: "untrusted root", ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKChain}, Request: func(t testing.TB) *evidence.Request {
				return req(mint(t, foreign, false))
			}},
		},
	})
}
