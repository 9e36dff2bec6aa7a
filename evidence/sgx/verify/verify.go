// Package verify checks a parsed SGX ECDSA quote against Intel's trust chain
// and DCAP collateral the way Intel's Quote Verification Library does: quote
// and QE report signatures, the QE report binding, the PCK chain to a pinned
// root key, CRLs, TCB info and QE identity signatures and windows, TCB level
// selection and the platform/QE status merge. It never decides whether a TCB
// status is acceptable — that is the attestation policy's job — except that
// Revoked levels are rejected, as QVL does.
//
// Every failure is an *evidence.Error; its Check is one of (in the order
// the checks run):
//
//	quote.qe_vendor_id                the header does not name Intel's QE vendor ID
//	quote.certification_data          the quote carries no PCK chain (PPID types 1-3)
//	pck_chain                         PCK chain does not parse, does not chain to a trusted root key, or its leaf is not a PCK certificate
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
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
)

//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// DefaultRoots returns Intel's SGX Root CA certificate (a fresh copy on every
// call, so callers cannot modify a shared value).
func DefaultRoots() []*x509.Certificate {
	certs, err := ParseCertificates(intelRootPEM)
	if err != nil || len(certs) != 1 {
		panic("verify: embedded Intel SGX Root CA does not parse") // the embedded file is part of the build
	}
	return certs
}

// ParseCertificates parses every PEM CERTIFICATE block in b. Text around the
// blocks and trailing NUL bytes (quotes NUL-terminate their PEM chain) are
// ignored; any other PEM block type is an error.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	// Intel's PCS issuer-chain headers (and collateral derived from them)
	// often concatenate certificates with no line break between
	// "-----END CERTIFICATE-----" and the next "-----BEGIN", which
	// encoding/pem does not accept; insert the break.
	const end = "-----END CERTIFICATE-----"
	rest := bytes.ReplaceAll(b, []byte(end), []byte(end+"\n"))
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(strings.Trim(string(rest), "\x00 \t\r\n")) != 0 && len(out) > 0 {
		return nil, errors.New("non-PEM data after the last certificate")
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// Options configure a Verifier. Every external input is a field so a test or
// the offline CLI can verify "as of" another instant against other roots.
type Options struct {
	// Roots are the trusted root certificates; a chain is accepted when its
	// root certificate carries the public key of one of them. nil means
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

// Verifier verifies SGX quotes. It caches what verifies once (collateral
// signatures, parsed and verified CRLs, issuer chains, PCK chains), keyed by
// the SHA-256 of the bytes, so a quote with warm collateral costs little more
// than its two unavoidable ECDSA verifications. Safe for concurrent use.
type Verifier struct {
	roots []*x509.Certificate
	now   func() time.Time
	grace time.Duration
	// PCK chains and collateral signing chains are cached apart: the same
	// PEM bytes can be sent in either role (the TCB signing chain is public),
	// and a chain verified as one must never be served as the other.
	pckChains  *cache[*chain]
	signChains *cache[*chain]
	crls       *cache[*verifiedCRL]
	tcbInfos   *cache[*pcs.TCBInfo]
	qeIDs      *cache[*pcs.QEIdentity]
	// lastSums memoises the digests of the collateral set seen last.
	// Sources hand out shared, immutable *Collateral values (bundle, cache),
	// so pointer identity means identical bytes and the ~10 KB of SHA-256
	// per quote is computed once per set; a source that returns fresh
	// copies simply misses.
	lastSums atomic.Pointer[collSums]
}

// collSums are the SHA-256 digests of one collateral set's members, and
// their hex form (Hashes without Quote).
type collSums struct {
	coll                            *collateral.Collateral
	root, pck, tcb, qe, tcbCs, qeCs [32]byte
	hashes                          Hashes
}

func (v *Verifier) sums(c *collateral.Collateral) *collSums {
	if s := v.lastSums.Load(); s != nil && s.coll == c {
		return s
	}
	s := &collSums{coll: c, root: sum(c.RootCACRL), pck: sum(c.PCKCRL), tcb: sum(c.TCBInfo), qe: sum(c.QEIdentity),
		tcbCs: sum(c.TCBInfoIssuerChain), qeCs: sum(c.QEIdentityIssuerChain)}
	s.hashes = Hashes{
		TCBInfo: hexsum(s.tcb), TCBInfoCerts: hexsum(s.tcbCs), TCBInfoCRL: hexsum(s.root),
		QEIdentity: hexsum(s.qe), QEIdentityCert: hexsum(s.qeCs), QEIdentityCRL: hexsum(s.root),
		PCKCRL: hexsum(s.pck), PCKCRLCerts: hexsum(sum(c.PCKCRLIssuerChain)),
	}
	v.lastSums.Store(s)
	return s
}

// New returns a Verifier for opts.
func New(opts Options) (*Verifier, error) {
	roots := opts.Roots
	if roots == nil {
		roots = DefaultRoots()
	}
	if len(roots) == 0 {
		return nil, errors.New("verify: no trusted roots")
	}
	for _, r := range roots {
		if _, ok := r.PublicKey.(*ecdsa.PublicKey); !ok {
			return nil, fmt.Errorf("verify: root %q does not have an ECDSA key", r.Subject)
		}
		if !r.IsCA {
			return nil, fmt.Errorf("verify: root %q is not a CA certificate", r.Subject)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Grace < 0 {
		return nil, errors.New("verify: negative grace period")
	}
	n := opts.CacheEntries
	if n <= 0 {
		n = 1024
	}
	return &Verifier{
		roots: slices.Clone(roots), now: now, grace: opts.Grace,
		pckChains: newCache[*chain](n), signChains: newCache[*chain](n), crls: newCache[*verifiedCRL](n),
		tcbInfos: newCache[*pcs.TCBInfo](n), qeIDs: newCache[*pcs.QEIdentity](n),
	}, nil
}

// Now returns the verifier's current verification instant.
func (v *Verifier) Now() time.Time { return v.now() }

// Hashes are SHA-256 digests (lower-case hex) of the exact bytes that were
// verified; they double as cache keys and as MAA's x-ms-sgx-collateral claim.
type Hashes struct {
	Quote          string // the SGX quote (without any OE header)
	TCBInfo        string // the signed "tcbInfo" JSON body
	TCBInfoCerts   string // TCBInfoIssuerChain as delivered (PEM)
	TCBInfoCRL     string // the Root CA CRL (DER): it is the CRL that covers the TCB info's signing chain
	QEIdentity     string // the signed "enclaveIdentity" JSON body
	QEIdentityCert string // QEIdentityIssuerChain as delivered (PEM)
	QEIdentityCRL  string // the Root CA CRL (DER), for the same reason
	PCKCRL         string // the PCK CA CRL (DER); not part of MAA's claim
	PCKCRLCerts    string // PCKCRLIssuerChain (PEM); not part of MAA's claim
}

// Result is what verification established.
type Result struct {
	// Status is the merged TCB status of platform and QE (QVL's convergeTcbStatus).
	Status         pcs.TCBStatus
	PlatformStatus pcs.TCBStatus
	QEStatus       pcs.TCBStatus
	// AdvisoryIDs of the matched platform TCB level followed by those of the
	// matched QE level, without duplicates.
	AdvisoryIDs []string
	TCBDate     time.Time
	// TCBEvaluationDataNumber is the TCB info's, QETCBEvaluationDataNumber
	// the QE identity's: the TCB baseline the quote was judged against.
	TCBEvaluationDataNumber   int
	QETCBEvaluationDataNumber int
	FMSPC                     string // lower-case hex
	PCEID                     string // lower-case hex
	PCKCA                     string // "processor" or "platform"
	VerifiedAt                time.Time
	// GraceUsed names collateral accepted after its nextUpdate because of
	// Options.Grace ("tcb_info", "qe_identity", "root_crl", "pck_crl").
	GraceUsed []string
	Hashes    Hashes
}

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

// chain is a verified PCK or signing chain: leaf ← intermediate(s) ← root key.
type chain struct {
	certs []*x509.Certificate // as delivered, leaf first, root last
	ext   *pcs.PCKExtensions  // PCK chains only
	ca    string              // PCK chains only: "processor" / "platform"
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func hexsum(h [32]byte) string { return hex.EncodeToString(h[:]) }

// Platform parses and verifies (signatures only, no clock) the PCK chain in
// q and returns the platform identity in its PCK certificate.
func (v *Verifier) Platform(q *abi.Quote) (*Platform, error) {
	c, err := v.pckChain(q)
	if err != nil {
		return nil, err
	}
	return &Platform{FMSPC: c.ext.FMSPCHex(), PCEID: c.ext.PCEIDHex(), CA: c.ca, Extensions: c.ext}, nil
}

func (v *Verifier) pckChain(q *abi.Quote) (*chain, error) {
	pemChain, err := q.PCKChainPEM()
	if err != nil {
		return nil, evidence.Errorf("quote.certification_data", "%v", err)
	}
	key := sum(pemChain)
	if c, ok := v.pckChains.get(key); ok {
		return c, nil
	}
	c, err := v.verifyChain(pemChain, 3, "pck_chain")
	if err != nil {
		return nil, err
	}
	leaf, inter := c.certs[0], c.certs[1]
	// QVL 4.1.2.4.4: the leaf must be a PCK certificate, whatever else the
	// PCK CA may sign.
	if leaf.IsCA || !strings.Contains(leaf.Subject.CommonName, "SGX PCK Certificate") {
		return nil, evidence.Errorf("pck_chain", "leaf certificate %q is not an SGX PCK Certificate", leaf.Subject.CommonName)
	}
	switch {
	case strings.Contains(inter.Subject.CommonName, "Processor"):
		c.ca = "processor"
	case strings.Contains(inter.Subject.CommonName, "Platform"):
		c.ca = "platform"
	default:
		return nil, evidence.Errorf("pck_chain", "PCK issuer %q is neither a PCK Processor CA nor a PCK Platform CA", inter.Subject.CommonName)
	}
	if c.ext, err = pcs.ParsePCKExtensions(leaf); err != nil {
		return nil, evidence.Errorf("pck.extensions", "PCK certificate %q: %v", leaf.Subject.CommonName, err)
	}
	v.pckChains.put(key, c)
	return c, nil
}

// verifyChain parses a PEM chain (leaf first) of exactly n certificates and
// checks every signature up to a pinned root key. Validity windows are
// checked separately (they depend on the clock, this result is cached).
func (v *Verifier) verifyChain(pemChain []byte, n int, check string) (*chain, error) {
	certs, err := ParseCertificates(pemChain)
	if err != nil {
		return nil, evidence.Errorf(check, "parse certificate chain: %v", err)
	}
	if len(certs) != n {
		return nil, evidence.Errorf(check, "chain has %d certificates, want %d (leaf … root)", len(certs), n)
	}
	root := certs[len(certs)-1]
	anchor := v.anchorFor(root)
	if anchor == nil {
		return nil, evidence.Errorf(check, "root certificate %q (key %s) is not a trusted root: its public key matches none of the %d configured roots", root.Subject.CommonName, keyID(root), len(v.roots))
	}
	if !bytes.Equal(root.RawSubject, root.RawIssuer) {
		return nil, evidence.Errorf(check, "root certificate %q is not self-issued", root.Subject.CommonName)
	}
	for i := 0; i < len(certs)-1; i++ {
		child, parent := certs[i], certs[i+1]
		if i+1 == len(certs)-1 {
			parent = anchor // the pinned key verifies the first intermediate
		}
		if !bytes.Equal(child.RawIssuer, certs[i+1].RawSubject) {
			return nil, evidence.Errorf(check, "certificate %q is not issued by %q", child.Subject.CommonName, certs[i+1].Subject.CommonName)
		}
		if i > 0 && !child.IsCA {
			return nil, evidence.Errorf(check, "intermediate %q is not a CA", child.Subject.CommonName)
		}
		if err := child.CheckSignatureFrom(parent); err != nil {
			return nil, evidence.Errorf(check, "signature of %q by %q: %v", child.Subject.CommonName, parent.Subject.CommonName, err)
		}
		if _, ok := child.PublicKey.(*ecdsa.PublicKey); !ok {
			return nil, evidence.Errorf(check, "certificate %q does not carry an ECDSA key", child.Subject.CommonName)
		}
	}
	return &chain{certs: certs}, nil
}

// isTCBSigner checks that c is in the role of Intel's TCB signing
// certificate ("Intel SGX TCB Signing": an end-entity certificate for digital
// signatures), as QVL and dcap-qvl require. Chaining to the root is not
// enough: the PCK CAs chain to the same root, and their keys sign PCK
// certificates and CRLs, never TCB info or QE identities.
func isTCBSigner(c *x509.Certificate, check string) error {
	switch {
	case c.IsCA:
		return evidence.Errorf(check, "signing certificate %q is a CA certificate, not a TCB signing certificate", c.Subject.CommonName)
	case !strings.Contains(c.Subject.CommonName, "TCB Signing"):
		return evidence.Errorf(check, "signing certificate %q is not a TCB signing certificate", c.Subject.CommonName)
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return evidence.Errorf(check, "TCB signing certificate %q does not allow digital signatures", c.Subject.CommonName)
	}
	return nil
}

func keyID(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:8])
}

// anchorFor returns the configured root whose public key equals c's.
func (v *Verifier) anchorFor(c *x509.Certificate) *x509.Certificate {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil
	}
	for _, r := range v.roots {
		if pub.Equal(r.PublicKey) {
			return r
		}
	}
	return nil
}

func (v *Verifier) signingChain(pemChain []byte, check string) (*chain, error) {
	if len(pemChain) == 0 {
		return nil, evidence.Errorf(check, "issuer chain missing from collateral")
	}
	key := sum(pemChain)
	if c, ok := v.signChains.get(key); ok {
		return c, nil
	}
	c, err := v.verifyChain(pemChain, 2, check)
	if err != nil {
		return nil, err
	}
	v.signChains.put(key, c)
	return c, nil
}

type verifiedCRL struct {
	crl     *x509.RevocationList
	revoked map[string]bool // serial numbers (decimal) of revoked certificates
}

// verifyCRL parses a DER CRL and checks its issuer name and signature against issuer.
func (v *Verifier) verifyCRL(der []byte, derSum [32]byte, issuer *x509.Certificate, name string) (*verifiedCRL, error) {
	if len(der) == 0 {
		return nil, evidence.Errorf(name+".missing", "%s missing from collateral", name)
	}
	key := sum(append(derSum[:], issuer.Raw...))
	if c, ok := v.crls.get(key); ok {
		return c, nil
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, evidence.Errorf(name+".parse", "%v", err)
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return nil, evidence.Errorf(name+".issuer", "CRL issuer %q is not %q", crl.Issuer.CommonName, issuer.Subject.CommonName)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, evidence.Errorf(name+".signature", "CRL signature by %q: %v", issuer.Subject.CommonName, err)
	}
	if crl.NextUpdate.IsZero() {
		return nil, evidence.Errorf(name+".parse", "CRL has no nextUpdate")
	}
	vc := &verifiedCRL{crl: crl, revoked: map[string]bool{}}
	for _, e := range crl.RevokedCertificateEntries {
		vc.revoked[e.SerialNumber.String()] = true
	}
	v.crls.put(key, vc)
	return vc, nil
}

func (c *verifiedCRL) isRevoked(cert *x509.Certificate) bool {
	return c.revoked[cert.SerialNumber.String()]
}

// rawSig verifies a raw r||s ECDSA P-256 signature over SHA-256(msg).
func rawSig(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

func (v *Verifier) tcbInfo(coll *collateral.Collateral, signer *x509.Certificate, h [32]byte) (*pcs.TCBInfo, error) {
	if len(coll.TCBInfo) == 0 {
		return nil, evidence.Errorf("tcb_info.missing", "TCB info missing from collateral")
	}
	key := sum(slices.Concat(h[:], coll.TCBInfoSignature, signer.Raw))
	if t, ok := v.tcbInfos.get(key); ok {
		return t, nil
	}
	if !rawSig(signer.PublicKey.(*ecdsa.PublicKey), coll.TCBInfo, coll.TCBInfoSignature) {
		return nil, evidence.Errorf("tcb_info.signature", "TCB info signature (%d bytes) does not verify with the TCB signing key of %q over the %d signed JSON bytes", len(coll.TCBInfoSignature), signer.Subject.CommonName, len(coll.TCBInfo))
	}
	t, err := pcs.ParseTCBInfo(coll.TCBInfo)
	if err != nil {
		return nil, evidence.Errorf("tcb_info.parse", "%v", err)
	}
	v.tcbInfos.put(key, t)
	return t, nil
}

func (v *Verifier) qeIdentity(coll *collateral.Collateral, signer *x509.Certificate, h [32]byte) (*pcs.QEIdentity, error) {
	if len(coll.QEIdentity) == 0 {
		return nil, evidence.Errorf("qe_identity.missing", "QE identity missing from collateral")
	}
	key := sum(slices.Concat(h[:], coll.QEIdentitySignature, signer.Raw))
	if t, ok := v.qeIDs.get(key); ok {
		return t, nil
	}
	if !rawSig(signer.PublicKey.(*ecdsa.PublicKey), coll.QEIdentity, coll.QEIdentitySignature) {
		return nil, evidence.Errorf("qe_identity.signature", "QE identity signature (%d bytes) does not verify with the TCB signing key of %q over the %d signed JSON bytes", len(coll.QEIdentitySignature), signer.Subject.CommonName, len(coll.QEIdentity))
	}
	t, err := pcs.ParseQEIdentity(coll.QEIdentity)
	if err != nil {
		return nil, evidence.Errorf("qe_identity.parse", "%v", err)
	}
	v.qeIDs.put(key, t)
	return t, nil
}

// window checks issue <= now <= next (+grace). It returns whether grace was used.
func (v *Verifier) window(now, issue, next time.Time, name string) (bool, error) {
	if now.Before(issue) {
		return false, evidence.Errorf(name+".not_yet_valid", "%s is valid from %s, verification time is %s", name, issue.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(next) {
		if v.grace > 0 && !now.After(next.Add(v.grace)) {
			return true, nil
		}
		return false, evidence.Errorf(name+".expired", "%s expired at %s (nextUpdate), verification time is %s", name, next.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return false, nil
}

func certWindow(now time.Time, c *x509.Certificate, check string) error {
	if now.Before(c.NotBefore) {
		return evidence.Errorf(check+".not_yet_valid", "certificate %q is valid from %s, verification time is %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return evidence.Errorf(check+".expired", "certificate %q expired at %s, verification time is %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify verifies quote q (whose exact bytes are quoteBytes) against coll.
// Every failure is an *evidence.Error naming the failed check.
func (v *Verifier) Verify(quoteBytes []byte, q *abi.Quote, coll *collateral.Collateral) (*Result, error) {
	if coll == nil {
		return nil, evidence.Errorf("collateral.missing", "no collateral")
	}
	now := v.now()
	res := &Result{VerifiedAt: now}

	// 1. The quote itself: PCK chain signatures, QE report, binding, quote signature.
	pck, err := v.verifyQuote(q)
	if err != nil {
		return nil, err
	}
	leaf, pckCA := pck.certs[0], pck.certs[1]

	// 2. Collateral: issuer chains, CRLs, signed documents (all cached).
	cs := v.sums(coll)
	hRoot, hPCK, hTCB, hQE := cs.root, cs.pck, cs.tcb, cs.qe
	res.Hashes = cs.hashes
	res.Hashes.Quote = hexsum(sum(quoteBytes))
	root := v.anchorFor(pck.certs[2])
	rootCRL, err := v.verifyCRL(coll.RootCACRL, hRoot, root, "root_crl")
	if err != nil {
		return nil, err
	}
	crlChain, err := v.signingChain(coll.PCKCRLIssuerChain, "pck_crl.issuer_chain")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(crlChain.certs[0].RawSubject, pckCA.RawSubject) || !crlChain.certs[0].PublicKey.(*ecdsa.PublicKey).Equal(pckCA.PublicKey) {
		return nil, evidence.Errorf("pck_crl.issuer", "PCK CRL issuer chain is for %q, the PCK certificate was issued by %q", crlChain.certs[0].Subject.CommonName, pckCA.Subject.CommonName)
	}
	pckCRL, err := v.verifyCRL(coll.PCKCRL, hPCK, pckCA, "pck_crl")
	if err != nil {
		return nil, err
	}
	tcbChain, err := v.signingChain(coll.TCBInfoIssuerChain, "tcb_info.issuer_chain")
	if err != nil {
		return nil, err
	}
	qeChain, err := v.signingChain(coll.QEIdentityIssuerChain, "qe_identity.issuer_chain")
	if err != nil {
		return nil, err
	}
	// All chains must end at the same trusted key as the PCK chain: the Root
	// CA CRL checked below is that root's, and mixing roots (e.g. a test root
	// configured beside Intel's) must not let one vouch for the other.
	for _, c := range []struct {
		ch    *chain
		check string
	}{{crlChain, "pck_crl.issuer_chain"}, {tcbChain, "tcb_info.issuer_chain"}, {qeChain, "qe_identity.issuer_chain"}} {
		if v.anchorFor(c.ch.certs[len(c.ch.certs)-1]) != root {
			return nil, evidence.Errorf(c.check, "issuer chain ends at %q (key %s), not at the root of the PCK chain (key %s)", c.ch.certs[len(c.ch.certs)-1].Subject.CommonName, keyID(c.ch.certs[len(c.ch.certs)-1]), keyID(root))
		}
	}
	for _, c := range []struct {
		ch    *chain
		check string
	}{{tcbChain, "tcb_info.issuer_chain"}, {qeChain, "qe_identity.issuer_chain"}} {
		if err := isTCBSigner(c.ch.certs[0], c.check); err != nil {
			return nil, err
		}
	}
	tcb, err := v.tcbInfo(coll, tcbChain.certs[0], hTCB)
	if err != nil {
		return nil, err
	}
	qeid, err := v.qeIdentity(coll, qeChain.certs[0], hQE)
	if err != nil {
		return nil, err
	}

	// 3. Time: collateral windows first (they are what goes stale), then certificates.
	for _, w := range []struct {
		name       string
		issue, nxt time.Time
	}{
		{"tcb_info", tcb.IssueDate, tcb.NextUpdate},
		{"qe_identity", qeid.IssueDate, qeid.NextUpdate},
		{"root_crl", rootCRL.crl.ThisUpdate, rootCRL.crl.NextUpdate},
		{"pck_crl", pckCRL.crl.ThisUpdate, pckCRL.crl.NextUpdate},
	} {
		graced, err := v.window(now, w.issue, w.nxt, w.name)
		if err != nil {
			return nil, err
		}
		if graced {
			res.GraceUsed = append(res.GraceUsed, w.name)
		}
	}
	for _, c := range pck.certs {
		if err := certWindow(now, c, "pck_chain"); err != nil {
			return nil, err
		}
	}
	if err := certWindow(now, root, "root_ca"); err != nil {
		return nil, err
	}
	for _, c := range [][]*x509.Certificate{crlChain.certs, tcbChain.certs, qeChain.certs} {
		if err := certWindow(now, c[0], "collateral_signing_cert"); err != nil {
			return nil, err
		}
	}

	// 4. Revocation.
	if rootCRL.isRevoked(pckCA) {
		return nil, evidence.Errorf("pck_ca.revoked", "PCK CA %q (serial %s) is revoked by the Root CA CRL", pckCA.Subject.CommonName, pckCA.SerialNumber)
	}
	for _, c := range []*chain{tcbChain, qeChain} {
		if rootCRL.isRevoked(c.certs[0]) {
			return nil, evidence.Errorf("tcb_signing.revoked", "TCB signing certificate %q (serial %s) is revoked by the Root CA CRL", c.certs[0].Subject.CommonName, c.certs[0].SerialNumber)
		}
	}
	if pckCRL.isRevoked(leaf) {
		return nil, evidence.Errorf("pck.revoked", "PCK certificate (serial %s) is revoked by the %s CRL", leaf.SerialNumber, pckCA.Subject.CommonName)
	}

	// 5. TCB info applies to this platform.
	ext := pck.ext
	res.FMSPC, res.PCEID, res.PCKCA = ext.FMSPCHex(), ext.PCEIDHex(), pck.ca
	if tcb.FMSPC != ext.FMSPC {
		return nil, evidence.Errorf("tcb_info.fmspc_mismatch", "TCB info is for FMSPC %x, the PCK certificate has FMSPC %x", tcb.FMSPC, ext.FMSPC)
	}
	if tcb.PCEID != ext.PCEID {
		return nil, evidence.Errorf("tcb_info.pceid_mismatch", "TCB info is for PCE ID %x, the PCK certificate has PCE ID %x", tcb.PCEID, ext.PCEID)
	}

	// 6. QE identity.
	qer := &q.QE.QEReport
	if qer.MRSigner != qeid.MRSigner {
		return nil, evidence.Errorf("qe_identity.mrsigner_mismatch", "QE MRSIGNER %x is not %x", qer.MRSigner, qeid.MRSigner)
	}
	if qer.ISVProdID != qeid.ISVProdID {
		return nil, evidence.Errorf("qe_identity.isvprodid_mismatch", "QE ISVPRODID %d is not %d", qer.ISVProdID, qeid.ISVProdID)
	}
	if qer.MiscSelect&qeid.MiscSelectMask != qeid.MiscSelect { // QVL: applyMask(report) == identity value
		return nil, evidence.Errorf("qe_identity.miscselect_mismatch", "QE MISCSELECT %08x masked with %08x is not %08x", qer.MiscSelect, qeid.MiscSelectMask, qeid.MiscSelect)
	}
	for i := range qer.Attributes {
		if qer.Attributes[i]&qeid.AttributesMask[i] != qeid.Attributes[i] {
			return nil, evidence.Errorf("qe_identity.attributes_mismatch", "QE ATTRIBUTES %x masked with %x is not %x", qer.Attributes, qeid.AttributesMask, qeid.Attributes)
		}
	}
	qeLevel := -1
	for i, l := range qeid.Levels {
		if int(qer.ISVSVN) >= l.ISVSVN {
			qeLevel = i
			break
		}
	}
	if qeLevel < 0 {
		return nil, evidence.Errorf("qe_identity.no_matching_level", "QE ISVSVN %d is below every QE identity TCB level", qer.ISVSVN)
	}
	ql := qeid.Levels[qeLevel]
	if ql.Status == pcs.Revoked {
		return nil, evidence.Errorf("qe_identity.revoked", "QE TCB level isvsvn %d (QE ISVSVN %d) is Revoked", ql.ISVSVN, qer.ISVSVN)
	}

	// 7. Platform TCB level: the first level whose 16 SGX component SVNs and
	// PCESVN are all <= the PCK certificate's.
	lvl := -1
	for i, l := range tcb.Levels {
		if tcbAtLeast(&ext.TCB, &l) {
			lvl = i
			break
		}
	}
	if lvl < 0 {
		return nil, evidence.Errorf("tcb.no_matching_level", "PCK TCB (components %v, PCESVN %d) is below every TCB level of FMSPC %x", ext.TCB.CompSVN, ext.TCB.PCESVN, ext.FMSPC)
	}
	tl := tcb.Levels[lvl]
	if tl.Status == pcs.Revoked {
		return nil, evidence.Errorf("tcb.revoked", "platform TCB level %d (tcbDate %s) is Revoked", lvl, tl.TCBDate.Format(time.RFC3339))
	}

	res.PlatformStatus, res.QEStatus = tl.Status, ql.Status
	res.Status = Converge(tl.Status, ql.Status)
	res.TCBDate = tl.TCBDate
	res.TCBEvaluationDataNumber = tcb.TCBEvaluationDataNumber
	res.QETCBEvaluationDataNumber = qeid.TCBEvaluationDataNumber
	for _, a := range slices.Concat(tl.AdvisoryIDs, ql.AdvisoryIDs) {
		if !slices.Contains(res.AdvisoryIDs, a) {
			res.AdvisoryIDs = append(res.AdvisoryIDs, a)
		}
	}
	return res, nil
}

// VerifyQuoteOnly checks only what the quote proves by itself: the PCK
// chain's signatures up to a trusted root key, the QE report signature by the
// PCK key, the QE report binding of the attestation key and the quote
// signature. It checks no clock, CRL, TCB info or QE identity, so a quote
// that passes may come from a revoked or out-of-date platform: use it only
// for diagnostics, never to accept evidence.
func (v *Verifier) VerifyQuoteOnly(q *abi.Quote) error {
	_, err := v.verifyQuote(q)
	return err
}

// intelQEVendorID is the QE vendor ID of Intel's quoting enclave,
// 939A7233-F79C-4CA9-940A-0DB3957F0607, in header byte order.
var intelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

func (v *Verifier) verifyQuote(q *abi.Quote) (*chain, error) {
	// QVL rejects a quote from any other QE vendor before anything else: the
	// QE identity, TCB info and PCK chain it is checked against all describe
	// Intel's QE, so another vendor's quote has nothing to be verified by.
	if q.Header.QEVendorID != intelQEVendorID {
		return nil, evidence.Errorf("quote.qe_vendor_id", "QE vendor ID %x is not Intel's (939a7233f79c4ca9940a0db3957f0607)", q.Header.QEVendorID)
	}
	pck, err := v.pckChain(q)
	if err != nil {
		return nil, err
	}
	leaf := pck.certs[0]
	if !rawSig(leaf.PublicKey.(*ecdsa.PublicKey), q.QE.QEReport.Marshal(), q.QE.QEReportSignature) {
		return nil, evidence.Errorf("qe_report.signature", "QE report signature does not verify with the PCK key of %q", leaf.Subject.CommonName)
	}
	binding := sha256.Sum256(slices.Concat(q.AttestationKey, q.QE.QEAuthData))
	rd := q.QE.QEReport.ReportData
	if !bytes.Equal(rd[:32], binding[:]) {
		return nil, evidence.Errorf("qe_report.binding", "QE report data[0:32] %x is not SHA-256(attestation key || QE authentication data) %x", rd[:32], binding)
	}
	if !allZero(rd[32:]) {
		return nil, evidence.Errorf("qe_report.binding", "QE report data[32:64] must be zero")
	}
	ak, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey...))
	if err != nil {
		return nil, evidence.Errorf("quote.attestation_key", "attestation key is not a P-256 point: %v", err)
	}
	if !rawSig(ak, q.SignedBytes(), q.Signature) {
		return nil, evidence.Errorf("quote.signature", "quote signature over header and report body does not verify with the attestation key")
	}

	return pck, nil
}

func tcbAtLeast(p *pcs.PCKTCB, l *pcs.TCBLevel) bool {
	for i := range p.CompSVN {
		if p.CompSVN[i] < l.CompSVN[i] {
			return false
		}
	}
	return p.PCESVN >= l.PCESVN
}

// Converge merges the platform TCB status with the QE's, as QVL's
// convergeTcbStatusWithQeTcbStatus does: an out-of-date QE makes an
// up-to-date or SW-hardening platform OutOfDate and a configuration-needed
// one OutOfDateConfigurationNeeded; otherwise the platform status stands.
func Converge(platform, qe pcs.TCBStatus) pcs.TCBStatus {
	if qe == pcs.OutOfDate {
		switch platform {
		case pcs.UpToDate, pcs.SWHardeningNeeded:
			return pcs.OutOfDate
		case pcs.ConfigurationNeeded, pcs.ConfigurationAndSWHardeningNeeded:
			return pcs.OutOfDateConfigurationNeeded
		}
	}
	if qe == pcs.Revoked {
		return pcs.Revoked
	}
	return platform
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
