package token

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"time"
)

// Header says which key reference a token's JOSE header carries besides
// alg, kid and typ.
type Header int

const (
	// HeaderJKU: {"alg","jku","kid","typ"} — MAA's attestation and policy
	// tokens; the relying party fetches the key from jku (/certs).
	HeaderJKU Header = iota
	// HeaderX5C adds "x5c": the signing certificate itself (MAA's Tpm
	// reports when the policy leaves omit_x5c false).
	HeaderX5C
	// HeaderX5T adds "x5t": the certificate's SHA-1 thumbprint instead
	// (omit_x5c true).
	HeaderX5T
)

// SignOptions shape one signed token.
type SignOptions struct {
	JKU    string // the /certs URL; always in the header
	Header Header
	// Lifetime is exp-iat, for the caller's Times (the signer does not
	// touch the claims); zero means AttestationLifetime.
	Lifetime time.Duration
}

// headerX is header with the optional certificate members, fields in
// lexicographic order like header.
type headerX struct {
	Alg string   `json:"alg"`
	Jku string   `json:"jku"`
	Kid string   `json:"kid"`
	Typ string   `json:"typ"`
	X5C []string `json:"x5c,omitempty"`
	X5T string   `json:"x5t,omitempty"`
}

// SignWith returns a compact RS256 JWT over claims signed by the active
// key, with the header o asks for. HeaderJKU gives exactly Sign's header.
func (ks *KeySet) SignWith(claims any, o SignOptions) (string, error) {
	if o.Header == HeaderJKU {
		return ks.Sign(o.JKU, claims)
	}
	k := ks.state.Load().active(ks.now())
	h := headerX{Alg: "RS256", Jku: o.JKU, Kid: k.kid, Typ: "JWT"}
	h.Alg = string(ks.Algorithm())
	switch o.Header {
	case HeaderX5C:
		h.X5C = []string{base64.StdEncoding.EncodeToString(k.cert.Raw)}
	case HeaderX5T:
		sum := sha1.Sum(k.cert.Raw) // RFC 7515 §4.1.7: x5t is the SHA-1 thumbprint
		h.X5T = b64.EncodeToString(sum[:])
	default:
		return "", fmt.Errorf("token: unknown header kind %d", o.Header)
	}
	raw, err := marshalJSON(h)
	if err != nil {
		return "", fmt.Errorf("token: encode header: %w", err)
	}
	return signWith(k.signer, k.kid, b64.AppendEncode(nil, raw), claims)
}
