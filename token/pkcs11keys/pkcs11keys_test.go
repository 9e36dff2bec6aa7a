//go:build pkcs11

package pkcs11keys

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// softHSM initialises a fresh SoftHSM2 token in a temporary directory and
// returns the module path, or skips (fails under CI=true, where .ci/run
// installs softhsm2) without SoftHSM2.
func softHSM(t *testing.T) (module, label, pin string) {
	t.Helper()
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("SoftHSM2 (libsofthsm2.so, softhsm2-util) missing under CI=true: .ci/run must install softhsm2")
		}
		t.Skip("SoftHSM2 not installed (apt-get install softhsm2)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	label, pin = "attestd-test", "1234"
	if out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return module, label, pin
}

// TestSoftHSMKeySet: sign, rotate and list with keys generated in
// SoftHSM2; the database holds only references; a second context (a
// restarted replica) finds the keys again; the private key cannot be read
// out of the token.
func TestSoftHSMKeySet(t *testing.T) {
	module, label, pin := softHSM(t)
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
	// ES256 sets are refused with a reason, never signed with an RSA key.
	if _, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: "inst/es256", Subject: "https://hsm.test", Keys: hsm,
		Now: clock, Algorithm: token.ES256}); err == nil || !strings.Contains(err.Error(), "ES256 signing keys are not supported") {
		t.Fatalf("ES256 set in the HSM: %v", err)
	}
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
