package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpcs "github.com/google/go-tdx-guest/pcs"
	tdxverify "github.com/google/go-tdx-guest/verify"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/testing/cputime"
)

// pcsMemory answers go-tdx-guest's Intel PCS requests from one collateral
// set held in memory, shaped as Intel's PCS v4 answers are (issuer chains
// URL-escaped in the headers, JSON bodies carrying the exact signed bytes
// and the hex signature, DER CRLs), so that go-tdx-guest fetches nothing
// from the network and sees the very bytes attestd verifies. Any other URL
// is an error: a peer that asked for something else would not be comparable.
//
// go-tdx-guest can be given collateral only through its Getter (its
// Collateral type is filled by its own fetching code), hence this adapter.
type pcsMemory struct {
	tcb, qe, pckCRL, rootCRL []byte
	tcbHdr, qeHdr, pckCRLHdr map[string][]string
	rootCRLURLs              []string
}

func newPCSMemory(c *collateral.Collateral) (*pcsMemory, error) {
	if len(c.TCBInfo) == 0 || len(c.QEIdentity) == 0 || len(c.PCKCRL) == 0 || len(c.RootCACRL) == 0 {
		return nil, errors.New("go-tdx-guest peer: collateral lacks TCB info, QE identity or a CRL")
	}
	hdr := func(key string, chain []byte) map[string][]string {
		return map[string][]string{http.CanonicalHeaderKey(key): {url.QueryEscape(string(chain))}}
	}
	body := func(field string, signed, sig []byte) []byte {
		return []byte(`{"` + field + `":` + string(signed) + `,"signature":"` + hex.EncodeToString(sig) + `"}`)
	}
	// The root CRL is fetched from the URLs the root certificate names.
	var rootURLs []string
	for rest := c.QEIdentityIssuerChain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("go-tdx-guest peer: QE identity issuer chain: %w", err)
		}
		if cert.IsCA && cert.CheckSignatureFrom(cert) == nil {
			rootURLs = cert.CRLDistributionPoints
		}
	}
	if len(rootURLs) == 0 {
		return nil, errors.New("go-tdx-guest peer: no root CA CRL distribution point in the QE identity issuer chain")
	}
	return &pcsMemory{
		tcb:         body("tcbInfo", c.TCBInfo, c.TCBInfoSignature),
		qe:          body("enclaveIdentity", c.QEIdentity, c.QEIdentitySignature),
		pckCRL:      c.PCKCRL,
		rootCRL:     c.RootCACRL,
		tcbHdr:      hdr("TCB-Info-Issuer-Chain", c.TCBInfoIssuerChain),
		qeHdr:       hdr("SGX-Enclave-Identity-Issuer-Chain", c.QEIdentityIssuerChain),
		pckCRLHdr:   hdr("SGX-PCK-CRL-Issuer-Chain", c.PCKCRLIssuerChain),
		rootCRLURLs: rootURLs,
	}, nil
}

func (p *pcsMemory) Get(u string) (map[string][]string, []byte, error) {
	return p.GetContext(context.Background(), u)
}

func (p *pcsMemory) GetContext(ctx context.Context, u string) (map[string][]string, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	switch {
	case strings.HasPrefix(u, tdxpcs.TdxBaseURL+"/tcb?fmspc="):
		return p.tcbHdr, p.tcb, nil
	case u == tdxpcs.QeIdentityURL():
		return p.qeHdr, p.qe, nil
	case strings.HasPrefix(u, tdxpcs.SgxBaseURL+"/pckcrl?"):
		return p.pckCRLHdr, p.pckCRL, nil
	case slices.Contains(p.rootCRLURLs, u):
		return map[string][]string{}, p.rootCRL, nil
	}
	return nil, nil, fmt.Errorf("go-tdx-guest peer: no network here (asked for %s)", u)
}

// goTDXGuest is go-tdx-guest's verify.RawTdxQuote (quote bytes to proto,
// PCK chain to its embedded Intel root, collateral fetched through
// pcsMemory and checked — TCB info and QE identity signatures, both CRLs —
// then the QE report and quote signatures) at a fixed instant. Like
// dcap-qvl it is stateless: every call does all of it again.
//
// go-tdx-guest's verification does not decide a TCB status; Outcome asks
// its SupportedTcbLevelsFromCollateral for the matching TDX and QE TCB
// levels once, after verifying, so that both sides' statuses can be
// compared. The timed batches call RawTdxQuote alone.
type goTDXGuest struct {
	quote []byte
	opts  *tdxverify.Options
}

func newGoTDXGuest(quote []byte, coll *collateral.Collateral, at time.Time) (*goTDXGuest, error) {
	getter, err := newPCSMemory(coll)
	if err != nil {
		return nil, err
	}
	// Intel's SGX Root CA, attestd's default root, as a pool built once:
	// left nil, go-tdx-guest builds one from its embedded copy and logs a
	// warning on every call, which would be timed.
	roots := x509.NewCertPool()
	for _, r := range dcap.DefaultRoots() {
		roots.AddCert(r)
	}
	return &goTDXGuest{quote: quote, opts: &tdxverify.Options{
		TrustedRoots:     roots,
		CheckRevocations: true,
		GetCollateral:    true,
		Getter:           getter,
		Now:              &tdxverify.TimeSet{PckCertChain: at, TcbInfo: at, QeIdentity: at, PckCrl: at, RootCaCrl: at},
	}}, nil
}

func (g *goTDXGuest) Name() string { return "go-tdx-guest verify.TdxQuote" }

func (g *goTDXGuest) Outcome(ctx context.Context) (Outcome, error) {
	q, err := tdxabi.QuoteToProto(g.quote)
	if err != nil {
		return Outcome{}, fmt.Errorf("go-tdx-guest: parse quote: %w", err)
	}
	if err := tdxverify.TdxQuoteContext(ctx, q, g.opts); err != nil {
		return Outcome{}, err
	}
	tdxLevel, qeLevel, err := tdxverify.SupportedTcbLevelsFromCollateral(q, g.opts)
	if err != nil {
		return Outcome{}, fmt.Errorf("go-tdx-guest: TCB levels: %w", err)
	}
	return combineTDX(tdxLevel, qeLevel), nil
}

// combineTDX states go-tdx-guest's two TCB levels as one outcome. When the
// TD_QE level is UpToDate the TDX level's status and advisories are the
// answer (Intel's QVL combines them so); otherwise both statuses are named,
// which no attestd status equals, so the run refuses rather than compare
// verifiers that disagree or a combination this adapter does not model.
func combineTDX(tdxLevel, qeLevel tdxpcs.TcbLevel) Outcome {
	adv := slices.Concat(tdxLevel.AdvisoryIDs, qeLevel.AdvisoryIDs)
	slices.Sort(adv)
	adv = slices.Compact(adv)
	status := string(tdxLevel.TcbStatus)
	if qeLevel.TcbStatus != tdxpcs.TcbComponentStatusUpToDate {
		status += " (TD_QE " + string(qeLevel.TcbStatus) + ")"
	}
	return Outcome{Status: status, Advisories: adv}
}

func (g *goTDXGuest) Batch(ctx context.Context, n int) (time.Duration, error) {
	return cputime.Measure(n, func() error { return tdxverify.RawTdxQuoteContext(ctx, g.quote, g.opts) })
}

func (g *goTDXGuest) Close() error { return nil }

// attestdTDX is attestd's TDX verifier (evidence/tdx over evidence/dcap)
// on the same quote, collateral (an in-memory bundle) and instant. Cold
// builds a fresh Verifier per quote: the PCK chain, both CRLs and the TCB
// info and QE identity signatures are verified again, as go-tdx-guest
// does. Warm reuses one, as the server does: after a platform's first
// quote only the quote is parsed, its two signatures and the QE report
// binding checked and the TCB levels matched.
type attestdTDX struct {
	quote []byte
	src   collateral.Source
	at    time.Time
	cold  bool
	warm  *tdx.Verifier
	log   *slog.Logger
}

func newAttestdTDX(quote []byte, coll *collateral.Collateral, at time.Time, cold bool) (*attestdTDX, error) {
	src, err := bundle.FromCollateral(coll)
	if err != nil {
		return nil, err
	}
	a := &attestdTDX{quote: quote, src: src, at: at, cold: cold, log: slog.New(slog.DiscardHandler)}
	if !cold {
		if a.warm, err = a.verifier(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *attestdTDX) verifier() (*tdx.Verifier, error) {
	return tdx.New(tdx.Options{Collateral: a.src, Logger: a.log})
}

func (a *attestdTDX) Name() string {
	if a.cold {
		return "attestd tdx verify (cold: fresh verifier)"
	}
	return "attestd tdx verify (warm: server's caches)"
}

func (a *attestdTDX) once(ctx context.Context) (*tdx.Verified, error) {
	v := a.warm
	if a.cold {
		var err error
		if v, err = a.verifier(); err != nil {
			return nil, err
		}
	}
	ev, err := tdx.Parse(a.quote)
	if err != nil {
		return nil, fmt.Errorf("parse quote: %w", err)
	}
	return v.VerifyEvidence(ctx, ev, a.at)
}

func (a *attestdTDX) Outcome(ctx context.Context) (Outcome, error) {
	r, err := a.once(ctx)
	if err != nil {
		return Outcome{}, err
	}
	adv := slices.Clone(r.AdvisoryIDs)
	slices.Sort(adv)
	return Outcome{Status: string(r.Status), Advisories: adv}, nil
}

func (a *attestdTDX) Batch(ctx context.Context, n int) (time.Duration, error) {
	return cputime.Measure(n, func() error {
		_, err := a.once(ctx)
		return err
	})
}

func (a *attestdTDX) Close() error { return nil }
