package auth

import (
	"encoding/json"
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

// FuzzDecodeClaims feeds arbitrary bytes to the claims reader, which sees a
// bearer token's payload before its signature is checked: it must never
// panic, and what it accepts must be one JSON object whose exact "iss" and
// "attestd_instance" members are what it returns.
func FuzzDecodeClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"https://idp","aud":["https://attest.azure.net"],"exp":1,"roles":"reader"}`))
	f.Add([]byte(`{"iss":"a","ISS":"b","roles":["x"],"attestd_instance":"t"}`))
	f.Add([]byte(`{"iss":"a","iss":"b"}`))
	f.Add([]byte(`{"roles":null,"exp":1.5}{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeClaims(b)
		if err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("accepted claims that are not one JSON object: %v", err)
		}
		if s, _ := m["iss"].(string); s != c.Issuer {
			t.Fatalf("iss %q, exact member %q", c.Issuer, s)
		}
		if s, _ := m["attestd_instance"].(string); s != c.Instance {
			t.Fatalf("attestd_instance %q, exact member %q", c.Instance, s)
		}
	})
}
