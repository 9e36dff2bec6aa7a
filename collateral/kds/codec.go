package kds

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/attestd/attestd/collateral"
)

// maxCerts bounds how many certificates one answer or file may hold.
const maxCerts = 8

// parseCerts reads PEM CERTIFICATE blocks or concatenated DER certificates.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	t := bytes.TrimSpace(b)
	var ders [][]byte
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		rest := t
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			if len(ders) == maxCerts {
				return nil, fmt.Errorf("%w: more than %d certificates", collateral.ErrMalformed, maxCerts)
			}
			ders = append(ders, blk.Bytes)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: bytes after the last PEM block", collateral.ErrMalformed)
		}
	} else {
		certs, err := x509.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate is neither PEM nor DER: %v", collateral.ErrMalformed, err)
		}
		if len(certs) > maxCerts {
			return nil, fmt.Errorf("%w: more than %d certificates", collateral.ErrMalformed, maxCerts)
		}
		return certs, nil
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("%w: %v", collateral.ErrMalformed, errNoCerts)
	}
	out := make([]*x509.Certificate, 0, len(ders))
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", collateral.ErrMalformed, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// derOf returns b when it is DER, or the DER of its first PEM block of type
// typ.
func derOf(b []byte, typ string) ([]byte, error) {
	t := bytes.TrimSpace(b)
	if !bytes.HasPrefix(t, []byte("-----BEGIN")) {
		return b, nil
	}
	blk, _ := pem.Decode(t)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%w: PEM without a %s block", collateral.ErrMalformed, typ)
	}
	return blk.Bytes, nil
}

// The codecs of the three KDS document kinds, for the generic cache (and
// anyone persisting KDS documents). Documents are encoded as the DER AMD
// signed (a chain as the signer's DER then the ARK's), so a record holds
// the exact bytes the verifier checks.
var (
	VCEKCodec  collateral.Codec[VCEKKey, *x509.Certificate]     = vcekCodec{}
	ChainCodec collateral.Codec[ChainKey, *Chain]               = chainCodec{}
	CRLCodec   collateral.Codec[ChainKey, *x509.RevocationList] = crlCodec{}
)

type vcekCodec struct{}

func (vcekCodec) Family() string { return "amd-kds-vcek" }

func (vcekCodec) KeyName(k VCEKKey) string {
	s := fmt.Sprintf("vcek-%s-%s-bl%d-tee%d-snp%d-ucode%d", strings.ToLower(string(k.Product)), k.HWID,
		k.TCB.Bootloader, k.TCB.TEE, k.TCB.SNP, k.TCB.Microcode)
	if k.Product == Turin {
		s += fmt.Sprintf("-fmc%d", k.TCB.FMC)
	}
	return s
}

var vcekKeyName = regexp.MustCompile(`^vcek-(milan|genoa|turin)-([0-9a-f]{16}|[0-9a-f]{128})-bl(\d{1,3})-tee(\d{1,3})-snp(\d{1,3})-ucode(\d{1,3})(?:-fmc(\d{1,3}))?$`)

func (vcekCodec) ParseKeyName(name string) (VCEKKey, error) {
	m := vcekKeyName.FindStringSubmatch(name)
	if m == nil {
		return VCEKKey{}, fmt.Errorf("%q is not a VCEK key name", name)
	}
	p, _ := ParseProduct(m[1])
	var spl [5]uint8
	for i, s := range m[3:8] {
		if s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v > 255 {
			return VCEKKey{}, fmt.Errorf("%q: SPL %q out of range", name, s)
		}
		spl[i] = uint8(v)
	}
	k := VCEKKey{Product: p, HWID: m[2], TCB: TCB{Bootloader: spl[0], TEE: spl[1], SNP: spl[2], Microcode: spl[3], FMC: spl[4]}}
	if (p == Turin) != (m[7] != "") {
		return VCEKKey{}, fmt.Errorf("%q: an FMC SPL is for Turin only, and required there", name)
	}
	return k, k.Validate()
}

func (vcekCodec) Encode(c *x509.Certificate) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("nil certificate")
	}
	return c.Raw, nil
}

func (vcekCodec) Decode(b []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: VCEK: %v", collateral.ErrMalformed, err)
	}
	return c, nil
}

// Check: a VCEK never changes for its chip and TCB, so its window is
// Final: cached for good, its expiry judged by the verifier.
func (vcekCodec) Check(k VCEKKey, c *x509.Certificate) (collateral.Window, error) {
	if err := CheckVCEK(k, c); err != nil {
		return collateral.Window{}, err
	}
	return collateral.Window{NotBefore: c.NotBefore, NotAfter: c.NotAfter, Final: true}, nil
}

type chainCodec struct{}

func (chainCodec) Family() string { return "amd-kds-chain" }

func (chainCodec) KeyName(k ChainKey) string {
	return fmt.Sprintf("chain-%s-%s", strings.ToLower(string(k.Product)), k.Signer)
}

var chainKeyName = regexp.MustCompile(`^(chain|crl)-(milan|genoa|turin)-(vcek|vlek)$`)

func parseChainKeyName(kind, name string) (ChainKey, error) {
	m := chainKeyName.FindStringSubmatch(name)
	if m == nil || m[1] != kind {
		return ChainKey{}, fmt.Errorf("%q is not a %s key name", name, kind)
	}
	p, _ := ParseProduct(m[2])
	return ChainKey{Product: p, Signer: Signer(m[3])}, nil
}

func (chainCodec) ParseKeyName(name string) (ChainKey, error) {
	return parseChainKeyName("chain", name)
}

func (chainCodec) Encode(ch *Chain) ([]byte, error) {
	if ch == nil || ch.Signer == nil || ch.ARK == nil {
		return nil, fmt.Errorf("incomplete chain")
	}
	return append(append([]byte(nil), ch.Signer.Raw...), ch.ARK.Raw...), nil
}

func (chainCodec) Decode(b []byte) (*Chain, error) {
	certs, err := x509.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%w: chain: %v", collateral.ErrMalformed, err)
	}
	if len(certs) != 2 {
		return nil, fmt.Errorf("%w: chain of %d certificates, want 2", collateral.ErrMalformed, len(certs))
	}
	return &Chain{Signer: certs[0], ARK: certs[1]}, nil
}

func (chainCodec) Check(k ChainKey, ch *Chain) (collateral.Window, error) {
	if err := CheckChain(k, ch); err != nil {
		return collateral.Window{}, err
	}
	w := collateral.Window{NotBefore: ch.Signer.NotBefore, NotAfter: ch.Signer.NotAfter}
	if ch.ARK.NotBefore.After(w.NotBefore) {
		w.NotBefore = ch.ARK.NotBefore
	}
	if ch.ARK.NotAfter.Before(w.NotAfter) {
		w.NotAfter = ch.ARK.NotAfter
	}
	return w, nil
}

type crlCodec struct{}

func (crlCodec) Family() string { return "amd-kds-crl" }

func (crlCodec) KeyName(k ChainKey) string {
	return fmt.Sprintf("crl-%s-%s", strings.ToLower(string(k.Product)), k.Signer)
}

func (crlCodec) ParseKeyName(name string) (ChainKey, error) { return parseChainKeyName("crl", name) }

func (crlCodec) Encode(l *x509.RevocationList) ([]byte, error) {
	if l == nil {
		return nil, fmt.Errorf("nil CRL")
	}
	return l.Raw, nil
}

func (crlCodec) Decode(b []byte) (*x509.RevocationList, error) {
	l, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL: %v", collateral.ErrMalformed, err)
	}
	return l, nil
}

// Check: a CRL is refreshed before its nextUpdate.
func (crlCodec) Check(k ChainKey, l *x509.RevocationList) (collateral.Window, error) {
	if err := CheckCRL(k, l); err != nil {
		return collateral.Window{}, err
	}
	return collateral.Window{NotBefore: l.ThisUpdate, NotAfter: l.NextUpdate}, nil
}
