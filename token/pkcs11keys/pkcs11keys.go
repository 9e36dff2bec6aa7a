//go:build pkcs11

// Package pkcs11keys keeps the private signing keys of a store key set
// (token.OpenStoreKeySet) inside a PKCS#11 token: keys are generated in the
// token, marked non-extractable by the token's defaults, and sign there
// through crypto11 (github.com/ThalesGroup/crypto11, over miekg/pkcs11). The
// database holds only a reference to each key (its CKA_ID) next to its
// certificate. It needs cgo, hence the build tag "pkcs11".
package pkcs11keys

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ThalesGroup/crypto11"

	"github.com/attestd/attestd/token"
)

// refPrefix starts the stored reference: "pkcs11:id=" and the hex CKA_ID.
const refPrefix = "pkcs11:id="

// Keys is a token.PrivateKeys in a PKCS#11 token.
type Keys struct {
	ctx   *crypto11.Context
	label string
}

var _ token.PrivateKeys = (*Keys)(nil)

// Open logs in to the token labelled tokenLabel through the PKCS#11
// library at module. Close it when done.
func Open(module, tokenLabel, pin string) (*Keys, error) {
	if module == "" || tokenLabel == "" || pin == "" {
		return nil, errors.New("pkcs11: module, token label and PIN are required")
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: tokenLabel, Pin: pin})
	if err != nil {
		// crypto11's errors name the module and token, never the PIN.
		return nil, fmt.Errorf("pkcs11: open token %q with %s: %w", tokenLabel, module, err)
	}
	return &Keys{ctx: c, label: tokenLabel}, nil
}

// Close logs out and unloads the library.
func (k *Keys) Close() error { return k.ctx.Close() }

// hsmKey remembers the CKA_ID of a key Create made, for Wrap.
type hsmKey struct {
	crypto11.Signer
	id []byte
}

// Create implements token.PrivateKeys: a key pair generated in the token
// (RSA-2048 for RS256, ECDSA P-256 for ES256), with a random CKA_ID and
// ref.Label as CKA_LABEL. The signer returned signs as crypto11 does (DER
// for ECDSA), which is what the key's self-signed certificate needs.
func (k *Keys) Create(ctx context.Context, ref token.KeyRef) (crypto.Signer, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var s crypto11.Signer
	var err error
	switch ref.Alg {
	case token.ES256:
		s, err = k.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(ref.Label), elliptic.P256())
	case "", token.RS256:
		s, err = k.ctx.GenerateRSAKeyPairWithLabel(id, []byte(ref.Label), token.KeyBits)
	default:
		return nil, fmt.Errorf("pkcs11: no %s keys in token %q", ref.Alg, k.label)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate %s key in token %q: %w", algName(ref.Alg), k.label, err)
	}
	return &hsmKey{Signer: s, id: id}, nil
}

// algName names the key type of alg for messages.
func algName(alg token.Algorithm) string {
	if alg == token.ES256 {
		return "ECDSA P-256 (ES256)"
	}
	return "RSA-2048 (RS256)"
}

// Wrap implements token.PrivateKeys: the reference to a key of this token.
// A software key cannot be wrapped: it would have to be imported, and an
// imported key has existed outside the HSM.
func (k *Keys) Wrap(ctx context.Context, ref token.KeyRef, s crypto.Signer) ([]byte, error) {
	h, ok := s.(*hsmKey)
	if !ok {
		return nil, fmt.Errorf("pkcs11: key %s was not made in token %q; it cannot be stored as a PKCS#11 key", ref.KID, k.label)
	}
	return []byte(refPrefix + hex.EncodeToString(h.id)), nil
}

// Unwrap implements token.PrivateKeys: finds the key pair by CKA_ID and
// checks it is the certificate's.
func (k *Keys) Unwrap(ctx context.Context, ref token.KeyRef, stored []byte, pub crypto.PublicKey) (crypto.Signer, error) {
	hx, ok := strings.CutPrefix(string(stored), refPrefix)
	if !ok {
		return nil, fmt.Errorf("pkcs11: key %s of %s is not a PKCS#11 reference (keys sealed under a key-encryption key need --key-encryption-key without PKCS#11)", ref.KID, ref.Instance)
	}
	id, err := hex.DecodeString(hx)
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("pkcs11: key %s: bad reference %q", ref.KID, stored)
	}
	s, err := k.ctx.FindKeyPair(id, nil)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: key %s: find in token %q: %w", ref.KID, k.label, err)
	}
	if s == nil {
		return nil, fmt.Errorf("pkcs11: key %s (id %s) is not in token %q", ref.KID, hx, k.label)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := s.Public().(equaler); !ok || !e.Equal(pub) {
		return nil, fmt.Errorf("pkcs11: key %s: the token's key %s does not match the certificate", ref.KID, hx)
	}
	h := &hsmKey{Signer: s, id: id}
	if ref.Alg != token.ES256 {
		if _, ok := s.Public().(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("pkcs11: key %s: the token's key %s is %T, want RSA (this key set signs RS256)", ref.KID, hx, s.Public())
		}
		return h, nil
	}
	// crypto11 returns ECDSA signatures as DER (converted from the raw
	// R||S PKCS#11's CKM_ECDSA gives); tokens want R||S.
	js, err := token.ES256Signer(h)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: key %s: the token's key %s: %w (this key set signs ES256)", ref.KID, hx, err)
	}
	return js, nil
}

// Describe implements token.PrivateKeys.
func (k *Keys) Describe() string { return "pkcs11 token " + k.label }
