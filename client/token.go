package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

// The token and /certs types and their checks live in package
// client/verifier, which relying parties use without a Client; the names
// below keep the SDK's API.

// SigningKey is one key of an instance's /certs: its kid and certificates
// (Certificates[0] holds the key that signs tokens).
type SigningKey = verifier.SigningKey

// JWKS is a parsed /certs document.
type JWKS = verifier.JWKS

// Header is the JOSE header of a token.
type Header = verifier.Header

// Token is a parsed (and, unless Verified is false, validated) MAA token.
type Token = verifier.Token

// ValidationError says why a token was refused.
type ValidationError = verifier.ValidationError

// Reasons a token is refused.
const (
	ReasonMalformed   = verifier.ReasonMalformed
	ReasonAlgorithm   = verifier.ReasonAlgorithm
	ReasonUnsigned    = verifier.ReasonUnsigned
	ReasonUnknownKey  = verifier.ReasonUnknownKey
	ReasonSignature   = verifier.ReasonSignature
	ReasonExpired     = verifier.ReasonExpired
	ReasonNotYetValid = verifier.ReasonNotYetValid
	ReasonIssuer      = verifier.ReasonIssuer
)

// ParseJWKS parses an MAA /certs document {"keys":[{"kid","kty","x5c":[…]}]}
// (see verifier.ParseJWKS).
func ParseJWKS(b []byte) (*JWKS, error) { return verifier.ParseJWKS(b) }

// ParseToken parses a compact JWT without checking anything but its
// structure: three base64url parts, JSON object header and body, an alg.
// Use it to inspect tokens; Client methods return validated ones.
func ParseToken(raw string) (*Token, error) { return verifier.ParseToken(raw) }

func invalid(reason, format string, args ...any) *ValidationError {
	return verifier.Invalid(reason, format, args...)
}

func b64url(s string) ([]byte, error) { return verifier.B64URL(s) }

func parseX5c(x5c []string) ([]*x509.Certificate, error) { return verifier.ParseX5C(x5c) }

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
	if t.Header.Alg == "none" && allowUnsigned {
		if parts := strings.Split(raw, "."); parts[2] != "" {
			return nil, invalid(ReasonMalformed, "alg \"none\" token has a signature")
		}
	} else {
		if err := verifier.CheckAlgorithm(t.Header.Alg); err != nil {
			if t.Header.Alg == "none" {
				return nil, invalid(ReasonUnsigned, "alg \"none\" is only accepted for draft-policy attestation results")
			}
			return nil, err
		}
		if err := c.verifySignature(ctx, t); err != nil {
			return nil, err
		}
	}
	if !v.SkipTimeValidation {
		now := time.Now
		if v.Now != nil {
			now = v.Now
		}
		if err := t.CheckTimes(now(), v.Leeway); err != nil {
			return nil, err
		}
	}
	if v.Issuer != "" {
		if err := t.CheckIssuer(v.Issuer); err != nil {
			return nil, err
		}
	}
	t.Verified = true
	return t, nil
}

// verifySignature checks t with x5c[0] of the /certs key its kid names
// (the cache refetches /certs once when the kid is unknown: key rotation),
// or, only with Validation.TrustHeaderCertificates, with the header's own
// certificate.
func (c *Client) verifySignature(ctx context.Context, t *Token) error {
	k, err := c.keys.Key(ctx, t.Header.Kid)
	var ve *ValidationError
	if errors.As(err, &ve) && ve.Reason == ReasonUnknownKey && c.val.TrustHeaderCertificates && len(t.Header.X5c) > 0 {
		certs, err := parseX5c(t.Header.X5c)
		if err != nil {
			return invalid(ReasonMalformed, "header x5c: %v", err)
		}
		return t.CheckSignature(certs[0])
	}
	if err != nil {
		if ve == nil {
			return fmt.Errorf("client: token validation: %w", err)
		}
		return err
	}
	return t.CheckSignature(k.Certificates[0])
}
