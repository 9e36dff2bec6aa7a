// Package verifier checks Microsoft Azure Attestation (MAA) and attestd
// attestation tokens for a relying party: the service that releases a
// secret only to a TEE whose attestation result is authentic, from the
// authority it trusts, unexpired, and meets its policy.
//
// A Verifier checks, in this order, and refuses with a *ValidationError
// naming the first check that failed (Reason*):
//
//   - structure: three base64url parts, JSON header and body without
//     duplicate members (malformed);
//   - alg: RS256 or ES256 only; alg "none" — the unsigned result of a
//     draft policy — is always refused (unsigned, algorithm);
//   - iss: exactly the issuer configured (issuer);
//   - the signature, with x5c[0] of the key the header's kid names in the
//     issuer's /certs, never a certificate in the token header, which
//     whoever made the token chose (unknown-key, signature). /certs is
//     cached, refetched after MaxAge and once on an unknown kid, so a key
//     published before it signs (staged rotation) verifies from its first
//     token and a withdrawn key stops verifying at the next fetch;
//   - exp (required) and nbf with a leeway (expired, not-yet-valid);
//   - x-ms-attestation-type, when the relying party names the types it
//     accepts (attestation-type);
//   - the JSON types of the claims it reads into Result (malformed).
//
// What the claims must be (measurement, signer, debuggability, TCB
// status) is the relying party's policy, checked on the Result.
//
// Package client validates the tokens its calls return with the same code.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Options configure a Verifier. Issuer and Now are required.
type Options struct {
	// Issuer is the exact iss of accepted tokens: the instance URL, e.g.
	// https://myinst.weu.attest.azure.net or https://attestd:8443/tenants/t1.
	Issuer string
	// CertsURL is where the signing keys are fetched; empty means
	// Issuer + "/certs" (MAA's jku). Ignored when Keys is set.
	CertsURL string
	// Keys, when set, supplies the signing keys instead of an HTTP GET of
	// CertsURL (a JWKS file for offline checks, or a shared cache).
	Keys func(ctx context.Context) (*JWKS, error)
	// HTTPClient fetches CertsURL; nil means a client with a 30 s timeout
	// (never http.DefaultClient, which has none).
	HTTPClient *http.Client
	// Now is the clock for exp/nbf and the key cache. Required: a relying
	// party reads the time once per request at its edge.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp and nbf (0: none, as MAA's
	// JS SDK).
	Leeway time.Duration
	// AttestationTypes, when non-empty, lists the x-ms-attestation-type
	// values accepted ("sgx", "sevsnpvm", "tdxvm", …; see Type*).
	AttestationTypes []string
	// KeysMaxAge is how long fetched keys are used before /certs is read
	// again; 0 means DefaultKeysMaxAge, negative means until an unknown kid.
	KeysMaxAge time.Duration
	// KeysCooldown is the least time between refetches caused by unknown
	// kids; 0 means DefaultKeysCooldown, negative means none.
	KeysCooldown time.Duration
}

// Defaults of the key cache. One hour bounds how long a key the issuer
// withdrew keeps verifying; ten seconds bounds the /certs requests forged
// kids can cause to one per ten seconds, while attestd and MAA publish a
// new key well before it signs.
const (
	DefaultKeysMaxAge   = time.Hour
	DefaultKeysCooldown = 10 * time.Second
)

// Verifier checks tokens of one issuer. Safe for concurrent use.
type Verifier struct {
	o    Options
	keys *KeyCache
}

// New returns a Verifier for o.
func New(o Options) (*Verifier, error) {
	if o.Issuer == "" {
		return nil, errors.New("verifier: Options.Issuer is required (a token's iss is what says who vouches for it)")
	}
	if o.Now == nil {
		return nil, errors.New("verifier: Options.Now is required")
	}
	if o.Leeway < 0 {
		return nil, errors.New("verifier: Options.Leeway is negative")
	}
	source := "the configured key source"
	fetch := o.Keys
	if fetch == nil {
		u := o.CertsURL
		if u == "" {
			u = strings.TrimRight(o.Issuer, "/") + "/certs"
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("verifier: signing keys URL %q is not an http(s) URL", u)
		}
		hc := o.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 30 * time.Second}
		}
		fetch, source = FetchJWKS(hc, u), u
	}
	maxAge, cooldown := o.KeysMaxAge, o.KeysCooldown
	if maxAge == 0 {
		maxAge = DefaultKeysMaxAge
	}
	if cooldown == 0 {
		cooldown = DefaultKeysCooldown
	}
	kc, err := NewKeyCache(KeyCacheOptions{Fetch: fetch, Source: source, Now: o.Now, MaxAge: maxAge, Cooldown: max(cooldown, 0)})
	if err != nil {
		return nil, err
	}
	o.AttestationTypes = slices.Clone(o.AttestationTypes)
	return &Verifier{o: o, keys: kc}, nil
}

// Issuer returns the issuer the Verifier accepts.
func (v *Verifier) Issuer() string { return v.o.Issuer }

// Verify checks raw (a compact JWT) as the package doc describes and
// returns its typed claims. The error is a *ValidationError, or the error
// of fetching the signing keys (then nothing is known about the token).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Result, error) {
	t, err := ParseToken(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	if err := CheckAlgorithm(t.Header.Alg); err != nil {
		return nil, err
	}
	// The issuer before the signature: a token of another issuer is
	// refused as such, without a /certs fetch its kid would cause.
	if err := t.CheckIssuer(v.o.Issuer); err != nil {
		return nil, err
	}
	k, err := v.keys.Key(ctx, t.Header.Kid)
	if err != nil {
		return nil, err
	}
	if err := t.CheckSignature(k.Certificates[0]); err != nil {
		return nil, err
	}
	if err := t.CheckTimes(v.o.Now(), v.o.Leeway); err != nil {
		return nil, err
	}
	r, err := NewResult(t)
	if err != nil {
		return nil, err
	}
	if len(v.o.AttestationTypes) > 0 && !slices.Contains(v.o.AttestationTypes, r.AttestationType) {
		return nil, Invalid(ReasonAttestationType, "x-ms-attestation-type %q, want one of %q", r.AttestationType, v.o.AttestationTypes)
	}
	t.Verified = true
	return r, nil
}
