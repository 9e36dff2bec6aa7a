package kds

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/attestd/attestd/collateral"
)

// Bounds of what LoadBundle reads: real KDS files are a few kilobytes.
const (
	maxBundleFiles    = 10000
	maxBundleFileSize = 1 << 20
)

// Bundle serves KDS documents from files, for offline and air-gapped
// deployments. LoadBundle accepts a file or a directory, scanned
// recursively (hidden entries skipped, symlinked files followed), and
// classifies every file by content, whatever its name:
//
//   - certificates in PEM or DER, one or several per file: a VCEK (it has
//     AMD's hardware-ID and TCB extensions; filed under the chip and TCB they
//     name), an ARK ("ARK-<product>"), an ASK ("SEV-<product>") or an ASVK
//     ("SEV-VLEK-<product>"); KDS's cert_chain answers and go-sev-guest's
//     ask_ark_<product>.pem work as they are
//   - a CRL in DER or PEM issued by an ARK: that product's VCEK CRL, or its
//     VLEK CRL when the file's path mentions "vlek"
//   - JSON {"vcekCert": PEM, "certificateChain": PEM}: a certificate bundle
//     as Azure's THIM/certificate cache serves it
//
// Anything else (reports, notes) is skipped; a file that looks like a
// certificate, CRL or THIM bundle but does not parse fails LoadBundle with
// its path. When several files fill one slot, the most recently issued
// document wins. Nothing here verifies a signature. Immutable after
// LoadBundle and safe for concurrent use.
type Bundle struct {
	path   string
	vceks  map[VCEKKey]*x509.Certificate
	arks   map[Product]*x509.Certificate
	asks   map[ChainKey]*x509.Certificate // signing keys by product and signer
	crls   map[ChainKey]*x509.RevocationList
	loaded int // documents
}

var _ Source = (*Bundle)(nil)

// LoadBundle reads the bundle at path (a file or a directory).
func LoadBundle(path string) (*Bundle, error) {
	b := &Bundle{path: path, vceks: map[VCEKKey]*x509.Certificate{}, arks: map[Product]*x509.Certificate{},
		asks: map[ChainKey]*x509.Certificate{}, crls: map[ChainKey]*x509.RevocationList{}}
	root, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("kds bundle: %w", err)
	}
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if n++; n > maxBundleFiles {
			return fmt.Errorf("more than %d files under %s; is this a KDS bundle?", maxBundleFiles, root)
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() > maxBundleFileSize {
			return nil // dangling symlink, device, or too large to be KDS collateral
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := b.add(p, data); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kds bundle %s: %w", root, err)
	}
	if b.loaded == 0 {
		return nil, fmt.Errorf("kds bundle %s: %w: no VCEK, AMD chain certificate or CRL found", root, collateral.ErrNotFound)
	}
	return b, nil
}

// add classifies one file (untrusted bytes).
func (b *Bundle) add(path string, data []byte) error {
	t := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
	switch {
	case len(t) == 0:
		return nil
	case t[0] == '{':
		var thim struct {
			VCEKCert         string `json:"vcekCert"`
			CertificateChain string `json:"certificateChain"`
		}
		if err := json.Unmarshal(t, &thim); err != nil || (thim.VCEKCert == "" && thim.CertificateChain == "") {
			return nil // some other JSON
		}
		for _, s := range []string{thim.VCEKCert, thim.CertificateChain} {
			if s == "" {
				continue
			}
			certs, err := parseCerts([]byte(s))
			if err != nil {
				return fmt.Errorf("certificate bundle: %w", err)
			}
			b.addCerts(certs)
		}
		return nil
	case bytes.HasPrefix(t, []byte("-----BEGIN X509 CRL")):
		return b.addCRL(path, t)
	case bytes.HasPrefix(t, []byte("-----BEGIN CERTIFICATE")):
		certs, err := parseCerts(t)
		if err != nil {
			return err
		}
		b.addCerts(certs)
		return nil
	case data[0] == 0x30:
		if certs, err := x509.ParseCertificates(data); err == nil && len(certs) <= maxCerts {
			b.addCerts(certs)
			return nil
		}
		if _, err := x509.ParseRevocationList(data); err == nil {
			return b.addCRL(path, data)
		}
		return nil // DER of something else (a key, a report)
	}
	return nil
}

func newer(old, c *x509.Certificate) bool { return old == nil || c.NotBefore.After(old.NotBefore) }

func (b *Bundle) addCerts(certs []*x509.Certificate) {
	for _, c := range certs {
		if c.IsCA {
			p, err := chainProduct(c)
			if err != nil {
				continue
			}
			switch {
			case isARK(c):
				if newer(b.arks[p], c) {
					b.arks[p] = c
				}
			case isASVK(c):
				if k := (ChainKey{p, VLEK}); newer(b.asks[k], c) {
					b.asks[k] = c
				}
			default:
				if k := (ChainKey{p, VCEK}); newer(b.asks[k], c) {
					b.asks[k] = c
				}
			}
			b.loaded++
			continue
		}
		ext, err := ParseVCEKExtensions(c)
		if err != nil {
			continue // a VLEK or another leaf: not served from a bundle
		}
		if k := ext.Key(); newer(b.vceks[k], c) {
			b.vceks[k] = c
		}
		b.loaded++
	}
}

func (b *Bundle) addCRL(path string, data []byte) error {
	l, err := ParseCRL(data)
	if err != nil {
		return err
	}
	cn := l.Issuer.CommonName
	if !strings.HasPrefix(cn, "ARK-") {
		return nil // not an AMD CRL
	}
	p, err := ParseProduct(strings.TrimPrefix(cn, "ARK-"))
	if err != nil {
		return nil
	}
	k := ChainKey{p, VCEK}
	if strings.Contains(strings.ToLower(path), "vlek") {
		k.Signer = VLEK
	}
	if old := b.crls[k]; old == nil || l.ThisUpdate.After(old.ThisUpdate) {
		b.crls[k] = l
	}
	b.loaded++
	return nil
}

func (b *Bundle) notFound(what string) error {
	return fmt.Errorf("kds bundle %s: %w: no %s", b.path, collateral.ErrNotFound, what)
}

// VCEK implements Source.
func (b *Bundle) VCEK(ctx context.Context, k VCEKKey) (*x509.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kds bundle: %w", err)
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if c, ok := b.vceks[k]; ok {
		return c, nil
	}
	return nil, b.notFound(k.String())
}

// Chain implements Source.
func (b *Bundle) Chain(ctx context.Context, k ChainKey) (*Chain, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kds bundle: %w", err)
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	ask, ark := b.asks[k], b.arks[k.Product]
	if ask == nil || ark == nil {
		return nil, b.notFound(k.String() + " chain")
	}
	ch := &Chain{Signer: ask, ARK: ark}
	if err := CheckChain(k, ch); err != nil {
		return nil, fmt.Errorf("kds bundle %s: %w", b.path, err)
	}
	return ch, nil
}

// CRL implements Source.
func (b *Bundle) CRL(ctx context.Context, k ChainKey) (*x509.RevocationList, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kds bundle: %w", err)
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if l, ok := b.crls[k]; ok {
		return l, nil
	}
	return nil, b.notFound(k.String() + " CRL")
}

// VCEKKeys lists the VCEKs the bundle holds.
func (b *Bundle) VCEKKeys() []VCEKKey {
	out := make([]VCEKKey, 0, len(b.vceks))
	for k := range b.vceks {
		out = append(out, k)
	}
	return out
}
