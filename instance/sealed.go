package instance

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store"
)

// ServiceContextLifetime is how long a sealed service context (the client
// state between two rounds of a multi-round protocol) can be opened.
const ServiceContextLifetime = 10 * time.Minute

// serviceContextKey names the instance secret that seals service contexts.
const serviceContextKey = "service_context.aes256gcm"

// sealer seals the client state of multi-round protocols: AES-256-GCM with
// a key kept in the store (so any replica opens what another sealed), the
// instance named in the clear and authenticated as associated data, an
// expiry, and a random id recorded as used on open (single use).
//
// Wire form: "v1." b64url(header JSON) "." b64url(nonce ‖ ciphertext), the
// header {"i": instance} being the AEAD's associated data; the plaintext is
// {"id", "exp", "state"}.
type sealer struct {
	store    store.Store
	instance string
	lifetime time.Duration
}

func (in *Instance) sealer() *sealer {
	return &sealer{store: in.store, instance: in.cfg.Name, lifetime: ServiceContextLifetime}
}

type sealHeader struct {
	Instance string `json:"i"`
}

type sealedState struct {
	ID     string `json:"id"`
	Expiry int64  `json:"exp"` // Unix seconds
	State  []byte `json:"state"`
}

func (s *sealer) aead(ctx context.Context) (cipher.AEAD, error) {
	key, err := s.store.InstanceSecret(ctx, s.instance, serviceContextKey, func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the stored service-context key has %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal returns the opaque service context for state, valid from now for
// the sealer's lifetime.
func (s *sealer) Seal(ctx context.Context, state []byte, now time.Time) (string, error) {
	a, err := s.aead(ctx)
	if err != nil {
		return "", err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	hdr, err := json.Marshal(sealHeader{Instance: s.instance})
	if err != nil {
		return "", err
	}
	pt, err := json.Marshal(sealedState{ID: hex.EncodeToString(id[:]), Expiry: now.Add(s.lifetime).Unix(), State: state})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(pt)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding
	return "v1." + b64.EncodeToString(hdr) + "." + b64.EncodeToString(a.Seal(nonce, nonce, pt, hdr)), nil
}

// Open authenticates, checks and consumes a service context and returns its
// state. Refusals are *evidence.Error values naming the reason:
// CheckServiceContextForged (not one this service sealed, or altered),
// CheckServiceContextInstance (sealed by another instance),
// CheckServiceContextExpired and CheckServiceContextReplayed.
func (s *sealer) Open(ctx context.Context, sc string, now time.Time) ([]byte, error) {
	forged := func(why string) error {
		return evidence.Errorf(evidence.CheckServiceContextForged, "the service_context %s", why)
	}
	ver, rest, ok := strings.Cut(sc, ".")
	h64, c64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || ver != "v1" {
		return nil, forged("is not one this service issued (malformed)")
	}
	b64 := base64.RawURLEncoding
	hdr, err1 := b64.DecodeString(h64)
	ct, err2 := b64.DecodeString(c64)
	var h sealHeader
	if err1 != nil || err2 != nil || json.Unmarshal(hdr, &h) != nil || h.Instance == "" {
		return nil, forged("is not one this service issued (malformed)")
	}
	if h.Instance != s.instance {
		return nil, evidence.Errorf(evidence.CheckServiceContextInstance, "the service_context was issued by another attestation instance, not %q", s.instance)
	}
	a, err := s.aead(ctx)
	if err != nil {
		return nil, fmt.Errorf("service context key: %w", err)
	}
	if len(ct) < a.NonceSize()+a.Overhead() {
		return nil, forged("is too short")
	}
	pt, err := a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], hdr)
	if err != nil {
		return nil, forged("does not authenticate: it was altered or not sealed by this instance")
	}
	var st sealedState
	if err := json.Unmarshal(pt, &st); err != nil || st.ID == "" {
		return nil, forged("has an unreadable body")
	}
	exp := time.Unix(st.Expiry, 0)
	if !now.Before(exp) {
		return nil, evidence.Errorf(evidence.CheckServiceContextExpired, "the service_context expired at %s", exp.UTC().Format(time.RFC3339))
	}
	fresh, err := s.store.UseNonce(ctx, s.instance, st.ID, now, exp)
	if err != nil {
		return nil, fmt.Errorf("recording the service context as used: %w", err)
	}
	if !fresh {
		return nil, evidence.Errorf(evidence.CheckServiceContextReplayed, "the service_context was already used")
	}
	return st.State, nil
}
