// Package dcap is the Intel DCAP trust core shared by the SGX and TDX
// verifiers: it checks what Intel's Quote Verification Library checks for an
// ECDSA quote, as separately callable stages, and never decides whether a
// TCB status is acceptable (that is the policy's job) except that Revoked
// levels are refused, as QVL does.
//
// The stages, in the order Verify runs them (each is exported on its own):
//
//  1. VerifyQuote: Intel QE vendor, PCK chain to a trusted root certificate
//     (PCKChain), QE report signature by the PCK key and its binding of the
//     attestation key, quote signature by the attestation key.
//  2. VerifyCollateral: issuer chains to the same root, the TCB signing role,
//     Root CA and PCK CA CRLs (issuer and signature), TCB info and QE identity
//     signatures over their exact bytes, then their parse.
//  3. CheckTime: collateral windows (issueDate/thisUpdate .. nextUpdate, with
//     Options.Grace), then certificate validity.
//  4. CheckRevocation: every certificate of every chain against its CA's CRL.
//  5. CheckPlatform, MatchQEIdentity, MatchTCBLevel (generic over the SGX
//     component vector, PCESVN and, for TDX, TEE_TCB_SVN), MatchTDXModule
//     (TDX), Converge.
//
// Everything that does not depend on the clock is cached, keyed by the exact
// bytes verified (certificate chains as delivered; documents and CRLs by the
// SHA-256 of their bytes, which the x-ms-sgx-collateral claim needs anyway,
// with the signature and the signer certificate); the clock-dependent checks
// run on every call. Every failure is
// an *evidence.Error whose Check is one of the constants in checks.go.
package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
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
	"github.com/attestd/attestd/internal/pemfile"
)

// Options configure a Verifier. Every external input is a field (the clock
// is an argument of Verify and CheckTime), so a test or an offline run can
// verify against other roots at another instant.
type Options struct {
	// Roots are the trusted root certificates; a chain is accepted only when
	// its root certificate is byte-for-byte one of them (as QVL compares
	// it), and its signatures verify with that certificate's key. nil means
	// DefaultRoots() (Intel). A test root is trusted only when passed here.
	Roots []*x509.Certificate
	// Grace accepts collateral documents (TCB info, QE identity, CRLs) whose
	// nextUpdate passed at most Grace ago. Zero (the default) accepts none.
	// When used, Result.GraceUsed names the documents, so the caller can say so.
	Grace time.Duration
	// CacheEntries bounds each verification cache; 0 means 1024.
	CacheEntries int
}

// Verifier runs the DCAP stages with caches. Safe for concurrent use.
type Verifier struct {
	roots []*x509.Certificate
	grace time.Duration
	// PCK chains and collateral signing chains are cached apart: the same
	// PEM bytes can be sent in either role (the TCB signing chain is public),
	// and a chain verified as one must never be served as the other.
	pckChains  *cache[*PCK]
	signChains *cache[*Chain]
	crls       *cache[*CRL]
	tcbInfos   *cache[*pcs.TCBInfo]
	qeIDs      *cache[*pcs.QEIdentity]
	// sumsMemo memoises the digests of the last sumSlots collateral sets
	// seen. Sources hand out shared, immutable *Collateral values (bundle,
	// cache), so pointer identity means identical bytes and the ~10 KB of
	// SHA-256 per quote is computed once per set; a source that returns
	// fresh copies simply misses. Several slots, so quotes of a few
	// platforms (FMSPCs, each its own set) arriving interleaved all hit.
	sumsMemo [sumSlots]atomic.Pointer[collSums]
	sumsNext atomic.Uint32 // slot of the last store
}

// New returns a Verifier for opts.
func New(opts Options) (*Verifier, error) {
	roots := opts.Roots
	if roots == nil {
		roots = DefaultRoots()
	}
	if len(roots) == 0 {
		return nil, errors.New("dcap: no trusted roots")
	}
	for _, r := range roots {
		if _, ok := r.PublicKey.(*ecdsa.PublicKey); !ok {
			return nil, fmt.Errorf("dcap: root %q does not have an ECDSA key", r.Subject)
		}
		if !r.IsCA {
			return nil, fmt.Errorf("dcap: root %q is not a CA certificate", r.Subject)
		}
	}
	if opts.Grace < 0 {
		return nil, errors.New("dcap: negative grace period")
	}
	n := opts.CacheEntries
	if n <= 0 {
		n = 1024
	}
	return &Verifier{
		roots: slices.Clone(roots), grace: opts.Grace,
		pckChains: newCache[*PCK](n), signChains: newCache[*Chain](n), crls: newCache[*CRL](n),
		tcbInfos: newCache[*pcs.TCBInfo](n), qeIDs: newCache[*pcs.QEIdentity](n),
	}, nil
}

// TEE selects the TCB info and QE identity flavour a verification expects.
type TEE string

// The TEEs DCAP verifies.
const (
	SGX TEE = "SGX" // SGX TCB info (v2/v3), QE identity "QE"
	TDX TEE = "TDX" // TDX TCB info (v3), QE identity "TD_QE"
)

// QEReport is the part of the quoting enclave's report the checks read.
type QEReport struct {
	MiscSelect uint32
	Attributes [16]byte
	MRSigner   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
	ReportData [64]byte
}

// Quote is the DCAP-signed part of an ECDSA quote (v3/v4/v5, SGX or TDX):
// the same structure whatever the TEE's report body.
type Quote struct {
	// Raw is the quote's exact bytes (only hashed, into Hashes.Quote).
	Raw        []byte
	QEVendorID [16]byte
	// SignedBytes is header || report body, what Signature covers.
	SignedBytes []byte
	Signature   []byte // raw r||s by the attestation key
	// AttestationKey is the P-256 public key x||y (64 bytes).
	AttestationKey []byte
	// QEReportBytes is the QE report as signed (384 bytes), QEReport its fields.
	QEReportBytes     []byte
	QEReport          QEReport
	QEReportSignature []byte // raw r||s by the PCK key
	QEAuthData        []byte
	// PCKChainPEM is the certification data (type 5): leaf, PCK CA, root.
	PCKChainPEM []byte
}

// Chain is a verified certificate chain: leaf first, root last, every
// signature checked up to a trusted root certificate.
type Chain struct {
	Certs  []*x509.Certificate
	anchor *x509.Certificate // the trusted root (== Certs[len-1] by bytes)
}

// Leaf returns the chain's first certificate.
func (c *Chain) Leaf() *x509.Certificate { return c.Certs[0] }

// Root returns the trusted root the chain ends at.
func (c *Chain) Root() *x509.Certificate { return c.anchor }

// PCK is a verified PCK chain with the platform identity of its leaf.
type PCK struct {
	Chain
	Ext *pcs.PCKExtensions
	CA  string // "processor" or "platform"
	// fmspc and pceid are Ext's in hex, encoded once for the cached chain
	// rather than on every quote.
	fmspc, pceid string
}

// FMSPCHex returns the FMSPC of the PCK certificate as 12 lower-case hex
// characters (Ext.FMSPCHex).
func (p *PCK) FMSPCHex() string {
	if p.fmspc == "" {
		return p.Ext.FMSPCHex()
	}
	return p.fmspc
}

// PCEIDHex returns the PCE ID as 4 lower-case hex characters (Ext.PCEIDHex).
func (p *PCK) PCEIDHex() string {
	if p.pceid == "" {
		return p.Ext.PCEIDHex()
	}
	return p.pceid
}

// CACert returns the PCK CA certificate (the leaf's issuer).
func (p *PCK) CACert() *x509.Certificate { return p.Certs[1] }

// Hashes are SHA-256 digests (lower-case hex) of the exact bytes that were
// verified; they double as cache keys and as MAA's x-ms-sgx-collateral claim.
type Hashes struct {
	Quote          string // the quote (without any OE header)
	TCBInfo        string // the signed "tcbInfo" JSON body
	TCBInfoCerts   string // TCBInfoIssuerChain as delivered (PEM)
	TCBInfoCRL     string // the Root CA CRL (DER): it is the CRL that covers the TCB info's signing chain
	QEIdentity     string // the signed "enclaveIdentity" JSON body
	QEIdentityCert string // QEIdentityIssuerChain as delivered (PEM)
	QEIdentityCRL  string // the Root CA CRL (DER), for the same reason
	PCKCRL         string // the PCK CA CRL (DER); not part of MAA's claim
	PCKCRLCerts    string // PCKCRLIssuerChain (PEM); not part of MAA's claim
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// keyBuf is the stack buffer for a document or CRL cache key: a digest, a
// signature and a ~700-byte signer certificate fit, so building the key
// does not allocate (a longer one spills to the heap, still correct).
const keyBuf = 1024

// cacheKey appends parts to dst, each after its length (4 bytes, big
// endian), so that two different lists of parts never give the same key.
func cacheKey(dst []byte, parts ...[]byte) []byte {
	for _, p := range parts {
		dst = append(dst, byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p)))
		dst = append(dst, p...)
	}
	return dst
}

func hexsum(h [32]byte) string { return hex.EncodeToString(h[:]) }

// collSums are the SHA-256 digests of one collateral set's members, and
// their hex form (Hashes without Quote).
type collSums struct {
	coll                            *collateral.Collateral
	root, pck, tcb, qe, tcbCs, qeCs [32]byte
	hashes                          Hashes
}

// sumSlots is how many collateral sets' digests a Verifier memoises; it
// bounds the memory the memo keeps alive (the sets themselves, a few tens
// of KB each).
const sumSlots = 8

func (v *Verifier) sums(c *collateral.Collateral) *collSums {
	for i := range v.sumsMemo {
		if s := v.sumsMemo[i].Load(); s != nil && s.coll == c {
			return s
		}
	}
	s := &collSums{coll: c, root: sum(c.RootCACRL), pck: sum(c.PCKCRL), tcb: sum(c.TCBInfo), qe: sum(c.QEIdentity),
		tcbCs: sum(c.TCBInfoIssuerChain), qeCs: sum(c.QEIdentityIssuerChain)}
	s.hashes = Hashes{
		TCBInfo: hexsum(s.tcb), TCBInfoCerts: hexsum(s.tcbCs), TCBInfoCRL: hexsum(s.root),
		QEIdentity: hexsum(s.qe), QEIdentityCert: hexsum(s.qeCs), QEIdentityCRL: hexsum(s.root),
		PCKCRL: hexsum(s.pck), PCKCRLCerts: hexsum(sum(c.PCKCRLIssuerChain)),
	}
	v.sumsMemo[v.sumsNext.Add(1)%sumSlots].Store(s)
	return s
}

// PCKChain parses and verifies (signatures only, no clock) a PCK chain and
// returns it with the platform identity in its leaf. Cached by the exact PEM
// bytes (not a digest of them: no SHA-256 of the chain on every quote, and
// only identical bytes share an entry).
func (v *Verifier) PCKChain(pemChain []byte) (*PCK, error) {
	if c, ok := v.pckChains.get(pemChain); ok {
		return c, nil
	}
	ch, err := v.verifyChain(pemChain, 3, CheckPCKChain)
	if err != nil {
		return nil, err
	}
	c := &PCK{Chain: *ch}
	leaf, inter := c.Certs[0], c.Certs[1]
	// QVL 4.1.2.4.4: the leaf must be a PCK certificate, whatever else the
	// PCK CA may sign.
	if leaf.IsCA || !strings.Contains(leaf.Subject.CommonName, "SGX PCK Certificate") {
		return nil, evidence.Errorf(CheckPCKChain, "leaf certificate %q is not an SGX PCK Certificate", leaf.Subject.CommonName)
	}
	switch {
	case strings.Contains(inter.Subject.CommonName, "Processor"):
		c.CA = collateral.CAProcessor
	case strings.Contains(inter.Subject.CommonName, "Platform"):
		c.CA = collateral.CAPlatform
	default:
		return nil, evidence.Errorf(CheckPCKChain, "PCK issuer %q is neither a PCK Processor CA nor a PCK Platform CA", inter.Subject.CommonName)
	}
	if c.Ext, err = pcs.ParsePCKExtensions(leaf); err != nil {
		return nil, evidence.Errorf(CheckPCKExtensions, "PCK certificate %q: %v", leaf.Subject.CommonName, err)
	}
	c.fmspc, c.pceid = c.Ext.FMSPCHex(), c.Ext.PCEIDHex()
	v.pckChains.put(pemChain, c)
	return c, nil
}

// verifyChain parses a PEM chain (leaf first) of exactly n certificates and
// checks every signature up to a trusted root certificate. Validity windows
// are checked separately (they depend on the clock, this result is cached).
func (v *Verifier) verifyChain(pemChain []byte, n int, check string) (*Chain, error) {
	certs, err := pemfile.ParseChain(pemChain)
	if err != nil {
		return nil, evidence.Errorf(check, "parse certificate chain: %v", err)
	}
	if len(certs) != n {
		return nil, evidence.Errorf(check, "chain has %d certificates, want %d (leaf … root)", len(certs), n)
	}
	root := certs[len(certs)-1]
	anchor := v.anchorFor(root)
	if anchor == nil {
		return nil, evidence.Errorf(check, "root certificate %q (SHA-256 %s) is not a trusted root: it is none of the %d configured root certificates%s", root.Subject.CommonName, certID(root), len(v.roots), v.sameKeyHint(root))
	}
	if !bytes.Equal(root.RawSubject, root.RawIssuer) {
		return nil, evidence.Errorf(check, "root certificate %q is not self-issued", root.Subject.CommonName)
	}
	for i := 0; i < len(certs)-1; i++ {
		child, parent := certs[i], certs[i+1]
		if i+1 == len(certs)-1 {
			parent = anchor // the trusted certificate verifies the first intermediate
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
	return &Chain{Certs: certs, anchor: anchor}, nil
}

// anchorFor returns the configured root certificate that is c, byte for
// byte. Intel's QVL compares the whole root certificate with its trusted
// one; a certificate that merely carries a trusted key (another subject,
// validity, extensions, or a re-issue by whoever holds the key) is not a
// trusted root.
func (v *Verifier) anchorFor(c *x509.Certificate) *x509.Certificate {
	for _, r := range v.roots {
		if bytes.Equal(c.Raw, r.Raw) {
			return r
		}
	}
	return nil
}

// sameKeyHint explains a refused root that carries a trusted key: the
// operator may need to add that certificate to the roots.
func (v *Verifier) sameKeyHint(c *x509.Certificate) string {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ""
	}
	for _, r := range v.roots {
		if pub.Equal(r.PublicKey) {
			return fmt.Sprintf(" (it carries the key of the trusted root %q, SHA-256 %s, but is another certificate)", r.Subject.CommonName, certID(r))
		}
	}
	return ""
}

func certID(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:8])
}

// SigningChain verifies a 2-certificate collateral signing chain (TCB
// signing certificate or PCK CA, root). Cached apart from PCK chains, by the
// exact PEM bytes.
func (v *Verifier) SigningChain(pemChain []byte, check string) (*Chain, error) {
	if len(pemChain) == 0 {
		return nil, evidence.Errorf(check, "issuer chain missing from collateral")
	}
	if c, ok := v.signChains.get(pemChain); ok {
		return c, nil
	}
	c, err := v.verifyChain(pemChain, 2, check)
	if err != nil {
		return nil, err
	}
	v.signChains.put(pemChain, c)
	return c, nil
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

// CRL is a parsed CRL whose issuer and signature verified.
type CRL struct {
	CRL     *x509.RevocationList
	revoked map[string]bool // serial numbers of revoked certificates, as serialKey
}

// serialKey is a map key for a serial number: its sign and big-endian
// magnitude (cheaper than decimal text, which allocated on every quote).
func serialKey(n *big.Int) []byte {
	return append([]byte{byte(n.Sign() + 1)}, n.Bytes()...)
}

// Revokes reports whether the CRL lists cert's serial number. The key is
// serialKey's, built in a stack buffer (FillBytes at the magnitude's exact
// length is n.Bytes()), so the check allocates nothing on every quote.
func (c *CRL) Revokes(cert *x509.Certificate) bool {
	n := cert.SerialNumber
	var buf [64]byte
	l := (n.BitLen() + 7) / 8
	if l >= len(buf) {
		return c.revoked[string(serialKey(n))]
	}
	k := buf[:1+l]
	k[0] = byte(n.Sign() + 1)
	n.FillBytes(k[1:])
	return c.revoked[string(k)]
}

// crlChecks are the check names of one CRL role.
type crlChecks struct{ missing, parse, issuer, signature string }

var (
	rootCRLChecks = crlChecks{CheckRootCRLMissing, CheckRootCRLParse, CheckRootCRLIssuer, CheckRootCRLSignature}
	pckCRLChecks  = crlChecks{CheckPCKCRLMissing, CheckPCKCRLParse, CheckPCKCRLIssuer, CheckPCKCRLSignature}
)

// verifyCRL parses a DER CRL and checks its issuer name and signature against issuer.
func (v *Verifier) verifyCRL(der []byte, derSum [32]byte, issuer *x509.Certificate, name string, ck crlChecks) (*CRL, error) {
	if len(der) == 0 {
		return nil, evidence.Errorf(ck.missing, "%s missing from collateral", name)
	}
	var buf [keyBuf]byte
	key := cacheKey(buf[:0], derSum[:], issuer.Raw)
	if c, ok := v.crls.get(key); ok {
		return c, nil
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, evidence.Errorf(ck.parse, "%v", err)
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return nil, evidence.Errorf(ck.issuer, "CRL issuer %q is not %q", crl.Issuer.CommonName, issuer.Subject.CommonName)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, evidence.Errorf(ck.signature, "CRL signature by %q: %v", issuer.Subject.CommonName, err)
	}
	if crl.NextUpdate.IsZero() {
		return nil, evidence.Errorf(ck.parse, "CRL has no nextUpdate")
	}
	vc := &CRL{CRL: crl, revoked: map[string]bool{}}
	for _, e := range crl.RevokedCertificateEntries {
		vc.revoked[string(serialKey(e.SerialNumber))] = true
	}
	v.crls.put(key, vc)
	return vc, nil
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

// intelQEVendorID is the QE vendor ID of Intel's quoting enclave,
// 939A7233-F79C-4CA9-940A-0DB3957F0607, in header byte order.
var intelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// CheckQEVendor refuses a quote from any QE vendor but Intel. QVL checks it
// before anything else: the QE identity, TCB info and PCK chain a quote is
// checked against all describe Intel's QE, so another vendor's quote has
// nothing to be verified by.
func CheckQEVendor(id [16]byte) error {
	if id != intelQEVendorID {
		return evidence.Errorf(CheckQEVendorID, "QE vendor ID %x is not Intel's (939a7233f79c4ca9940a0db3957f0607)", id)
	}
	return nil
}

// VerifyQuote checks what the quote proves by itself: Intel's QE vendor ID,
// the PCK chain's signatures up to a trusted root, the QE report signature
// by the PCK key, the QE report binding of the attestation key and the quote
// signature. It checks no clock, CRL, TCB info or QE identity: alone it is a
// diagnostic, never acceptance.
func (v *Verifier) VerifyQuote(q *Quote) (*PCK, error) {
	if err := CheckQEVendor(q.QEVendorID); err != nil {
		return nil, err
	}
	pck, err := v.PCKChain(q.PCKChainPEM)
	if err != nil {
		return nil, err
	}
	if err := VerifyQEReport(pck, q); err != nil {
		return nil, err
	}
	if err := VerifyQuoteSignature(q); err != nil {
		return nil, err
	}
	return pck, nil
}

// VerifyQEReport checks the QE report's signature by the PCK leaf's key and
// that its report data is SHA-256(attestation key || QE auth data) || zeros.
func VerifyQEReport(pck *PCK, q *Quote) error {
	leaf := pck.Leaf()
	if !rawSig(leaf.PublicKey.(*ecdsa.PublicKey), q.QEReportBytes, q.QEReportSignature) {
		return evidence.Errorf(CheckQEReportSignature, "QE report signature does not verify with the PCK key of %q", leaf.Subject.CommonName)
	}
	binding := sha256.Sum256(slices.Concat(q.AttestationKey, q.QEAuthData))
	rd := &q.QEReport.ReportData
	if !bytes.Equal(rd[:32], binding[:]) {
		return evidence.Errorf(CheckQEReportBinding, "QE report data[0:32] %x is not SHA-256(attestation key || QE authentication data) %x", rd[:32], binding)
	}
	if !allZero(rd[32:]) {
		return evidence.Errorf(CheckQEReportBinding, "QE report data[32:64] must be zero")
	}
	return nil
}

// VerifyQuoteSignature checks the quote signature over header || body by
// the attestation key.
func VerifyQuoteSignature(q *Quote) error {
	ak, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey...))
	if err != nil {
		return evidence.Errorf(CheckAttestationKey, "attestation key is not a P-256 point: %v", err)
	}
	if !rawSig(ak, q.SignedBytes, q.Signature) {
		return evidence.Errorf(CheckQuoteSignature, "quote signature over header and report body does not verify with the attestation key")
	}
	return nil
}

// VerifiedCollateral is collateral whose chains, CRLs and signed documents
// verified for one PCK chain (no clock checked yet).
type VerifiedCollateral struct {
	RootCRL, PCKCRL                *CRL
	PCKCRLChain, TCBChain, QEChain *Chain
	TCBInfo                        *pcs.TCBInfo
	QEIdentity                     *pcs.QEIdentity
	// Hashes are the digests of the documents (Quote left empty).
	Hashes Hashes
}

// VerifyCollateral checks coll for the platform of pck: the Root CA CRL by
// pck's root, the PCK CRL and its issuer chain by pck's CA, the signing
// chains to the same root and in the TCB signing role, the TCB info and QE
// identity signatures over their exact bytes, then their parse for tee.
func (v *Verifier) VerifyCollateral(coll *collateral.Collateral, pck *PCK, tee TEE) (*VerifiedCollateral, error) {
	if coll == nil {
		return nil, evidence.Errorf(CheckCollateralMissing, "no collateral")
	}
	cs := v.sums(coll)
	out := &VerifiedCollateral{Hashes: cs.hashes}
	root, pckCA := pck.Root(), pck.CACert()
	var err error
	if out.RootCRL, err = v.verifyCRL(coll.RootCACRL, cs.root, root, "root_crl", rootCRLChecks); err != nil {
		return nil, err
	}
	if out.PCKCRLChain, err = v.SigningChain(coll.PCKCRLIssuerChain, CheckPCKCRLIssuerChain); err != nil {
		return nil, err
	}
	if crlCA := out.PCKCRLChain.Leaf(); !bytes.Equal(crlCA.RawSubject, pckCA.RawSubject) || !sameKey(crlCA, pckCA) {
		return nil, evidence.Errorf(CheckPCKCRLIssuer, "PCK CRL issuer chain is for %q, the PCK certificate was issued by %q", crlCA.Subject.CommonName, pckCA.Subject.CommonName)
	}
	if out.PCKCRL, err = v.verifyCRL(coll.PCKCRL, cs.pck, pckCA, "pck_crl", pckCRLChecks); err != nil {
		return nil, err
	}
	if out.TCBChain, err = v.SigningChain(coll.TCBInfoIssuerChain, CheckTCBInfoIssuerChain); err != nil {
		return nil, err
	}
	if out.QEChain, err = v.SigningChain(coll.QEIdentityIssuerChain, CheckQEIdentityIssuerChain); err != nil {
		return nil, err
	}
	// All chains must end at the same trusted root as the PCK chain: the
	// Root CA CRL checked here is that root's, and mixing roots (e.g. a test
	// root configured beside Intel's) must not let one vouch for the other.
	for _, c := range []struct {
		ch    *Chain
		check string
	}{{out.PCKCRLChain, CheckPCKCRLIssuerChain}, {out.TCBChain, CheckTCBInfoIssuerChain}, {out.QEChain, CheckQEIdentityIssuerChain}} {
		if !samePublicKey(c.ch.Root(), root) {
			return nil, evidence.Errorf(c.check, "issuer chain ends at %q (SHA-256 %s), not at the root of the PCK chain (SHA-256 %s)", c.ch.Root().Subject.CommonName, certID(c.ch.Root()), certID(root))
		}
	}
	for _, c := range []struct {
		ch    *Chain
		check string
	}{{out.TCBChain, CheckTCBInfoIssuerChain}, {out.QEChain, CheckQEIdentityIssuerChain}} {
		if err := isTCBSigner(c.ch.Leaf(), c.check); err != nil {
			return nil, err
		}
	}
	if out.TCBInfo, err = v.tcbInfo(coll, out.TCBChain.Leaf(), cs.tcb, tee); err != nil {
		return nil, err
	}
	if out.QEIdentity, err = v.qeIdentity(coll, out.QEChain.Leaf(), cs.qe, tee); err != nil {
		return nil, err
	}
	return out, nil
}

// sameKey reports whether a and b carry the same ECDSA public key: equal
// SubjectPublicKeyInfo bytes first (a comparison, where ecdsa's Equal
// converts both keys on every quote), then the keys themselves, so the
// answer is Equal's for every pair.
func sameKey(a, b *x509.Certificate) bool {
	return bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) || a.PublicKey.(*ecdsa.PublicKey).Equal(b.PublicKey)
}

// samePublicKey: the two trusted certificates of Intel's root key are one
// root (the Root CA CRL is signed by the key), so chains may end at either.
func samePublicKey(a, b *x509.Certificate) bool {
	return a == b || a.PublicKey.(*ecdsa.PublicKey).Equal(b.PublicKey)
}

func (v *Verifier) tcbInfo(coll *collateral.Collateral, signer *x509.Certificate, h [32]byte, tee TEE) (*pcs.TCBInfo, error) {
	if len(coll.TCBInfo) == 0 {
		return nil, evidence.Errorf(CheckTCBInfoMissing, "TCB info missing from collateral")
	}
	var buf [keyBuf]byte
	key := cacheKey(buf[:0], h[:], coll.TCBInfoSignature, signer.Raw, []byte(tee))
	if t, ok := v.tcbInfos.get(key); ok {
		return t, nil
	}
	if !rawSig(signer.PublicKey.(*ecdsa.PublicKey), coll.TCBInfo, coll.TCBInfoSignature) {
		return nil, evidence.Errorf(CheckTCBInfoSignature, "TCB info signature (%d bytes) does not verify with the TCB signing key of %q over the %d signed JSON bytes", len(coll.TCBInfoSignature), signer.Subject.CommonName, len(coll.TCBInfo))
	}
	parse := pcs.ParseTCBInfo
	if tee == TDX {
		parse = pcs.ParseTDXTCBInfo
	}
	t, err := parse(coll.TCBInfo)
	if err != nil {
		return nil, evidence.Errorf(CheckTCBInfoParse, "%v", err)
	}
	v.tcbInfos.put(key, t)
	return t, nil
}

func (v *Verifier) qeIdentity(coll *collateral.Collateral, signer *x509.Certificate, h [32]byte, tee TEE) (*pcs.QEIdentity, error) {
	if len(coll.QEIdentity) == 0 {
		return nil, evidence.Errorf(CheckQEIdentityMissing, "QE identity missing from collateral")
	}
	var buf [keyBuf]byte
	key := cacheKey(buf[:0], h[:], coll.QEIdentitySignature, signer.Raw, []byte(tee))
	if t, ok := v.qeIDs.get(key); ok {
		return t, nil
	}
	if !rawSig(signer.PublicKey.(*ecdsa.PublicKey), coll.QEIdentity, coll.QEIdentitySignature) {
		return nil, evidence.Errorf(CheckQEIdentitySignature, "QE identity signature (%d bytes) does not verify with the TCB signing key of %q over the %d signed JSON bytes", len(coll.QEIdentitySignature), signer.Subject.CommonName, len(coll.QEIdentity))
	}
	want := pcs.IDQE
	if tee == TDX {
		want = pcs.IDTDQE
	}
	t, err := pcs.ParseEnclaveIdentity(coll.QEIdentity, want)
	if err != nil {
		return nil, evidence.Errorf(CheckQEIdentityParse, "%v", err)
	}
	v.qeIDs.put(key, t)
	return t, nil
}

// windowChecks are the check names of one dated document.
type windowChecks struct{ name, notYet, expired string }

var (
	tcbInfoWindow    = windowChecks{"tcb_info", CheckTCBInfoNotYetValid, CheckTCBInfoExpired}
	qeIdentityWindow = windowChecks{"qe_identity", CheckQEIdentityNotYetValid, CheckQEIdentityExpired}
	rootCRLWindow    = windowChecks{"root_crl", CheckRootCRLNotYetValid, CheckRootCRLExpired}
	pckCRLWindow     = windowChecks{"pck_crl", CheckPCKCRLNotYetValid, CheckPCKCRLExpired}
	pckCertWindow    = windowChecks{"pck_chain", CheckPCKChainNotYetValid, CheckPCKChainExpired}
	rootCertWindow   = windowChecks{"root_ca", CheckRootCANotYetValid, CheckRootCAExpired}
	signCertWindow   = windowChecks{"collateral_signing_cert", CheckCollateralSigningCertNotYetValid, CheckCollateralSigningCertExpired}
)

// CheckTime checks, at now, the collateral windows first (they are what
// goes stale: issueDate/thisUpdate <= now <= nextUpdate, plus Options.Grace
// past nextUpdate), then the validity of every certificate of pck and of
// the collateral signing chains' leaves. It returns the documents accepted
// only because of the grace period ("tcb_info", "qe_identity", "root_crl",
// "pck_crl").
func (v *Verifier) CheckTime(now time.Time, pck *PCK, c *VerifiedCollateral) (graceUsed []string, err error) {
	for _, w := range []struct {
		ck         windowChecks
		issue, nxt time.Time
	}{
		{tcbInfoWindow, c.TCBInfo.IssueDate, c.TCBInfo.NextUpdate},
		{qeIdentityWindow, c.QEIdentity.IssueDate, c.QEIdentity.NextUpdate},
		{rootCRLWindow, c.RootCRL.CRL.ThisUpdate, c.RootCRL.CRL.NextUpdate},
		{pckCRLWindow, c.PCKCRL.CRL.ThisUpdate, c.PCKCRL.CRL.NextUpdate},
	} {
		graced, err := v.window(now, w.issue, w.nxt, w.ck)
		if err != nil {
			return nil, err
		}
		if graced {
			graceUsed = append(graceUsed, w.ck.name)
		}
	}
	for _, cert := range pck.Certs {
		if err := certWindow(now, cert, pckCertWindow); err != nil {
			return nil, err
		}
	}
	if err := certWindow(now, pck.Root(), rootCertWindow); err != nil {
		return nil, err
	}
	for _, ch := range []*Chain{c.PCKCRLChain, c.TCBChain, c.QEChain} {
		if err := certWindow(now, ch.Leaf(), signCertWindow); err != nil {
			return nil, err
		}
	}
	return graceUsed, nil
}

// window checks issue <= now <= next (+grace). It returns whether grace was used.
func (v *Verifier) window(now, issue, next time.Time, ck windowChecks) (bool, error) {
	if now.Before(issue) {
		return false, evidence.Errorf(ck.notYet, "%s is valid from %s, verification time is %s", ck.name, issue.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(next) {
		if v.grace > 0 && !now.After(next.Add(v.grace)) {
			return true, nil
		}
		return false, evidence.Errorf(ck.expired, "%s expired at %s (nextUpdate), verification time is %s", ck.name, next.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return false, nil
}

func certWindow(now time.Time, c *x509.Certificate, ck windowChecks) error {
	if now.Before(c.NotBefore) {
		return evidence.Errorf(ck.notYet, "certificate %q is valid from %s, verification time is %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return evidence.Errorf(ck.expired, "certificate %q expired at %s, verification time is %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckRevocation checks every certificate below the root against the CRL
// of its issuer: the PCK CA and the TCB signing certificates against the Root
// CA CRL, the PCK certificate against the PCK CA CRL.
func CheckRevocation(pck *PCK, c *VerifiedCollateral) error {
	pckCA := pck.CACert()
	if c.RootCRL.Revokes(pckCA) {
		return evidence.Errorf(CheckPCKCARevoked, "PCK CA %q (serial %s) is revoked by the Root CA CRL", pckCA.Subject.CommonName, pckCA.SerialNumber)
	}
	for _, ch := range []*Chain{c.TCBChain, c.QEChain} {
		if c.RootCRL.Revokes(ch.Leaf()) {
			return evidence.Errorf(CheckTCBSigningRevoked, "TCB signing certificate %q (serial %s) is revoked by the Root CA CRL", ch.Leaf().Subject.CommonName, ch.Leaf().SerialNumber)
		}
	}
	if c.PCKCRL.Revokes(pck.Leaf()) {
		return evidence.Errorf(CheckPCKRevoked, "PCK certificate (serial %s) is revoked by the %s CRL", pck.Leaf().SerialNumber, pckCA.Subject.CommonName)
	}
	return nil
}

// CheckPlatform checks that the TCB info is for the PCK certificate's
// platform (FMSPC and PCE ID).
func CheckPlatform(ext *pcs.PCKExtensions, tcb *pcs.TCBInfo) error {
	if tcb.FMSPC != ext.FMSPC {
		return evidence.Errorf(CheckTCBInfoFMSPC, "TCB info is for FMSPC %x, the PCK certificate has FMSPC %x", tcb.FMSPC, ext.FMSPC)
	}
	if tcb.PCEID != ext.PCEID {
		return evidence.Errorf(CheckTCBInfoPCEID, "TCB info is for PCE ID %x, the PCK certificate has PCE ID %x", tcb.PCEID, ext.PCEID)
	}
	return nil
}

// MatchQEIdentity checks the QE report against the QE identity (MRSIGNER,
// ISVPRODID, masked MISCSELECT and ATTRIBUTES) and returns the first QE TCB
// level whose ISVSVN the QE reaches; a Revoked level is refused.
func MatchQEIdentity(qeid *pcs.QEIdentity, qer *QEReport) (pcs.QELevel, error) {
	if qer.MRSigner != qeid.MRSigner {
		return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityMRSigner, "QE MRSIGNER %x is not %x", qer.MRSigner, qeid.MRSigner)
	}
	if qer.ISVProdID != qeid.ISVProdID {
		return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityISVProdID, "QE ISVPRODID %d is not %d", qer.ISVProdID, qeid.ISVProdID)
	}
	if qer.MiscSelect&qeid.MiscSelectMask != qeid.MiscSelect { // QVL: applyMask(report) == identity value
		return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityMiscSelect, "QE MISCSELECT %08x masked with %08x is not %08x", qer.MiscSelect, qeid.MiscSelectMask, qeid.MiscSelect)
	}
	for i := range qer.Attributes {
		if qer.Attributes[i]&qeid.AttributesMask[i] != qeid.Attributes[i] {
			return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityAttributes, "QE ATTRIBUTES %x masked with %x is not %x", qer.Attributes, qeid.AttributesMask, qeid.Attributes)
		}
	}
	for _, l := range qeid.Levels {
		if int(qer.ISVSVN) >= l.ISVSVN {
			if l.Status == pcs.Revoked {
				return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityRevoked, "QE TCB level isvsvn %d (QE ISVSVN %d) is Revoked", l.ISVSVN, qer.ISVSVN)
			}
			return l, nil
		}
	}
	return pcs.QELevel{}, evidence.Errorf(CheckQEIdentityNoLevel, "QE ISVSVN %d is below every QE identity TCB level", qer.ISVSVN)
}

// PlatformTCB is the TCB a platform reports, compared component by
// component with the TCB info's levels.
type PlatformTCB struct {
	// SGX are the 16 SGX TCB component SVNs and PCESVN of the PCK certificate.
	SGX    [16]int
	PCESVN int
	// TDX is the TD report's TEE_TCB_SVN (TDX only; nil for SGX).
	TDX *[16]byte
}

// AtLeast reports whether p reaches level l: every SGX component, PCESVN
// and (TDX) every TEE_TCB_SVN byte at or above the level's. For TDX, when
// TEE_TCB_SVN[1] (the module's major version) is non-zero, bytes 0 and 1 are
// the module's SVN and version, judged by MatchTDXModule instead, so the
// comparison starts at byte 2 (as Intel's QVL and go-tdx-guest do).
func (p *PlatformTCB) AtLeast(l *pcs.TCBLevel) bool {
	for i := range p.SGX {
		if p.SGX[i] < l.CompSVN[i] {
			return false
		}
	}
	if p.PCESVN < l.PCESVN {
		return false
	}
	if p.TDX != nil {
		start := 0
		if p.TDX[1] > 0 {
			start = 2
		}
		for i := start; i < len(p.TDX); i++ {
			if int(p.TDX[i]) < l.TDXCompSVN[i] {
				return false
			}
		}
	}
	return true
}

// MatchTCBLevel returns the index of the first TCB level p reaches (levels
// are ordered newest first, so it is the best one); a Revoked level is refused.
func MatchTCBLevel(tcb *pcs.TCBInfo, p *PlatformTCB) (int, error) {
	for i := range tcb.Levels {
		l := &tcb.Levels[i]
		if !p.AtLeast(l) {
			continue
		}
		if l.Status == pcs.Revoked {
			return -1, evidence.Errorf(CheckTCBRevoked, "platform TCB level %d (tcbDate %s) is Revoked", i, l.TCBDate.Format(time.RFC3339))
		}
		return i, nil
	}
	if p.TDX != nil {
		return -1, evidence.Errorf(CheckTCBNoLevel, "platform TCB (components %v, PCESVN %d, TEE_TCB_SVN %x) is below every TCB level of FMSPC %x", p.SGX, p.PCESVN, p.TDX[:], tcb.FMSPC)
	}
	return -1, evidence.Errorf(CheckTCBNoLevel, "PCK TCB (components %v, PCESVN %d) is below every TCB level of FMSPC %x", p.SGX, p.PCESVN, tcb.FMSPC)
}

// TDXModuleReport is what a TD report says about its TDX module.
type TDXModuleReport struct {
	TEETCBSVN      [16]byte // [0] module ISVSVN, [1] module major version
	MRSignerSeam   [48]byte
	SEAMAttributes [8]byte
}

// MatchTDXModule checks the TD's TDX module against a TDX TCB info. A
// module of major version 0 (TDX 1.0, TEE_TCB_SVN[1] == 0) is checked against
// "tdxModule" and has no level of its own (ok false). Later modules are
// checked against the "tdxModuleIdentities" entry TDX_<version> and matched
// to its first level whose ISVSVN the module's TEE_TCB_SVN[0] reaches; a
// Revoked level is refused.
func MatchTDXModule(tcb *pcs.TCBInfo, m *TDXModuleReport) (level pcs.TDXModuleLevel, ok bool, err error) {
	check := func(id string, want *pcs.TDXModule) error {
		if m.MRSignerSeam != want.MRSigner {
			return evidence.Errorf(CheckTDXModuleMRSigner, "TDX module MRSIGNER_SEAM %x is not %s's %x", m.MRSignerSeam, id, want.MRSigner)
		}
		for i := range m.SEAMAttributes {
			if m.SEAMAttributes[i]&want.AttributesMask[i] != want.Attributes[i] {
				return evidence.Errorf(CheckTDXModuleAttributes, "TDX module SEAM attributes %x masked with %x are not %s's %x", m.SEAMAttributes, want.AttributesMask, id, want.Attributes)
			}
		}
		return nil
	}
	if tcb.TDXModule == nil {
		return level, false, evidence.Errorf(CheckTCBInfoParse, "TCB info has no tdxModule: not TDX TCB info")
	}
	version := m.TEETCBSVN[1]
	if version == 0 {
		return level, false, check("tdxModule", tcb.TDXModule)
	}
	id := fmt.Sprintf("TDX_%02X", version)
	for _, mi := range tcb.TDXModuleIdentities {
		if !strings.EqualFold(mi.ID, id) {
			continue
		}
		if err := check(mi.ID, &mi.TDXModule); err != nil {
			return level, false, err
		}
		for _, l := range mi.Levels {
			if int(m.TEETCBSVN[0]) >= l.ISVSVN {
				if l.Status == pcs.Revoked {
					return level, false, evidence.Errorf(CheckTDXModuleRevoked, "TDX module %s level isvsvn %d (module ISVSVN %d) is Revoked", mi.ID, l.ISVSVN, m.TEETCBSVN[0])
				}
				return l, true, nil
			}
		}
		return level, false, evidence.Errorf(CheckTDXModuleNoLevel, "TDX module %s ISVSVN %d is below every level of its module identity", mi.ID, m.TEETCBSVN[0])
	}
	return level, false, evidence.Errorf(CheckTDXModuleIdentity, "TCB info has no TDX module identity %s (TEE_TCB_SVN[1] = %d)", id, version)
}

// Converge merges the platform TCB status with the status of a component
// judged apart (the QE, or the TDX module), as QVL's
// convergeTcbStatusWithQeTcbStatus (and its TDX module counterpart) does: an
// out-of-date component makes an up-to-date or SW-hardening platform
// OutOfDate and a configuration-needed one OutOfDateConfigurationNeeded; a
// revoked one makes it Revoked; otherwise the platform status stands.
func Converge(platform, component pcs.TCBStatus) pcs.TCBStatus {
	if component == pcs.OutOfDate {
		switch platform {
		case pcs.UpToDate, pcs.SWHardeningNeeded:
			return pcs.OutOfDate
		case pcs.ConfigurationNeeded, pcs.ConfigurationAndSWHardeningNeeded:
			return pcs.OutOfDateConfigurationNeeded
		}
	}
	if component == pcs.Revoked {
		return pcs.Revoked
	}
	return platform
}

// MergeAdvisories concatenates advisory ID lists in order without duplicates.
func MergeAdvisories(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TCBInfo verifies coll's TCB info signature by signer over the exact bytes
// and parses it for tee (cached). VerifyCollateral calls it after checking
// signer's chain and role; a caller of its own must check those first.
func (v *Verifier) TCBInfo(coll *collateral.Collateral, signer *x509.Certificate, tee TEE) (*pcs.TCBInfo, error) {
	return v.tcbInfo(coll, signer, sum(coll.TCBInfo), tee)
}
