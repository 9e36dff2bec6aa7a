package main

import (
	"context"
	"fmt"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevverify "github.com/google/go-sev-guest/verify"

	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/testing/cputime"
)

// snpOutcome is what both sides of the SEV-SNP comparison can say: the
// report's signature verifies under a VCEK that chains to AMD's root. SNP
// has no TCB status in the DCAP sense (the TCB is a claim, judged by the
// policy), so the outcome is the verdict alone.
var snpOutcome = Outcome{Status: "verified"}

// goSevGuest is go-sev-guest's verify.SnpAttestation (the library attestd
// wraps for KDS extensions, called directly here) on one report with its
// VCEK at a fixed instant, with its embedded AMD roots and no network.
// Like dcap-qvl for SGX, it is stateless: every call checks ARK → ASK →
// VCEK and the report signature again.
type goSevGuest struct {
	report *spb.Report
	vcek   []byte
	opts   *sevverify.Options
}

func newGoSevGuest(report, vcek []byte, at time.Time, product *spb.SevProduct) (*goSevGuest, error) {
	r, err := sevabi.ReportToProto(report)
	if err != nil {
		return nil, fmt.Errorf("go-sev-guest: parse report: %w", err)
	}
	opts := sevverify.DefaultOptions()
	opts.Now = at
	opts.DisableCertFetching = true
	opts.Product = product
	return &goSevGuest{report: r, vcek: vcek, opts: opts}, nil
}

func (g *goSevGuest) Name() string { return "go-sev-guest verify.SnpAttestation" }

func (g *goSevGuest) once(ctx context.Context) error {
	// A fresh Attestation each call: SnpAttestation fills in the chain.
	att := &spb.Attestation{Report: g.report, CertificateChain: &spb.CertificateChain{VcekCert: g.vcek}}
	return sevverify.SnpAttestationContext(ctx, att, g.opts)
}

func (g *goSevGuest) Outcome(ctx context.Context) (Outcome, error) {
	if err := g.once(ctx); err != nil {
		return Outcome{}, err
	}
	return snpOutcome, nil
}

func (g *goSevGuest) Batch(ctx context.Context, n int) (time.Duration, error) {
	return cputime.Measure(n, func() error { return g.once(ctx) })
}

func (g *goSevGuest) Close() error { return nil }

// attestdSNP is attestd's SEV-SNP verifier (evidence/snp/verify) on the
// same report and VCEK. Cold builds a fresh Verifier per call (the chain is
// verified every time, as go-sev-guest does); warm reuses one, as the
// server does, so that after the first report of a chip only the report is
// parsed and its signature checked.
type attestdSNP struct {
	report []byte
	vcek   []byte
	at     time.Time
	roots  []verify.ProductRoots // parsed once: a server parses them at start
	cold   bool
	warm   *verify.Verifier
}

func newAttestdSNP(report, vcek []byte, at time.Time, cold bool) (*attestdSNP, error) {
	a := &attestdSNP{report: report, vcek: vcek, at: at, roots: verify.DefaultRoots(), cold: cold}
	if !cold {
		v, err := verify.New(verify.Options{Roots: a.roots})
		if err != nil {
			return nil, err
		}
		a.warm = v
	}
	return a, nil
}

func (a *attestdSNP) Name() string {
	if a.cold {
		return "attestd snp verify (cold: fresh verifier)"
	}
	return "attestd snp verify (warm: server's caches)"
}

func (a *attestdSNP) once(ctx context.Context) error {
	v := a.warm
	if a.cold {
		var err error
		if v, err = verify.New(verify.Options{Roots: a.roots}); err != nil {
			return err
		}
	}
	ev, err := abi.Parse(a.report)
	if err != nil {
		return fmt.Errorf("parse report: %w", err)
	}
	certs, err := abi.Certificates(a.vcek)
	if err != nil {
		return fmt.Errorf("parse VCEK: %w", err)
	}
	ev.Certs = ev.Certs.Merge(certs)
	_, err = v.Verify(ctx, ev, a.at)
	return err
}

func (a *attestdSNP) Outcome(ctx context.Context) (Outcome, error) {
	if err := a.once(ctx); err != nil {
		return Outcome{}, err
	}
	return snpOutcome, nil
}

func (a *attestdSNP) Batch(ctx context.Context, n int) (time.Duration, error) {
	return cputime.Measure(n, func() error { return a.once(ctx) })
}

func (a *attestdSNP) Close() error { return nil }
