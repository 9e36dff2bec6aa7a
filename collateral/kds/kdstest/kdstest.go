// Package kdstest is a fake AMD Key Distribution Service for tests: a PKI
// that issues ARK → ASK/ASVK → VCEK certificates with AMD's extensions and
// CRLs under a test key, and an http.Handler serving them on KDS's paths, so
// code that fetches SEV-SNP collateral runs on loopback. The keys are
// ECDSA P-384 (AMD's ARK/ASK are RSA-4096 PSS): nothing here is trusted by
// a production verifier.
package kdstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attestd/attestd/collateral/kds"
)

// PKI is one product's fake AMD hierarchy.
type PKI struct {
	Product        kds.Product
	Now            time.Time
	ARK, ASK, ASVK *x509.Certificate
	arkKey, askKey crypto.Signer
	serial         int64
	mu             sync.Mutex
}

// NewPKI builds ARK, ASK and ASVK for product, valid from now-24h for 25
// years.
func NewPKI(product kds.Product, now time.Time) (*PKI, error) {
	p := &PKI{Product: product, Now: now}
	ark, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ask, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	asvk, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p.arkKey, p.askKey = ark, ask
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"Advanced Micro Devices"}, OrganizationalUnit: []string{"Engineering"}}
	}
	ca := func(cn string, pub crypto.PublicKey, parent *x509.Certificate) (*x509.Certificate, error) {
		t := &x509.Certificate{SerialNumber: big.NewInt(p.next()), Subject: name(cn), NotBefore: now.Add(-24 * time.Hour),
			NotAfter: now.AddDate(25, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		if parent == nil {
			parent = t
		}
		der, err := x509.CreateCertificate(rand.Reader, t, parent, pub, ark)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	if p.ARK, err = ca("ARK-"+string(product), &ark.PublicKey, nil); err != nil {
		return nil, err
	}
	if p.ASK, err = ca("SEV-"+string(product), &ask.PublicKey, p.ARK); err != nil {
		return nil, err
	}
	if p.ASVK, err = ca("SEV-VLEK-"+string(product), &asvk.PublicKey, p.ARK); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) next() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return p.serial
}

// VCEKOptions overrides parts of a VCEK, for negative tests.
type VCEKOptions struct {
	NotBefore, NotAfter time.Time // zero: Now-24h, Now+7 years
	ProductName         string    // zero: "<product>-B0" (Milan, Genoa) or "Turin"
	OmitHWID            bool
}

// VCEK issues the VCEK of a chip (hwid, Product.HWIDLen() bytes) at tcb.
func (p *PKI) VCEK(hwid []byte, tcb kds.TCB, o *VCEKOptions) (*x509.Certificate, error) {
	if o == nil {
		o = &VCEKOptions{}
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = p.Now.Add(-24 * time.Hour)
	}
	if na.IsZero() {
		na = p.Now.AddDate(7, 0, 0)
	}
	pn := o.ProductName
	if pn == "" {
		pn = string(p.Product)
		if p.Product != kds.Turin {
			pn += "-B0"
		}
	}
	ext := func(last []int, v any) pkix.Extension {
		der, err := asn1.Marshal(v)
		if err != nil {
			panic(err)
		}
		return pkix.Extension{Id: append(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}, last...), Value: der}
	}
	ia5, _ := asn1.MarshalWithParams(pn, "ia5")
	exts := []pkix.Extension{
		ext([]int{1}, 1),
		{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 2}, Value: ia5},
		ext([]int{3, 1}, int(tcb.Bootloader)),
		ext([]int{3, 2}, int(tcb.TEE)),
		ext([]int{3, 3}, int(tcb.SNP)),
		ext([]int{3, 8}, int(tcb.Microcode)),
	}
	if p.Product == kds.Turin {
		exts = append(exts, ext([]int{3, 9}, int(tcb.FMC)))
	}
	if !o.OmitHWID {
		exts = append(exts, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}, Value: append([]byte(nil), hwid...)})
	}
	t := &x509.Certificate{SerialNumber: big.NewInt(p.next()), Subject: pkix.Name{CommonName: "SEV-VCEK"},
		NotBefore: nb, NotAfter: na, ExtraExtensions: exts, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, t, p.ASK, &key.PublicKey, p.askKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CRL issues the ARK's CRL valid from..to, revoking serials.
func (p *PKI) CRL(from, to time.Time, serials ...int64) (*x509.RevocationList, error) {
	l := &x509.RevocationList{Number: big.NewInt(p.next()), ThisUpdate: from, NextUpdate: to}
	for _, s := range serials {
		l.RevokedCertificateEntries = append(l.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: from})
	}
	der, err := x509.CreateRevocationList(rand.Reader, l, p.ARK, p.arkKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}

// ChainPEM is the cert_chain answer for signer: ASK (or ASVK), then ARK.
func (p *PKI) ChainPEM(signer kds.Signer) []byte {
	first := p.ASK
	if signer == kds.VLEK {
		first = p.ASVK
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: first.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ARK.Raw})...)
}

// Handler serves KDS paths from its maps. The zero value answers 404.
type Handler struct {
	mu     sync.Mutex
	VCEKs  map[kds.VCEKKey][]byte  // DER
	Chains map[kds.ChainKey][]byte // PEM
	CRLs   map[kds.ChainKey][]byte // DER
	// Override may answer a request itself (failure injection: 429 with
	// Retry-After, 503, a slow answer); it returns true when it did.
	Override func(w http.ResponseWriter, r *http.Request) bool
	seen     []string
}

// Add serves p's chains and crl (may be nil) for both signers, and vceks.
func (h *Handler) Add(p *PKI, crl *x509.RevocationList, vceks ...*x509.Certificate) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.VCEKs == nil {
		h.VCEKs, h.Chains, h.CRLs = map[kds.VCEKKey][]byte{}, map[kds.ChainKey][]byte{}, map[kds.ChainKey][]byte{}
	}
	for _, s := range []kds.Signer{kds.VCEK, kds.VLEK} {
		k := kds.ChainKey{Product: p.Product, Signer: s}
		h.Chains[k] = p.ChainPEM(s)
		if crl != nil {
			h.CRLs[k] = crl.Raw
		}
	}
	for _, c := range vceks {
		ext, err := kds.ParseVCEKExtensions(c)
		if err != nil {
			return err
		}
		h.VCEKs[ext.Key()] = c.Raw
	}
	return nil
}

// Requests returns the request URIs served so far.
func (h *Handler) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.URL.RequestURI())
	h.mu.Unlock()
	if h.Override != nil && h.Override(w, r) {
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || len(parts) != 4 || parts[1] != "v1" {
		http.NotFound(w, r)
		return
	}
	signer, product := kds.Signer(parts[0]), kds.Product(parts[2])
	if _, err := kds.ParseProduct(parts[2]); err != nil || (signer != kds.VCEK && signer != kds.VLEK) {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ck := kds.ChainKey{Product: product, Signer: signer}
	switch parts[3] {
	case "cert_chain":
		serve(w, r, h.Chains[ck], "application/x-pem-file")
	case "crl":
		serve(w, r, h.CRLs[ck], "application/pkix-crl")
	default:
		if signer != kds.VCEK {
			http.NotFound(w, r)
			return
		}
		k, err := parseVCEKQuery(product, parts[3], r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		serve(w, r, h.VCEKs[k], "application/x-x509-ca-cert")
	}
}

func serve(w http.ResponseWriter, r *http.Request, b []byte, ct string) {
	if b == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Write(b)
}

func parseVCEKQuery(p kds.Product, hwid string, r *http.Request) (kds.VCEKKey, error) {
	id, err := hex.DecodeString(hwid)
	if err != nil || len(id) != p.HWIDLen() {
		return kds.VCEKKey{}, fmt.Errorf("bad hwid %q", hwid)
	}
	q := r.URL.Query()
	spl := func(name string) (uint8, error) {
		v, err := strconv.ParseUint(q.Get(name), 10, 8)
		if err != nil {
			return 0, fmt.Errorf("bad %s %q", name, q.Get(name))
		}
		return uint8(v), nil
	}
	var t kds.TCB
	for _, f := range []struct {
		name string
		dst  *uint8
	}{{"blSPL", &t.Bootloader}, {"teeSPL", &t.TEE}, {"snpSPL", &t.SNP}, {"ucodeSPL", &t.Microcode}} {
		if *f.dst, err = spl(f.name); err != nil {
			return kds.VCEKKey{}, err
		}
	}
	if p == kds.Turin {
		if t.FMC, err = spl("fmcSPL"); err != nil {
			return kds.VCEKKey{}, err
		}
	}
	return kds.VCEKKey{Product: p, HWID: strings.ToLower(hwid), TCB: t}, nil
}
