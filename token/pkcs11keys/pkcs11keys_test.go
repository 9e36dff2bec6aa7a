//go:build pkcs11

package pkcs11keys

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/token/pkcs11keys/softhsm"
)

// TestSoftHSMKeySet: sign, rotate and list with keys generated in
// SoftHSM2; the database holds only references; a second context (a
// restarted replica) finds the keys again; the private key cannot be read
// out of the token.
func TestSoftHSMKeySet(t *testing.T) {
	module, label, pin := softhsm.Token(t)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Before any login: once a session is logged in, PKCS#11 treats the
	// token as logged in for the whole process.
	if bad, err := Open(module, label, "wrong"); err == nil {
		bad.Close()
		t.Fatal("wrong PIN accepted")
	}
	hsm, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	open := func(p token.PrivateKeys) *token.KeySet {
		ks, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: "inst", Subject: "https://hsm.test", Keys: p, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	ks := open(hsm)
	check := func(ks *token.KeySet, wantKID string) {
		t.Helper()
		tok, err := ks.Sign("https://hsm.test/certs", map[string]any{"hsm": true})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := verifier.ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		set, err := verifier.ParseJWKS(ks.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		k := set.Lookup(pt.Header.Kid)
		if k == nil || pt.Header.Kid != wantKID {
			t.Fatalf("token kid %s, want %s", pt.Header.Kid, wantKID)
		}
		if err := pt.CheckSignature(k.Certificates[0]); err != nil {
			t.Fatal(err)
		}
	}
	first := ks.ActiveKID()
	check(ks, first)
	rows, err := db.SigningKeys(ctx, "inst")
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %d %v", len(rows), err)
	}
	for _, r := range rows {
		if !bytes.HasPrefix(r.Private, []byte(refPrefix)) || len(r.Private) != len(refPrefix)+32 {
			t.Fatalf("stored private part %q is not a bare reference", r.Private)
		}
	}
	_, signer := ks.Signer()
	if _, err := x509.MarshalPKCS8PrivateKey(signer); err == nil {
		t.Fatal("the HSM key could be exported as PKCS#8")
	}
	// Rotate (the standby signs after the pre-publication period) and list.
	if err := ks.RotateContext(ctx, token.RotateOptions{Prepublish: time.Minute}); err != nil {
		t.Fatal(err)
	}
	keys := ks.Keys()
	if len(keys) != 3 || keys[0].State != token.KeyActive || keys[1].State != token.KeyPending || keys[2].State != token.KeyStandby {
		b, _ := json.Marshal(keys)
		t.Fatalf("keys after rotate: %s", b)
	}
	second := keys[1].KID
	now = now.Add(time.Minute)
	check(ks, second)
	// A restarted replica: a new PKCS#11 session finds the keys by id.
	if err := hsm.Close(); err != nil {
		t.Fatal(err)
	}
	hsm2, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	defer hsm2.Close()
	check(open(hsm2), second)
	// Software keys are refused, and a KEK set cannot open HSM references.
	if _, err := open(hsm2).ImportKeyDir(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("import into the HSM: %v", err)
	}
	kek, _ := token.NewKEK(bytes.Repeat([]byte{1}, 32))
	if _, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: "inst", Subject: "https://hsm.test", Keys: token.KEKKeys{KEK: kek}, Now: clock}); err == nil {
		t.Fatal("a KEK key set opened PKCS#11 references")
	}
}

// TestSoftHSMES256KeySet: an ES256 key set (NAME/es256) under PKCS#11 makes
// P-256 keys in the token; its tokens carry 64-byte R||S signatures that
// verify with the key /certs publishes (the set's JWKS, x5c[0]), through a
// rotation and after a new session finds the keys again; a key of the
// wrong type under a reference is refused.
func TestSoftHSMES256KeySet(t *testing.T) {
	module, label, pin := softhsm.Token(t)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hsm, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	open := func(p token.PrivateKeys, inst string, alg token.Algorithm) (*token.KeySet, error) {
		return token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: inst, Subject: "https://hsm.test", Keys: p, Now: clock, Algorithm: alg})
	}
	es, err := open(hsm, "inst/es256", token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	check := func(ks *token.KeySet, wantKID string) {
		t.Helper()
		tok, err := ks.Sign("https://hsm.test/certs", map[string]any{"hsm": "es256"})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := verifier.ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		if pt.Header.Alg != "ES256" || pt.Header.Kid != wantKID {
			t.Fatalf("token header %+v, want ES256 and kid %s", pt.Header, wantKID)
		}
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; len(sig) != 86 { // base64url of 64 bytes
			t.Fatalf("signature %q is not a 64-byte R||S", sig)
		}
		set, err := verifier.ParseJWKS(ks.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		k := set.Lookup(pt.Header.Kid)
		if k == nil {
			t.Fatalf("kid %s not published", pt.Header.Kid)
		}
		if k.Certificates[0].PublicKeyAlgorithm != x509.ECDSA {
			t.Fatalf("published key is %v", k.Certificates[0].PublicKeyAlgorithm)
		}
		if err := pt.CheckSignature(k.Certificates[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	first := es.ActiveKID()
	check(es, first)
	rows, err := db.SigningKeys(ctx, "inst/es256")
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %d %v", len(rows), err)
	}
	for _, r := range rows {
		if !bytes.HasPrefix(r.Private, []byte(refPrefix)) {
			t.Fatalf("stored private part %q is not a reference", r.Private)
		}
	}
	if err := es.RotateContext(ctx, token.RotateOptions{Prepublish: time.Minute}); err != nil {
		t.Fatal(err)
	}
	second := es.Keys()[1].KID
	now = now.Add(time.Minute)
	check(es, second)
	if err := hsm.Close(); err != nil {
		t.Fatal(err)
	}
	hsm2, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	defer hsm2.Close()
	es2, err := open(hsm2, "inst/es256", token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	check(es2, second)
	// A KEK rotation leaves PKCS#11 references alone: the set still opens.
	k1, _ := token.NewKEK(bytes.Repeat([]byte{1}, 32))
	k2, _ := token.NewKEK(bytes.Repeat([]byte{2}, 32))
	rep, err := token.RewrapKEK(ctx, token.RewrapOptions{Store: db, Old: k1, New: k2})
	if err != nil || len(rep.References) != 3 || rep.Keys != 0 {
		t.Fatalf("rewrap beside PKCS#11 keys: %+v %v", rep, err)
	}
	if es3, err := open(hsm2, "inst/es256", token.ES256); err != nil {
		t.Fatalf("after the rewrap: %v", err)
	} else {
		check(es3, second)
	}
	// An RSA set whose reference names an EC key of the token is refused
	// (the type check behind the certificate match).
	cert, err := x509.ParseCertificate(rows[0].Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsm2.Unwrap(ctx, token.KeyRef{Instance: "inst", KID: rows[0].KID, Alg: token.RS256}, rows[0].Private, cert.PublicKey); err == nil || !strings.Contains(err.Error(), "want RSA") {
		t.Fatalf("EC key unwrapped for an RS256 set: %v", err)
	}
}
