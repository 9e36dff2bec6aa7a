package verifier

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/attestd/attestd/internal/strictjson"
)

// Why hand-written and not go-jose: MAA's /certs keys carry only kid, kty
// and x5c (no n/e), which go-jose's JSONWebKey refuses to unmarshal
// (dependencies.md §1), and MAA tokens are checked against x5c[0] of the
// key the kid names. What is written here is the JSON reading; the
// signature checks are crypto/rsa's and crypto/ecdsa's.

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

// Lookup returns the key with kid, or nil (also on a nil set).
func (s *JWKS) Lookup(kid string) *SigningKey {
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
		k.Certificates, err = ParseX5C(x5c)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", k.KID, err)
		}
		out.Keys = append(out.Keys, k)
	}
	return out, nil
}

// ParseX5C decodes an x5c array: standard base64 DER (RFC 7517 §4.7);
// base64url is tolerated, as some writers use it. It checks no chain: the
// caller decides what the certificates are trusted for.
func ParseX5C(x5c []string) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, 0, len(x5c))
	for i, s := range x5c {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if der, err = B64URL(s); err != nil {
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

// B64URL decodes base64url with or without padding (MAA writes it
// unpadded; some clients pad).
func B64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
