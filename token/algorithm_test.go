package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestParseAlgorithm(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Algorithm
		ok   bool
	}{{"", RS256, true}, {"RS256", RS256, true}, {"ES256", ES256, true}, {"es256", "", false}, {"HS256", "", false}, {"none", "", false}} {
		got, err := ParseAlgorithm(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", c.in, got, err)
		}
	}
}

// headerOf decodes a compact JWS header.
func headerOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// verifyJWKS verifies tok as a generic relying party does: the /certs key
// of the header's kid, its x5c[0] public key, the header's alg.
func verifyJWKS(t *testing.T, jwks []byte, tok string, alg jose.SignatureAlgorithm) []byte {
	t.Helper()
	set := jwksDoc(t, jwks)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 || len(keys[0].Certificates) != 1 {
		t.Fatalf("kid %q: %d keys in %s", kid, len(keys), jwks)
	}
	p, err := jws.Verify(keys[0].Certificates[0].PublicKey)
	if err != nil {
		t.Fatalf("%s token does not verify with x5c[0] of its /certs key: %v", alg, err)
	}
	return p
}

// TestES256KeySet: an ES256 set signs JWS ES256 (raw 64-byte R||S), with
// MAA's header layout, publishes a P-256 JWK with x5c, keeps its key across
// reopening, rotates like RS256 sets, and refuses a directory of RSA keys.
func TestES256KeySet(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	ks, err := OpenKeySetAlgorithm(dir, subject, c.Now, ES256)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Algorithm() != ES256 {
		t.Fatalf("algorithm %s", ks.Algorithm())
	}
	tok, err := ks.Sign(jku, map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	h := headerOf(t, tok)
	if h["alg"] != "ES256" || h["jku"] != jku || h["kid"] != ks.ActiveKID() || h["typ"] != "JWT" || len(h) != 4 {
		t.Fatalf("header %v", h)
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2]); len(sig) != 64 {
		t.Fatalf("signature of %d bytes, want JWS R||S (64)", len(sig))
	}
	if p := verifyJWKS(t, ks.JWKS(), tok, jose.ES256); string(p) != `{"x":1}` {
		t.Fatalf("payload %s", p)
	}
	if _, err := ks.Verify(tok); err != nil {
		t.Fatal(err)
	}
	set := jwksDoc(t, ks.JWKS())
	k := set.Keys[0]
	ec, ok := k.Key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() || k.Algorithm != "ES256" || k.Use != "sig" || len(k.Certificates) != 1 || !ec.Equal(k.Certificates[0].PublicKey) {
		t.Fatalf("JWK %+v", k)
	}
	if !strings.Contains(string(ks.JWKS()), `"kty":"EC"`) || !strings.Contains(string(ks.JWKS()), `"crv":"P-256"`) {
		t.Fatalf("JWKS %s", ks.JWKS())
	}

	// x5c/x5t headers (SignWith) carry the algorithm too.
	for _, hk := range []Header{HeaderJKU, HeaderX5C, HeaderX5T} {
		tok, err := ks.SignWith(map[string]any{"y": true}, SignOptions{JKU: jku, Header: hk})
		if err != nil {
			t.Fatal(err)
		}
		if headerOf(t, tok)["alg"] != "ES256" {
			t.Fatalf("header kind %d: %v", hk, headerOf(t, tok))
		}
		verifyJWKS(t, ks.JWKS(), tok, jose.ES256)
	}

	// Reopened: the same key.
	again, err := OpenKeySetAlgorithm(dir, subject, c.Now, ES256)
	if err != nil {
		t.Fatal(err)
	}
	if again.ActiveKID() != ks.ActiveKID() {
		t.Fatal("reopening made a new key")
	}
	// Rotation: the new key signs, the old one stays published.
	old := ks.ActiveKID()
	if err := ks.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	if ks.ActiveKID() == old || len(jwksDoc(t, ks.JWKS()).Keys) != 2 {
		t.Fatalf("after rotation: active %s, JWKS %s", ks.ActiveKID(), ks.JWKS())
	}
	verifyJWKS(t, ks.JWKS(), tok, jose.ES256) // signed by the old key

	// A directory of RSA keys is not an ES256 set, nor the reverse.
	rsaDir := t.TempDir()
	if _, err := OpenKeySet(rsaDir, subject, c.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeySetAlgorithm(rsaDir, subject, c.Now, ES256); err == nil || !strings.Contains(err.Error(), "want ECDSA P-256") {
		t.Fatalf("RSA directory opened as ES256: %v", err)
	}
	if _, err := OpenKeySet(dir, subject, c.Now); err == nil || !strings.Contains(err.Error(), "want RSA") {
		t.Fatalf("ES256 directory opened as RS256: %v", err)
	}
	if _, err := OpenKeySetAlgorithm(t.TempDir(), subject, c.Now, "HS256"); err == nil {
		t.Fatal("HS256 accepted")
	}
	// Key files are private.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if st, _ := os.Stat(filepath.Join(dir, e.Name())); st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s has mode %v", e.Name(), st.Mode())
		}
	}
}

// TestPair: management tokens RS256, attestation tokens ES256, one /certs
// with both keys, the OpenID algorithms of both.
func TestPair(t *testing.T) {
	c := &clock{t: t0}
	rs := openSet(t, t.TempDir(), c)
	es, err := OpenKeySetAlgorithm(t.TempDir(), subject, c.Now, ES256)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{Management: rs, Attestation: es}
	jwks := p.JWKS()
	set := jwksDoc(t, jwks)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS %s", jwks)
	}
	if _, ok := set.Keys[0].Key.(*rsa.PublicKey); !ok {
		t.Fatalf("first key %T, want the RSA management key", set.Keys[0].Key)
	}
	mgmt, err := p.Sign(jku, map[string]any{"m": 1})
	if err != nil {
		t.Fatal(err)
	}
	verifyJWKS(t, jwks, mgmt, jose.RS256)
	att, err := p.SignWith(map[string]any{"a": 1}, SignOptions{JKU: jku})
	if err != nil {
		t.Fatal(err)
	}
	verifyJWKS(t, jwks, att, jose.ES256)
	draft, err := p.Unsigned(jku, map[string]any{"d": 1})
	if err != nil {
		t.Fatal(err)
	}
	if h := headerOf(t, draft); h["alg"] != "none" || h["kid"] != es.ActiveKID() {
		t.Fatalf("draft header %v", h)
	}
	for _, tok := range []string{mgmt, att} {
		if _, err := p.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Algorithms(); len(got) != 2 || got[0] != "RS256" || got[1] != "ES256" {
		t.Fatalf("algorithms %v", got)
	}
	if got := (Pair{Management: rs, Attestation: rs}).Algorithms(); len(got) != 1 {
		t.Fatalf("algorithms %v", got)
	}
}

// TestRawP256Signature: the DER → R||S conversion agrees with crypto/ecdsa
// on many signatures (short R and S included) and refuses malformed input.
func TestRawP256Signature(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := make([]byte, 32)
	for i := range 300 {
		digest[0], digest[1] = byte(i), byte(i>>8)
		sig, err := joseES256{k}.Sign(rand.Reader, digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 || !ecdsa.Verify(&k.PublicKey, digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("signature %d does not verify", i)
		}
	}
	for _, der := range [][]byte{nil, {0x30}, {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01}, {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		{0x30, 0x06, 0x02, 0x05, 0x01, 0x02, 0x01, 0x01}, append([]byte{0x30, 0x26, 0x02, 0x22}, make([]byte, 36)...)} {
		if _, err := rawP256Signature(der); err == nil {
			t.Fatalf("%x accepted", der)
		}
	}
}
