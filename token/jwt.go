package token

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
)

// The JWS is assembled by hand rather than through go-jose's signer: MAA
// clients re-encode header and payload themselves (Python) or match the
// header's kid/jku (JS), so the exact header bytes
// {"alg":"RS256","jku":…,"kid":…,"typ":"JWT"} and canonical unpadded
// base64url are part of the wire contract, and the alg "none" form (which
// go-jose cannot emit) must share the same layout. The signature itself is
// the standard library's RSASSA-PKCS1-v1_5 over SHA-256 via crypto.Signer.

var b64 = base64.RawURLEncoding

// header is marshalled with fields in this (lexicographic) order.
type header struct {
	Alg string `json:"alg"`
	Jku string `json:"jku"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// marshalJSON encodes v without HTML escaping (policy text and runtime data
// appear verbatim, as MAA emits them) and without a trailing newline. Maps
// are encoded with sorted keys, as real MAA tokens list their members.
// json.RawMessage and []byte values are taken as ready JSON and validated.
func marshalJSON(v any) ([]byte, error) {
	switch r := v.(type) {
	case json.RawMessage:
		return validJSONObject([]byte(r))
	case []byte:
		return validJSONObject(r)
	case map[string]any:
		// An SGX token's claims are ~2.6 KB: start with room for them.
		return appendClaims(make([]byte, 0, 4096), r)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func validJSONObject(b []byte) ([]byte, error) {
	t := bytes.TrimSpace(b)
	if !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return nil, errors.New("claims are not a JSON object")
	}
	return t, nil
}

func encodeHeader(alg, jku, kid string) ([]byte, error) {
	return marshalJSON(header{Alg: alg, Jku: jku, Kid: kid, Typ: "JWT"})
}

// Sign returns a compact JWT over claims signed by the active key with the
// set's algorithm (RS256 unless OpenKeySetAlgorithm chose ES256), with
// header exactly {"alg":<"RS256"|"ES256">,"jku":jku,"kid":<active kid>,"typ":"JWT"}.
// jku is the /certs URL of the instance (its configured URL + "/certs").
// claims is marshalled with encoding/json (maps in sorted key order, no
// HTML escaping); a json.RawMessage is used as is.
func (ks *KeySet) Sign(jku string, claims any) (string, error) {
	k := ks.state.Load().active(ks.now())
	h := k.rs256.Load()
	if h == nil || h.jku != jku {
		raw, err := encodeHeader(string(ks.Algorithm()), jku, k.kid)
		if err != nil {
			return "", fmt.Errorf("token: encode header: %w", err)
		}
		h = &encodedHeader{jku: jku, b64: b64.AppendEncode(nil, raw)}
		k.rs256.Store(h)
	}
	return signWith(k.signer, k.kid, h.b64, claims)
}

// claimBuffers recycles the buffers signWith encodes claims into (~2.6 KB
// per SGX attestation, ~5 % of the bytes an ES256 attestation allocated);
// buffers above maxPooledClaims are left to the GC.
var claimBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledClaims = 64 << 10

// signWith signs claims under an already encoded header.
func signWith(signer crypto.Signer, kid string, header []byte, claims any) (string, error) {
	var p []byte
	var err error
	if m, ok := claims.(map[string]any); ok {
		// The usual case: the claims are encoded into a recycled buffer,
		// which is dead once base64url-encoded into the token below.
		bp := claimBuffers.Get().(*[]byte)
		p, err = appendClaims((*bp)[:0], m)
		defer func() {
			if cap(p) <= maxPooledClaims {
				*bp = p[:0]
				claimBuffers.Put(bp)
			}
		}()
	} else {
		p, err = marshalJSON(claims)
	}
	if err != nil {
		return "", fmt.Errorf("token: encode claims: %w", err)
	}
	hl, pl := len(header), b64.EncodedLen(len(p))
	sigLen := 512 // RSA up to 4096 bits
	if isES256Signer(signer) {
		sigLen = 64
	}
	out := make([]byte, hl+1+pl+1, hl+1+pl+1+b64.EncodedLen(sigLen))
	copy(out, header)
	out[hl] = '.'
	b64.Encode(out[hl+1:], p)
	out[hl+1+pl] = '.'
	digest := sha256.Sum256(out[:hl+1+pl])
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token: sign with key %s: %w", kid, err)
	}
	out = b64.AppendEncode(out, sig)
	// The token is out's bytes, which nothing writes again: a string
	// sharing them saves copying the ~4 KB token (as strings.Builder does).
	return unsafe.String(&out[0], len(out)), nil
}

// Unsigned returns the unsigned JWT MAA issues for draft-policy attestation:
// header {"alg":"none","jku":jku,"kid":kid,"typ":"JWT"}, the claims, and an
// empty signature (the token ends with "."). Clients skip signature checks
// for alg "none".
func Unsigned(jku, kid string, claims any) (string, error) {
	h, err := encodeHeader("none", jku, kid)
	if err != nil {
		return "", fmt.Errorf("token: encode header: %w", err)
	}
	p, err := marshalJSON(claims)
	if err != nil {
		return "", fmt.Errorf("token: encode claims: %w", err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(p) + ".", nil
}

// Unsigned is Unsigned with the active key's kid, as real MAA does.
func (ks *KeySet) Unsigned(jku string, claims any) (string, error) {
	return Unsigned(jku, ks.ActiveKID(), claims)
}

// Verify checks a token signed by one of the set's unretired keys (selected
// by the header kid) and returns its payload. It is for tests and the
// "attestd verify" tool; expiry is the caller's business.
func (ks *KeySet) Verify(tok string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(ks.Algorithm())})
	if err != nil {
		return nil, fmt.Errorf("token: parse: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token: want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k := ks.lookup(kid)
	if k == nil {
		return nil, fmt.Errorf("token: kid %q is not an unretired key of this set (have %s)", kid, strings.Join(ks.sortedKIDs(), ", "))
	}
	payload, err := jws.Verify(k.cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token: verify with key %s: %w", kid, err)
	}
	return payload, nil
}
