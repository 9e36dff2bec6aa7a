package token

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSignWithHeaders(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ks, err := OpenKeySet(t.TempDir(), "https://attest.example", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ks.Signer()
	thumb := sha1.Sum(cert.Raw)
	const jku = "https://attest.example/certs"
	for _, tc := range []struct {
		name string
		h    Header
		want map[string]any
	}{
		{"jku", HeaderJKU, map[string]any{"alg": "RS256", "jku": jku, "kid": ks.ActiveKID(), "typ": "JWT"}},
		{"x5c", HeaderX5C, map[string]any{"alg": "RS256", "jku": jku, "kid": ks.ActiveKID(), "typ": "JWT",
			"x5c": []any{base64.StdEncoding.EncodeToString(cert.Raw)}}},
		{"x5t", HeaderX5T, map[string]any{"alg": "RS256", "jku": jku, "kid": ks.ActiveKID(), "typ": "JWT",
			"x5t": base64.RawURLEncoding.EncodeToString(thumb[:])}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ks.SignWith(map[string]any{"a": 1}, SignOptions{JKU: jku, Header: tc.h})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Verify(tok); err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			hb, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(hb, &got); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("header %s, want %s", gb, wb)
			}
		})
	}
	if _, err := ks.SignWith(map[string]any{}, SignOptions{JKU: jku, Header: Header(9)}); err == nil {
		t.Error("unknown header kind accepted")
	}
}
