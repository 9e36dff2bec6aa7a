package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// mintRaw signs an exact claims text (member order, case and duplicates as
// written), which a map cannot express.
func mintRaw(t *testing.T, k testKey, kid, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestClaimNamesAreExact: claim names are case-sensitive and unique (RFC
// 7519 §4). encoding/json matches struct fields case-insensitively with the
// last duplicate winning, so a signed token carrying both "roles" and
// "ROLES" (or "aud" and "AUD", "attestd_instance" and "Attestd_Instance")
// was read by its later, differently spelled claim: an identity provider
// that lets a user influence some custom claim name could grant a role, an
// audience or lift an instance scope that the real claim does not.
func TestClaimNamesAreExact(t *testing.T) {
	a, _, _ := keys(t)
	c := &clock{t: t0}
	auth := newFileAuth(t, c, nil, a)
	times := fmt.Sprintf(`"iss":%q,"sub":"u","iat":%d,"nbf":%d,"exp":%d`, testIssuer, t0.Unix(), t0.Unix(), t0.Add(time.Hour).Unix())
	tests := []struct {
		name     string
		claims   string
		reason   Reason // "" = accepted
		role     Role
		instance string
	}{
		{"case variant of roles does not grant", `{` + times + `,"aud":"https://attest.azure.net","roles":["Attestation.Reader"],"ROLES":["Attestation.Contributor"]}`, "", RoleReader, ""},
		{"only a case variant of roles", `{` + times + `,"aud":"https://attest.azure.net","Roles":"contributor"}`, "", RoleNone, ""},
		{"case variant of aud does not count", `{` + times + `,"aud":"https://evil.test","AUD":"https://attest.azure.net","roles":"contributor"}`, ReasonWrongAudience, 0, ""},
		{"case variant of attestd_instance does not lift the scope", `{` + times + `,"aud":"https://attest.azure.net","roles":"contributor","attestd_instance":"a","Attestd_Instance":""}`, "", RoleContributor, "a"},
		{"duplicate roles", `{` + times + `,"aud":"https://attest.azure.net","roles":"reader","roles":"contributor"}`, ReasonMalformed, 0, ""},
		{"duplicate iss", `{` + times + `,"aud":"https://attest.azure.net","iss":"https://evil.test"}`, ReasonMalformed, 0, ""},
		{"trailing data", `{` + times + `,"aud":"https://attest.azure.net"}{}`, ReasonMalformed, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.Authenticate(context.Background(), "Bearer "+mintRaw(t, a, "kid-a", tc.claims))
			if tc.reason != "" {
				if ReasonOf(err) != tc.reason {
					t.Fatalf("want %s, got %v", tc.reason, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Role != tc.role || p.Instance != tc.instance {
				t.Fatalf("role %s instance %q, want %s %q", p.Role, p.Instance, tc.role, tc.instance)
			}
		})
	}
}
