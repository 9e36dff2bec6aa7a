// Package verify checks AMD SEV-SNP evidence parsed by evidence/snp/abi: the
// endorsement key certificate (VCEK or VLEK) up to a trusted AMD root
// (ARK → ASK for a VCEK, ARK → ASVK for a VLEK), the report's ECDSA P-384
// signature by that key, the reported TCB against the TCB the VCEK was
// issued for, the chip ID against the VCEK's hardware ID, the product named
// by the chain against the report's CPUID fields (reports v3+), and, when a
// revocation source is configured, AMD's CRL of the product.
//
// Built from go-sev-guest's exported pieces (certificate extensions, report
// signature, product names) rather than its verify.SnpAttestation, so that:
// each failure is a named check; nothing fetches from the network (its
// Options fetch missing certificates from AMD KDS unless told not to, with a
// global HTTP client); the time is the caller's instant on every call (its
// cached CRLs never go stale with a zero Now); roots are this Verifier's,
// never a process-wide cache; and the chain is verified once per endorsement
// key and root (2.7 ms with RSA-4096-PSS each time otherwise) while its
// validity window is still checked on every call.
package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/abi"
)

// The checks this package names in its *evidence.Error values.
const (
	// CheckEndorsementMissing: the evidence carries no VCEK/VLEK for its
	// signer and no endorsement source is configured (or it has none).
	CheckEndorsementMissing evidence.Check = "snp.endorsement.missing"
	// CheckEndorsementUnavailable: the endorsement source (AMD KDS) could not
	// be reached or refused for now (e.g. 429); the evidence was not judged.
	CheckEndorsementUnavailable evidence.Check = "snp.endorsement.unavailable"
	// CheckEndorsementFormat: the VCEK/VLEK is not a certificate of the form
	// AMD KDS issues (version, RSA-PSS signature, P-384 key, extensions).
	CheckEndorsementFormat evidence.Check = "snp.endorsement.format"
	// CheckEndorsementChain: the VCEK/VLEK does not chain to a trusted root
	// of its product line.
	CheckEndorsementChain evidence.Check = "snp.endorsement.chain"
	// CheckEndorsementExpired / CheckEndorsementNotYetValid: a certificate of
	// the chain is outside its validity window at the verification instant.
	CheckEndorsementExpired     evidence.Check = "snp.endorsement.expired"
	CheckEndorsementNotYetValid evidence.Check = "snp.endorsement.not_yet_valid"
	// CheckEndorsementRevoked: AMD's CRL of the product revokes the ASK/ASVK
	// or the endorsement key.
	CheckEndorsementRevoked evidence.Check = "snp.endorsement.revoked"
	// CheckCRL: the configured CRL source failed or served a CRL that is not
	// signed by the ARK or is out of its window.
	CheckCRL evidence.Check = "snp.crl"
	// CheckSignature: the report's signature does not verify with the key.
	CheckSignature evidence.Check = "snp.report.signature"
	// CheckSigner: the report names a signing key this verifier does not
	// accept (not VCEK or VLEK), or the key's certificate is of the other kind.
	CheckSigner evidence.Check = "snp.report.signer"
	// CheckTCB: the VCEK was issued for another TCB than the report's
	// REPORTED_TCB.
	CheckTCB evidence.Check = "snp.tcb.endorsement_mismatch"
	// CheckChipID: the report's CHIP_ID is not the VCEK's hardware ID.
	CheckChipID evidence.Check = "snp.chip_id"
	// CheckProduct: the product line of the chain is not the one the report's
	// CPUID fields name, or is unknown.
	CheckProduct evidence.Check = "snp.product"
)

// ProductRoots are the trusted certificates of one AMD product line.
type ProductRoots struct {
	Line string            // "Milan", "Genoa", "Turin"
	ARK  *x509.Certificate // AMD Root Key (trust anchor)
	ASK  *x509.Certificate // AMD SEV Key: issues VCEKs (nil: no VCEK accepted)
	ASVK *x509.Certificate // AMD SEV VLEK Key: issues VLEKs (nil: no VLEK accepted)
}

// DefaultRoots returns AMD's published roots for Milan, Genoa and Turin
// (VCEK and VLEK chains), as go-sev-guest embeds them from AMD KDS
// (kdsintf.amd.com/vcek/v1/<product>/cert_chain, …/vlek/v1/…). A fresh copy
// each call: callers may not change the library's values.
func DefaultRoots() []ProductRoots {
	bundles := []struct {
		line       string
		vcek, vlek []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	}
	var out []ProductRoots
	for _, b := range bundles {
		vc, err1 := abi.Certificates(b.vcek)
		vl, err2 := abi.Certificates(b.vlek)
		if err1 != nil || err2 != nil {
			// The embedded bundles are fixed bytes of a pinned module;
			// a failure here is a broken build, not bad input.
			panic(fmt.Sprintf("snp: embedded AMD roots for %s: %v %v", b.line, err1, err2))
		}
		r := ProductRoots{Line: b.line}
		r.ARK, _ = x509.ParseCertificate(vc.ARK)
		r.ASK, _ = x509.ParseCertificate(vc.ASK)
		r.ASVK, _ = x509.ParseCertificate(vl.ASVK)
		out = append(out, r)
	}
	return out
}

// RootsFromPEM reads a product line's roots from a PEM bundle (ARK plus ASK
// and/or ASVK, as AMD KDS serves cert_chain). line names the product.
func RootsFromPEM(line string, pemBytes []byte) (ProductRoots, error) {
	c, err := abi.Certificates(pemBytes)
	if err != nil {
		return ProductRoots{}, err
	}
	if c.ARK == nil || (c.ASK == nil && c.ASVK == nil) {
		return ProductRoots{}, errors.New("a root bundle needs an ARK and an ASK or ASVK")
	}
	if c.VCEK != nil || c.VLEK != nil {
		return ProductRoots{}, errors.New("a root bundle may not hold an endorsement key (VCEK/VLEK)")
	}
	r := ProductRoots{Line: line}
	parse := func(der []byte) *x509.Certificate {
		if der == nil {
			return nil
		}
		crt, _ := x509.ParseCertificate(der)
		return crt
	}
	r.ARK, r.ASK, r.ASVK = parse(c.ARK), parse(c.ASK), parse(c.ASVK)
	for _, ica := range []*x509.Certificate{r.ASK, r.ASVK} {
		if ica != nil {
			if err := ica.CheckSignatureFrom(r.ARK); err != nil {
				return ProductRoots{}, fmt.Errorf("%s is not signed by %s: %v", ica.Subject.CommonName, r.ARK.Subject.CommonName, err)
			}
		}
	}
	return r, nil
}

// EndorsementRequest names the VCEK to fetch for a report.
type EndorsementRequest struct {
	ProductLine string
	ChipID      []byte // 64 bytes
	TCB         uint64 // REPORTED_TCB
}

// EndorsementSource fetches the VCEK of a chip at a TCB (AMD KDS, a
// directory). It returns the certificate's DER. An error wrapping
// ErrUnavailable means "try later", anything else "no such certificate".
type EndorsementSource interface {
	VCEK(ctx context.Context, req EndorsementRequest) ([]byte, error)
}

// ErrUnavailable marks a transient failure of a source (it is
// evidence.ErrUnavailable, which the pipeline answers with 503).
var ErrUnavailable = evidence.ErrUnavailable

// CRLSource returns AMD's current CRL of a product line (DER); the verifier
// checks its signature by the ARK and its window itself.
type CRLSource interface {
	CRL(ctx context.Context, productLine string) ([]byte, error)
}

// Options configure a Verifier.
type Options struct {
	// Roots are the trusted roots; nil means DefaultRoots().
	Roots []ProductRoots
	// Endorsements fetches a VCEK when the evidence carries none; nil means
	// the evidence must carry its VCEK/VLEK. VLEKs are never fetched.
	Endorsements EndorsementSource
	// CRLs, when set, is consulted for every report: the ASK/ASVK and the
	// endorsement key must not be revoked.
	CRLs CRLSource
	// Given are endorsement certificates supplied beside the evidence (the
	// configuration, "attestd verify --collateral"): a VCEK or VLEK here is
	// used when the evidence carries none of its signer's kind. They are
	// verified like any other (chain to a trusted root).
	Given abi.Certs
	// VLEKs are configured VLEK certificates (DER): a CSP's VLEKs are not
	// served by KDS without credentials, so a report signed by a VLEK and
	// sent without it is verified with the configured one issued for its
	// REPORTED_TCB.
	VLEKs [][]byte
}

// Verifier verifies SEV-SNP evidence. Safe for concurrent use.
type Verifier struct {
	roots map[string][]ProductRoots
	end   EndorsementSource
	crls  CRLSource
	given abi.Certs
	vleks [][]byte

	mu     sync.Mutex
	chains map[chainKey]*chainResult // bounded, see maxChains
}

const maxChains = 4096

type chainKey struct {
	cert [32]byte // SHA-256 of the endorsement certificate's DER
	line string
	vlek bool
}

// chainResult is a verified chain: valid at every instant of [notBefore,
// notAfter] (the intersection of its certificates' windows).
type chainResult struct {
	cert      *x509.Certificate
	exts      *kds.Extensions
	root      ProductRoots
	notBefore time.Time
	notAfter  time.Time
}

// New returns a Verifier.
func New(opts Options) (*Verifier, error) {
	roots := opts.Roots
	if roots == nil {
		roots = DefaultRoots()
	}
	v := &Verifier{roots: map[string][]ProductRoots{}, end: opts.Endorsements, crls: opts.CRLs, given: opts.Given, vleks: opts.VLEKs, chains: map[chainKey]*chainResult{}}
	for _, r := range roots {
		if r.ARK == nil || (r.ASK == nil && r.ASVK == nil) {
			return nil, fmt.Errorf("snp: roots for %q need an ARK and an ASK or ASVK", r.Line)
		}
		if !slices.Contains([]string{"Milan", "Genoa", "Turin"}, r.Line) {
			return nil, fmt.Errorf("snp: unknown product line %q (want Milan, Genoa or Turin)", r.Line)
		}
		v.roots[r.Line] = append(v.roots[r.Line], r)
	}
	return v, nil
}

// Result is what verification established.
type Result struct {
	// Signer is "VCEK" or "VLEK".
	Signer string
	// ProductLine is the product whose root the chain ends at.
	ProductLine string
	// Endorsement is the verified VCEK/VLEK and Extensions its KDS extensions.
	Endorsement *x509.Certificate
	Extensions  *kds.Extensions
	// Fetched is true when the VCEK came from the endorsement source, not
	// from the evidence.
	Fetched bool
	// Root is the ARK the chain ends at.
	Root *x509.Certificate
}

func fail(check evidence.Check, format string, args ...any) error {
	return evidence.Errorf(check, format, args...)
}

// Verify verifies ev at instant now.
func (v *Verifier) Verify(ctx context.Context, ev *abi.Evidence, now time.Time) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snp: verification abandoned: %w", err)
	}
	if now.IsZero() {
		// "Zero means now" is how go-sev-guest lets cached CRLs live
		// forever; attestd always passes the request's instant.
		return nil, fail(evidence.CheckVerificationTime, "the verification instant is zero")
	}
	rep := ev.Report
	info, err := sevabi.ParseSignerInfo(rep.GetSignerInfo())
	if err != nil {
		return nil, fail(CheckSigner, "SIGNER_INFO: %v", err)
	}
	var der []byte
	var vlek bool
	switch info.SigningKey {
	case sevabi.VcekReportSigner:
		der = ev.Certs.Merge(v.given).VCEK
	case sevabi.VlekReportSigner:
		der, vlek = ev.Certs.Merge(v.given).VLEK, true
	default:
		return nil, fail(CheckSigner, "the report is signed by %v; only VCEK and VLEK signed reports are accepted", info.SigningKey)
	}
	kind := "VCEK"
	if vlek {
		kind = "VLEK"
	}

	// The product line: from CPUID (reports v3+), else from the
	// certificate's product name.
	line := ""
	if fms := rep.GetCpuid1EaxFms(); fms != 0 {
		line = kds.ProductLineFromFms(fms)
		if line == "Unknown" {
			return nil, fail(CheckProduct, "the report's CPUID family/model/stepping %#x names no known product line", fms)
		}
	}

	if der == nil && vlek && len(v.vleks) > 0 {
		for _, c := range v.vleks {
			ch, err := v.chain(c, line, true)
			if err == nil && uint64(ch.exts.TCBVersion) == rep.GetReportedTcb() {
				der = c
				break
			}
		}
		if der == nil {
			return nil, fail(CheckEndorsementMissing, "the evidence carries no VLEK and none of the %d configured VLEKs is a valid one issued for REPORTED_TCB %s", len(v.vleks), tcbString(rep.GetReportedTcb()))
		}
	}
	fetched := false
	if der == nil {
		if vlek || v.end == nil {
			return nil, fail(CheckEndorsementMissing, "the evidence carries no %s certificate and %s", kind, map[bool]string{true: "VLEKs are never fetched (give it in the evidence or the configuration)", false: "no endorsement source (AMD KDS, a directory) is configured"}[vlek])
		}
		if line == "" {
			return nil, fail(CheckEndorsementMissing, "the evidence carries no VCEK and its report (version %d) names no product to fetch one for", rep.GetVersion())
		}
		der, err = v.end.VCEK(ctx, EndorsementRequest{ProductLine: line, ChipID: rep.GetChipId(), TCB: rep.GetReportedTcb()})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrUnavailable) {
				return nil, fail(CheckEndorsementUnavailable, "fetching the VCEK: %w (the evidence was not judged)", err)
			}
			return nil, fail(CheckEndorsementMissing, "fetching the VCEK: %v", err)
		}
		fetched = true
	}

	ch, err := v.chain(der, line, vlek)
	if err != nil {
		return nil, err
	}
	if err := window(ch, now); err != nil {
		return nil, err
	}
	if err := sevverify.SnpReportSignature(ev.Raw, ch.cert); err != nil {
		return nil, fail(CheckSignature, "%v", err)
	}
	// Both endorsement keys are derived for one TCB: the report must
	// state that TCB as REPORTED_TCB.
	if kds.TCBVersion(rep.GetReportedTcb()) != ch.exts.TCBVersion {
		return nil, fail(CheckTCB, "REPORTED_TCB %s is not the TCB %s the %s was issued for", tcbString(rep.GetReportedTcb()), tcbString(uint64(ch.exts.TCBVersion)), kind)
	}
	if !vlek {
		// A host may mask CHIP_ID (all zeros); then only the signature
		// ties the report to the chip.
		// Turin VCEKs carry an 8-byte hardware ID, the first 8 bytes of
		// the 64-byte CHIP_ID (the rest zero).
		if id := rep.GetChipId(); !allZero(id) && !chipMatches(id, ch.exts.HWID) {
			return nil, fail(CheckChipID, "CHIP_ID %s is not the VCEK's hardware ID %s", hex.EncodeToString(id), hex.EncodeToString(ch.exts.HWID))
		}
	}
	if v.crls != nil {
		if err := v.revocation(ctx, ch, now); err != nil {
			return nil, err
		}
	}
	return &Result{Signer: kind, ProductLine: ch.root.Line, Endorsement: ch.cert, Extensions: ch.exts, Fetched: fetched, Root: ch.root.ARK}, nil
}

func tcbString(t uint64) string {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(t))
	return fmt.Sprintf("{bootloader %d, tee %d, snp %d, microcode %d}", p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func chipMatches(chipID, hwid []byte) bool {
	if len(hwid) == 0 || len(hwid) > len(chipID) {
		return false
	}
	return string(chipID[:len(hwid)]) == string(hwid) && allZero(chipID[len(hwid):])
}

// window checks the cached chain's validity at now.
func window(ch *chainResult, now time.Time) error {
	if now.Before(ch.notBefore) {
		return fail(CheckEndorsementNotYetValid, "the %s chain is valid from %s, verification instant %s", ch.cert.Subject.CommonName, ch.notBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(ch.notAfter) {
		return fail(CheckEndorsementExpired, "the %s chain expired at %s, verification instant %s", ch.cert.Subject.CommonName, ch.notAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// chain verifies der up to a trusted root of line (any line when empty),
// once per (certificate, line, kind): the signatures and the KDS format do
// not depend on time; the window is checked by the caller at every call.
func (v *Verifier) chain(der []byte, line string, vlek bool) (*chainResult, error) {
	key := chainKey{cert: sha256.Sum256(der), line: line, vlek: vlek}
	v.mu.Lock()
	ch, ok := v.chains[key]
	v.mu.Unlock()
	if ok {
		return ch, nil
	}
	ch, err := v.verifyChain(der, line, vlek)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.chains) >= maxChains {
		clear(v.chains)
	}
	v.chains[key] = ch
	v.mu.Unlock()
	return ch, nil
}

func (v *Verifier) verifyChain(der []byte, line string, vlek bool) (*chainResult, error) {
	signer := sevabi.VcekReportSigner
	kind := "VCEK"
	if vlek {
		signer, kind = sevabi.VlekReportSigner, "VLEK"
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fail(CheckEndorsementFormat, "%s: %v", kind, err)
	}
	if err := kdsFormat(cert, kind); err != nil {
		return nil, err
	}
	exts, err := kds.CertificateExtensions(cert, signer)
	if err != nil {
		return nil, fail(CheckEndorsementFormat, "%s extensions: %v", kind, err)
	}
	// VCEKs name the product with its stepping ("Milan-B0"), newer ones
	// and VLEKs only the line ("Genoa"): the line is what selects roots.
	certLine := kds.ProductLineOfProductName(exts.ProductName)
	if _, known := v.roots[certLine]; !known && !slices.Contains([]string{"Milan", "Genoa", "Turin"}, certLine) {
		return nil, fail(CheckProduct, "the %s names product %q, not a known product line", kind, exts.ProductName)
	}
	if line != "" && certLine != line {
		return nil, fail(CheckProduct, "the %s is for %s but the report's CPUID names %s", kind, certLine, line)
	}
	candidates := v.roots[certLine]
	if len(candidates) == 0 {
		return nil, fail(CheckEndorsementChain, "no trusted roots are configured for product line %s", certLine)
	}
	var errs []error
	for _, r := range candidates {
		ica := r.ASK
		if vlek {
			ica = r.ASVK
		}
		if ica == nil {
			errs = append(errs, fmt.Errorf("root %s has no %s issuer", r.ARK.Subject.CommonName, kind))
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(r.ARK)
		inter := x509.NewCertPool()
		inter.AddCert(ica)
		// The signatures are checked at an instant inside every window so
		// the cached result does not depend on now; window() checks now.
		nb := slices.MaxFunc([]time.Time{cert.NotBefore, ica.NotBefore, r.ARK.NotBefore}, time.Time.Compare)
		na := slices.MinFunc([]time.Time{cert.NotAfter, ica.NotAfter, r.ARK.NotAfter}, time.Time.Compare)
		if nb.After(na) {
			errs = append(errs, fmt.Errorf("the validity windows of %s, %s and %s do not overlap", kind, ica.Subject.CommonName, r.ARK.Subject.CommonName))
			continue
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: nb, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			errs = append(errs, err)
			continue
		}
		return &chainResult{cert: cert, exts: exts, root: r, notBefore: nb, notAfter: na}, nil
	}
	return nil, fail(CheckEndorsementChain, "the %s (%s) does not chain to a trusted %s root: %v", kind, certLine, certLine, errors.Join(errs...))
}

// kdsFormat checks what AMD's KDS specification (57230) fixes for VCEK and
// VLEK certificates, as go-sev-guest's unexported check does.
func kdsFormat(c *x509.Certificate, kind string) error {
	if c.Version != 3 {
		return fail(CheckEndorsementFormat, "%s certificate version %d, want 3", kind, c.Version)
	}
	if c.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return fail(CheckEndorsementFormat, "%s signed with %v, want SHA-384 with RSASSA-PSS", kind, c.SignatureAlgorithm)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return fail(CheckEndorsementFormat, "%s key is not ECDSA P-384", kind)
	}
	if c.Subject.CommonName != "SEV-"+kind {
		return fail(CheckEndorsementFormat, "%s subject CN %q, want %q", kind, c.Subject.CommonName, "SEV-"+kind)
	}
	return nil
}

// revocation checks AMD's CRL of the chain's product: signed by the ARK,
// current at now, revoking neither the intermediate nor the endorsement key.
func (v *Verifier) revocation(ctx context.Context, ch *chainResult, now time.Time) error {
	der, err := v.crls.CRL(ctx, ch.root.Line)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(CheckCRL, "fetching the %s CRL: %v", ch.root.Line, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fail(CheckCRL, "the %s CRL: %v", ch.root.Line, err)
	}
	if err := crl.CheckSignatureFrom(ch.root.ARK); err != nil {
		return fail(CheckCRL, "the %s CRL is not signed by %s: %v", ch.root.Line, ch.root.ARK.Subject.CommonName, err)
	}
	if now.Before(crl.ThisUpdate) || (!crl.NextUpdate.IsZero() && now.After(crl.NextUpdate)) {
		return fail(CheckCRL, "the %s CRL is valid %s..%s, verification instant %s", ch.root.Line, crl.ThisUpdate.UTC().Format(time.RFC3339), crl.NextUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	for _, e := range crl.RevokedCertificateEntries {
		for _, c := range []*x509.Certificate{ch.cert, ch.root.ASK, ch.root.ASVK} {
			// A CRL lists serials of certificates its issuer (the ARK)
			// issued: the ASK/ASVK (and the key itself, were it issued by
			// the ARK).
			if c != nil && string(c.RawIssuer) == string(crl.RawIssuer) && c.SerialNumber.Cmp(e.SerialNumber) == 0 {
				return fail(CheckEndorsementRevoked, "%s (serial %s) is revoked by the %s CRL since %s", c.Subject.CommonName, c.SerialNumber, ch.root.Line, e.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}
