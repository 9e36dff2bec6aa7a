package token

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 500_000_000, time.UTC)

const (
	subject = "https://inst1.attestd.test"
	jku     = "https://inst1.attestd.test/certs"
)

func openSet(t *testing.T, dir string, c *clock) *KeySet {
	t.Helper()
	ks, err := OpenKeySet(dir, subject, c.Now)
	if err != nil {
		t.Fatalf("OpenKeySet: %v", err)
	}
	return ks
}

// jwksDoc parses a JWKS with go-jose, as a generic relying party would.
func jwksDoc(t *testing.T, b []byte) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, b)
	}
	return set
}

// verifyLikeClient verifies tok the way the MAA SDKs do: find the /certs
// key whose kid equals the header kid and check the RS256 signature with the
// public key of x5c[0].
func verifyLikeClient(t *testing.T, jwks []byte, tok string) map[string]any {
	t.Helper()
	var raw struct {
		Keys []struct {
			Kid string   `json:"kid"`
			Kty string   `json:"kty"`
			X5c []string `json:"x5c"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &raw); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	for _, k := range raw.Keys {
		if k.Kid != kid {
			continue
		}
		if k.Kty != "RSA" || len(k.X5c) == 0 {
			t.Fatalf("key %s lacks kty RSA or x5c: %+v", kid, k)
		}
		der, err := base64.StdEncoding.DecodeString(k.X5c[0])
		if err != nil {
			t.Fatalf("x5c[0] is not standard base64: %v", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(cert.PublicKey)
		if err != nil {
			t.Fatalf("signature does not verify against x5c[0] of kid %s: %v", kid, err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	t.Fatalf("no /certs key has the token's kid %q", kid)
	return nil
}

func splitJWT(t *testing.T, tok string) (h, p, s []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	var out [3][]byte
	for i, part := range parts {
		if strings.ContainsAny(part, "=+/") {
			t.Fatalf("part %d is not canonical unpadded base64url: %q", i, part)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(part)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		out[i] = b
	}
	return out[0], out[1], out[2]
}

// TestSignHeaderFollowsJKUAndRotation: the encoded header is reused between
// tokens, but never across a different jku or a rotation.
func TestSignHeaderFollowsJKUAndRotation(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	other := "https://other.attestd.test/certs"
	for i, j := range []string{jku, jku, other, jku, "rotate", jku} {
		if j == "rotate" {
			if err := ks.Rotate(time.Hour); err != nil {
				t.Fatal(err)
			}
			continue
		}
		tok, err := ks.Sign(j, map[string]any{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := splitJWT(t, tok)
		want := `{"alg":"RS256","jku":"` + j + `","kid":"` + ks.ActiveKID() + `","typ":"JWT"}`
		if string(h) != want {
			t.Errorf("token %d: header %s, want %s", i, h, want)
		}
		if _, err := ks.Verify(tok); err != nil {
			t.Errorf("token %d: %v", i, err)
		}
	}
}

func TestSignVerifiesAgainstJWKS(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	claims := map[string]any{"zeta": 1, "iss": subject, "alpha": "a<b>&c", "x-ms-policy": map[string]any{"b": true, "a": "x"}}
	tok, err := ks.Sign(jku, claims)
	if err != nil {
		t.Fatal(err)
	}
	h, p, _ := splitJWT(t, tok)
	wantHeader := `{"alg":"RS256","jku":"` + jku + `","kid":"` + ks.ActiveKID() + `","typ":"JWT"}`
	if string(h) != wantHeader {
		t.Errorf("header = %s\nwant     %s", h, wantHeader)
	}
	wantPayload := `{"alpha":"a<b>&c","iss":"https://inst1.attestd.test","x-ms-policy":{"a":"x","b":true},"zeta":1}`
	if string(p) != wantPayload {
		t.Errorf("payload = %s\nwant      %s", p, wantPayload)
	}
	jwks := ks.JWKS()
	got := verifyLikeClient(t, jwks, tok)
	if got["alpha"] != "a<b>&c" {
		t.Errorf("claims = %v", got)
	}
	// go-jose's own JWKS parsing agrees and finds the key by kid.
	set := jwksDoc(t, jwks)
	keys := set.Key(ks.ActiveKID())
	if len(keys) != 1 || keys[0].Algorithm != "RS256" || keys[0].Use != "sig" || len(keys[0].Certificates) != 1 {
		t.Fatalf("JWKS entry for active kid = %+v", keys)
	}
	if keys[0].Certificates[0].Subject.CommonName != subject {
		t.Errorf("cert CN = %q, want %q", keys[0].Certificates[0].Subject.CommonName, subject)
	}
	if payload, err := ks.Verify(tok); err != nil || string(payload) != wantPayload {
		t.Errorf("KeySet.Verify = %s, %v", payload, err)
	}
	// Tampering is detected.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"evil"}`)) + "." + parts[2]
	if _, err := ks.Verify(forged); err == nil {
		t.Error("Verify accepted a token with a replaced payload")
	}
}

func TestKIDAndCertificate(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	cert, signer := ks.Signer()
	if kid := ks.ActiveKID(); len(kid) != 44 || kid != KID(cert.Raw) {
		t.Errorf("kid %q: want the 44-char base64 SHA-256 of the certificate", kid)
	}
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 {
		t.Fatalf("signer is %T with %d bits", signer.Public(), pub.N.BitLen())
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
	if cert.NotAfter.Sub(t0) < 20*365*24*time.Hour || !cert.NotBefore.Before(t0) {
		t.Errorf("validity %v..%v is not long and current", cert.NotBefore, cert.NotAfter)
	}
}

func TestRestartReusesKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "inst1")
	c := &clock{t: t0}
	ks1 := openSet(t, dir, c)
	tok, err := ks1.Sign(jku, map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	ks2 := openSet(t, dir, c)
	if ks1.ActiveKID() != ks2.ActiveKID() {
		t.Fatalf("restart changed kid %s → %s", ks1.ActiveKID(), ks2.ActiveKID())
	}
	verifyLikeClient(t, ks2.JWKS(), tok)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", e.Name(), info.Mode().Perm())
		}
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("leftover temporary file %s", e.Name())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", st.Mode().Perm())
	}
}

func TestRotationAndRetirement(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	ks := openSet(t, dir, c)
	oldKID := ks.ActiveKID()
	oldTok, _ := ks.Sign(jku, map[string]any{"n": "old"})

	if err := ks.Rotate(10 * time.Hour); err != nil {
		t.Fatal(err)
	}
	newKID := ks.ActiveKID()
	if newKID == oldKID {
		t.Fatal("Rotate kept the kid")
	}
	newTok, _ := ks.Sign(jku, map[string]any{"n": "new"})
	jwks := ks.JWKS()
	if n := len(jwksDoc(t, jwks).Keys); n != 2 {
		t.Fatalf("JWKS has %d keys during overlap, want 2", n)
	}
	if first := jwksDoc(t, jwks).Keys[0].KeyID; first != newKID {
		t.Errorf("JWKS lists %s first, want the active key %s", first, newKID)
	}
	verifyLikeClient(t, jwks, oldTok)
	verifyLikeClient(t, jwks, newTok)
	keys := ks.Keys()
	if len(keys) != 2 || !keys[0].Active || keys[1].Active || !keys[1].RetireAt.Equal(t0.Add(10*time.Hour)) || !keys[0].RetireAt.IsZero() {
		t.Fatalf("Keys() = %+v", keys)
	}

	// Restart during the overlap keeps both and the retirement time.
	c.Add(5 * time.Hour)
	ks2 := openSet(t, dir, c)
	if ks2.ActiveKID() != newKID || len(jwksDoc(t, ks2.JWKS()).Keys) != 2 {
		t.Fatalf("after restart: active %s, JWKS %s", ks2.ActiveKID(), ks2.JWKS())
	}
	if !ks2.Keys()[1].RetireAt.Equal(t0.Add(10 * time.Hour)) {
		t.Errorf("retire time not persisted: %v", ks2.Keys()[1].RetireAt)
	}

	// After the retirement time the old key leaves the JWKS at once…
	c.Add(5 * time.Hour)
	if keys := jwksDoc(t, ks2.JWKS()).Keys; len(keys) != 1 || keys[0].KeyID != newKID {
		t.Fatalf("JWKS after retirement = %s", ks2.JWKS())
	}
	if _, err := ks2.Verify(oldTok); err == nil {
		t.Error("Verify accepted a token of a retired key")
	}
	// …and its file is deleted on the next open.
	ks3 := openSet(t, dir, c)
	if n := len(ks3.Keys()); n != 1 {
		t.Fatalf("%d keys after reopen past retirement, want 1", n)
	}
	pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	if len(pems) != 1 {
		t.Errorf("%d key files on disk, want 1: %v", len(pems), pems)
	}
}

func TestRotateTwiceKeepsEarlierRetirement(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	if err := ks.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ks.Rotate(10 * time.Hour); err != nil {
		t.Fatal(err)
	}
	keys := ks.Keys()
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3", len(keys))
	}
	if !keys[2].RetireAt.Equal(t0.Add(time.Hour)) || !keys[1].RetireAt.Equal(t0.Add(10*time.Hour)) {
		t.Errorf("retire times %v, %v; want +1h for the oldest, +10h for the middle", keys[2].RetireAt, keys[1].RetireAt)
	}
	if err := ks.Rotate(0); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksDoc(t, ks.JWKS()).Keys); n != 1 {
		t.Errorf("Rotate(0) left %d keys in the JWKS, want 1", n)
	}
}

func TestUnsigned(t *testing.T) {
	tok, err := Unsigned(jku, "kid-1", map[string]any{"b": 2, "a": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(tok, ".") {
		t.Fatalf("unsigned token %q must end with an empty signature", tok)
	}
	h, p, s := splitJWT(t, tok)
	if string(h) != `{"alg":"none","jku":"`+jku+`","kid":"kid-1","typ":"JWT"}` || string(p) != `{"a":"x","b":2}` || len(s) != 0 {
		t.Fatalf("unsigned token = %s . %s . %x", h, p, s)
	}
	// go-jose parses it only when "none" is explicitly allowed, and the
	// payload is the claims.
	if _, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Error("an RS256-only parser accepted the unsigned token")
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{"none"})
	if err != nil {
		t.Fatalf("go-jose rejects the unsigned form: %v", err)
	}
	if string(jws.UnsafePayloadWithoutVerification()) != `{"a":"x","b":2}` {
		t.Errorf("payload = %s", jws.UnsafePayloadWithoutVerification())
	}
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	tok2, _ := ks.Unsigned(jku, map[string]any{})
	h2, _, _ := splitJWT(t, tok2)
	if !strings.Contains(string(h2), `"kid":"`+ks.ActiveKID()+`"`) {
		t.Errorf("KeySet.Unsigned header %s lacks the active kid", h2)
	}
}

func TestClaimsEncoding(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	cases := []struct {
		name    string
		claims  any
		want    string
		wantErr bool
	}{
		{"raw message", json.RawMessage(` {"z":1,"a":2} `), `{"z":1,"a":2}`, false},
		{"struct order", struct {
			B int `json:"b"`
			A int `json:"a"`
		}{1, 2}, `{"b":1,"a":2}`, false},
		{"raw non-object", json.RawMessage(`[1]`), "", true},
		{"raw invalid", []byte(`{"a":`), "", true},
		{"unmarshalable", map[string]any{"c": make(chan int)}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ks.Sign(jku, tc.claims)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Sign succeeded: %s", tok)
				}
				if _, err := Unsigned(jku, "k", tc.claims); err == nil {
					t.Fatal("Unsigned succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, p, _ := splitJWT(t, tok)
			if string(p) != tc.want {
				t.Errorf("payload %s, want %s", p, tc.want)
			}
		})
	}
}

func TestOpenRejectsBadKeyFiles(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, dir string)
		want   string
	}{
		{"world readable", func(t *testing.T, dir string) {
			pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
			os.Chmod(pems[0], 0o644)
		}, "chmod 600"},
		{"kid mismatch", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, manifestName))
			var m manifest
			json.Unmarshal(b, &m)
			m.Keys[0].KID = "other"
			b, _ = json.Marshal(m)
			os.WriteFile(filepath.Join(dir, manifestName), b, 0o600)
		}, "differs from manifest kid"},
		{"path escape", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"version":1,"keys":[{"file":"../x.pem","kid":"k"}]}`), 0o600)
		}, "invalid key file"},
		{"corrupt manifest", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"version":`), 0o600)
		}, "parse"},
		{"missing key file", func(t *testing.T, dir string) {
			pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
			os.Remove(pems[0])
		}, "no such file"},
		{"garbage key file", func(t *testing.T, dir string) {
			pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
			os.WriteFile(pems[0], []byte("not pem"), 0o600)
		}, "PRIVATE KEY and a CERTIFICATE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := &clock{t: t0}
			openSet(t, dir, c)
			tc.mutate(t, dir)
			_, err := OpenKeySet(dir, subject, c.Now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenKeySet error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestTimesAndJTI(t *testing.T) {
	tm := NewTimes(time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), AttestationLifetime)
	want := int64(1767323045)
	if tm.IssuedAt != want || tm.NotBefore != want || tm.Expiry != want+28800 {
		t.Errorf("NewTimes = %+v, want iat=nbf=%d exp=+28800", tm, want)
	}
	c := tm.Claims("https://x")
	if c["iss"] != "https://x" || c["iat"] != want || c["exp"] != want+28800 {
		t.Errorf("Claims = %v", c)
	}
	if r := NewTimes(time.Unix(100, 0), ResultLifetime); r.Expiry-r.IssuedAt != 3600 {
		t.Errorf("result lifetime %d", r.Expiry-r.IssuedAt)
	}
	a, b := NewJTI(), NewJTI()
	if len(a) != 64 || a == b || strings.ToLower(a) != a {
		t.Errorf("NewJTI = %q, %q", a, b)
	}
	for _, r := range a {
		if !strings.ContainsRune("0123456789abcdef", r) {
			t.Fatalf("NewJTI %q has non-hex %q", a, r)
		}
	}
}

func TestConcurrentSignAndRotate(t *testing.T) {
	c := &clock{t: t0}
	ks := openSet(t, t.TempDir(), c)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				tok, err := ks.Sign(jku, map[string]any{"a": 1})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := ks.Verify(tok); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	if err := ks.Rotate(time.Hour); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

func BenchmarkSign(b *testing.B) {
	c := &clock{t: t0}
	ks, err := OpenKeySet(b.TempDir(), subject, c.Now)
	if err != nil {
		b.Fatal(err)
	}
	tm := NewTimes(t0, AttestationLifetime)
	claims := tm.Claims(subject)
	claims["jti"] = NewJTI()
	claims["x-ms-attestation-type"] = "sgx"
	claims["x-ms-sgx-mrenclave"] = strings.Repeat("ab", 32)
	claims["x-ms-policy"] = map[string]any{"is-debuggable": false, "product-id": 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Sign(jku, claims); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnsigned(b *testing.B) {
	claims := NewTimes(t0, AttestationLifetime).Claims(subject)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unsigned(jku, "kid", claims); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConcurrentFirstOpenAgrees(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	kids := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, err := OpenKeySet(dir, subject, c.Now)
			errs[i] = err
			if err == nil {
				kids[i] = ks.ActiveKID()
			}
		}()
	}
	wg.Wait()
	for i := range kids {
		if errs[i] != nil || kids[i] != kids[0] {
			t.Fatalf("concurrent first opens disagree: %q %v", kids, errs)
		}
	}
	if pems, _ := filepath.Glob(filepath.Join(dir, "*.pem")); len(pems) != 1 {
		t.Fatalf("%d key files, want 1", len(pems))
	}
}

func TestReloadSeesRotationByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	server := openSet(t, dir, c)
	tool := openSet(t, dir, c) // e.g. "attestd keys rotate"
	oldKID := server.ActiveKID()
	if err := tool.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	if server.ActiveKID() != oldKID {
		t.Fatal("server changed keys without Reload")
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if server.ActiveKID() != tool.ActiveKID() || len(jwksDoc(t, server.JWKS()).Keys) != 2 {
		t.Fatalf("after Reload: active %s (tool %s), JWKS %s", server.ActiveKID(), tool.ActiveKID(), server.JWKS())
	}
	// A rotation by the stale server builds on the disk state, not its memory.
	if err := server.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(server.Keys()); n != 3 {
		t.Fatalf("%d keys after second rotation, want 3", n)
	}
	if err := tool.Reload(); err != nil || tool.ActiveKID() != server.ActiveKID() {
		t.Fatalf("tool after reload: %s vs %s, %v", tool.ActiveKID(), server.ActiveKID(), err)
	}
}
