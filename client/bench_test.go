package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
)

// BenchmarkGetPolicyValidated: one policy GET against a local fake MAA,
// including HTTP over TLS and RS256 validation with cached /certs.
func BenchmarkGetPolicyValidated(b *testing.B) {
	k := newKey(b, "bench", false)
	f := newFakeMAA(b)
	now := time.Now()
	f.set(forge(b, map[string]any{"alg": "RS256", "kid": kidOf(k)},
		map[string]any{"exp": now.Add(time.Hour).Unix(), "x-ms-policy": "eyJhbGciOiJub25lIn0.."}, k), k)
	c := f.client(b, client.Validation{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.GetPolicy(ctx, client.SgxEnclave); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseToken: structure parsing of a real-sized attestation token.
func BenchmarkParseToken(b *testing.B) {
	tok := "eyJhbGciOiJub25lIn0." + b64u.EncodeToString([]byte(`{"exp":1,"iat":1,"nbf":1,"iss":"https://x","x-ms-sgx-mrenclave":"`+
		"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"+`","x-ms-policy":{"a":1},"x-ms-sgx-product-id":7}`)) + "."
	b.ReportAllocs()
	for b.Loop() {
		t, err := client.ParseToken(tok)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.NewAttestationResult(t); err != nil {
			b.Fatal(err)
		}
	}
}
