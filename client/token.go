package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/strictjson"
)

// Why hand-written and not go-jose: MAA's /certs keys carry only kid, kty
// and x5c (no n/e), which go-jose's JSONWebKey refuses to unmarshal
// (dependencies.md §1), and MAA tokens are checked against x5c[0] of the
// key the kid names. What is written here is the JSON reading; the
// signature check is crypto/rsa's PKCS#1 v1.5 verification.

// SigningKey is one key of an instance's /certs: its kid and certificates
// (Certificates[0] holds the key that signs tokens).
type SigningKey struct {
	KID          string
	Certificates []*x509.Certificate
}

// JWKS is a parsed /certs document.
type JWKS struct {
	Keys []SigningKey
}

// lookup returns the key with kid, or nil.
func (s *JWKS) lookup(kid string) *SigningKey {
	if s == nil {
		return nil
	}
	for i := range s.Keys {
		if s.Keys[i].KID == kid {
			return &s.Keys[i]
		}
	}
	return nil
}

// ParseJWKS parses an MAA /certs document {"keys":[{"kid","kty","x5c":[…]}]}.
// Every key must have a kid and at least one certificate (clients match the
// token's kid and verify with x5c[0]); n/e and other members are ignored,
// since the certificate is what MAA clients trust.
func ParseJWKS(b []byte) (*JWKS, error) {
	top, err := strictjson.Object(b)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var keys []json.RawMessage
	if ok, err := strictjson.Member(top, "keys", &keys); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	} else if !ok {
		return nil, errors.New("JWKS: no \"keys\" member")
	}
	out := &JWKS{}
	seen := map[string]bool{}
	for i, raw := range keys {
		m, err := strictjson.Object(raw)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		var k SigningKey
		if ok, err := strictjson.Member(m, "kid", &k.KID); err != nil || !ok || k.KID == "" {
			return nil, fmt.Errorf("JWKS key %d: no kid", i)
		}
		if seen[k.KID] {
			// Two keys under one kid would make the signer ambiguous.
			return nil, fmt.Errorf("JWKS key %d: duplicate kid %q", i, k.KID)
		}
		seen[k.KID] = true
		var x5c []string
		if _, err := strictjson.Member(m, "x5c", &x5c); err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", k.KID, err)
		}
		if len(x5c) == 0 {
			return nil, fmt.Errorf("JWKS key %q: no x5c certificate", k.KID)
		}
		k.Certificates, err = parseX5c(x5c)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", k.KID, err)
		}
		out.Keys = append(out.Keys, k)
	}
	return out, nil
}

// parseX5c decodes an x5c array: standard base64 DER (RFC 7517 §4.7);
// base64url is tolerated, as some writers use it.
func parseX5c(x5c []string) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, 0, len(x5c))
	for i, s := range x5c {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if der, err = b64url(s); err != nil {
				return nil, fmt.Errorf("x5c[%d]: not base64", i)
			}
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// b64url decodes base64url with or without padding.
func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Header is the JOSE header of a token.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Jku string `json:"jku,omitempty"`
	Typ string `json:"typ,omitempty"`
	// X5c is the header's own certificate chain (x5c or jwk.x5c), if any.
	// It is used only with Validation.TrustHeaderCertificates.
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
	// were checked; false with Validation.SkipValidation.
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

// Reasons a token is refused.
const (
	ReasonMalformed   = "malformed"
	ReasonAlgorithm   = "algorithm"
	ReasonUnsigned    = "unsigned"
	ReasonUnknownKey  = "unknown-key"
	ReasonSignature   = "signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not-yet-valid"
	ReasonIssuer      = "issuer"
)

func (e *ValidationError) Error() string {
	return "client: token rejected (" + e.Reason + "): " + e.Err.Error()
}

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(reason, format string, args ...any) *ValidationError {
	return &ValidationError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ParseToken parses a compact JWT without checking anything but its
// structure: three base64url parts, JSON object header and body, an alg.
// Use it to inspect tokens; Client methods return validated ones.
func ParseToken(raw string) (*Token, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, invalid(ReasonMalformed, "want 3 dot-separated parts, got %d", len(parts))
	}
	hb, err := b64url(parts[0])
	if err != nil {
		return nil, invalid(ReasonMalformed, "header is not base64url: %v", err)
	}
	hm, err := strictjson.Object(hb)
	if err != nil {
		return nil, invalid(ReasonMalformed, "header: %v", err)
	}
	t := &Token{Raw: raw}
	for name, v := range map[string]*string{"alg": &t.Header.Alg, "kid": &t.Header.Kid, "jku": &t.Header.Jku, "typ": &t.Header.Typ} {
		if _, err := strictjson.Member(hm, name, v); err != nil {
			return nil, invalid(ReasonMalformed, "header: %v", err)
		}
	}
	if t.Header.Alg == "" {
		return nil, invalid(ReasonMalformed, "header has no alg")
	}
	if _, ok := hm["crit"]; ok {
		return nil, invalid(ReasonMalformed, "header parameter \"crit\" is not supported")
	}
	if _, err := strictjson.Member(hm, "x5c", &t.Header.X5c); err != nil {
		return nil, invalid(ReasonMalformed, "header: %v", err)
	}
	if len(t.Header.X5c) == 0 {
		var jwk json.RawMessage
		if ok, _ := strictjson.Member(hm, "jwk", &jwk); ok {
			if jm, err := strictjson.Object(jwk); err == nil {
				_, _ = strictjson.Member(jm, "x5c", &t.Header.X5c)
			}
		}
	}
	bb, err := b64url(parts[1])
	if err != nil {
		return nil, invalid(ReasonMalformed, "body is not base64url: %v", err)
	}
	if _, err := strictjson.Object(bb); err != nil {
		return nil, invalid(ReasonMalformed, "body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(bb))
	dec.UseNumber()
	if err := dec.Decode(&t.Claims); err != nil {
		return nil, invalid(ReasonMalformed, "body: %v", err)
	}
	if _, err := b64url(parts[2]); err != nil {
		return nil, invalid(ReasonMalformed, "signature is not base64url: %v", err)
	}
	t.Signed = t.Header.Alg != "none"
	t.Issuer, _ = t.Claims["iss"].(string)
	for name, dst := range map[string]*time.Time{"iat": &t.IssuedAt, "nbf": &t.NotBefore, "exp": &t.Expires} {
		v, ok := t.Claims[name]
		if !ok {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, invalid(ReasonMalformed, "claim %s is not a number", name)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
			return nil, invalid(ReasonMalformed, "claim %s = %s is not a valid time", name, n)
		}
		sec, frac := math.Modf(f)
		*dst = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return t, nil
}

// validate parses raw and checks it under c's Validation. allowUnsigned
// admits alg "none" (only for draft-policy attest results).
func (c *Client) validate(ctx context.Context, raw string, allowUnsigned bool) (*Token, error) {
	t, err := ParseToken(raw)
	if err != nil {
		return nil, err
	}
	v := c.val
	if v.SkipValidation {
		return t, nil
	}
	switch t.Header.Alg {
	case "none":
		if !allowUnsigned {
			return nil, invalid(ReasonUnsigned, "alg \"none\" is only accepted for draft-policy attestation results")
		}
		if parts := strings.Split(raw, "."); parts[2] != "" {
			return nil, invalid(ReasonMalformed, "alg \"none\" token has a signature")
		}
	case "RS256":
		if err := c.verifySignature(ctx, t, raw); err != nil {
			return nil, err
		}
	default:
		// MAA signs RS256 only (maa-api.md §0.5); refusing the rest keeps
		// algorithm confusion (HS256 keyed with a public key, …) out.
		return nil, invalid(ReasonAlgorithm, "alg %q is not RS256", t.Header.Alg)
	}
	if !v.SkipTimeValidation {
		now := time.Now
		if v.Now != nil {
			now = v.Now
		}
		n := now()
		if t.Expires.IsZero() {
			return nil, invalid(ReasonExpired, "token has no exp")
		}
		if n.After(t.Expires.Add(v.Leeway)) {
			return nil, invalid(ReasonExpired, "token expired at %s (now %s, leeway %s)", t.Expires.Format(time.RFC3339), n.UTC().Format(time.RFC3339), v.Leeway)
		}
		if !t.NotBefore.IsZero() && t.NotBefore.After(n.Add(v.Leeway)) {
			return nil, invalid(ReasonNotYetValid, "token not valid before %s (now %s, leeway %s)", t.NotBefore.Format(time.RFC3339), n.UTC().Format(time.RFC3339), v.Leeway)
		}
	}
	if v.Issuer != "" && t.Issuer != v.Issuer {
		return nil, invalid(ReasonIssuer, "issuer %q, want %q", t.Issuer, v.Issuer)
	}
	t.Verified = true
	return t, nil
}

// verifySignature checks an RS256 token with x5c[0] of the /certs key its
// kid names, refreshing /certs once when the kid is unknown (key rotation).
func (c *Client) verifySignature(ctx context.Context, t *Token, raw string) error {
	var cert *x509.Certificate
	if t.Header.Kid != "" {
		jwks, gen, err := c.signingKeys(ctx, 0)
		if err != nil {
			return err
		}
		k := jwks.lookup(t.Header.Kid)
		if k == nil {
			if jwks, _, err = c.signingKeys(ctx, gen); err != nil {
				return err
			}
			k = jwks.lookup(t.Header.Kid)
		}
		if k != nil {
			cert = k.Certificates[0]
		}
	}
	if cert == nil && c.val.TrustHeaderCertificates && len(t.Header.X5c) > 0 {
		certs, err := parseX5c(t.Header.X5c)
		if err != nil {
			return invalid(ReasonMalformed, "header x5c: %v", err)
		}
		cert = certs[0]
	}
	if cert == nil {
		if t.Header.Kid == "" {
			return invalid(ReasonUnknownKey, "token header has no kid")
		}
		return invalid(ReasonUnknownKey, "kid %q is not a signing key of %s/certs", t.Header.Kid, c.base)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return invalid(ReasonSignature, "signing certificate %q has a %T key, RS256 needs RSA", cert.Subject, cert.PublicKey)
	}
	i := strings.LastIndexByte(raw, '.')
	sig, err := b64url(raw[i+1:])
	if err != nil {
		return invalid(ReasonMalformed, "signature: %v", err)
	}
	d := sha256.Sum256([]byte(raw[:i]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
		return invalid(ReasonSignature, "RS256 signature does not verify with kid %q (%s): %v", t.Header.Kid, cert.Subject, err)
	}
	t.Signer = cert
	return nil
}

// signingKeys returns the cached /certs, fetching it when there is none or
// when the cache is still generation stale (a caller saw an unknown kid in
// it). Concurrent callers share one fetch.
func (c *Client) signingKeys(ctx context.Context, stale uint64) (*JWKS, uint64, error) {
	for {
		c.mu.Lock()
		if c.keys != nil && c.keysGen != stale {
			k, g := c.keys, c.keysGen
			c.mu.Unlock()
			return k, g, nil
		}
		if wait := c.fetching; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.fetching = done
		c.mu.Unlock()

		k, err := c.GetSigningCertificates(ctx)

		c.mu.Lock()
		c.fetching = nil
		close(done)
		if err != nil {
			c.mu.Unlock()
			return nil, 0, fmt.Errorf("client: fetching signing keys for token validation: %w", err)
		}
		c.keys = k
		c.keysGen++
		g := c.keysGen
		c.mu.Unlock()
		return k, g, nil
	}
}
