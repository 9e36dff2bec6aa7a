package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKey is a signing key with its kid and algorithm.
type testKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // private key
	pub any
}

var (
	keyOnce sync.Once
	rsaA    *rsa.PrivateKey
	rsaB    *rsa.PrivateKey
	ecA     *ecdsa.PrivateKey
)

func keys(t testing.TB) (a, b, e testKey) {
	keyOnce.Do(func() {
		var err error
		if rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return testKey{"kid-a", jose.RS256, rsaA, &rsaA.PublicKey},
		testKey{"kid-b", jose.RS256, rsaB, &rsaB.PublicKey},
		testKey{"kid-e", jose.ES256, ecA, &ecA.PublicKey}
}

func jwksOf(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range ks {
		jk := jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Use: "sig"}
		if k.kid == "kid-rs-only" {
			jk.Algorithm = string(jose.RS256)
		}
		set.Keys = append(set.Keys, jk)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mint signs claims with k (alg overridable) and kid.
func mint(t testing.TB, k testKey, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	if alg == "" {
		alg = k.alg
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k.key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const testIssuer = "https://idp.test/tenant1/v2.0"

func baseClaims(now time.Time, roles ...string) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "sub": "user-1", "oid": "oid-1", "tid": "tenant1", "azp": "client-1",
		"aud": "https://attest.azure.net",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if roles != nil {
		c["roles"] = roles
	}
	return c
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func newFileAuth(t *testing.T, c *clock, mutate func(*Config), ks ...testKey) *Authenticator {
	t.Helper()
	f := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(f, jwksOf(t, ks...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Issuers: []Issuer{{Issuer: testIssuer, JWKSFile: f}}, Now: c.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRejections(t *testing.T) {
	a, b, e := keys(t)
	c := &clock{t: t0}
	rsOnly := testKey{kid: "kid-rs-only", alg: jose.RS256, key: a.key, pub: a.pub}
	auth := newFileAuth(t, c, nil, a, e, rsOnly)
	good := baseClaims(t0, "Attestation.Contributor")
	hs := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(good).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	parts := strings.Split(mint(t, a, "", "kid-a", good), ".")
	cases := []struct {
		name   string
		header string
		want   Reason
	}{
		{"no header", "", ReasonMissingHeader},
		{"blank header", "   ", ReasonMissingHeader},
		{"basic scheme", "Basic dXNlcjpwYXNz", ReasonMalformed},
		{"bearer without token", "Bearer", ReasonMalformed},
		{"two parts", "Bearer " + parts[0] + "." + parts[1], ReasonMalformed},
		{"bad base64", "Bearer " + parts[0] + ".%%%." + parts[2], ReasonMalformed},
		{"payload not JSON", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[2], ReasonMalformed},
		{"HS256 not accepted", "Bearer " + hs, ReasonMalformed},
		{"alg none", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", ReasonMalformed},
		{"oversized", "Bearer " + strings.Repeat("a", MaxTokenBytes) + ".b.c", ReasonMalformed},
		{"roles wrong type", "Bearer " + mint(t, a, "", "kid-a", with(good, "roles", 7)), ReasonMalformed},
		{"unknown issuer", "Bearer " + mint(t, a, "", "kid-a", with(good, "iss", "https://evil.test/")), ReasonWrongIssuer},
		{"no issuer", "Bearer " + mint(t, a, "", "kid-a", with(good, "iss", nil)), ReasonWrongIssuer},
		{"unknown kid", "Bearer " + mint(t, b, "", "kid-b", good), ReasonUnknownKey},
		{"wrong key under known kid", "Bearer " + mint(t, b, "", "kid-a", good), ReasonBadSignature},
		{"RSA token under EC kid", "Bearer " + mint(t, a, "", "kid-e", good), ReasonBadSignature},
		{"PS256 under a key published for RS256", "Bearer " + mint(t, a, jose.PS256, "kid-rs-only", good), ReasonBadSignature},
		{"payload swapped", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+testIssuer+`","exp":9999999999,"aud":"https://attest.azure.net","roles":["Attestation.Contributor"]}`)) + "." + parts[2], ReasonBadSignature},
		{"expired", "Bearer " + mint(t, a, "", "kid-a", with(good, "exp", t0.Add(-2*time.Minute).Unix())), ReasonExpired},
		{"no exp", "Bearer " + mint(t, a, "", "kid-a", with(good, "exp", nil)), ReasonExpired},
		{"nbf future", "Bearer " + mint(t, a, "", "kid-a", with(good, "nbf", t0.Add(2*time.Minute).Unix())), ReasonNotYetValid},
		{"iat future", "Bearer " + mint(t, a, "", "kid-a", with(good, "iat", t0.Add(2*time.Minute).Unix())), ReasonNotYetValid},
		{"wrong audience", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", "https://management.azure.com")), ReasonWrongAudience},
		{"no audience", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", nil)), ReasonWrongAudience},
		{"audience prefix only", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", "https://attest.azure.net.evil")), ReasonWrongAudience},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.Authenticate(context.Background(), tc.header)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			// The error never repeats the token or any part of it.
			if tok := strings.TrimPrefix(tc.header, "Bearer "); len(tok) > 8 {
				for _, part := range strings.Split(tok, ".") {
					if len(part) > 8 && strings.Contains(err.Error(), part) {
						t.Fatalf("error leaks token part: %v", err)
					}
				}
			}
		})
	}
}

func TestAccepts(t *testing.T) {
	a, _, e := keys(t)
	c := &clock{t: t0}
	ps := testKey{kid: "kid-ps", alg: jose.PS256, key: a.key, pub: a.pub}
	rsOnly := testKey{kid: "kid-rs-only", alg: jose.RS256, key: a.key, pub: a.pub}
	auth := newFileAuth(t, c, func(cfg *Config) { cfg.ExtraAudiences = []string{"api://attestd"} }, a, e, ps, rsOnly)
	good := baseClaims(t0, "Attestation.Reader")
	cases := []struct {
		name string
		hdr  string
	}{
		{"RS256", "Bearer " + mint(t, a, "", "kid-a", good)},
		{"ES256", "Bearer " + mint(t, e, "", "kid-e", good)},
		{"PS256", "Bearer " + mint(t, ps, "", "kid-ps", good)},
		{"RS256 under a key published for RS256", "Bearer " + mint(t, rsOnly, "", "kid-rs-only", good)},
		{"lower-case scheme, padded", "  bearer   " + mint(t, a, "", "kid-a", good) + " "},
		{"audience with slash", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", "https://attest.azure.net/"))},
		{"audience array", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", []string{"x", "https://attest.azure.net"}))},
		{"extra audience", "Bearer " + mint(t, a, "", "kid-a", with(good, "aud", "api://attestd"))},
		{"expired within leeway", "Bearer " + mint(t, a, "", "kid-a", with(good, "exp", t0.Add(-30*time.Second).Unix()))},
		{"nbf within leeway", "Bearer " + mint(t, a, "", "kid-a", with(good, "nbf", t0.Add(30*time.Second).Unix()))},
		{"no nbf, no iat", "Bearer " + mint(t, a, "", "kid-a", with(good, "nbf", nil, "iat", nil))},
		{"no kid", "Bearer " + mint(t, a, "", "", good)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.Authenticate(context.Background(), tc.hdr)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if p.Role != RoleReader || p.Subject != "user-1" || p.ObjectID != "oid-1" || p.TenantID != "tenant1" || p.ClientID != "client-1" || p.Issuer != testIssuer {
				t.Fatalf("principal = %+v", p)
			}
			if p.Actor() != "oid:oid-1" {
				t.Errorf("Actor = %q", p.Actor())
			}
		})
	}
}

func TestRoleMapping(t *testing.T) {
	a, _, _ := keys(t)
	c := &clock{t: t0}
	def := newFileAuth(t, c, nil, a)
	custom := newFileAuth(t, c, func(cfg *Config) {
		cfg.ReaderRoles = []string{"Viewer"}
		cfg.ContributorRoles = []string{"Admin"}
	}, a)
	cases := []struct {
		name  string
		auth  *Authenticator
		roles any
		want  Role
	}{
		{"no roles claim", def, nil, RoleNone},
		{"unrelated roles", def, []string{"Other"}, RoleNone},
		{"reader", def, []string{"Attestation.Reader"}, RoleReader},
		{"reader alias", def, []string{"reader"}, RoleReader},
		{"contributor", def, []string{"Attestation.Contributor"}, RoleContributor},
		{"contributor alias as string", def, "contributor", RoleContributor},
		{"both", def, []string{"Attestation.Reader", "Attestation.Contributor"}, RoleContributor},
		{"case differs", def, []string{"attestation.contributor"}, RoleNone},
		{"custom reader", custom, []string{"Viewer"}, RoleReader},
		{"custom contributor", custom, []string{"Admin"}, RoleContributor},
		{"defaults replaced", custom, []string{"Attestation.Contributor"}, RoleNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := baseClaims(t0)
			if tc.roles != nil {
				claims["roles"] = tc.roles
			}
			p, err := tc.auth.Authenticate(context.Background(), "Bearer "+mint(t, a, "", "kid-a", claims))
			if err != nil {
				t.Fatal(err)
			}
			if p.Role != tc.want {
				t.Fatalf("role %s, want %s", p.Role, tc.want)
			}
			for _, need := range []Role{RoleReader, RoleContributor} {
				err := p.Authorize("inst", need)
				if (err == nil) != (tc.want >= need) {
					t.Errorf("Authorize(%s) = %v with role %s", need, err, tc.want)
				}
				if err != nil && ReasonOf(err) != ReasonMissingRole {
					t.Errorf("Authorize reason %q", ReasonOf(err))
				}
			}
		})
	}
}

func TestInstanceScope(t *testing.T) {
	a, _, _ := keys(t)
	auth := newFileAuth(t, &clock{t: t0}, nil, a)
	p, err := auth.Authenticate(context.Background(), "Bearer "+mint(t, a, "", "kid-a", with(baseClaims(t0, "contributor"), "attestd_instance", "inst1")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Authorize("inst1", RoleContributor); err != nil {
		t.Errorf("own instance: %v", err)
	}
	if err := p.Authorize("inst2", RoleReader); ReasonOf(err) != ReasonWrongInstance {
		t.Errorf("other instance: %v, want wrong_instance", err)
	}
}

func TestAuthenticateRequest(t *testing.T) {
	a, _, _ := keys(t)
	auth := newFileAuth(t, &clock{t: t0}, nil, a)
	tok := mint(t, a, "", "kid-a", baseClaims(t0, "reader"))
	r := httptest.NewRequest("GET", "https://x/policies/SgxEnclave", nil)
	if _, err := auth.AuthenticateRequest(r); ReasonOf(err) != ReasonMissingHeader {
		t.Errorf("no header: %v", err)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	if p, err := auth.AuthenticateRequest(r); err != nil || p.Role != RoleReader {
		t.Errorf("with header: %+v, %v", p, err)
	}
	r.Header.Add("Authorization", "Bearer "+tok)
	if _, err := auth.AuthenticateRequest(r); ReasonOf(err) != ReasonMalformed {
		t.Errorf("two headers: %v", err)
	}
}

// idp is a TLS OIDC provider on loopback with switchable keys.
type idp struct {
	srv        *httptest.Server
	mu         sync.Mutex
	jwks       []byte
	issuer     string // issuer in the discovery doc ("" = srv.URL-based default)
	jwksURI    string // override
	jwksHits   atomic.Int64
	discovHits atomic.Int64
	fail       atomic.Bool
}

func newIDP(t *testing.T, ks ...testKey) *idp {
	p := &idp{jwks: jwksOf(t, ks...)}
	mux := http.NewServeMux()
	mux.HandleFunc("/tenant1/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discovHits.Add(1)
		if p.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		iss, uri := p.issuer, p.jwksURI
		p.mu.Unlock()
		if iss == "" {
			iss = p.srv.URL + "/tenant1/v2.0"
		}
		if uri == "" {
			uri = p.srv.URL + "/tenant1/keys"
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": uri})
	})
	mux.HandleFunc("/tenant1/keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(p.jwks)
	})
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-TLS test provokes handshake errors
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(t *testing.T, ks ...testKey) {
	p.mu.Lock()
	p.jwks = jwksOf(t, ks...)
	p.mu.Unlock()
}

func (p *idp) auth(t *testing.T, c *clock) *Authenticator {
	t.Helper()
	a, err := New(Config{
		Issuers:            []Issuer{{Issuer: p.srv.URL + "/tenant1/v2.0"}}, // discovery URL derived
		HTTPClient:         p.srv.Client(),
		MinRefreshInterval: time.Minute,
		RefreshInterval:    time.Hour,
		Now:                c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (p *idp) token(t *testing.T, k testKey, now time.Time) string {
	return "Bearer " + mint(t, k, "", k.kid, with(baseClaims(now, "Attestation.Contributor"), "iss", p.srv.URL+"/tenant1/v2.0"))
}

func TestOIDCDiscoveryAndRefresh(t *testing.T) {
	a, b, _ := keys(t)
	p := newIDP(t, a)
	c := &clock{t: t0}
	auth := p.auth(t, c)
	ctx := context.Background()

	if pr, err := auth.Authenticate(ctx, p.token(t, a, c.Now())); err != nil || pr.Role != RoleContributor {
		t.Fatalf("first token: %+v, %v", pr, err)
	}
	if _, err := auth.Authenticate(ctx, p.token(t, a, c.Now())); err != nil {
		t.Fatal(err)
	}
	if n := p.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times for two tokens, want 1 (cached)", n)
	}

	// The IdP rotates to key b: an unknown kid triggers one refetch (once
	// MinRefreshInterval has passed since the last fetch).
	p.setKeys(t, a, b)
	if _, err := auth.Authenticate(ctx, p.token(t, b, c.Now())); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("new kid right after a fetch: %v, want unknown_key (rate-limited)", err)
	}
	c.Add(time.Minute)
	if _, err := auth.Authenticate(ctx, p.token(t, b, c.Now())); err != nil {
		t.Fatalf("token under newly published kid: %v", err)
	}
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (refresh on unknown kid)", n)
	}

	// Forged kids are rate-limited: within MinRefreshInterval no refetch.
	forged := testKey{kid: "forged", alg: jose.RS256, key: b.key, pub: b.pub}
	for range 5 {
		if _, err := auth.Authenticate(ctx, p.token(t, forged, c.Now())); ReasonOf(err) != ReasonUnknownKey {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after forged kids, want still 2", n)
	}
	c.Add(2 * time.Minute)
	auth.Authenticate(ctx, p.token(t, forged, c.Now()))
	if n := p.jwksHits.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times after the interval, want 3", n)
	}

	// Keys age out after RefreshInterval; a failing IdP leaves the cached keys in use.
	p.fail.Store(true)
	c.Add(2 * time.Hour)
	if _, err := auth.Authenticate(ctx, p.token(t, a, c.Now())); err != nil {
		t.Fatalf("IdP down with cached keys: %v", err)
	}
	if n := p.discovHits.Load(); n != 4 {
		t.Errorf("discovery fetched %d times, want 4 (the stale-refresh attempt included)", n)
	}
}

func TestOIDCFailures(t *testing.T) {
	a, _, _ := keys(t)
	ctx := context.Background()
	t.Run("issuer mismatch in discovery", func(t *testing.T) {
		p := newIDP(t, a)
		p.issuer = "https://other.test/"
		_, err := p.auth(t, &clock{t: t0}).Authenticate(ctx, p.token(t, a, t0))
		if ReasonOf(err) != ReasonKeysUnavailable || !strings.Contains(err.Error(), "names issuer") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("http jwks_uri", func(t *testing.T) {
		p := newIDP(t, a)
		p.jwksURI = "http://127.0.0.1:1/keys"
		_, err := p.auth(t, &clock{t: t0}).Authenticate(ctx, p.token(t, a, t0))
		if ReasonOf(err) != ReasonKeysUnavailable || !strings.Contains(err.Error(), "must be https") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("IdP down, no cache, rate-limited retries", func(t *testing.T) {
		p := newIDP(t, a)
		p.fail.Store(true)
		c := &clock{t: t0}
		auth := p.auth(t, c)
		for range 3 {
			if _, err := auth.Authenticate(ctx, p.token(t, a, t0)); ReasonOf(err) != ReasonKeysUnavailable {
				t.Fatalf("got %v", err)
			}
		}
		if n := p.discovHits.Load(); n != 1 {
			t.Fatalf("%d discovery attempts, want 1", n)
		}
		p.fail.Store(false)
		c.Add(time.Minute)
		if _, err := auth.Authenticate(ctx, p.token(t, a, c.Now())); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
	t.Run("untrusted TLS", func(t *testing.T) {
		p := newIDP(t, a)
		auth, err := New(Config{Issuers: []Issuer{{Issuer: p.srv.URL + "/tenant1/v2.0"}}, Now: (&clock{t: t0}).Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.Prefetch(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Prefetch against a self-signed IdP with system roots: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		auth, err := New(Config{Issuers: []Issuer{{Issuer: "x", JWKSURL: srv.URL + "/keys"}}, HTTPClient: srv.Client(),
			FetchTimeout: 100 * time.Millisecond, Now: (&clock{t: t0}).Now})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := auth.Prefetch(ctx); err == nil {
			t.Fatal("Prefetch succeeded against a hanging server")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Prefetch took %v despite a 100 ms timeout", d)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	now := (&clock{t: t0}).Now
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no clock", Config{Issuers: []Issuer{{Issuer: "https://a"}}}},
		{"no issuers", Config{Now: now}},
		{"empty issuer", Config{Issuers: []Issuer{{}}, Now: now}},
		{"two sources", Config{Issuers: []Issuer{{Issuer: "https://a", JWKSURL: "https://a/k", JWKSFile: "/k"}}, Now: now}},
		{"http discovery", Config{Issuers: []Issuer{{Issuer: "http://a"}}, Now: now}},
		{"duplicate", Config{Issuers: []Issuer{{Issuer: "https://a"}, {Issuer: "https://a"}}, Now: now}},
		{"negative leeway", Config{Issuers: []Issuer{{Issuer: "https://a"}}, Leeway: -1, Now: now}},
	}
	for _, tc := range cases {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

func TestJWKSFileSkipsUnusableKeys(t *testing.T) {
	a, _, _ := keys(t)
	symKey := []byte("0123456789abcdef0123456789abcdef") // HS256 needs 256 bits

	good := jwksOf(t, a)
	var set map[string][]json.RawMessage
	if err := json.Unmarshal(good, &set); err != nil {
		t.Fatal(err)
	}
	set["keys"] = append([]json.RawMessage{
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"AQAB"}`),
		json.RawMessage(`{"kty":"oct","kid":"sym","k":"` + base64.RawURLEncoding.EncodeToString(symKey) + `"}`),
		json.RawMessage(`{"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"` + base64.RawURLEncoding.EncodeToString(ecA.X.FillBytes(make([]byte, 32))) + `","y":"` + base64.RawURLEncoding.EncodeToString(ecA.Y.FillBytes(make([]byte, 32))) + `"}`),
	}, set["keys"]...)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	auth, err := New(Config{Issuers: []Issuer{{Issuer: testIssuer, JWKSFile: f}}, Now: (&clock{t: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(context.Background(), "Bearer "+mint(t, a, "", "kid-a", baseClaims(t0, "reader"))); err != nil {
		t.Fatalf("good key next to unusable ones: %v", err)
	}
	// A symmetric key in the JWKS must not let HS256 tokens through: a token
	// HMAC'd with that very key (the JWKS's k) is refused.
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: symKey}, (&jose.SignerOptions{}).WithHeader("kid", "sym"))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jwt.Signed(s).Claims(baseClaims(t0, "contributor")).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(context.Background(), "Bearer "+hs); err == nil {
		t.Fatal("HS256 token accepted")
	}
}

func FuzzAuthenticate(f *testing.F) {
	a, _, _ := keys(f)
	dir := f.TempDir()
	file := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(file, jwksOf(f, a), 0o644); err != nil {
		f.Fatal(err)
	}
	auth, err := New(Config{Issuers: []Issuer{{Issuer: testIssuer, JWKSFile: file}}, Now: (&clock{t: t0}).Now})
	if err != nil {
		f.Fatal(err)
	}
	valid := "Bearer " + mint(f, a, "", "kid-a", baseClaims(t0, "reader"))
	f.Add(valid)
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.")
	f.Add("bearer " + strings.Repeat(".", 3))
	f.Add("")
	f.Fuzz(func(t *testing.T, hdr string) {
		p, err := auth.Authenticate(context.Background(), hdr)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		// Only a correctly signed token can pass; its claims are fixed.
		if p.Issuer != testIssuer || p.Role != RoleReader {
			t.Fatalf("accepted %q as %+v", hdr, p)
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	a, _, e := keys(b)
	f := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(f, jwksOf(b, a, e), 0o644); err != nil {
		b.Fatal(err)
	}
	auth, err := New(Config{Issuers: []Issuer{{Issuer: testIssuer, JWKSFile: f}}, Now: (&clock{t: t0}).Now})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []testKey{a, e} {
		hdr := "Bearer " + mint(b, k, "", k.kid, baseClaims(t0, "Attestation.Contributor"))
		b.Run(string(k.alg), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := auth.Authenticate(context.Background(), hdr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKnownKidNotStalledByRefresh: while a refetch for an unknown kid waits
// on a slow identity provider, a token whose kid is cached still
// authenticates (the key cache's lock is not held across the fetch).
func TestKnownKidNotStalledByRefresh(t *testing.T) {
	a, b, _ := keys(t)
	p := newIDP(t, a)
	c := &clock{t: t0}
	auth := p.auth(t, c)
	ctx := context.Background()
	if _, err := auth.Authenticate(ctx, p.token(t, a, c.Now())); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Minute) // past MinRefreshInterval: an unknown kid refetches

	p.mu.Lock() // the IdP stalls: discovery and JWKS handlers wait on p.mu
	released := false
	release := func() {
		if !released {
			released = true
			p.mu.Unlock()
		}
	}
	defer release()
	before := p.discovHits.Load()
	slow := make(chan error, 1)
	go func() {
		_, err := auth.Authenticate(ctx, p.token(t, b, c.Now()))
		slow <- err
	}()
	for p.discovHits.Load() == before { // the refetch has reached the IdP
		time.Sleep(time.Millisecond)
	}
	known := make(chan error, 1)
	go func() {
		_, err := auth.Authenticate(ctx, p.token(t, a, c.Now()))
		known <- err
	}()
	select {
	case err := <-known:
		if err != nil {
			t.Fatalf("cached kid during a refetch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a token with a cached kid waited for the refetch of another kid")
	}
	release()
	if err := <-slow; ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("kid the IdP does not publish: %v, want unknown_key", err)
	}
}

func TestCanceledRequestDoesNotPoisonKeyCache(t *testing.T) {
	a, _, _ := keys(t)
	p := newIDP(t, a)
	c := &clock{t: t0}
	auth := p.auth(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The caller is gone, but the fetch it started completes and is cached.
	auth.Authenticate(ctx, p.token(t, a, t0))
	if _, err := auth.Authenticate(context.Background(), p.token(t, a, t0)); err != nil {
		t.Fatalf("after a canceled first request: %v", err)
	}
	if n := p.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}
