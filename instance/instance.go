// Package instance is the core of attestd: one Instance is one MAA
// attestation provider with its own mode, policies, policy-management
// certificates and token-signing key. It implements policy management,
// certificate management and the attest pipeline (evidence → binding →
// policy → token) without any HTTP, so the pipeline can be benchmarked and
// tested in-process; package api is the HTTP front end.
package instance

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/token"
)

// Mode is how an instance authorises policy changes (maa-api.md §1.4).
type Mode string

const (
	// ModeAAD: admin calls need a bearer token with a suitable role; policy
	// bodies may be unsigned or signed by any certificate.
	ModeAAD Mode = "AAD"
	// ModeIsolated: every policy and certificate change must be a JWS signed
	// by one of the instance's policy-management certificates.
	ModeIsolated Mode = "Isolated"
	// ModeShared: attest only; the default policies are fixed.
	ModeShared Mode = "Shared"
)

// ParseMode reads a mode name case-insensitively.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeAAD, ModeIsolated, ModeShared} {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown instance mode %q (want AAD, Isolated or Shared)", s)
}

// Config describes one instance.
type Config struct {
	// Name identifies the instance in the store, the logs and the audit
	// trail ("default" for the instance at the root path).
	Name string
	Mode Mode
	// Issuer is the instance URL: the `iss` of every token, and the base of
	// `jku` (Issuer + "/certs").
	Issuer string
	// PolicyCertificates seed an Isolated instance's policy-management
	// certificates on its first start (later changes go through
	// certificates:add/remove and are kept in the store).
	PolicyCertificates []*x509.Certificate
}

// Signer issues the instance's tokens. *token.KeySet implements it.
type Signer interface {
	// Sign returns a compact JWT with header {alg, jku, kid, typ}: RS256
	// for management tokens (MAA's SDKs verify those RS256 only).
	Sign(jku string, claims any) (string, error)
	// SignWith returns a compact JWT of an attestation token with the
	// header o asks for (token.HeaderJKU: exactly Sign's); RS256 unless
	// the instance signs attestation tokens ES256 (token.Pair).
	SignWith(claims any, o token.SignOptions) (string, error)
	// Unsigned returns a compact JWT with header {"alg":"none", jku, kid,
	// typ} and an empty signature (draft-policy tokens).
	Unsigned(jku string, claims any) (string, error)
	// JWKS is the JSON Web Key Set served at /certs.
	JWKS() []byte
}

// Options are the instance's dependencies.
type Options struct {
	Store store.Store
	Keys  Signer
	// Verifiers maps attestation types to their evidence verifier. A type
	// without one is answered with CodeNotSupported, never with a token.
	// Optional capabilities (evidence/capabilities.go) are found on these
	// values by type assertion: register the verifier itself, not a wrapper.
	Verifiers map[evidence.Type]evidence.Verifier
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Token lifetimes of real MAA (maa-api.md §0.6).
const (
	AttestationTokenLifetime = token.AttestationLifetime
	ManagementTokenLifetime  = token.ResultLifetime
)

// Instance is one attestation provider.
type Instance struct {
	cfg   Config
	store store.Store
	keys  Signer
	verif map[evidence.Type]evidence.Verifier
	now   func() time.Time
	log   *slog.Logger

	mu       sync.Mutex
	compiled map[string]*compiledPolicy     // policy text → parsed policy (bounded)
	signers  map[string]*x509.Certificate   // policy signer DER → parsed certificate (bounded)
	inForce  map[evidence.Type]cachedPolicy // the policy in force per type, see active

	adminMu sync.Mutex // see lockAdmin
}

// New validates cfg, seeds an Isolated instance's first certificates and
// returns the instance.
func New(ctx context.Context, cfg Config, opts Options) (*Instance, error) {
	if cfg.Name == "" {
		return nil, errors.New("instance: empty name")
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, fmt.Errorf("instance %s: %w", cfg.Name, err)
	}
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("instance %s: empty issuer URL", cfg.Name)
	}
	if opts.Store == nil || opts.Keys == nil {
		return nil, fmt.Errorf("instance %s: store and signing keys are required", cfg.Name)
	}
	if cfg.Mode != ModeIsolated && len(cfg.PolicyCertificates) > 0 {
		return nil, fmt.Errorf("instance %s: policy certificates are only meaningful in Isolated mode (mode is %s)", cfg.Name, cfg.Mode)
	}
	in := &Instance{
		cfg:      cfg,
		store:    opts.Store,
		keys:     opts.Keys,
		verif:    opts.Verifiers,
		now:      opts.Now,
		log:      opts.Logger,
		compiled: map[string]*compiledPolicy{},
		signers:  map[string]*x509.Certificate{},
		inForce:  map[evidence.Type]cachedPolicy{},
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	in.log = in.log.With("instance", cfg.Name)
	if cfg.Mode == ModeIsolated {
		certs, err := in.store.Certificates(ctx, cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("instance %s: reading policy certificates: %w", cfg.Name, err)
		}
		if len(certs) == 0 {
			if len(cfg.PolicyCertificates) == 0 {
				return nil, fmt.Errorf("instance %s: Isolated mode needs at least one policy-management certificate on first start", cfg.Name)
			}
			seed := make([]store.Certificate, 0, len(cfg.PolicyCertificates))
			var tps []string
			for _, c := range cfg.PolicyCertificates {
				tp := Thumbprint(c)
				if err := usableKey(c); err != nil {
					return nil, fmt.Errorf("instance %s: policy-management certificate %s (%s) cannot sign policies: %w", cfg.Name, tp, c.Subject, err)
				}
				tps = append(tps, tp)
				seed = append(seed, store.Certificate{Instance: cfg.Name, Thumbprint: tp, DER: c.Raw, AddedAt: in.now()})
			}
			a := store.AuditEntry{Instance: cfg.Name, At: in.now(), Actor: "config", Action: "certificate.seed",
				Target: strings.Join(tps, ","), Detail: "initial policy-management certificates from configuration"}
			if err := in.store.SeedCertificates(ctx, cfg.Name, seed, a); err != nil {
				return nil, fmt.Errorf("instance %s: seeding policy certificates: %w", cfg.Name, err)
			}
			in.log.Info("seeded policy-management certificates", "thumbprints", tps)
		} else if ignored := unseeded(cfg.PolicyCertificates, certs); len(ignored) > 0 {
			// Configured certificates only seed a new instance; an operator
			// who edits the list later should learn that it has no effect
			// (changes go through certificates:add/remove).
			in.log.Warn("configured policy-management certificates ignored: the instance already has its own set in the store; use certificates:add/remove",
				"ignored_thumbprints", ignored, "stored", len(certs))
		}
	}
	return in, nil
}

// unseeded returns the thumbprints of configured certificates that are not
// in the stored set.
func unseeded(configured []*x509.Certificate, stored []store.Certificate) []string {
	have := map[string]bool{}
	for _, c := range stored {
		have[c.Thumbprint] = true
	}
	var out []string
	for _, c := range configured {
		if tp := Thumbprint(c); !have[tp] {
			out = append(out, tp)
		}
	}
	return out
}

// Name returns the instance name.
func (in *Instance) Name() string { return in.cfg.Name }

// Mode returns the instance mode.
func (in *Instance) Mode() Mode { return in.cfg.Mode }

// Issuer returns the instance URL (token `iss`).
func (in *Instance) Issuer() string { return in.cfg.Issuer }

func (in *Instance) jku() string { return in.cfg.Issuer + "/certs" }

// Actor is who asks for an admin change, as established by the API layer
// (bearer subject); "" when the call was not authenticated.
type Actor struct {
	Subject string
}

// JWKS returns the JSON Web Key Set of the instance's signing keys.
func (in *Instance) JWKS() []byte { return in.keys.JWKS() }

// OpenIDConfiguration returns the /.well-known/openid-configuration document,
// shaped like real MAA's (samples/recordings/openid_configuration.json).
func (in *Instance) OpenIDConfiguration() map[string]any {
	return map[string]any{
		"response_types_supported":              []string{"token", "none"},
		"id_token_signing_alg_values_supported": in.signingAlgorithms(),
		"revocation_endpoint":                   in.cfg.Issuer + "/revoke",
		"issuer":                                in.cfg.Issuer,
		"jwks_uri":                              in.jku(),
		"claims_supported":                      in.ClaimsSupported(),
	}
}

// signingAlgorithms are the JWS algorithms of the instance's tokens: what
// the signer says (token.KeySet, token.Pair), else MAA's RS256.
func (in *Instance) signingAlgorithms() []string {
	if a, ok := in.keys.(interface{ Algorithms() []string }); ok {
		return a.Algorithms()
	}
	return []string{"RS256"}
}

// sign issues a signed token with iss/iat/nbf/exp added to claims.
func (in *Instance) sign(claims map[string]any, lifetime time.Duration) (string, error) {
	claims["iss"] = in.cfg.Issuer
	token.NewTimes(in.now(), lifetime).Set(claims)
	tok, err := in.keys.Sign(in.jku(), claims)
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "signing the token failed", Err: err}
	}
	return tok, nil
}

// bodyHash is x-ms-policy-token-hash: base64url(SHA-256(exact body)).
func bodyHash(body string) string {
	s := sha256.Sum256([]byte(body))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// NoPolicyJWS is GET /policies/Tpm's x-ms-policy while no Tpm policy is
// set: an unsigned StoredAttestationPolicy whose AttestationPolicy is "="
// ({"AttestationPolicy":"="}), the padding of zero bytes, i.e. the empty
// policy text. Real MAA answers the empty JWS `eyJhbGciOiJub25lIn0..`
// (maa-policy.md §11), on which @azure/attestation 1.0.0's getPolicy
// throws a TypeError (it deserializes the missing payload as
// StoredAttestationPolicy), and it throws too on AttestationPolicy ""
// (core-client's Base64Url reader maps "" to undefined). "=" decodes to
// zero bytes in every SDK: npm (Buffer), Python (msrest pads and decodes),
// the Go client (padding trimmed). interop/js/tpm.test.mjs and
// interop/python/tpm_attest.py read it through the official SDKs.
const NoPolicyJWS = "eyJhbGciOiJub25lIn0.eyJBdHRlc3RhdGlvblBvbGljeSI6Ij0ifQ."

// unsignedPolicyJWS is the unsigned StoredAttestationPolicy JWS for text, as
// real MAA returns it for default and unsigned policies; an empty text (Tpm
// without a policy) gives NoPolicyJWS.
func unsignedPolicyJWS(text string) string {
	const hdr = "eyJhbGciOiJub25lIn0" // {"alg":"none"}
	if text == "" {
		return NoPolicyJWS
	}
	p, _ := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
	return hdr + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// ParseType reads an attestation type as it appears in a route
// ({type} of /attest/{type}, /policies/{type}); an unknown name is an MAA
// InvalidParameter error listing the valid ones. The policy routes and the
// API's attest and explain routes share it, so all answer alike.
func ParseType(typ string) (evidence.Type, error) {
	t, ok := evidence.ParseType(typ)
	if !ok {
		return "", errorf(CodeInvalidParameter, "unknown attestation type %q (want one of SgxEnclave, OpenEnclave, Tpm, SevSnpVm, TdxVm, AzureGuest)", typ)
	}
	return t, nil
}
