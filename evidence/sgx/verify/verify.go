// Package verify is the SGX layer on the Intel DCAP trust core
// (evidence/dcap): it turns a parsed SGX quote (package abi) into the DCAP
// stages' input and runs them against SGX TCB info and the SGX QE identity,
// the way Intel's Quote Verification Library does. It never decides whether a
// TCB status is acceptable — that is the attestation policy's job — except
// that Revoked levels are rejected, as QVL does.
//
// Every failure is an *evidence.Error; its Check is one of the dcap.Check*
// constants (in the order the checks run):
//
//	quote.qe_vendor_id                the header does not name Intel's QE vendor ID
//	quote.certification_data          the quote carries no PCK chain (PPID types 1-3)
//	pck_chain                         PCK chain does not parse, does not chain to a trusted root certificate, or its leaf is not a PCK certificate
//	pck.extensions                    the PCK certificate's SGX extensions are malformed
//	qe_report.signature               QE report not signed by the PCK key
//	qe_report.binding                 QE report data != SHA-256(attestation key || QE auth data) || zeros
//	quote.attestation_key             attestation key is not a P-256 point
//	quote.signature                   header || report body not signed by the attestation key
//	collateral.missing                no collateral at all
//	root_crl.{missing,parse,issuer,signature}
//	pck_crl.issuer_chain, pck_crl.issuer, pck_crl.{missing,parse,signature}
//	tcb_info.issuer_chain, qe_identity.issuer_chain (also: the signer is not a TCB signing certificate)
//	tcb_info.{missing,signature,parse}, qe_identity.{missing,signature,parse}
//	tcb_info.{not_yet_valid,expired}, qe_identity.{…}, root_crl.{…}, pck_crl.{…}   (issueDate/thisUpdate .. nextUpdate [+ grace])
//	pck_chain.{not_yet_valid,expired}, root_ca.{…}, collateral_signing_cert.{…}   (certificate validity)
//	pck_ca.revoked, tcb_signing.revoked (Root CA CRL), pck.revoked (PCK CA CRL)
//	tcb_info.fmspc_mismatch, tcb_info.pceid_mismatch
//	qe_identity.{mrsigner,isvprodid,miscselect,attributes}_mismatch, qe_identity.no_matching_level, qe_identity.revoked
//	tcb.no_matching_level, tcb.revoked
package verify

import (
	"crypto/x509"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/internal/pemfile"
)

// DefaultRoots returns Intel's SGX Root CA certificates (dcap.DefaultRoots:
// the current certificate first, then the 2018 one of the same key).
func DefaultRoots() []*x509.Certificate { return dcap.DefaultRoots() }

// ParseCertificates parses a PEM certificate chain with attestd's one strict
// chain parser (pemfile.ParseChain: CERTIFICATE blocks separated only by
// whitespace and NULs, END glued to BEGIN accepted).
func ParseCertificates(b []byte) ([]*x509.Certificate, error) { return pemfile.ParseChain(b) }

// Options configure a Verifier. Every external input is a field so a test or
// the offline CLI can verify "as of" another instant against other roots.
type Options struct {
	// Roots are the trusted root certificates; a chain is accepted only when
	// its root certificate is one of them, byte for byte. nil means
	// DefaultRoots() (Intel). A test root is trusted only when passed here.
	Roots []*x509.Certificate
	// Now returns the verification instant; nil means time.Now.
	Now func() time.Time
	// Grace accepts collateral documents (TCB info, QE identity, CRLs) whose
	// nextUpdate passed at most Grace ago. Zero (the default) accepts none.
	// When used, Result.GraceUsed names the documents, so the caller can say so.
	Grace time.Duration
	// CacheEntries bounds each verification cache; 0 means 1024.
	CacheEntries int
}

// Verifier verifies SGX quotes. The DCAP core caches what verifies once
// (collateral signatures, parsed and verified CRLs, issuer chains, PCK
// chains), keyed by the SHA-256 of the bytes, so a quote with warm
// collateral costs little more than its two unavoidable ECDSA
// verifications. Safe for concurrent use.
type Verifier struct {
	core *dcap.Verifier
	now  func() time.Time
}

// New returns a Verifier for opts.
func New(opts Options) (*Verifier, error) {
	core, err := dcap.New(dcap.Options{Roots: opts.Roots, Grace: opts.Grace, CacheEntries: opts.CacheEntries})
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Verifier{core: core, now: now}, nil
}

// Now returns the verifier's current verification instant.
func (v *Verifier) Now() time.Time { return v.now() }

// Core returns the DCAP verifier underneath (shared caches).
func (v *Verifier) Core() *dcap.Verifier { return v.core }

// Hashes are SHA-256 digests (lower-case hex) of the exact bytes that were
// verified; they double as cache keys and as MAA's x-ms-sgx-collateral claim.
type Hashes = dcap.Hashes

// Result is what verification established (see dcap.Result).
type Result = dcap.Result

// Platform identifies the platform a quote comes from and which collateral it needs.
type Platform struct {
	FMSPC      string // lower-case hex
	PCEID      string // lower-case hex
	CA         string // "processor" or "platform"
	Extensions *pcs.PCKExtensions
}

// CollateralRequest returns the collateral request for this platform.
func (p *Platform) CollateralRequest() collateral.Request {
	return collateral.Request{TEE: collateral.SGX, FMSPC: p.FMSPC, CA: p.CA}
}

// Platform parses and verifies (signatures only, no clock) the PCK chain in
// q and returns the platform identity in its PCK certificate.
func (v *Verifier) Platform(q *abi.Quote) (*Platform, error) {
	pemChain, err := q.PCKChainPEM()
	if err != nil {
		return nil, evidence.Errorf(dcap.CheckCertificationData, "%v", err)
	}
	c, err := v.core.PCKChain(pemChain)
	if err != nil {
		return nil, err
	}
	return &Platform{FMSPC: c.FMSPCHex(), PCEID: c.PCEIDHex(), CA: c.CA, Extensions: c.Ext}, nil
}

// DCAPQuote returns the DCAP-signed part of q (whose exact bytes are raw).
func DCAPQuote(raw []byte, q *abi.Quote) (*dcap.Quote, error) {
	pemChain, err := q.PCKChainPEM()
	if err != nil {
		return nil, evidence.Errorf(dcap.CheckCertificationData, "%v", err)
	}
	r := &q.QE.QEReport
	// The signed bytes are re-encoded from the parsed fields (what the
	// claims are made of), never taken from raw; into arrays of one
	// allocation with the dcap.Quote instead of one allocation each.
	d := &dcapQuote{}
	d.q = dcap.Quote{
		Raw: raw, QEVendorID: q.Header.QEVendorID,
		SignedBytes: q.AppendSignedBytes(d.signed[:0]), Signature: q.Signature, AttestationKey: q.AttestationKey,
		QEReportBytes: r.Append(d.qeReport[:0]),
		QEReport: dcap.QEReport{MiscSelect: r.MiscSelect, Attributes: r.Attributes, MRSigner: r.MRSigner,
			ISVProdID: r.ISVProdID, ISVSVN: r.ISVSVN, ReportData: r.ReportData},
		QEReportSignature: q.QE.QEReportSignature, QEAuthData: q.QE.QEAuthData, PCKChainPEM: pemChain,
	}
	return &d.q, nil
}

// dcapQuote is a dcap.Quote with the storage of its re-encoded parts.
type dcapQuote struct {
	q        dcap.Quote
	signed   [abi.SignedSize]byte
	qeReport [abi.ReportBodySize]byte
}

// Verify verifies quote q (whose exact bytes are quoteBytes) against coll
// at the verifier's clock (Options.Now); see VerifyAt.
func (v *Verifier) Verify(quoteBytes []byte, q *abi.Quote, coll *collateral.Collateral) (*Result, error) {
	return v.VerifyAt(v.now(), quoteBytes, q, coll)
}

// VerifyAt verifies quote q (whose exact bytes are quoteBytes) against coll
// as of instant now: the attest pipeline passes evidence.Request.Now so the
// verdict and the token's iat/exp read one clock. The caches hold only what
// does not depend on the clock, so one Verifier serves any instant. Every
// failure is an *evidence.Error naming the failed check.
func (v *Verifier) VerifyAt(now time.Time, quoteBytes []byte, q *abi.Quote, coll *collateral.Collateral) (*Result, error) {
	if coll == nil {
		return nil, evidence.Errorf(dcap.CheckCollateralMissing, "no collateral")
	}
	// The vendor comes before the certification data, as in QVL.
	if err := dcap.CheckQEVendor(q.Header.QEVendorID); err != nil {
		return nil, err
	}
	dq, err := DCAPQuote(quoteBytes, q)
	if err != nil {
		return nil, err
	}
	return v.core.Verify(now, &dcap.Evidence{Quote: dq, TEE: dcap.SGX}, coll)
}

// VerifyQuoteOnly checks only what the quote proves by itself: the PCK
// chain's signatures up to a trusted root, the QE report signature by the
// PCK key, the QE report binding of the attestation key and the quote
// signature. It checks no clock, CRL, TCB info or QE identity, so a quote
// that passes may come from a revoked or out-of-date platform: use it only
// for diagnostics, never to accept evidence.
func (v *Verifier) VerifyQuoteOnly(q *abi.Quote) error {
	if err := dcap.CheckQEVendor(q.Header.QEVendorID); err != nil {
		return err
	}
	dq, err := DCAPQuote(nil, q)
	if err != nil {
		return err
	}
	_, err = v.core.VerifyQuote(dq)
	return err
}

// Converge merges the platform TCB status with the QE's (dcap.Converge).
func Converge(platform, qe pcs.TCBStatus) pcs.TCBStatus { return dcap.Converge(platform, qe) }
