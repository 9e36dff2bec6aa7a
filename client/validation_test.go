package client_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/attestdtest"
)

var b64u = base64.RawURLEncoding

// fakeMAA serves /certs from a mutable key list and answers every other
// call with the token the test set: it forges what a real service (or an
// attacker in its place) could answer.
type fakeMAA struct {
	srv *httptest.Server

	mu        sync.Mutex
	jwks      []map[string]any
	token     string
	certFetch int
}

func newFakeMAA(t testing.TB) *fakeMAA {
	f := &fakeMAA{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.URL.Path == "/certs" {
			f.certFetch++
			json.NewEncoder(w).Encode(map[string]any{"keys": f.jwks})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": f.token})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMAA) set(tok string, keys ...*attestdtest.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = tok
	f.jwks = nil
	for _, k := range keys {
		f.jwks = append(f.jwks, map[string]any{"kid": kidOf(k), "kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(k.Cert.Raw)}})
	}
}

func (f *fakeMAA) fetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.certFetch
}

func (f *fakeMAA) client(t testing.TB, v client.Validation) *client.Client {
	c, err := client.New(f.srv.URL, &client.Options{HTTPClient: f.srv.Client(), Validation: v,
		Credential: func(context.Context) (string, error) { return "bearer", nil }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kidOf(k *attestdtest.Key) string { return "kid-" + k.Cert.Subject.CommonName }

// forge builds a compact JWT with the given header and claims, signed
// RS256 by k (nil: empty signature).
func forge(t testing.TB, header, claims map[string]any, k *attestdtest.Key) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := b64u.EncodeToString(h) + "." + b64u.EncodeToString(c)
	if k == nil {
		return in + "."
	}
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.Key.(*rsa.PrivateKey), crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64u.EncodeToString(sig)
}

// TestTokenValidation: every way a returned token can be refused, and the
// options that relax the checks.
func TestTokenValidation(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t, "signer-1", false), newKey(t, "signer-2", false)
	now := time.Unix(1_800_000_000, 0)
	at := func() time.Time { return now }
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": "https://maa.test", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"x-ms-policy": "eyJhbGciOiJub25lIn0..", "x-ms-sgx-mrenclave": "ab"}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	hdr := func(k *attestdtest.Key) map[string]any {
		return map[string]any{"alg": "RS256", "kid": kidOf(k), "jku": "https://maa.test/certs", "typ": "JWT"}
	}
	valid := forge(t, hdr(k1), claims(nil), k1)
	parts := strings.Split(valid, ".")
	tb, _ := json.Marshal(claims(map[string]any{"x-ms-sgx-mrenclave": "cd"}))
	tampered := parts[0] + "." + b64u.EncodeToString(tb) + "." + parts[2] // another body, same signature
	// Another first character: "A" unless the signature starts with it
	// (1 in 64 keys), else the token would not be tampered at all.
	first := "A"
	if parts[2][0] == 'A' {
		first = "B"
	}
	flipped := parts[0] + "." + parts[1] + "." + first + parts[2][1:]
	x5cHeader := map[string]any{"alg": "RS256", "kid": "not-in-certs", "x5c": []string{base64.StdEncoding.EncodeToString(k2.Cert.Raw)}}

	tests := []struct {
		name    string
		tok     string
		certs   []*attestdtest.Key // served by /certs
		v       client.Validation
		attest  bool // call AttestSgxEnclave (with draft) instead of GetPolicy
		reason  string
		fetches int // expected /certs fetches (0: don't check)
	}{
		{name: "valid", tok: valid, certs: []*attestdtest.Key{k1}, fetches: 1},
		{name: "valid with issuer", tok: valid, certs: []*attestdtest.Key{k1}, v: client.Validation{Issuer: "https://maa.test"}},
		{name: "issuer mismatch", tok: valid, certs: []*attestdtest.Key{k1}, v: client.Validation{Issuer: "https://maa.test/"}, reason: client.ReasonIssuer},
		{name: "unknown kid refreshes once", tok: forge(t, hdr(k2), claims(nil), k2), certs: []*attestdtest.Key{k1}, reason: client.ReasonUnknownKey, fetches: 2},
		{name: "no kid", tok: forge(t, map[string]any{"alg": "RS256"}, claims(nil), k1), certs: []*attestdtest.Key{k1}, reason: client.ReasonUnknownKey},
		{name: "known kid, other key", tok: forge(t, hdr(k1), claims(nil), k2), certs: []*attestdtest.Key{k1}, reason: client.ReasonSignature},
		{name: "tampered body", tok: tampered, certs: []*attestdtest.Key{k1}, reason: client.ReasonSignature},
		{name: "tampered signature", tok: flipped, certs: []*attestdtest.Key{k1}, reason: client.ReasonSignature},
		{name: "expired", tok: forge(t, hdr(k1), claims(map[string]any{"exp": now.Add(-time.Minute).Unix()}), k1), certs: []*attestdtest.Key{k1}, reason: client.ReasonExpired},
		{name: "expired within leeway", tok: forge(t, hdr(k1), claims(map[string]any{"exp": now.Add(-time.Minute).Unix()}), k1), certs: []*attestdtest.Key{k1}, v: client.Validation{Leeway: 2 * time.Minute}},
		{name: "expired, times skipped", tok: forge(t, hdr(k1), claims(map[string]any{"exp": now.Add(-time.Minute).Unix()}), k1), certs: []*attestdtest.Key{k1}, v: client.Validation{SkipTimeValidation: true}},
		{name: "no exp", tok: forge(t, hdr(k1), claims(map[string]any{"exp": nil}), k1), certs: []*attestdtest.Key{k1}, reason: client.ReasonExpired},
		{name: "not yet valid", tok: forge(t, hdr(k1), claims(map[string]any{"nbf": now.Add(time.Minute).Unix()}), k1), certs: []*attestdtest.Key{k1}, reason: client.ReasonNotYetValid},
		{name: "alg none on a policy token", tok: forge(t, map[string]any{"alg": "none", "kid": kidOf(k1)}, claims(nil), nil), certs: []*attestdtest.Key{k1}, reason: client.ReasonUnsigned},
		{name: "alg none on a draft attest result", tok: forge(t, map[string]any{"alg": "none", "kid": kidOf(k1)}, claims(map[string]any{"x-ms-policy": map[string]any{}}), nil), attest: true},
		{name: "alg none with a signature", tok: strings.TrimSuffix(forge(t, map[string]any{"alg": "none"}, claims(nil), nil), ".") + ".AAAA", attest: true, reason: client.ReasonMalformed},
		{name: "HS256", tok: strings.Replace(valid, parts[0], b64u.EncodeToString([]byte(`{"alg":"HS256","kid":"kid-signer-1"}`)), 1), certs: []*attestdtest.Key{k1}, reason: client.ReasonAlgorithm},
		{name: "header x5c not trusted", tok: forge(t, x5cHeader, claims(nil), k2), certs: []*attestdtest.Key{k1}, reason: client.ReasonUnknownKey},
		{name: "header x5c trusted on request", tok: forge(t, x5cHeader, claims(nil), k2), certs: []*attestdtest.Key{k1}, v: client.Validation{TrustHeaderCertificates: true}},
		{name: "skip validation", tok: flipped, certs: nil, v: client.Validation{SkipValidation: true}, fetches: -1},
		{name: "two parts", tok: "eyJhbGciOiJSUzI1NiJ9.e30", certs: []*attestdtest.Key{k1}, reason: client.ReasonMalformed},
		{name: "duplicate header member", tok: b64u.EncodeToString([]byte(`{"alg":"none","alg":"RS256"}`)) + "." + parts[1] + "." + parts[2], certs: []*attestdtest.Key{k1}, reason: client.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeMAA(t)
			f.set(tc.tok, tc.certs...)
			if tc.v.Now == nil {
				tc.v.Now = at
			}
			c := f.client(t, tc.v)
			var err error
			var tok *client.Token
			if tc.attest {
				var r *client.AttestationResult
				r, err = c.AttestSgxEnclave(ctx, []byte("quote"), &client.AttestOptions{DraftPolicy: permitAll})
				if err == nil {
					tok = r.Token
					if !r.Unsigned || r.MREnclave != "ab" {
						t.Fatalf("draft result %+v", r)
					}
				}
			} else {
				_, _, err = c.GetPolicy(ctx, client.SgxEnclave)
			}
			if tc.reason != "" {
				wantReason(t, err, tc.reason)
			} else if err != nil {
				t.Fatal(err)
			}
			if tok != nil && tok.Verified == tc.v.SkipValidation {
				t.Fatalf("Verified = %v", tok.Verified)
			}
			switch {
			case tc.fetches > 0 && f.fetches() != tc.fetches:
				t.Fatalf("/certs fetched %d times, want %d", f.fetches(), tc.fetches)
			case tc.fetches < 0 && f.fetches() != 0:
				t.Fatalf("/certs fetched %d times, want none", f.fetches())
			}
		})
	}
}

// TestKeyRotation: /certs is cached, and refetched when a token names a
// kid the cache lacks.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t, "signer-1", false), newKey(t, "signer-2", false)
	f := newFakeMAA(t)
	c := f.client(t, client.Validation{})
	now := time.Now()
	body := map[string]any{"iss": "x", "exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "x-ms-policy": "eyJhbGciOiJub25lIn0.."}
	f.set(forge(t, map[string]any{"alg": "RS256", "kid": kidOf(k1)}, body, k1), k1)
	// Concurrent first calls share one /certs fetch.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, _, err := c.GetPolicy(ctx, client.SgxEnclave)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.fetches() != 1 {
		t.Fatalf("/certs fetched %d times for eight tokens of one key", f.fetches())
	}
	f.set(forge(t, map[string]any{"alg": "RS256", "kid": kidOf(k2)}, body, k2), k1, k2)
	if _, _, err := c.GetPolicy(ctx, client.SgxEnclave); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if f.fetches() != 2 {
		t.Fatalf("/certs fetched %d times, want 2", f.fetches())
	}
}

// TestResponseBinding: a validly signed answer about another change (wrong
// x-ms-policy-token-hash, wrong thumbprint) is refused.
func TestResponseBinding(t *testing.T) {
	ctx := context.Background()
	k := newKey(t, "signer-1", false)
	f := newFakeMAA(t)
	c := f.client(t, client.Validation{})
	now := time.Now()
	hdr := map[string]any{"alg": "RS256", "kid": kidOf(k)}
	other := sha256.Sum256([]byte("another body"))
	f.set(forge(t, hdr, map[string]any{"exp": now.Add(time.Hour).Unix(), "x-ms-policy-result": "Updated",
		"x-ms-policy-token-hash": b64u.EncodeToString(other[:])}, k), k)
	_, err := c.SetPolicy(ctx, client.SgxEnclave, permitAll, nil)
	if err == nil || !strings.Contains(err.Error(), "x-ms-policy-token-hash") {
		t.Fatalf("hash mismatch: %v", err)
	}
	f.set(forge(t, hdr, map[string]any{"exp": now.Add(time.Hour).Unix(), "x-ms-policycertificates-result": "IsPresent",
		"x-ms-certificate-thumbprint": strings.Repeat("AB", 20)}, k), k)
	_, err = c.AddPolicyCertificate(ctx, k.Cert, signerOf(t, k))
	if err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Fatalf("thumbprint mismatch: %v", err)
	}
	// An error body that is not MAA's envelope keeps its text.
	f2 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer f2.Close()
	c2, _ := client.New(f2.URL, &client.Options{HTTPClient: f2.Client()})
	_, err = c2.GetSigningCertificates(ctx)
	if e := wantError(t, err, 502, ""); e.Message != "upstream exploded" {
		t.Fatalf("message %q", e.Message)
	}
}

// TestNew: endpoint forms.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://h.example", "https://h.example", true},
		{"https://h.example:8443/tenants/t1/", "https://h.example:8443/tenants/t1", true},
		{"ftp://h.example", "", false},
		{"https://h.example/?x=1", "", false},
		{"https://user@h.example", "", false},
		{"h.example", "", false},
	} {
		c, err := client.New(tc.in, nil)
		if (err == nil) != tc.ok || (err == nil && c.Endpoint() != tc.want) {
			t.Errorf("New(%q) = %v, %v", tc.in, c, err)
		}
	}
	// A bearer token is never sent over http.
	c, _ := client.New("http://127.0.0.1:1", &client.Options{Credential: func(context.Context) (string, error) { return "t", nil }})
	if _, err := c.GetPolicyCertificates(context.Background()); err == nil || !strings.Contains(err.Error(), "bearer") {
		t.Fatalf("http with credential: %v", err)
	}
}

// TestWireRequests: paths, api-version, content types, bodies and the
// Authorization header as MAA expects them (maa-api.md §1).
func TestWireRequests(t *testing.T) {
	type seen struct{ method, uri, ctype, auth, body string }
	var mu sync.Mutex
	var reqs []seen
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		io.Copy(b, r.Body)
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), b.String()})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[],"issuer":"x"}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL+"/tenants/t1/", &client.Options{HTTPClient: srv.Client(), APIVersion: "2022-08-01",
		Credential: func(context.Context) (string, error) { return "tok", nil }, Validation: client.Validation{SkipValidation: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := newKey(t, "wire", false)
	c.GetSigningCertificates(ctx)
	c.GetOpenIDMetadata(ctx)
	c.SetPolicy(ctx, client.SgxEnclave, "p", nil)
	c.ResetPolicy(ctx, client.Tpm, nil)
	c.AddPolicyCertificate(ctx, k.Cert, signerOf(t, k))
	c.AttestOpenEnclave(ctx, []byte{1, 2, 3}, &client.AttestOptions{RuntimeJSON: []byte(`{}`), InitTimeData: []byte{4}})
	policyJWS := "eyJhbGciOiJub25lIn0." + b64u.EncodeToString([]byte(`{"AttestationPolicy":"cA"}`)) + "."
	want := []seen{
		{"GET", "/tenants/t1/certs", "", "Bearer tok", ""},
		{"GET", "/tenants/t1/.well-known/openid-configuration", "", "Bearer tok", ""},
		{"PUT", "/tenants/t1/policies/SgxEnclave?api-version=2022-08-01", "text/plain", "Bearer tok", policyJWS},
		{"POST", "/tenants/t1/policies/Tpm:reset?api-version=2022-08-01", "text/plain", "Bearer tok", "eyJhbGciOiJub25lIn0.."},
		{"POST", "/tenants/t1/certificates:add?api-version=2022-08-01", "application/json", "Bearer tok", ""},
		{"POST", "/tenants/t1/attest/OpenEnclave?api-version=2022-08-01", "application/json", "Bearer tok",
			`{"report":"AQID","runtimeData":{"data":"e30","dataType":"JSON"},"initTimeData":{"data":"BA","dataType":"Binary"}}`},
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests: %+v", len(reqs), reqs)
	}
	for i, w := range want {
		got := reqs[i]
		if w.body == "" && got.body != "" && got.method == "POST" {
			// certificates:add: a JSON string literal holding a JWS signed by k.
			var jws string
			if err := json.Unmarshal([]byte(got.body), &jws); err != nil || strings.Count(jws, ".") != 2 {
				t.Errorf("request %d body %q is not a JSON string of a JWS", i, got.body)
			}
			got.body = ""
		}
		if got != w {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
}

// TestBearerNotSentOnRedirectToHTTP: an https service that redirects to
// http (same host, so net/http would forward Authorization) must not
// receive the bearer token in clear.
func TestBearerNotSentOnRedirectToHTTP(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"x.y.z"}`)
	}))
	t.Cleanup(plain.Close)
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(tls.Close)
	c, err := client.New(tls.URL, &client.Options{HTTPClient: tls.Client(),
		Credential: func(context.Context) (string, error) { return "secret-bearer", nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetPolicy(context.Background(), client.SgxEnclave)
	if err == nil {
		t.Fatal("GetPolicy through an https→http redirect succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range leaked {
		if strings.Contains(a, "secret-bearer") {
			t.Fatalf("bearer token sent over http after a redirect: %q", a)
		}
	}
}
