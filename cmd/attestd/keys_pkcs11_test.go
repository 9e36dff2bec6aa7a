//go:build pkcs11

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token/pkcs11keys/softhsm"
)

// TestServePKCS11ES256 runs the pkcs11 build of the server with an
// instance whose attestation tokens are ES256 and whose signing keys
// (RSA management keys and the P-256 keys of default/es256) live in
// SoftHSM2: an SGX attestation token is ES256 with a 64-byte R||S
// signature and verifies with x5c[0] of the key /certs publishes; "attestd
// keys rotate --instance default/es256" makes a new P-256 key in the token
// that the server publishes; no key file is written and no private key is
// in the database.
func TestServePKCS11ES256(t *testing.T) {
	module, label, pin := softhsm.Token(t)
	dir := t.TempDir()
	quote := writePlatform(t, dir, sgxplatform.Options{Now: time.Now()})
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": {"roots": ["root.pem"]},
		"signing_keys": {"pkcs11": {"module": "` + module + `", "token_label": "` + label + `", "pin_file": "pin"}},
		"instances": [{"name": "default", "token_algorithm": "ES256", "auth": {"dev": true}}]}`
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	attest := func(s *server) *verifier.Token {
		t.Helper()
		tok := attestES256(t, s, quote)
		_, certs := s.do(t, "GET", "/certs", "", "")
		verifyAgainst(t, certs, tok, "the PKCS#11 ES256 token against /certs")
		return tok
	}
	s := startServer(t, "--config", cfgPath, "--data", data)
	first := attest(s).Header.Kid
	s.stop(t)

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--now", "--config", cfgPath, "--data", data, "--instance", "default/es256"}, &out, &errb); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^(\S{44})\s+active\s.*\spkcs11$`).FindStringSubmatch(out.String())
	if m == nil || m[1] == first {
		t.Fatalf("rotate output (first key %s):\n%s", first, out.String())
	}
	s = startServer(t, "--config", cfgPath, "--data", data)
	defer s.stop(t)
	if kid := attest(s).Header.Kid; kid != m[1] {
		t.Fatalf("after the rotation the token is signed by %s, want %s", kid, m[1])
	}
	if _, err := os.Stat(filepath.Join(data, "keys")); err == nil {
		t.Error("the server wrote key files")
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, inst := range []string{"default", "default/es256"} {
		rows, err := db.SigningKeys(context.Background(), inst)
		if err != nil || len(rows) < 2 {
			t.Fatalf("keys of %s: %d %v", inst, len(rows), err)
		}
		for _, r := range rows {
			if !bytes.HasPrefix(r.Private, []byte("pkcs11:id=")) {
				t.Fatalf("key %s of %s is stored as %q, not a PKCS#11 reference", r.KID, inst, r.Private)
			}
		}
	}
}
