package keyrelease_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/verifier"
	keyrelease "github.com/attestd/attestd/examples/key-release"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// clock is the relying party's settable clock (the tokens come from a real
// attestd on the wall clock; the relying party's view of "now" is moved to
// test expiry).
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = d
}

// quoteFor mints test-platform SGX quotes of the enclave the policy
// names (MRENCLAVE a1…, MRSIGNER b2…), with changes.
func quoteFor(p *sgxplatform.Platform, debug bool, mrenclave byte) func([]byte) ([]byte, error) {
	return func(runtime []byte) ([]byte, error) {
		o := sgxplatform.QuoteOptions{Debug: debug, ProductID: 7, SVN: 3}
		for i := range o.MREnclave {
			o.MREnclave[i], o.MRSigner[i] = mrenclave, 0xb2
		}
		h := sha256.Sum256(runtime)
		copy(o.ReportData[:], h[:])
		return p.Quote(o)
	}
}

// TestKeyRelease runs both models of secure key release over HTTPS
// against a real attestd and the relying-party service, and asserts each
// refusal with its reason.
func TestKeyRelease(t *testing.T) {
	ctx := context.Background()
	s, err := attestdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk := &clock{}
	v, err := verifier.New(verifier.Options{Issuer: s.URL, HTTPClient: s.HTTPClient(), Now: clk.now,
		Leeway: 5 * time.Second, AttestationTypes: []string{verifier.TypeSGX}})
	if err != nil {
		t.Fatal(err)
	}
	attestd, err := client.New(s.URL, &client.Options{HTTPClient: s.HTTPClient(), Validation: client.Validation{Issuer: s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the database encryption key")
	rp, err := keyrelease.NewRelyingParty(keyrelease.RelyingPartyOptions{Verifier: v, Attestd: attestd, Secret: secret,
		Policy: keyrelease.Policy{MREnclave: strings.Repeat("a1", 32), MRSigner: strings.Repeat("b2", 32), ProductID: 7, MinSVN: 3}})
	if err != nil {
		t.Fatal(err)
	}
	rps := httptest.NewTLSServer(rp)
	defer rps.Close()
	hc := rps.Client()

	good, err := keyrelease.NewAttester(true, quoteFor(s.Platform, false, 0xa1))
	if err != nil {
		t.Fatal(err)
	}
	rsaAttester, err := keyrelease.NewAttester(false, quoteFor(s.Platform, false, 0xa1))
	if err != nil {
		t.Fatal(err)
	}
	debug, _ := keyrelease.NewAttester(true, quoteFor(s.Platform, true, 0xa1))
	otherCode, _ := keyrelease.NewAttester(true, quoteFor(s.Platform, false, 0xc3))

	passport := func(a *keyrelease.Attester, c *client.Client) string {
		t.Helper()
		tok, err := a.Passport(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	goodToken := passport(good, attestd)
	parts := strings.Split(goodToken, ".")

	// A token of the Isolated instance: the same attestd, another issuer.
	iso, err := client.New(s.URL+attestdtest.IsolatedPrefix, &client.Options{HTTPClient: s.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	isoToken := passport(good, iso)

	// A draft-policy result: unsigned.
	q, _ := good.Evidence()
	draft, err := attestd.AttestSgxEnclave(ctx, q, &client.AttestOptions{RuntimeJSON: good.RuntimeData(),
		DraftPolicy: "version=1.0; authorizationrules{=> permit();}; issuancerules{};"})
	if err != nil {
		t.Fatal(err)
	}

	// Tampered: the claims say another enclave, the signature is attestd's.
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(body, &claims)
	claims["x-ms-runtime"] = json.RawMessage(otherCode.RuntimeData())
	forgedBody, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedBody) + "." + parts[2]

	// Forged: the same claims and header (attestd's kid), signed by
	// someone else's key.
	k, _ := attestdtest.NewKey("forger", false)
	in := parts[0] + "." + parts[1]
	d := sha256.Sum256([]byte(in))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, k.Key.(*rsa.PrivateKey), crypto.SHA256, d[:])
	forged := in + "." + base64.RawURLEncoding.EncodeToString(sig)

	// Background check with runtime data the quote does not bind.
	bgUnbound := keyrelease.BackgroundCheckBody(q, otherCode.RuntimeData())

	ev := func(a *keyrelease.Attester) []byte {
		b, err := a.Evidence()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		attester *keyrelease.Attester
		path     string
		body     any
		clock    time.Duration
		check    string // "" = released
	}{
		{"passport", good, "/passport", keyrelease.PassportBody(goodToken), 0, ""},
		{"passport, RSA-OAEP", rsaAttester, "/passport", keyrelease.PassportBody(passport(rsaAttester, attestd)), 0, ""},
		{"background check", good, "/background-check", keyrelease.BackgroundCheckBody(ev(good), good.RuntimeData()), 0, ""},
		{"background check, RSA-OAEP", rsaAttester, "/background-check", keyrelease.BackgroundCheckBody(ev(rsaAttester), rsaAttester.RuntimeData()), 0, ""},
		{"debuggable enclave", debug, "/passport", keyrelease.PassportBody(passport(debug, attestd)), 0, keyrelease.CheckDebuggable},
		{"debuggable enclave, background check", debug, "/background-check", keyrelease.BackgroundCheckBody(ev(debug), debug.RuntimeData()), 0, keyrelease.CheckDebuggable},
		{"wrong measurement", otherCode, "/passport", keyrelease.PassportBody(passport(otherCode, attestd)), 0, keyrelease.CheckMREnclave},
		{"wrong measurement, background check", otherCode, "/background-check", keyrelease.BackgroundCheckBody(ev(otherCode), otherCode.RuntimeData()), 0, keyrelease.CheckMREnclave},
		{"expired token", good, "/passport", keyrelease.PassportBody(goodToken), 8*time.Hour + time.Minute, "token:" + verifier.ReasonExpired},
		{"token from another issuer", good, "/passport", keyrelease.PassportBody(isoToken), 0, "token:" + verifier.ReasonIssuer},
		{"tampered token", good, "/passport", keyrelease.PassportBody(tampered), 0, "token:" + verifier.ReasonSignature},
		{"forged token", good, "/passport", keyrelease.PassportBody(forged), 0, "token:" + verifier.ReasonSignature},
		{"draft token", good, "/passport", keyrelease.PassportBody(draft.Token.Raw), 0, "token:" + verifier.ReasonUnsigned},
		{"garbage token", good, "/passport", keyrelease.PassportBody("not.a.token"), 0, "token:" + verifier.ReasonMalformed},
		{"evidence not binding the key", good, "/background-check", bgUnbound, 0, keyrelease.CheckAttestation},
		{"no token", good, "/passport", map[string]string{}, 0, keyrelease.CheckRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.set(tc.clock)
			defer clk.set(0)
			got, err := tc.attester.Request(ctx, hc, rps.URL+tc.path, tc.body)
			if tc.check == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, secret) {
					t.Fatalf("unwrapped %q", got)
				}
				return
			}
			var ref *keyrelease.Refusal
			if !errors.As(err, &ref) || ref.Check != tc.check {
				t.Fatalf("got %q, %v; want refusal %q", got, err, tc.check)
			}
		})
	}

	// Only the attested key opens the answer: another attester cannot
	// unwrap what was released to good.
	b, _ := json.Marshal(keyrelease.PassportBody(goodToken))
	resp, err := hc.Post(rps.URL+"/passport", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Wrapped string }
	json.NewDecoder(resp.Body).Decode(&out)
	if _, err := otherCode.Unwrap(out.Wrapped); err == nil {
		t.Fatal("another attester's key unwrapped the secret")
	}
	if got, err := good.Unwrap(out.Wrapped); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrap: %q, %v", got, err)
	}
}

// TestPublicKeyFromRuntime: what x-ms-runtime must hold.
func TestPublicKeyFromRuntime(t *testing.T) {
	for _, tc := range []struct {
		name, jwk string
		ok        bool
	}{
		{"none", ``, false},
		{"not a JWK", `{"kty":"nope"}`, false},
		{"symmetric", `{"kty":"oct","k":"AAAA"}`, false},
		{"P-384", `{"kty":"EC","crv":"P-384","x":"iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7","y":"iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7"}`, false},
		{"private EC key", `{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLyRNo-r5sZC1Zp-5WKyeE"}`, false},
		{"EC P-256", `{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if tc.jwk != "" {
				json.Unmarshal([]byte(tc.jwk), &m)
			}
			_, err := keyrelease.PublicKeyFromRuntime(m)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// FuzzPublicKeyFromRuntime: the x-ms-runtime key reader never panics and
// accepts only public P-256 or RSA keys.
func FuzzPublicKeyFromRuntime(f *testing.F) {
	f.Add(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`)
	f.Add(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`)
	f.Add(`{"kty":"oct","k":"AAAA"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		k, err := keyrelease.PublicKeyFromRuntime(m)
		if err != nil {
			return
		}
		if _, err := keyrelease.Wrap([]byte("x"), k); err != nil {
			t.Fatalf("accepted key %T cannot wrap: %v", k, err)
		}
	})
}
