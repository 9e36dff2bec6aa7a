package tdxplatform

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/dcapfake"
)

// Harness is the TDX side of a verifier conformance run (evidence/verifiertest):
// a platform whose quotes are good, a foreign platform (its own TEST
// PKI, same time window) whose quotes must fail the chain, and a TDX
// verifier trusting only Platform's roots, which fetches the platform's
// collateral from a source that counts the fetches (the suite checks that
// Parse fetches nothing). The TDX verifier's own conformance test and the
// AzureGuest TDX one build exactly this, so it lives here.
type Harness struct {
	Platform, Foreign *Platform
	Verifier          *tdx.Verifier
	now               time.Time
	src               *countingSource
}

// NewHarness builds a Harness whose PKI and collateral are valid at now.
func NewHarness(now time.Time) (*Harness, error) {
	p, err := New(Options{PKI: dcapfake.Options{Now: now}})
	if err != nil {
		return nil, err
	}
	foreign, err := New(Options{PKI: dcapfake.Options{Now: now}})
	if err != nil {
		return nil, err
	}
	coll, err := p.Collateral(dcapfake.Docs{})
	if err != nil {
		return nil, err
	}
	src := &countingSource{c: coll}
	v, err := tdx.New(tdx.Options{Collateral: src, Roots: p.Roots(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	return &Harness{Platform: p, Foreign: foreign, Verifier: v, now: now, src: src}, nil
}

// Fetches is how often the verifier has fetched collateral so far.
func (h *Harness) Fetches() int { return int(h.src.n.Load()) }

// Suite is the part of a verifiertest.Harness for v (the TDX verifier or
// one built on it) that the platform decides: the instants after and
// before the collateral's validity with the DCAP checks that refuse them
// there, and the fetch count. The caller adds Good, Bad and what else its
// evidence type needs.
func (h *Harness) Suite(v evidence.Verifier) verifiertest.Harness {
	return verifiertest.Harness{
		Verifier: v,
		// dcapfake's documents (TCB info, QE identity, CRLs) are valid
		// from an hour before now to 30 days after.
		Expired:           h.now.Add(40 * 24 * time.Hour),
		ExpiredChecks:     []evidence.Check{dcap.CheckTCBInfoExpired, dcap.CheckQEIdentityExpired, dcap.CheckRootCRLExpired, dcap.CheckPCKCRLExpired},
		NotYetValid:       h.now.Add(-2 * time.Hour),
		NotYetValidChecks: []evidence.Check{dcap.CheckTCBInfoNotYetValid, dcap.CheckQEIdentityNotYetValid, dcap.CheckRootCRLNotYetValid, dcap.CheckPCKCRLNotYetValid, dcap.CheckPCKChainNotYetValid},
		Fetches:           h.Fetches,
	}
}

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
