package auth

import (
	"log/slog"
	"testing"
)

// FuzzParseJWKS feeds arbitrary bytes to the JWKS parser that reads
// documents fetched from identity providers: it must never panic and must
// only ever return public signing keys.
func FuzzParseJWKS(f *testing.F) {
	a, _, e := keys(f)
	f.Add(jwksOf(f, a, e))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	ks := &keySource{is: Issuer{Issuer: "x"}, logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ks.parseJWKS(b, "fuzz")
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error but no keys")
		}
		for _, k := range keys {
			if !k.IsPublic() || !k.Valid() {
				t.Fatalf("non-public or invalid key returned: kid %q", k.KeyID)
			}
		}
	})
}
