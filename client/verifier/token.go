package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/strictjson"
)

// Header is the JOSE header of a token.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Jku string `json:"jku,omitempty"`
	Typ string `json:"typ,omitempty"`
	// X5c is the header's own certificate chain (x5c or jwk.x5c), if any.
	// It is self-asserted by whoever made the token: the Verifier never
	// uses it, and package client only with its TrustHeaderCertificates.
	X5c []string `json:"x5c,omitempty"`
}

// Token is a parsed (and, unless Verified is false, validated) MAA token.
type Token struct {
	// Raw is the compact serialisation as received.
	Raw    string
	Header Header
	// Claims are the token body's members; numbers are json.Number.
	Claims map[string]any
	// Signed is false for alg "none" (draft-policy results).
	Signed bool
	// Verified is true when the signature (if Signed), times and issuer
	// were checked.
	Verified bool
	// Signer is the certificate whose key verified the signature.
	Signer *x509.Certificate
	// Issuer, IssuedAt, NotBefore, Expires are iss, iat, nbf, exp (zero
	// when absent).
	Issuer                       string
	IssuedAt, NotBefore, Expires time.Time
}

// ValidationError says why a token was refused.
type ValidationError struct {
	Reason string // short machine-readable reason, one of the Reason* constants
	Err    error
}

// Reasons a token is refused. They are stable strings: relying parties
// log them and the attest CLI prints them.
const (
	ReasonMalformed   = "malformed"
	ReasonAlgorithm   = "algorithm"
	ReasonUnsigned    = "unsigned"
	ReasonUnknownKey  = "unknown-key"
	ReasonSignature   = "signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not-yet-valid"
	ReasonIssuer      = "issuer"
	// ReasonAttestationType: x-ms-attestation-type is not one the
	// relying party expects (an SGX policy must not accept a TPM token).
	ReasonAttestationType = "attestation-type"
)

func (e *ValidationError) Error() string {
	return "client: token rejected (" + e.Reason + "): " + e.Err.Error()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Invalid returns a *ValidationError with reason and a formatted cause.
func Invalid(reason, format string, args ...any) *ValidationError {
	return &ValidationError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ParseToken parses a compact JWT without checking anything but its
// structure: three base64url parts, JSON object header and body (no
// duplicate members), an alg, valid iat/nbf/exp numbers. Use it to inspect
// tokens; Verifier.Verify and the Client return validated ones.
func ParseToken(raw string) (*Token, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, Invalid(ReasonMalformed, "want 3 dot-separated parts, got %d", len(parts))
	}
	hb, err := B64URL(parts[0])
	if err != nil {
		return nil, Invalid(ReasonMalformed, "header is not base64url: %v", err)
	}
	hm, err := strictjson.Object(hb)
	if err != nil {
		return nil, Invalid(ReasonMalformed, "header: %v", err)
	}
	t := &Token{Raw: raw}
	for name, v := range map[string]*string{"alg": &t.Header.Alg, "kid": &t.Header.Kid, "jku": &t.Header.Jku, "typ": &t.Header.Typ} {
		if _, err := strictjson.Member(hm, name, v); err != nil {
			return nil, Invalid(ReasonMalformed, "header: %v", err)
		}
	}
	if t.Header.Alg == "" {
		return nil, Invalid(ReasonMalformed, "header has no alg")
	}
	if _, ok := hm["crit"]; ok {
		return nil, Invalid(ReasonMalformed, "header parameter \"crit\" is not supported")
	}
	if _, err := strictjson.Member(hm, "x5c", &t.Header.X5c); err != nil {
		return nil, Invalid(ReasonMalformed, "header: %v", err)
	}
	if len(t.Header.X5c) == 0 {
		var jwk json.RawMessage
		if ok, _ := strictjson.Member(hm, "jwk", &jwk); ok {
			if jm, err := strictjson.Object(jwk); err == nil {
				_, _ = strictjson.Member(jm, "x5c", &t.Header.X5c)
			}
		}
	}
	bb, err := B64URL(parts[1])
	if err != nil {
		return nil, Invalid(ReasonMalformed, "body is not base64url: %v", err)
	}
	if _, err := strictjson.Object(bb); err != nil {
		return nil, Invalid(ReasonMalformed, "body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(bb))
	dec.UseNumber()
	if err := dec.Decode(&t.Claims); err != nil {
		return nil, Invalid(ReasonMalformed, "body: %v", err)
	}
	if _, err := B64URL(parts[2]); err != nil {
		return nil, Invalid(ReasonMalformed, "signature is not base64url: %v", err)
	}
	t.Signed = t.Header.Alg != "none"
	if v, ok := t.Claims["iss"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, Invalid(ReasonMalformed, "claim iss is %T, want string", v)
		}
		t.Issuer = s
	}
	for name, dst := range map[string]*time.Time{"iat": &t.IssuedAt, "nbf": &t.NotBefore, "exp": &t.Expires} {
		v, ok := t.Claims[name]
		if !ok {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, Invalid(ReasonMalformed, "claim %s is not a number", name)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
			return nil, Invalid(ReasonMalformed, "claim %s = %s is not a valid time", name, n)
		}
		sec, frac := math.Modf(f)
		*dst = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return t, nil
}

// minRSABits is the smallest RSA modulus accepted for RS256: MAA and
// attestd sign with 2048-bit keys, and anything shorter is forgeable.
const minRSABits = 2048

// CheckSignature verifies t's signature with the key of cert and, on
// success, records cert as t.Signer. RS256 (RSASSA-PKCS1-v1_5 SHA-256,
// what MAA signs) needs an RSA key of at least 2048 bits; ES256 (ECDSA
// P-256 SHA-256, r‖s as RFC 7518 §3.4 says) a P-256 key. Any other alg is
// refused before a key is looked at, which keeps algorithm confusion
// (HS256 keyed with a public key, none) out; alg "none" is ReasonUnsigned.
func (t *Token) CheckSignature(cert *x509.Certificate) error {
	if err := CheckAlgorithm(t.Header.Alg); err != nil {
		return err
	}
	i := strings.LastIndexByte(t.Raw, '.')
	sig, err := B64URL(t.Raw[i+1:])
	if err != nil {
		return Invalid(ReasonMalformed, "signature: %v", err)
	}
	d := sha256.Sum256([]byte(t.Raw[:i]))
	switch t.Header.Alg {
	case "RS256":
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return Invalid(ReasonSignature, "signing certificate %q has a %T key, RS256 needs RSA", cert.Subject, cert.PublicKey)
		}
		if pub.N.BitLen() < minRSABits {
			return Invalid(ReasonSignature, "signing certificate %q has a %d-bit RSA key, want at least %d", cert.Subject, pub.N.BitLen(), minRSABits)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			return Invalid(ReasonSignature, "RS256 signature does not verify with kid %q (%s): %v", t.Header.Kid, cert.Subject, err)
		}
	case "ES256":
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return Invalid(ReasonSignature, "signing certificate %q has a %T key, ES256 needs ECDSA P-256", cert.Subject, cert.PublicKey)
		}
		if len(sig) != 64 {
			return Invalid(ReasonSignature, "ES256 signature is %d bytes, want 64 (r‖s)", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, d[:], r, s) {
			return Invalid(ReasonSignature, "ES256 signature does not verify with kid %q (%s)", t.Header.Kid, cert.Subject)
		}
	}
	t.Signer = cert
	return nil
}

// CheckAlgorithm accepts the algorithms attestation tokens are signed
// with, RS256 and ES256.
func CheckAlgorithm(alg string) error {
	switch alg {
	case "RS256", "ES256":
		return nil
	case "none":
		return Invalid(ReasonUnsigned, "alg \"none\": an unsigned (draft-policy) token proves nothing")
	}
	return Invalid(ReasonAlgorithm, "alg %q is not RS256 or ES256", alg)
}

// CheckTimes checks exp (required) and nbf (if present) against now, each
// with leeway of clock skew.
func (t *Token) CheckTimes(now time.Time, leeway time.Duration) error {
	if t.Expires.IsZero() {
		return Invalid(ReasonExpired, "token has no exp")
	}
	if now.After(t.Expires.Add(leeway)) {
		return Invalid(ReasonExpired, "token expired at %s (now %s, leeway %s)", t.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339), leeway)
	}
	if !t.NotBefore.IsZero() && t.NotBefore.After(now.Add(leeway)) {
		return Invalid(ReasonNotYetValid, "token not valid before %s (now %s, leeway %s)", t.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339), leeway)
	}
	return nil
}

// CheckIssuer requires iss to equal want exactly: MAA issuers are URLs
// compared as strings by every SDK, so "https://x" and "https://x/" differ.
func (t *Token) CheckIssuer(want string) error {
	if t.Issuer != want {
		return Invalid(ReasonIssuer, "issuer %q, want %q", t.Issuer, want)
	}
	return nil
}
