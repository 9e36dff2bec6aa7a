package instance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/attestd/attestd/internal/strictjson"
	"github.com/attestd/attestd/store"
)

// This file reads the compact JWS bodies of the policy- and
// certificate-management calls (maa-api.md §1.4, §1.5).
//
// Why not go-jose here (it is used to *create* JWS in the tests): the SDKs
// that must keep working send headers go-jose refuses by design. Python
// 1.0.1 signs with `{"alg":"RSA256","jwk":{"x5c":[…]}}` — a non-standard alg
// name and a `jwk` member without `kty`, which go-jose's JSONWebKey
// unmarshalling rejects before any signature check — and old .NET sends
// `{"alg":"RSA256","x5c":[…]}`. The signature bytes cover the header as sent,
// so the header cannot be rewritten into something go-jose accepts. What is
// hand-written is only the header reading and the dispatch to the stdlib
// verifiers (crypto/rsa, crypto/ecdsa); no cryptography is implemented here.

// jws is a parsed compact JWS.
type jws struct {
	// Alg is the normalised algorithm: "none", or a JWA name such as
	// "RS256" ("RSA256" is read as "RS256").
	Alg     string
	Payload []byte // decoded payload; empty for reset bodies
	// Chain is the header certificate chain (x5c at top level or under
	// jwk); Chain[0] signed the JWS. Nil for alg "none".
	Chain []*x509.Certificate
}

// Signed reports whether the JWS carries a (verified) signature.
func (j *jws) Signed() bool { return j.Alg != "none" }

// Signer returns the certificate whose key signed the JWS, or nil.
func (j *jws) Signer() *x509.Certificate {
	if len(j.Chain) == 0 {
		return nil
	}
	return j.Chain[0]
}

// jwsHeader is the part of a JWS header the reader acts on.
type jwsHeader struct {
	Alg string
	X5c []string // top-level x5c, else jwk.x5c
}

// parseHeader reads the JWS header members attestd uses.
func parseHeader(b []byte) (*jwsHeader, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, err
	}
	// RFC 7515 §4.1.11: a recipient must reject a JWS whose "crit" lists
	// extensions it does not understand; attestd understands none (e.g.
	// RFC 7797 "b64":false would change what the payload part means).
	if _, ok := m["crit"]; ok {
		return nil, errors.New("the \"crit\" header parameter is not supported")
	}
	var h jwsHeader
	if ok, err := strictjson.Member(m, "alg", &h.Alg); err != nil || !ok {
		if err == nil {
			err = errors.New("no \"alg\" member")
		}
		return nil, err
	}
	if _, err := strictjson.Member(m, "x5c", &h.X5c); err != nil {
		return nil, err
	}
	if len(h.X5c) == 0 {
		var jwk json.RawMessage
		if ok, err := strictjson.Member(m, "jwk", &jwk); err != nil {
			return nil, err
		} else if ok {
			jm, err := strictjson.Object(jwk)
			if err != nil {
				return nil, fmt.Errorf("member \"jwk\": %v", err)
			}
			if _, err := strictjson.Member(jm, "x5c", &h.X5c); err != nil {
				return nil, fmt.Errorf("member \"jwk\": %v", err)
			}
		}
	}
	return &h, nil
}

// jwsAlg describes an accepted header alg value.
type jwsAlg struct {
	name   string // normalised JWA name
	hash   crypto.Hash
	family string         // "RSA", "RSA-PSS", "EC"
	curve  elliptic.Curve // EC only: the curve RFC 7518 §3.4 ties to the alg
}

// lookupAlg maps a header alg to its hash and key family; "RSA256" (Python
// 1.0.1, old .NET) is read as RS256. HMAC and "none" are not signatures here.
func lookupAlg(alg string) (jwsAlg, bool) {
	switch alg {
	case "RS256", "RSA256":
		return jwsAlg{"RS256", crypto.SHA256, "RSA", nil}, true
	case "RS384":
		return jwsAlg{"RS384", crypto.SHA384, "RSA", nil}, true
	case "RS512":
		return jwsAlg{"RS512", crypto.SHA512, "RSA", nil}, true
	case "PS256":
		return jwsAlg{"PS256", crypto.SHA256, "RSA-PSS", nil}, true
	case "PS384":
		return jwsAlg{"PS384", crypto.SHA384, "RSA-PSS", nil}, true
	case "PS512":
		return jwsAlg{"PS512", crypto.SHA512, "RSA-PSS", nil}, true
	case "ES256":
		return jwsAlg{"ES256", crypto.SHA256, "EC", elliptic.P256()}, true
	case "ES384":
		return jwsAlg{"ES384", crypto.SHA384, "EC", elliptic.P384()}, true
	case "ES512":
		return jwsAlg{"ES512", crypto.SHA512, "EC", elliptic.P521()}, true
	}
	return jwsAlg{}, false
}

// looksLikeJWS reports whether body is meant to be a compact JWS (as opposed
// to raw policy text, which starts with "version" after optional
// whitespace/comments). Every JWS header is a JSON object, so its base64url
// starts with "eyJ" ('{"').
func looksLikeJWS(body string) bool {
	return strings.HasPrefix(strings.TrimSpace(body), "eyJ")
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// parseJWS parses a compact JWS and, unless it is alg "none", verifies its
// signature with the key of the first header certificate. It does not decide
// whether that certificate is trusted: that is the caller's (mode's) job.
func parseJWS(s string) (*jws, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed JWS: want 3 dot-separated parts, got %d", len(parts))
	}
	hb, err := decodeB64URL(parts[0])
	if err != nil {
		return nil, fmt.Errorf("malformed JWS header: %v", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS header JSON: %v", err)
	}
	payload, err := decodeB64URL(parts[1])
	if err != nil {
		return nil, fmt.Errorf("malformed JWS payload: %v", err)
	}
	sig, err := decodeB64URL(parts[2])
	if err != nil {
		return nil, fmt.Errorf("malformed JWS signature: %v", err)
	}
	if h.Alg == "none" {
		if len(sig) != 0 {
			return nil, errors.New("JWS with alg \"none\" must have an empty signature")
		}
		return &jws{Alg: "none", Payload: payload}, nil
	}
	a, ok := lookupAlg(h.Alg)
	if !ok {
		return nil, fmt.Errorf("unsupported JWS alg %q", h.Alg)
	}
	x5c := h.X5c
	if len(x5c) == 0 {
		return nil, errors.New("signed JWS carries no signing certificate (x5c or jwk.x5c)")
	}
	chain := make([]*x509.Certificate, 0, len(x5c))
	for i, c := range x5c {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			// Some writers use base64url; tolerate it.
			if der, err = decodeB64URL(c); err != nil {
				return nil, fmt.Errorf("x5c[%d]: not base64: %v", i, err)
			}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %v", i, err)
		}
		chain = append(chain, cert)
	}
	hf := a.hash.New()
	hf.Write([]byte(parts[0] + "." + parts[1]))
	digest := hf.Sum(nil)
	if err := verifySig(chain[0].PublicKey, a, digest, sig); err != nil {
		return nil, fmt.Errorf("JWS signature does not verify with the header certificate (%s): %v", chain[0].Subject, err)
	}
	return &jws{Alg: a.name, Payload: payload, Chain: chain}, nil
}

func verifySig(pub any, a jwsAlg, digest, sig []byte) error {
	family, h := a.family, a.hash
	switch family {
	case "RSA", "RSA-PSS":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("certificate key is %T, alg needs RSA", pub)
		}
		if family == "RSA" {
			return rsa.VerifyPKCS1v15(k, h, digest, sig)
		}
		return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "EC":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("certificate key is %T, alg needs ECDSA", pub)
		}
		if k.Curve != a.curve {
			return fmt.Errorf("alg %s needs a %s key, the certificate has %s", a.name, a.curve.Params().Name, k.Curve.Params().Name)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return fmt.Errorf("ECDSA signature is %d bytes, want %d", len(sig), 2*n)
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("unknown key family %q", family)
}

// usableKey reports why no accepted JWS alg can verify signatures of c's
// key, or nil: RSA of at least 1024 bits (crypto/rsa refuses smaller keys)
// or ECDSA on P-256, P-384 or P-521.
func usableKey(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 1024 {
			return fmt.Errorf("its RSA key has %d bits; at least 1024 are needed to verify signatures", n)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("its ECDSA key is on curve %s; ES256/ES384/ES512 need P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return fmt.Errorf("its %s key cannot sign any accepted JWS alg (RS*, PS*, ES*)", c.PublicKeyAlgorithm)
}

// Thumbprint is the MAA certificate thumbprint: upper-case hex SHA-1 of DER.
func Thumbprint(c *x509.Certificate) string { return store.Thumbprint(c.Raw) }

// certJWK is the JWK form MAA uses for certificates in tokens
// (x-ms-policy-signer, x-ms-policy-certificates): kty + x5c, std base64 DER.
func certJWK(chain ...*x509.Certificate) map[string]any {
	x5c := make([]string, len(chain))
	for i, c := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	kty := "RSA"
	if len(chain) > 0 {
		if _, ok := chain[0].PublicKey.(*ecdsa.PublicKey); ok {
			kty = "EC"
		}
	}
	return map[string]any{"kty": kty, "x5c": x5c}
}

// policyText reads the AttestationPolicy member of a StoredAttestationPolicy
// payload (exact name, see jsonObject) and decodes it: base64url as the SDKs
// send it, or standard base64.
func policyText(payload []byte) (string, error) {
	m, err := strictjson.Object(payload)
	if err != nil {
		return "", fmt.Errorf("policy JWS payload must be a JSON object with an \"AttestationPolicy\" member: %v", err)
	}
	var enc string
	if ok, err := strictjson.Member(m, "AttestationPolicy", &enc); err != nil || !ok {
		if err == nil {
			err = errors.New("no \"AttestationPolicy\" member")
		}
		return "", fmt.Errorf("policy JWS payload must be a JSON object with an \"AttestationPolicy\" member: %v", err)
	}
	b, err := decodeB64URL(enc)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(enc); err != nil {
			return "", fmt.Errorf("AttestationPolicy is not base64url: %v", err)
		}
	}
	return string(b), nil
}

// certificateX5c reads policyCertificate.x5c of an
// AttestationCertificateManagementBody payload (maa-api.md §1.5);
// "maa-policyCertificate" is the preview-era name. Names are exact.
func certificateX5c(payload []byte) ([]string, error) {
	m, err := strictjson.Object(payload)
	if err != nil {
		return nil, fmt.Errorf("certificate-management JWS payload is not a JSON object: %v", err)
	}
	var jwk json.RawMessage
	ok, err := strictjson.Member(m, "policyCertificate", &jwk)
	if err == nil && !ok {
		ok, err = strictjson.Member(m, "maa-policyCertificate", &jwk)
	}
	if err != nil || !ok {
		return nil, errors.New("certificate-management JWS payload lacks policyCertificate.x5c")
	}
	jm, err := strictjson.Object(jwk)
	if err != nil {
		return nil, fmt.Errorf("policyCertificate is not a JSON object: %v", err)
	}
	var x5c []string
	if _, err := strictjson.Member(jm, "x5c", &x5c); err != nil || len(x5c) == 0 {
		return nil, errors.New("certificate-management JWS payload lacks policyCertificate.x5c")
	}
	return x5c, nil
}

// isEmptyResetPayload reports whether a reset JWS payload says nothing: no
// bytes (what the SDKs send), JSON null (pre-1.0 Python betas encoded their
// None body) or an empty JSON object. Anything else is some other
// operation's signed body being replayed to :reset.
func isEmptyResetPayload(p []byte) bool {
	t := bytes.TrimSpace(p)
	if len(t) == 0 || string(t) == "null" {
		return true
	}
	m, err := strictjson.Object(p)
	return err == nil && len(m) == 0
}
