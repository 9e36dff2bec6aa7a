// Package kds is the AMD SEV-SNP collateral family: the certificates and
// CRLs of AMD's Key Distribution Service (KDS) — a chip's VCEK for a
// reported TCB, the ARK/ASK (VCEK) and ARK/ASVK (VLEK) chains and the CRL of
// each product line — from the KDS itself (Client), from a directory for
// offline use (Bundle), or through the generic collateral cache (Cache).
// All three are a Source and fail with the shared collateral error classes
// (collateral.ErrNotFound, collateral.ErrUnavailable, collateral.ErrMalformed).
//
// KDS paths (AMD spec 57230, the formats go-sev-guest's kds package uses):
//
//	GET {base}/vcek/v1/{product}/{hwid}?blSPL=…&teeSPL=…&snpSPL=…&ucodeSPL=…   VCEK (DER)
//	GET {base}/vcek/v1/Turin/{hwid}?fmcSPL=…&blSPL=…&teeSPL=…&snpSPL=…&ucodeSPL=…  (Turin: 8-byte hwid)
//	GET {base}/{vcek|vlek}/v1/{product}/cert_chain                              ASK|ASVK then ARK (PEM)
//	GET {base}/{vcek|vlek}/v1/{product}/crl                                     CRL issued by the ARK (DER)
//
// Nothing here verifies a signature: the SNP verifier checks every chain up
// to its trusted ARK. Sources check that what they serve is DER that answers
// the request (the VCEK's hardware ID and TCB extensions, the chain's and
// CRL's product), so a mirror cannot pass off one chip's certificate as
// another's, and bound what they read.
package kds

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/attestd/attestd/collateral"
)

// Product is an SEV-SNP product line as KDS names it in its paths.
type Product string

// The product lines KDS serves.
const (
	Milan Product = "Milan"
	Genoa Product = "Genoa"
	Turin Product = "Turin"
)

// Products lists every product line, oldest first.
var Products = []Product{Milan, Genoa, Turin}

// ParseProduct accepts a product line name in any case, or a VCEK product
// name with its stepping ("Milan-B0", "Genoa-B1").
func ParseProduct(s string) (Product, error) {
	base, _, _ := strings.Cut(s, "-")
	for _, p := range Products {
		if strings.EqualFold(base, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown SEV-SNP product %q (want Milan, Genoa or Turin)", s)
}

// HWIDLen is the length of a chip ID (the report's CHIP_ID field as KDS
// takes it): 64 bytes, of which Turin uses the first 8.
func (p Product) HWIDLen() int {
	if p == Turin {
		return 8
	}
	return 64
}

// Signer selects a chain: the VCEK's (ARK → ASK) or the VLEK's (ARK → ASVK).
type Signer string

// The two endorsement keys of SEV-SNP.
const (
	VCEK Signer = "vcek"
	VLEK Signer = "vlek"
)

// TCB is a reported TCB as its security patch levels (SPLs). FMC exists on
// Turin only and must be zero elsewhere.
type TCB struct {
	Bootloader uint8
	TEE        uint8
	SNP        uint8
	Microcode  uint8
	FMC        uint8
}

// DecomposeTCB splits a report's 64-bit TCB_VERSION (REPORTED_TCB,
// COMMITTED_TCB, …) into SPLs; the layout differs by product: Milan and
// Genoa put the bootloader in byte 0, TEE in 1, SNP in 6, microcode in 7;
// Turin puts FMC in byte 0, bootloader in 1, TEE in 2, SNP in 3, microcode
// in 7.
func DecomposeTCB(p Product, v uint64) TCB {
	b := func(i int) uint8 { return uint8(v >> (8 * i)) }
	if p == Turin {
		return TCB{FMC: b(0), Bootloader: b(1), TEE: b(2), SNP: b(3), Microcode: b(7)}
	}
	return TCB{Bootloader: b(0), TEE: b(1), SNP: b(6), Microcode: b(7)}
}

// VCEKKey names one VCEK: a chip of a product line at a reported TCB.
type VCEKKey struct {
	Product Product
	HWID    string // lower-case hex, Product.HWIDLen() bytes
	TCB     TCB
}

// NewVCEKKey builds the key of the VCEK that signs a report of product p
// whose CHIP_ID is chipID and REPORTED_TCB is reportedTCB. A 64-byte chip ID
// is cut to the product's length (Turin reports put 8 bytes in a 64-byte
// field).
func NewVCEKKey(p Product, chipID []byte, reportedTCB uint64) (VCEKKey, error) {
	n := p.HWIDLen()
	if len(chipID) < n {
		return VCEKKey{}, fmt.Errorf("kds: %s chip ID is %d bytes, want %d", p, len(chipID), n)
	}
	k := VCEKKey{Product: p, HWID: hex.EncodeToString(chipID[:n]), TCB: DecomposeTCB(p, reportedTCB)}
	return k, k.Validate()
}

// Validate checks the key is well formed: a known product, a hardware ID of
// the product's length, no FMC SPL outside Turin.
func (k VCEKKey) Validate() error {
	if _, err := ParseProduct(string(k.Product)); err != nil || k.Product == "" {
		return fmt.Errorf("kds: VCEK key: unknown product %q", k.Product)
	}
	id, err := hex.DecodeString(k.HWID)
	if err != nil || len(id) != k.Product.HWIDLen() || strings.ToLower(k.HWID) != k.HWID {
		return fmt.Errorf("kds: VCEK key: hardware ID %q is not %d bytes of lower-case hex", k.HWID, k.Product.HWIDLen())
	}
	if k.Product != Turin && k.TCB.FMC != 0 {
		return fmt.Errorf("kds: VCEK key: FMC SPL %d on %s (Turin only)", k.TCB.FMC, k.Product)
	}
	return nil
}

func (k VCEKKey) String() string {
	s := fmt.Sprintf("%s VCEK for chip %s… at bl=%d tee=%d snp=%d ucode=%d", k.Product, k.HWID[:min(16, len(k.HWID))],
		k.TCB.Bootloader, k.TCB.TEE, k.TCB.SNP, k.TCB.Microcode)
	if k.Product == Turin {
		s += fmt.Sprintf(" fmc=%d", k.TCB.FMC)
	}
	return s
}

// ChainKey names a product's chain or CRL for one signer.
type ChainKey struct {
	Product Product
	Signer  Signer
}

// Validate checks the product and signer are known.
func (k ChainKey) Validate() error {
	if _, err := ParseProduct(string(k.Product)); err != nil || k.Product == "" {
		return fmt.Errorf("kds: unknown product %q", k.Product)
	}
	if k.Signer != VCEK && k.Signer != VLEK {
		return fmt.Errorf("kds: signer %q is neither %s nor %s", k.Signer, VCEK, VLEK)
	}
	return nil
}

func (k ChainKey) String() string {
	return fmt.Sprintf("%s %s", k.Product, strings.ToUpper(string(k.Signer)))
}

// Chain is a product's certificate chain for one signer: the ASK (VCEK) or
// ASVK (VLEK) and the ARK that issued it.
type Chain struct {
	Signer *x509.Certificate // ASK or ASVK
	ARK    *x509.Certificate
}

// Source serves KDS documents. Implementations answer errors wrapping
// collateral.ErrNotFound (nothing for the key), collateral.ErrUnavailable
// (try later: network, 5xx, 429 rate limiting) or collateral.ErrMalformed
// (an answer that is not the document asked for), and ctx.Err() when the
// caller gives up. Returned values are shared and must not be modified.
type Source interface {
	VCEK(ctx context.Context, k VCEKKey) (*x509.Certificate, error)
	Chain(ctx context.Context, k ChainKey) (*Chain, error)
	CRL(ctx context.Context, k ChainKey) (*x509.RevocationList, error)
}

// AMD's VCEK extension OIDs (spec 57230 §3, "VCEK Certificate Extensions").
var (
	oidStructVersion = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 1}
	oidProductName   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 2}
	oidBlSPL         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 1}
	oidTeeSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 2}
	oidSnpSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 3}
	oidUcodeSPL      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 8}
	oidFmcSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 9}
	oidHWID          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}
)

// VCEKExtensions are the AMD extensions of a VCEK certificate.
type VCEKExtensions struct {
	ProductName string // "Milan-B0", "Genoa", "Turin"
	Product     Product
	HWID        []byte
	TCB         TCB
}

// ParseVCEKExtensions reads the AMD extensions of a VCEK: the product name
// (an IA5String), the SPLs (INTEGERs 0..255) and the hardware ID (raw bytes,
// not DER-wrapped, as AMD encodes it). Untrusted input: every value is
// checked.
func ParseVCEKExtensions(c *x509.Certificate) (*VCEKExtensions, error) {
	var out VCEKExtensions
	seen := map[string]bool{}
	for _, e := range c.Extensions {
		id := e.Id.String()
		if !strings.HasPrefix(id, "1.3.6.1.4.1.3704.") {
			continue
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: VCEK extension %s appears twice", collateral.ErrMalformed, id)
		}
		seen[id] = true
		spl := func(dst *uint8) error {
			var v int
			rest, err := asn1.Unmarshal(e.Value, &v)
			if err != nil || len(rest) != 0 || v < 0 || v > 255 {
				return fmt.Errorf("%w: VCEK extension %s is not an INTEGER 0..255", collateral.ErrMalformed, id)
			}
			*dst = uint8(v)
			return nil
		}
		var err error
		switch {
		case e.Id.Equal(oidProductName):
			var s string
			rest, uerr := asn1.UnmarshalWithParams(e.Value, &s, "ia5")
			if uerr != nil || len(rest) != 0 {
				return nil, fmt.Errorf("%w: VCEK product name is not an IA5String", collateral.ErrMalformed)
			}
			out.ProductName = s
			if out.Product, err = ParseProduct(s); err != nil {
				return nil, fmt.Errorf("%w: %v", collateral.ErrMalformed, err)
			}
		case e.Id.Equal(oidBlSPL):
			err = spl(&out.TCB.Bootloader)
		case e.Id.Equal(oidTeeSPL):
			err = spl(&out.TCB.TEE)
		case e.Id.Equal(oidSnpSPL):
			err = spl(&out.TCB.SNP)
		case e.Id.Equal(oidUcodeSPL):
			err = spl(&out.TCB.Microcode)
		case e.Id.Equal(oidFmcSPL):
			err = spl(&out.TCB.FMC)
		case e.Id.Equal(oidHWID):
			out.HWID = append([]byte(nil), e.Value...)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, need := range []asn1.ObjectIdentifier{oidProductName, oidBlSPL, oidTeeSPL, oidSnpSPL, oidUcodeSPL, oidHWID} {
		if !seen[need.String()] {
			return nil, fmt.Errorf("%w: certificate %q has no VCEK extension %s", collateral.ErrMalformed, c.Subject.CommonName, need)
		}
	}
	if len(out.HWID) != out.Product.HWIDLen() {
		return nil, fmt.Errorf("%w: VCEK hardware ID is %d bytes, %s uses %d", collateral.ErrMalformed, len(out.HWID), out.Product, out.Product.HWIDLen())
	}
	if out.Product == Turin && !seen[oidFmcSPL.String()] {
		return nil, fmt.Errorf("%w: Turin VCEK without an FMC SPL", collateral.ErrMalformed)
	}
	return &out, nil
}

// Key is the VCEKKey this VCEK answers.
func (e *VCEKExtensions) Key() VCEKKey {
	return VCEKKey{Product: e.Product, HWID: hex.EncodeToString(e.HWID), TCB: e.TCB}
}

// CheckVCEK reports whether c is the VCEK of k.
func CheckVCEK(k VCEKKey, c *x509.Certificate) error {
	if c == nil {
		return fmt.Errorf("%w: no VCEK", collateral.ErrMalformed)
	}
	ext, err := ParseVCEKExtensions(c)
	if err != nil {
		return err
	}
	if got := ext.Key(); got != k {
		return fmt.Errorf("%w: the certificate is the %s, not the %s", collateral.ErrMalformed, got, k)
	}
	return nil
}

// Names AMD gives the chain certificates: "ARK-Milan", "SEV-Milan" (ASK),
// "SEV-VLEK-Milan" (ASVK), each with the product line after the last '-'.
func chainProduct(c *x509.Certificate) (Product, error) {
	cn := c.Subject.CommonName
	i := strings.LastIndexByte(cn, '-')
	if i < 0 {
		return "", fmt.Errorf("certificate %q names no product", cn)
	}
	return ParseProduct(cn[i+1:])
}

func isARK(c *x509.Certificate) bool { return strings.HasPrefix(c.Subject.CommonName, "ARK-") }
func isASVK(c *x509.Certificate) bool {
	return strings.HasPrefix(c.Subject.CommonName, "SEV-VLEK-")
}

// CheckChain reports whether ch is the chain of k: an ARK and an ASK (or
// ASVK for VLEK) of k's product, the signer issued by the ARK (by name; the
// verifier checks signatures), both CAs.
func CheckChain(k ChainKey, ch *Chain) error {
	if ch == nil || ch.Signer == nil || ch.ARK == nil {
		return fmt.Errorf("%w: %s chain is incomplete", collateral.ErrMalformed, k)
	}
	if !isARK(ch.ARK) || !ch.ARK.IsCA || ch.ARK.Subject.String() != ch.ARK.Issuer.String() {
		return fmt.Errorf("%w: %s chain: %q is not a self-issued ARK", collateral.ErrMalformed, k, ch.ARK.Subject.CommonName)
	}
	if isARK(ch.Signer) || !ch.Signer.IsCA || isASVK(ch.Signer) != (k.Signer == VLEK) {
		return fmt.Errorf("%w: %s chain: %q is not the %s's signing key", collateral.ErrMalformed, k, ch.Signer.Subject.CommonName, strings.ToUpper(string(k.Signer)))
	}
	if ch.Signer.Issuer.String() != ch.ARK.Subject.String() {
		return fmt.Errorf("%w: %s chain: %q is not issued by %q", collateral.ErrMalformed, k, ch.Signer.Subject.CommonName, ch.ARK.Subject.CommonName)
	}
	for _, c := range []*x509.Certificate{ch.Signer, ch.ARK} {
		p, err := chainProduct(c)
		if err != nil || p != k.Product {
			return fmt.Errorf("%w: %s chain: %q is not a %s certificate", collateral.ErrMalformed, k, c.Subject.CommonName, k.Product)
		}
	}
	return nil
}

// CheckCRL reports whether l is the CRL of k's product: issued by its ARK
// (by name; the verifier checks the signature against the ARK).
func CheckCRL(k ChainKey, l *x509.RevocationList) error {
	if l == nil {
		return fmt.Errorf("%w: no CRL", collateral.ErrMalformed)
	}
	if cn := l.Issuer.CommonName; cn != "ARK-"+string(k.Product) {
		return fmt.Errorf("%w: %s CRL is issued by %q, not ARK-%s", collateral.ErrMalformed, k, cn, k.Product)
	}
	if l.NextUpdate.IsZero() {
		return fmt.Errorf("%w: %s CRL has no nextUpdate", collateral.ErrMalformed, k)
	}
	return nil
}

// ParseCertificate parses one certificate, DER or PEM (untrusted bytes).
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	certs, err := parseCerts(b)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w: %d certificates, want 1", collateral.ErrMalformed, len(certs))
	}
	return certs[0], nil
}

// ParseChain parses a KDS cert_chain answer: PEM (or concatenated DER)
// holding the ASK/ASVK and the ARK, in either order.
func ParseChain(b []byte) (*Chain, error) {
	certs, err := parseCerts(b)
	if err != nil {
		return nil, err
	}
	if len(certs) != 2 {
		return nil, fmt.Errorf("%w: certificate chain has %d certificates, want 2 (ASK or ASVK, ARK)", collateral.ErrMalformed, len(certs))
	}
	ch := &Chain{Signer: certs[0], ARK: certs[1]}
	if isARK(certs[0]) {
		ch.Signer, ch.ARK = certs[1], certs[0]
	}
	return ch, nil
}

// ParseCRL parses a DER (or PEM) CRL.
func ParseCRL(b []byte) (*x509.RevocationList, error) {
	der, err := derOf(b, "X509 CRL")
	if err != nil {
		return nil, err
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL: %v", collateral.ErrMalformed, err)
	}
	return l, nil
}

var errNoCerts = errors.New("no certificate")
