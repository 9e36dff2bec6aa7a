package verifier_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

var b64u = base64.RawURLEncoding

// signer is a token-signing key with its self-signed certificate.
type signer struct {
	kid  string
	key  crypto.Signer
	cert *x509.Certificate
}

var (
	signersMu sync.Mutex
	signers   = map[string]*signer{}
)

// newSigner returns the (memoised: RSA generation is slow on a shared
// machine) key named kid of kind "rsa", "rsa1024", "p256" or "p384".
func newSigner(t testing.TB, kid, kind string) *signer {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if s := signers[kid+kind]; s != nil {
		return s
	}
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: kid},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	s := &signer{kid: kid, key: k, cert: c}
	signers[kid+kind] = s
	return s
}

func (s *signer) jwk() map[string]any {
	return map[string]any{"kid": s.kid, "kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(s.cert.Raw)}}
}

// forge makes a compact JWT with header and claims, signed with alg by s
// (nil: empty signature).
func forge(t testing.TB, header, claims map[string]any, s *signer) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := b64u.EncodeToString(h) + "." + b64u.EncodeToString(c)
	if s == nil {
		return in + "."
	}
	d := sha256.Sum256([]byte(in))
	var sig []byte
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:]); err != nil {
			t.Fatal(err)
		}
	case *ecdsa.PrivateKey:
		r, ss, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		sig = append(r.FillBytes(make([]byte, n)), ss.FillBytes(make([]byte, n))...)
	}
	return in + "." + b64u.EncodeToString(sig)
}

// keySource is a mutable /certs that counts its fetches.
type keySource struct {
	mu      sync.Mutex
	keys    []*signer
	fail    error
	fetches atomic.Int32
}

func (k *keySource) set(keys ...*signer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = keys
}

func (k *keySource) fetch(context.Context) (*verifier.JWKS, error) {
	k.fetches.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return nil, k.fail
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	for _, s := range k.keys {
		doc.Keys = append(doc.Keys, s.jwk())
	}
	b, _ := json.Marshal(doc)
	return verifier.ParseJWKS(b)
}

// clock is a settable fixed clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const issuer = "https://attestd.test:8443"

var t0 = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

func sgxClaims(extra map[string]any) map[string]any {
	c := map[string]any{"iss": issuer, "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(8 * time.Hour).Unix(),
		"jti": strings.Repeat("ab", 32), "x-ms-ver": "1.0", "x-ms-attestation-type": "sgx",
		"x-ms-sgx-mrenclave": strings.Repeat("a1", 32), "x-ms-sgx-mrsigner": strings.Repeat("b2", 32),
		"x-ms-sgx-product-id": 7, "x-ms-sgx-svn": 3, "x-ms-sgx-is-debuggable": false, "x-ms-sgx-tcb-status": "UpToDate",
		"x-ms-runtime": map[string]any{"kty": "EC"}}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func hdr(alg string, s *signer) map[string]any {
	return map[string]any{"alg": alg, "kid": s.kid, "jku": issuer + "/certs", "typ": "JWT"}
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ve *verifier.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want a ValidationError %q", err, err, reason)
	}
	if ve.Reason != reason {
		t.Fatalf("reason %q (%v), want %q", ve.Reason, err, reason)
	}
}

// TestVerify: every check of Verify, each refusal with its reason.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	rs, es := newSigner(t, "rs-1", "rsa"), newSigner(t, "es-1", "p256")
	other := newSigner(t, "rs-1", "p256") // same kid, another key
	weak, p384 := newSigner(t, "weak", "rsa1024"), newSigner(t, "p384", "p384")
	valid := forge(t, hdr("RS256", rs), sgxClaims(nil), rs)
	parts := strings.Split(valid, ".")
	body, _ := json.Marshal(sgxClaims(map[string]any{"x-ms-sgx-is-debuggable": true}))
	withHeaderCert := hdr("RS256", newSigner(t, "not-published", "rsa"))
	withHeaderCert["x5c"] = []string{base64.StdEncoding.EncodeToString(newSigner(t, "not-published", "rsa").cert.Raw)}

	tests := []struct {
		name   string
		tok    string
		opts   func(*verifier.Options)
		reason string
	}{
		{name: "RS256", tok: valid},
		{name: "ES256", tok: forge(t, hdr("ES256", es), sgxClaims(nil), es)},
		{name: "surrounding white space", tok: "\n " + valid + "\n"},
		{name: "draft token", tok: forge(t, hdr("none", rs), sgxClaims(nil), nil), reason: verifier.ReasonUnsigned},
		{name: "draft token with a signature", tok: strings.Replace(valid, parts[0], b64u.EncodeToString([]byte(`{"alg":"none","kid":"rs-1"}`)), 1), reason: verifier.ReasonUnsigned},
		{name: "HS256", tok: strings.Replace(valid, parts[0], b64u.EncodeToString([]byte(`{"alg":"HS256","kid":"rs-1"}`)), 1), reason: verifier.ReasonAlgorithm},
		{name: "PS256", tok: strings.Replace(valid, parts[0], b64u.EncodeToString([]byte(`{"alg":"PS256","kid":"rs-1"}`)), 1), reason: verifier.ReasonAlgorithm},
		{name: "other issuer", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"iss": "https://other.test"}), rs), reason: verifier.ReasonIssuer},
		{name: "issuer with trailing slash", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"iss": issuer + "/"}), rs), reason: verifier.ReasonIssuer},
		{name: "no issuer", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"iss": nil}), rs), reason: verifier.ReasonIssuer},
		{name: "unknown kid", tok: forge(t, hdr("RS256", newSigner(t, "rs-9", "rsa")), sgxClaims(nil), newSigner(t, "rs-9", "rsa")), reason: verifier.ReasonUnknownKey},
		{name: "no kid", tok: forge(t, map[string]any{"alg": "RS256"}, sgxClaims(nil), rs), reason: verifier.ReasonUnknownKey},
		{name: "header x5c never trusted", tok: forge(t, withHeaderCert, sgxClaims(nil), newSigner(t, "not-published", "rsa")), reason: verifier.ReasonUnknownKey},
		{name: "published kid, other key", tok: forge(t, hdr("ES256", other), sgxClaims(nil), other), reason: verifier.ReasonSignature},
		{name: "RS256 token, EC key", tok: forge(t, hdr("RS256", es), sgxClaims(nil), rs), reason: verifier.ReasonSignature},
		{name: "tampered body", tok: parts[0] + "." + b64u.EncodeToString(body) + "." + parts[2], reason: verifier.ReasonSignature},
		{name: "tampered signature", tok: parts[0] + "." + parts[1] + "." + otherFirst(parts[2]) + parts[2][1:], reason: verifier.ReasonSignature},
		{name: "ES256 signature of 65 bytes", tok: forge(t, hdr("ES256", es), sgxClaims(nil), es) + "AA", reason: verifier.ReasonSignature},
		{name: "1024-bit RSA key", tok: forge(t, hdr("RS256", weak), sgxClaims(nil), weak), reason: verifier.ReasonSignature},
		{name: "ES256 with a P-384 key", tok: forge(t, hdr("ES256", p384), sgxClaims(nil), p384), reason: verifier.ReasonSignature},
		{name: "expired", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"exp": t0.Add(-time.Second).Unix()}), rs), reason: verifier.ReasonExpired},
		{name: "expired, within leeway", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"exp": t0.Add(-time.Second).Unix()}), rs),
			opts: func(o *verifier.Options) { o.Leeway = time.Second }},
		{name: "expires now", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"exp": t0.Unix()}), rs)},
		{name: "no exp", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"exp": nil}), rs), reason: verifier.ReasonExpired},
		{name: "not yet valid", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"nbf": t0.Add(time.Second).Unix()}), rs), reason: verifier.ReasonNotYetValid},
		{name: "not yet valid, within leeway", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"nbf": t0.Add(time.Second).Unix()}), rs),
			opts: func(o *verifier.Options) { o.Leeway = 2 * time.Second }},
		{name: "expected type", tok: valid, opts: func(o *verifier.Options) { o.AttestationTypes = []string{verifier.TypeSevSnpVM, verifier.TypeSGX} }},
		{name: "unexpected type", tok: valid, opts: func(o *verifier.Options) { o.AttestationTypes = []string{verifier.TypeTdxVM} }, reason: verifier.ReasonAttestationType},
		{name: "claim of the wrong type", tok: forge(t, hdr("RS256", rs), sgxClaims(map[string]any{"x-ms-sgx-is-debuggable": "false"}), rs), reason: verifier.ReasonMalformed},
		{name: "two parts", tok: parts[0] + "." + parts[1], reason: verifier.ReasonMalformed},
		{name: "duplicate header member", tok: b64u.EncodeToString([]byte(`{"alg":"none","alg":"RS256","kid":"rs-1"}`)) + "." + parts[1] + "." + parts[2], reason: verifier.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &keySource{}
			src.set(rs, es, weak, p384)
			o := verifier.Options{Issuer: issuer, Keys: src.fetch, Now: func() time.Time { return t0 }}
			if tc.opts != nil {
				tc.opts(&o)
			}
			v, err := verifier.New(o)
			if err != nil {
				t.Fatal(err)
			}
			r, err := v.Verify(ctx, tc.tok)
			if tc.reason != "" {
				wantReason(t, err, tc.reason)
				if r != nil {
					t.Fatalf("refused token returned %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !r.Token.Verified || r.Unsigned || r.Token.Signer == nil || r.Issuer != issuer {
				t.Fatalf("result %+v", r)
			}
			if r.MREnclave != strings.Repeat("a1", 32) || r.ProductID != 7 || r.SVN != 3 || r.IsDebuggable || r.TCBStatus != "UpToDate" ||
				r.RuntimeClaims["kty"] != "EC" || r.AttestationType != "sgx" || r.SevSnp != nil || r.Tdx != nil || r.Tpm != nil {
				t.Fatalf("claims %+v", r)
			}
		})
	}
}

// TestKeyRotation follows issue 15's staged rotation: a key published
// before it signs verifies without a refetch, an unknown kid refetches once
// (not more often than the cooldown), a withdrawn kid stops verifying at
// the next fetch, and a failed refetch after MaxAge fails closed.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, k2, k3 := newSigner(t, "rot-1", "rsa"), newSigner(t, "rot-2", "p256"), newSigner(t, "rot-3", "rsa")
	clk := &clock{t: t0}
	src := &keySource{}
	src.set(k1)
	v, err := verifier.New(verifier.Options{Issuer: issuer, Keys: src.fetch, Now: clk.now,
		KeysMaxAge: time.Hour, KeysCooldown: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok := func(s *signer, alg string) string {
		return forge(t, hdr(alg, s), sgxClaims(map[string]any{"exp": clk.now().Add(8 * time.Hour).Unix()}), s)
	}
	step := func(name, raw, reason string, fetches int32) {
		t.Helper()
		_, err := v.Verify(ctx, raw)
		if reason == "" && err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if reason != "" {
			wantReason(t, err, reason)
		}
		if got := src.fetches.Load(); got != fetches {
			t.Fatalf("%s: %d fetches of /certs, want %d", name, got, fetches)
		}
	}
	// Concurrent first calls share one fetch.
	var wg sync.WaitGroup
	first := tok(k1, "RS256")
	for range 8 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, first); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	step("cached", first, "", 1)
	// A forged kid within the cooldown of the first fetch causes none; after
	// it, one; the next one within the cooldown none again.
	step("unknown kid just after a fetch", tok(k3, "RS256"), verifier.ReasonUnknownKey, 1)
	clk.add(11 * time.Second)
	step("unknown kid", tok(k3, "RS256"), verifier.ReasonUnknownKey, 2)
	step("unknown kid within cooldown", tok(k3, "RS256"), verifier.ReasonUnknownKey, 2)
	// Stage: k2 is published, k1 still signs.
	src.set(k1, k2)
	clk.add(11 * time.Second)
	step("old key during pre-publication", tok(k1, "RS256"), "", 2)
	step("new key after its publication", tok(k2, "ES256"), "", 3)
	clk.add(11 * time.Second)
	step("new key cached", tok(k2, "ES256"), "", 3)
	step("old key still published", tok(k1, "RS256"), "", 3)
	// k1 retires: it stays trusted until a fetch shows it gone.
	src.set(k2)
	oldTok := tok(k1, "RS256")
	step("retired key before the next fetch", oldTok, "", 3)
	clk.add(time.Hour)
	step("retired key after MaxAge", oldTok, verifier.ReasonUnknownKey, 4)
	// The issuer is unreachable when MaxAge passes: closed.
	src.mu.Lock()
	src.fail = errors.New("connection refused")
	src.mu.Unlock()
	clk.add(time.Hour)
	if _, err := v.Verify(ctx, tok(k2, "ES256")); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("stale keys, issuer down: %v", err)
	}
}

// TestFetchJWKS: /certs over HTTPS, and the answers that are not a key set.
func TestFetchJWKS(t *testing.T) {
	ctx := context.Background()
	rs := newSigner(t, "http-1", "rsa")
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tenants/t1/certs" {
			http.NotFound(w, r)
			return
		}
		switch status.Load() {
		case 200:
			json.NewEncoder(w).Encode(map[string]any{"keys": []any{rs.jwk()}})
		case 1:
			w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 1<<20) + `]}`))
		default:
			w.WriteHeader(int(status.Load()))
		}
	}))
	defer srv.Close()
	iss := srv.URL + "/tenants/t1"
	raw := forge(t, map[string]any{"alg": "RS256", "kid": rs.kid}, sgxClaims(map[string]any{"iss": iss}), rs)
	for _, tc := range []struct {
		name   string
		status int32
		want   string
	}{
		{"ok", 200, ""},
		{"server error", 503, "HTTP 503"},
		{"oversized", 1, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(tc.status)
			v, err := verifier.New(verifier.Options{Issuer: iss, HTTPClient: srv.Client(), Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, raw)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestNewOptions: what New refuses.
func TestNewOptions(t *testing.T) {
	now := func() time.Time { return t0 }
	for _, tc := range []struct {
		name string
		o    verifier.Options
	}{
		{"no issuer", verifier.Options{Now: now}},
		{"no clock", verifier.Options{Issuer: issuer}},
		{"negative leeway", verifier.Options{Issuer: issuer, Now: now, Leeway: -time.Second}},
		{"issuer is no URL", verifier.Options{Issuer: "attestd", Now: now}},
		{"certs URL of another scheme", verifier.Options{Issuer: issuer, Now: now, CertsURL: "file:///etc/certs"}},
	} {
		if _, err := verifier.New(tc.o); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, tc.o)
		}
	}
}

// otherFirst is a base64url character other than s's first, so replacing
// it always tampers (a fixed "A" does nothing for 1 in 64 signatures).
func otherFirst(s string) string {
	if s[0] == 'A' {
		return "B"
	}
	return "A"
}
