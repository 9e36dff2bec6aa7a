package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithm is the JWS algorithm a key set signs with.
//
// RS256 (RSA-2048, RSASSA-PKCS1-v1_5) is what MAA issues and every MAA
// client verifies; it is the default. ES256 (ECDSA P-256, SHA-256) is
// attestd's option beyond MAA for relying parties that accept it: signing
// costs a fraction of an RSA-2048 signature, which is most of an
// attestation's CPU (issue 9). Python's azure-security-attestation 1.0.1
// verifies RSA only, so instances serving it keep RS256.
type Algorithm string

// The algorithms a key set can sign with.
const (
	RS256 Algorithm = "RS256"
	ES256 Algorithm = "ES256"
)

// ParseAlgorithm reads a configured algorithm: "" means RS256.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch Algorithm(s) {
	case "", RS256:
		return RS256, nil
	case ES256:
		return ES256, nil
	}
	return "", fmt.Errorf("token: unknown signing algorithm %q (want %q or %q)", s, RS256, ES256)
}

// Algorithm returns the algorithm the set signs with.
func (ks *KeySet) Algorithm() Algorithm {
	if ks.alg == "" {
		return RS256
	}
	return ks.alg
}

// OpenKeySetAlgorithm is OpenKeySet for keys of algorithm alg: RS256 keys
// as OpenKeySet makes them, or ES256 keys (P-256, PKCS#8 with a
// self-signed certificate, in the same file layout and manifest, rotated
// the same way). A directory holds keys of one algorithm: loading a key of
// another fails, so an instance never signs with a key its configuration
// does not name.
func OpenKeySetAlgorithm(dir, subject string, now func() time.Time, alg Algorithm) (*KeySet, error) {
	alg, err := ParseAlgorithm(string(alg))
	if err != nil {
		return nil, err
	}
	if dir == "" || subject == "" || now == nil {
		return nil, errors.New("token: key directory, certificate subject and clock are required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token: create key directory: %w", err)
	}
	ks := &KeySet{dir: dir, subject: subject, now: now, alg: alg}
	if err := ks.Reload(); err != nil {
		return nil, err
	}
	return ks, nil
}

// joseES256 signs with an ECDSA P-256 key and returns the signature as JWS
// wants it (RFC 7518 §3.4): R and S as 32-byte big-endian integers,
// concatenated — not the ASN.1 DER crypto/ecdsa's Signer returns. It lets
// the hand-built JWS path (signWith) stay algorithm-agnostic.
type joseES256 struct{ k *ecdsa.PrivateKey }

func (s joseES256) Public() crypto.PublicKey { return &s.k.PublicKey }

func (s joseES256) Sign(r io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	der, err := s.k.Sign(r, digest, nil) // ASN.1 SEQUENCE { r INTEGER, s INTEGER }
	if err != nil {
		return nil, err
	}
	return rawP256Signature(der)
}

// ES256Signer adapts s, a P-256 signer whose Sign returns ASN.1 DER (as
// crypto/ecdsa and crypto11's PKCS#11 keys do, since X.509 wants DER),
// into what a store key set's PrivateKeys.Unwrap must return for ES256:
// a signer whose Sign returns JWS's 64-byte R||S (RFC 7518 §3.4). The
// certificate and PKCS#8 paths take the DER signer back with rawKey.
func ES256Signer(s crypto.Signer) (crypto.Signer, error) {
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token: ES256 needs a P-256 key, not %T", s.Public())
	}
	if ek, ok := s.(*ecdsa.PrivateKey); ok {
		return joseES256{ek}, nil
	}
	return derES256{s}, nil
}

// derES256 is ES256Signer for a key held elsewhere (an HSM): the DER it
// returns is converted to R||S.
type derES256 struct{ s crypto.Signer }

func (d derES256) Public() crypto.PublicKey { return d.s.Public() }

func (d derES256) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	der, err := d.s.Sign(r, digest, opts)
	if err != nil {
		return nil, err
	}
	return rawP256Signature(der)
}

// isES256Signer reports whether s returns R||S signatures.
func isES256Signer(s crypto.Signer) bool {
	switch s.(type) {
	case joseES256, derES256:
		return true
	}
	return false
}

// rawP256Signature turns crypto/ecdsa's DER signature into JWS's 64-byte
// R||S without big.Int round trips. The input is our own signer's output
// or an HSM's (through crypto11); anything unexpected is an error, never a
// panic (FuzzRawP256Signature).
func rawP256Signature(der []byte) ([]byte, error) {
	bad := errors.New("token: unexpected ECDSA signature encoding")
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, bad
	}
	out := make([]byte, 64)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 {
			return nil, bad
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		for len(v) > 0 && v[0] == 0 { // DER's sign byte
			v = v[1:]
		}
		if len(v) > 32 {
			return nil, bad
		}
		copy(out[i*32+32-len(v):(i+1)*32], v)
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return nil, bad
	}
	return out, nil
}

// loadECKey finishes loadKey for an ES256 set: the key must be P-256 and
// match the certificate.
func (ks *KeySet) loadECKey(e manifestEntry, path string, priv any, certDER []byte) (*signingKey, error) {
	ek, ok := priv.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token: key file %s: private key is %T, want ECDSA P-256 (this key set signs ES256)", path, priv)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: parse certificate: %w", path, err)
	}
	if !ek.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("token: key file %s: certificate does not match the private key", path)
	}
	return loadedKey(joseES256{ek}, jose.ES256, cert, e, path)
}

// newECKey is newKey for an ES256 set.
func (ks *KeySet) newECKey(t time.Time) (*signingKey, error) {
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generate P-256 key: %w", err)
	}
	t = t.UTC()
	cert, err := selfSigned(ks.subject, ek, t)
	if err != nil {
		return nil, err
	}
	file, err := ks.writeKeyFile("signer-es256-", ek, cert, t)
	if err != nil {
		return nil, err
	}
	return newSigningKey(joseES256{ek}, jose.ES256, cert, file, t)
}

// Pair is the Signer of an instance whose attestation tokens use another
// algorithm than its management tokens: Attestation signs attestation
// tokens (SignWith, and the draft-policy Unsigned form names its kid),
// Management signs policy and certificate results (Sign), which MAA's SDKs
// verify RS256 only. /certs publishes both sets' keys.
type Pair struct {
	Management  *KeySet
	Attestation *KeySet
}

// Sign signs a management token with the management keys.
func (p Pair) Sign(jku string, claims any) (string, error) { return p.Management.Sign(jku, claims) }

// SignWith signs an attestation token with the attestation keys.
func (p Pair) SignWith(claims any, o SignOptions) (string, error) {
	return p.Attestation.SignWith(claims, o)
}

// Unsigned is the draft-policy token, with the attestation key's kid.
func (p Pair) Unsigned(jku string, claims any) (string, error) {
	return p.Attestation.Unsigned(jku, claims)
}

// JWKS publishes the management keys, then the attestation keys.
func (p Pair) JWKS() []byte {
	m, a := p.Management.JWKS(), p.Attestation.JWKS()
	// Both are {"keys":[…]}: splice the arrays.
	const head, tail = `{"keys":[`, `]}`
	mi, ai := m[len(head):len(m)-len(tail)], a[len(head):len(a)-len(tail)]
	out := make([]byte, 0, len(m)+len(a))
	out = append(out, head...)
	out = append(out, mi...)
	if len(mi) > 0 && len(ai) > 0 {
		out = append(out, ',')
	}
	out = append(out, ai...)
	return append(out, tail...)
}

// Algorithms lists the algorithms of the pair's tokens, for the OpenID
// metadata's id_token_signing_alg_values_supported.
func (p Pair) Algorithms() []string {
	a, m := string(p.Attestation.Algorithm()), string(p.Management.Algorithm())
	if a == m {
		return []string{a}
	}
	return []string{m, a}
}

// Algorithms lists the set's one algorithm (see Pair.Algorithms).
func (ks *KeySet) Algorithms() []string { return []string{string(ks.Algorithm())} }

// Verify checks a token signed by one of the pair's unretired keys.
func (p Pair) Verify(tok string) ([]byte, error) {
	if b, err := p.Attestation.Verify(tok); err == nil {
		return b, nil
	}
	return p.Management.Verify(tok)
}
