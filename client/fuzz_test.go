package client_test

import (
	"strings"
	"testing"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/testenv"
)

// FuzzParseJWKS: the /certs parser never panics, and whatever it accepts
// has a kid and a certificate per key (what validation relies on).
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","kty":"RSA","x5c":["AAAA"]}]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","kid":"b"}]}`))
	f.Add([]byte(`{"keys":null}`))
	for _, s := range testenv.Seeds(f, realJWKS) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		jwks, err := client.ParseJWKS(b)
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

// FuzzParseToken: the token parser and the typed-claims reader never
// panic on any input; an accepted token has an alg and a claims object.
func FuzzParseToken(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJleHAiOjEsIngtbXMtc2d4LXN2biI6IjEifQ.AAAA")
	f.Add("a.b")
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjFlMzAwfQ.")
	for _, s := range testenv.Seeds(f, realPolicyToken, realSNPToken) {
		f.Add(strings.TrimSpace(string(s)))
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := client.ParseToken(s)
		if err != nil {
			return
		}
		if tok.Header.Alg == "" || tok.Claims == nil {
			t.Fatalf("accepted %+v", tok)
		}
		_, _ = client.NewAttestationResult(tok)
	})
}
