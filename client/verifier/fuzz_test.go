package verifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/internal/testenv"
)

// FuzzParseJWKS: the /certs parser never panics, and whatever it accepts
// has a kid and a certificate per key, no kid twice (what Lookup relies on).
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","kty":"RSA","x5c":["AAAA"]}]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","kid":"b"}]}`))
	for _, s := range testenv.Seeds(f, realJWKS) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		jwks, err := verifier.ParseJWKS(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range jwks.Keys {
			if k.KID == "" || len(k.Certificates) == 0 || k.Certificates[0] == nil || seen[k.KID] {
				t.Fatalf("accepted key %+v", k)
			}
			seen[k.KID] = true
		}
	})
}

// FuzzVerify: parsing, claim reading and the whole verification never
// panic, and nothing but a token signed by the one published key is
// accepted (the fuzzer cannot forge its signature).
func FuzzVerify(f *testing.F) {
	s := newSigner(f, "fuzz-1", "p256")
	f.Add(forge(f, hdr("ES256", s), sgxClaims(nil), s))
	f.Add(forge(f, hdr("none", s), sgxClaims(nil), nil))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b")
	for _, seed := range testenv.Seeds(f, realSNPToken, realPolicyTok) {
		f.Add(strings.TrimSpace(string(seed)))
	}
	src := &keySource{}
	src.set(s)
	v, err := verifier.New(verifier.Options{Issuer: issuer, Keys: src.fetch, Now: func() time.Time { return t0 }, KeysCooldown: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if tok, err := verifier.ParseToken(raw); err == nil {
			if tok.Header.Alg == "" || tok.Claims == nil {
				t.Fatalf("accepted %+v", tok)
			}
			_, _ = verifier.NewResult(tok)
		}
		r, err := v.Verify(context.Background(), raw)
		if err != nil {
			return
		}
		if !r.Token.Signer.Equal(s.cert) || r.Unsigned || r.Issuer != issuer {
			t.Fatalf("accepted %q: %+v", raw, r)
		}
	})
}
