package instance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store"
)

// Tests written by the security review: each one failed before its fix.

// TestResetRefusesReplayedJWS: on an Isolated instance the signed policy JWS
// is public (GET returns it in x-ms-policy to any reader), so if a reset
// accepted any signed JWS, a contributor without the signing key could
// replay it to :reset and drop the instance back to its permit-all default.
// A reset JWS must have an empty payload (maa-api.md §1.4).
func TestResetRefusesReplayedJWS(t *testing.T) {
	ctx := context.Background()
	pm := newSigner(t, "pm", false)
	pm2 := newSigner(t, "pm2", false)
	e := newEnv(t, ModeIsolated, pm.cert)
	strict := "version=1.0; authorizationrules{ c:[type==\"x-ms-sgx-mrsigner\", value==\"00\"] => permit(); }; issuancerules{};"
	must(e.in.SetPolicy(ctx, "SgxEnclave", pm.joseSign(t, policyPayloadFor(strict)), Actor{}))
	published := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"].(string)

	replays := []struct{ name, body string }{
		{"published policy JWS", published},
		{"published policy JWS, JSON-quoted", jsonString(published)},
		{"certificate-change JWS", jsonString(pm.joseSign(t, certPayloadFor(pm2.cert)))},
		{"signed JSON array payload", pm.joseSign(t, []byte("[]"))},
		{"unsigned policy JWS in AAD-style form", unsignedJWS(policyPayloadFor(permitAll))},
	}
	for _, tc := range replays {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.in.ResetPolicy(ctx, "SgxEnclave", tc.body, Actor{Subject: "mallory"})
			wantCode(t, err, CodeInvalidOperation)
			if got := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"]; got != published {
				t.Fatal("the policy was reset by a replayed JWS")
			}
		})
	}
	// Real reset bodies still work: empty payload (SDKs), JSON null (old
	// Python betas) and an empty JSON object.
	for _, body := range []string{pm.joseSign(t, nil), pm.joseSign(t, []byte("null")), pm.joseSign(t, []byte("{}")), jsonString(pm.joseSign(t, nil))} {
		if _, err := e.in.ResetPolicy(ctx, "SgxEnclave", body, Actor{}); err != nil {
			t.Fatalf("reset %q: %v", body, err)
		}
	}
	// AAD: an unsigned policy body is not a reset either.
	aad := newEnv(t, ModeAAD)
	_, err := aad.in.ResetPolicy(ctx, "SgxEnclave", unsignedJWS(policyPayloadFor(permitAll)), Actor{})
	wantCode(t, err, CodeInvalidOperation)
}

// certWithKey makes a self-signed certificate for an arbitrary key.
func certWithKey(t testing.TB, cn string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnusableCertificatesRefused: a policy-management certificate whose key
// no accepted JWS alg can use could never sign; once the others are removed
// the Isolated instance would be locked for good. Such certificates are
// refused on add (InvalidParameter) and as seeds.
func TestUnusableCertificatesRefused(t *testing.T) {
	ctx := context.Background()
	pm := newSigner(t, "pm", false)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := certWithKey(t, "ed25519", edKey)
	ec224 := certWithKey(t, "p224", p224)
	e := newEnv(t, ModeIsolated, pm.cert)
	for _, c := range []*x509.Certificate{ed, ec224} {
		_, err := e.in.AddCertificate(ctx, jsonString(pm.joseSign(t, certPayloadFor(c))), Actor{})
		wantCode(t, err, CodeInvalidParameter)
	}
	if n := len(e.claims(t, must(e.in.Certificates(ctx)))["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)); n != 1 {
		t.Fatalf("%d certificates after refused adds", n)
	}
	// Usable kinds are still accepted: RSA and EC P-256/P-384.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, c := range []*x509.Certificate{newSigner(t, "ok ec", true).cert, certWithKey(t, "p384", p384), newSigner(t, "ok rsa", false).cert} {
		if _, err := e.in.AddCertificate(ctx, jsonString(pm.joseSign(t, certPayloadFor(c))), Actor{}); err != nil {
			t.Fatalf("add %s: %v", c.Subject, err)
		}
	}
	// Seeds are checked too.
	db := newEnv(t, ModeAAD).db
	_, err = New(ctx, Config{Name: "seed", Mode: ModeIsolated, Issuer: "https://x", PolicyCertificates: []*x509.Certificate{ed}},
		Options{Store: db, Keys: e.keys, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("Isolated instance seeded with an Ed25519 certificate")
	}
}

// TestStrictJWSParsing covers header and payload forms that other JOSE
// readers would read differently from encoding/json's case-insensitive,
// last-duplicate-wins, trailing-garbage-tolerant decoding, and RFC 7515/7518
// rules the reader must enforce.
func TestStrictJWSParsing(t *testing.T) {
	rsaS := newSigner(t, "rsa", false)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384 := &testSigner{key: p384, cert: certWithKey(t, "p384", p384)}
	payload := policyPayloadFor(permitAll)
	x5c := rsaS.x5c()

	// ES256 over a P-384 key: sign SHA-256 with the P-384 key (RFC 7518
	// §3.4: ES256 means P-256).
	es256on384 := func() string {
		in := b64u.EncodeToString([]byte(`{"alg":"ES256","x5c":["`+ec384.x5c()+`"]}`)) + "." + b64u.EncodeToString(payload)
		d := sha256Sum([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, p384, d)
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 96)
		r.FillBytes(sig[:48])
		s.FillBytes(sig[48:])
		return in + "." + b64u.EncodeToString(sig)
	}()
	es384 := func() string {
		in := b64u.EncodeToString([]byte(`{"alg":"ES384","x5c":["`+ec384.x5c()+`"]}`)) + "." + b64u.EncodeToString(payload)
		h := sha512.Sum384([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, p384, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 96)
		r.FillBytes(sig[:48])
		s.FillBytes(sig[48:])
		return in + "." + b64u.EncodeToString(sig)
	}()

	tests := []struct {
		name    string
		jws     string
		wantErr string // "" = must parse
	}{
		{"crit header", rsaS.rawSign(t, `{"alg":"RS256","x5c":["`+x5c+`"],"crit":["b64"],"b64":false}`, payload), "crit"},
		{"duplicate alg", rsaS.rawSign(t, `{"alg":"RS256","alg":"RS256","x5c":["`+x5c+`"]}`, payload), "duplicate"},
		{"case-variant alg is not alg", rsaS.rawSign(t, `{"alg":"RS256","x5c":["`+x5c+`"],"ALG":"none"}`, payload), ""},
		{"header with trailing data", rsaS.rawSign(t, `{"alg":"RS256","x5c":["`+x5c+`"]}{}`, payload), "header"},
		{"alg not a string", rsaS.rawSign(t, `{"alg":["RS256"],"x5c":["`+x5c+`"]}`, payload), "alg"},
		{"ES256 with a P-384 key", es256on384, "P-384"},
		{"ES384 with a P-384 key", es384, ""},
		{"unicode-escaped member names", rsaS.rawSign(t, `{"\u0061lg":"RS256","x\u0035c":["`+x5c+`"]}`, payload), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := parseJWS(tc.jws)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !j.Signed() {
					t.Fatal("parsed as unsigned")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			}
		})
	}

	// Payload member names are matched exactly (JS reads exactly
	// "AttestationPolicy"; encoding/json would also take
	// "attestationpolicy", so the server and a reviewing tool could disagree
	// on which policy a signature covers).
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	other := "version=1.0; authorizationrules{=> deny();}; issuancerules{};"
	twoNames, _ := json.Marshal(map[string]string{
		"AttestationPolicy": b64u.EncodeToString([]byte(permitAll)),
		"attestationPolicy": b64u.EncodeToString([]byte(other)),
	})
	// json.Marshal sorts keys: "AttestationPolicy" first, "attestationPolicy" last.
	if _, err := e.in.SetPolicy(ctx, "SgxEnclave", rsaS.joseSign(t, twoNames), Actor{}); err != nil {
		t.Fatal(err)
	}
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"].(string); !strings.HasPrefix(got, "eyJ") {
		t.Fatal("no JWS stored")
	}
	ap, err := e.in.active(ctx, evidence.SgxEnclave)
	if err != nil {
		t.Fatal(err)
	}
	if ap.Text != permitAll {
		t.Fatalf("stored policy text is %q, want the exact-name member %q", ap.Text, permitAll)
	}
	lower, _ := json.Marshal(map[string]string{"attestationpolicy": b64u.EncodeToString([]byte(permitAll))})
	_, err = e.in.SetPolicy(ctx, "SgxEnclave", unsignedJWS(lower), Actor{})
	wantCode(t, err, CodeInvalidOperation)
	dup := `{"AttestationPolicy":"` + b64u.EncodeToString([]byte(permitAll)) + `","AttestationPolicy":"` + b64u.EncodeToString([]byte(other)) + `"}`
	_, err = e.in.SetPolicy(ctx, "SgxEnclave", unsignedJWS([]byte(dup)), Actor{})
	wantCode(t, err, CodeInvalidOperation)
	// Certificate payloads likewise.
	iso := newEnv(t, ModeIsolated, rsaS.cert)
	lowerCert, _ := json.Marshal(map[string]any{"policycertificate": map[string]any{"x5c": []string{newSigner(t, "x", false).x5c()}}})
	_, err = iso.in.AddCertificate(ctx, jsonString(rsaS.joseSign(t, lowerCert)), Actor{})
	wantCode(t, err, CodeInvalidOperation)
}

func sha256Sum(b []byte) []byte {
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)
}

// TestUntrustedTextReachesStoreSafely: the store refuses strings that are
// not UTF-8 or hold NUL (store.ErrInvalidText). Such bytes in a policy are a
// client error (400 PolicyParsingError), and such bytes in names that go to
// the audit trail (bearer subject, certificate subject) must not turn a
// valid change into a 500.
func TestUntrustedTextReachesStoreSafely(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	for _, text := range []string{
		"version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"a\", value=\"x\x00y\");};",
		"version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"a\", value=\"x\xffy\");};",
	} {
		for _, body := range []string{unsignedJWS(policyPayloadFor(text)), text} {
			_, err := e.in.SetPolicy(ctx, "SgxEnclave", body, Actor{})
			wantCode(t, err, CodePolicyParsingError)
		}
	}
	if _, err := e.in.SetPolicy(ctx, "SgxEnclave", permitAll, Actor{Subject: "sub:evil\x00\xff"}); err != nil {
		t.Fatalf("bearer subject with NUL: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nul := &testSigner{key: key, cert: certWithKey(t, "evil\x00cn", key)}
	if _, err := e.in.SetPolicy(ctx, "SgxEnclave", nul.joseSign(t, policyPayloadFor(permitAll)), Actor{}); err != nil {
		t.Fatalf("signer subject with NUL: %v", err)
	}
	iso := newEnv(t, ModeIsolated, nul.cert)
	if _, err := iso.in.AddCertificate(ctx, jsonString(nul.joseSign(t, certPayloadFor(newSigner(t, "ok", false).cert))), Actor{}); err != nil {
		t.Fatalf("certificate change signed by a NUL-subject certificate: %v", err)
	}
	audit, err := e.db.Audit(ctx, "t", 10)
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit %v %v", audit, err)
	}
}

// TestStoredJWSHasNoSurroundingWhitespace: curl --data-binary @file sends a
// trailing newline; GET must return the JWS itself (a client splitting it
// on "." would otherwise get a signature part ending in "\n").
func TestStoredJWSHasNoSurroundingWhitespace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	jws := unsignedJWS(policyPayloadFor(permitAll))
	body := "\n" + jws + "\r\n"
	c := e.claims(t, must(e.in.SetPolicy(ctx, "SgxEnclave", body, Actor{})))
	if c["x-ms-policy-token-hash"] != bodyHash(body) {
		t.Fatal("token hash must stay over the exact body")
	}
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"]; got != jws {
		t.Fatalf("GET x-ms-policy %q, want %q", got, jws)
	}
}

// rendezvousStore makes the first two Certificates calls wait for each
// other (up to a timeout), so two Isolated-mode authorisations can be made
// to overlap deterministically when nothing serialises them.
type rendezvousStore struct {
	store.Store
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (r *rendezvousStore) Certificates(ctx context.Context, instance string) ([]store.Certificate, error) {
	r.mu.Lock()
	r.waiting++
	if r.waiting == 2 {
		close(r.release)
	}
	r.mu.Unlock()
	select {
	case <-r.release:
	case <-time.After(300 * time.Millisecond):
	}
	return r.Store.Certificates(ctx, instance)
}

// TestIsolatedChangesAreSerialised: two signers that each remove the other
// concurrently must not both succeed: in any serial order the second one's
// signer is gone when its request is authorised.
func TestIsolatedChangesAreSerialised(t *testing.T) {
	ctx := context.Background()
	a, b, c := newSigner(t, "a", false), newSigner(t, "b", false), newSigner(t, "c", false)
	base := newEnv(t, ModeIsolated, a.cert, b.cert, c.cert)
	rs := &rendezvousStore{Store: base.db, release: make(chan struct{})}
	in, err := New(ctx, Config{Name: "t", Mode: ModeIsolated, Issuer: "https://x"},
		Options{Store: rs, Keys: base.keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// New read the certificates once; reset the rendezvous.
	rs.mu.Lock()
	rs.waiting = 0
	rs.release = make(chan struct{})
	rs.mu.Unlock()
	errs := make(chan error, 2)
	go func() {
		_, err := in.RemoveCertificate(ctx, jsonString(a.joseSign(t, certPayloadFor(b.cert))), Actor{})
		errs <- err
	}()
	go func() {
		_, err := in.RemoveCertificate(ctx, jsonString(b.joseSign(t, certPayloadFor(a.cert))), Actor{})
		errs <- err
	}()
	ok := 0
	for range 2 {
		if err := <-errs; err == nil {
			ok++
		} else {
			wantCode(t, err, CodeInvalidOperation)
		}
	}
	if ok != 1 {
		certs, _ := base.db.Certificates(ctx, "t")
		t.Fatalf("%d of two mutually exclusive removals succeeded; %d certificates left", ok, len(certs))
	}
}

// TestPolicyCertificatesArePinned pins the documented decision (see
// AddCertificate): trust is by thumbprint, so an expired certificate and a
// CA certificate are accepted and can sign, as in MAA; an Isolated instance
// whose certificates all expired is therefore not locked out.
func TestPolicyCertificatesArePinned(t *testing.T) {
	ctx := context.Background()
	pm := newSigner(t, "pm", false)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "expired CA"},
		NotBefore:             time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	old := &testSigner{key: key, cert: cert}
	e := newEnv(t, ModeIsolated, pm.cert)
	must(e.in.AddCertificate(ctx, jsonString(pm.joseSign(t, certPayloadFor(cert))), Actor{}))
	// The expired CA certificate now signs: removing the original signer and
	// setting a policy.
	must(e.in.RemoveCertificate(ctx, jsonString(old.joseSign(t, certPayloadFor(pm.cert))), Actor{}))
	c := e.claims(t, must(e.in.SetPolicy(ctx, "SgxEnclave", old.joseSign(t, policyPayloadFor(permitAll)), Actor{})))
	if c["x-ms-policy-signer"].(map[string]any)["x5c"].([]any)[0] != old.x5c() {
		t.Fatal("signer not reported")
	}
	// ...and, being the last one, cannot be removed.
	_, err = e.in.RemoveCertificate(ctx, jsonString(old.joseSign(t, certPayloadFor(cert))), Actor{})
	wantCode(t, err, CodeInvalidOperation)
}

// TestIgnoredSeedIsLogged: configured policy certificates only seed a new
// Isolated instance; later edits of the list have no effect, which the
// operator must be told instead of silently believing the set changed.
func TestIgnoredSeedIsLogged(t *testing.T) {
	ctx := context.Background()
	pm1, pm2 := newSigner(t, "pm1", false), newSigner(t, "pm2", false)
	e := newEnv(t, ModeIsolated, pm1.cert)
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	if _, err := New(ctx, Config{Name: "t", Mode: ModeIsolated, Issuer: "https://x", PolicyCertificates: []*x509.Certificate{pm1.cert, pm2.cert}},
		Options{Store: e.db, Keys: e.keys, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "ignored") || !strings.Contains(out, Thumbprint(pm2.cert)) || strings.Contains(out, Thumbprint(pm1.cert)) {
		t.Fatalf("log does not name exactly the ignored certificate:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
