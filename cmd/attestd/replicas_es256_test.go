package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// TestReplicasShareES256Keys runs two replicas of an instance with
// token_algorithm ES256 on one PostgreSQL database (separate data
// directories, one KEK, no polling: only NOTIFY carries key changes). The
// ES256 attestation keys are the store key set default/es256: an
// attestation token signed by A verifies at C's /certs with x5c[0]; no
// replica writes key files; /readyz and /metrics cover the ES256 set; "attestd keys
// rotate --instance default/es256" makes a P-256 key that both replicas
// publish; management tokens stay RS256.
func TestReplicasShareES256Keys(t *testing.T) {
	kekFile := replicaStore(t)
	dir := t.TempDir()
	quote := writePlatform(t, dir, sgxplatform.Options{Now: time.Now()})
	cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": {"roots": ["root.pem"]},
		"instances": [{"name": "default", "token_algorithm": "ES256", "auth": {"dev": true}}]}`
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"A": t.TempDir(), "C": t.TempDir()}
	servers := map[string]*server{}
	for _, n := range []string{"A", "C"} {
		servers[n] = startServer(t, "--config", cfgPath, "--data", dirs[n], "--key-encryption-key", kekFile, "--key-reload-interval", "0")
	}
	defer func() {
		for _, s := range servers {
			s.stop(t)
		}
	}()
	a, c := servers["A"], servers["C"]
	attest := func(s *server) *verifier.Token { return attestES256(t, s, quote) }
	for n, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "keys")); err == nil {
			t.Errorf("replica %s wrote key files into its data directory", n)
		}
	}
	if ka, kc := certKIDs(t, a), certKIDs(t, c); len(ka) != 4 || !slices.Equal(ka, kc) {
		t.Fatalf("A publishes %v, C %v (want the same RSA and ES256 keys and standbys)", ka, kc)
	}
	_, certsC := c.do(t, "GET", "/certs", "", "")
	verifyAgainst(t, certsC, attest(a), "A's ES256 attestation token against C's /certs")
	if mt := signedPolicyToken(t, c, devToken(t, dirs["C"], "reader")); mt.Header.Alg != "RS256" {
		t.Fatalf("management token alg %q", mt.Header.Alg)
	}
	if code, b := a.do(t, "GET", "/readyz", "", ""); code != 200 || !strings.Contains(string(b), "signing_key/default/es256") {
		t.Fatalf("/readyz: %d %s", code, b)
	}
	if code, b := a.do(t, "GET", "/metrics", "", ""); code != 200 || metricValue(t, string(b), "attestd_signing_keys", map[string]string{"instance": "default/es256", "state": "active"}) != 1 {
		t.Fatalf("/metrics has no active key of default/es256: %d\n%s", code, b)
	}

	// Rotate the ES256 set through the CLI, on A's data directory; C hears
	// of it through NOTIFY and publishes the new standby.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--data", dirs["A"], "--key-encryption-key", kekFile,
		"--config", cfgPath, "--instance", "default/es256", "--now"}, &out, &errb); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^(\S{44})\s+standby`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("rotate output has no standby key:\n%s", out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(certKIDs(t, c), m[1]) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_, certsC = c.do(t, "GET", "/certs", "", "")
	set, err := verifier.ParseJWKS(certsC)
	if err != nil {
		t.Fatal(err)
	}
	k := set.Lookup(m[1])
	if k == nil {
		t.Fatalf("C does not publish the new ES256 standby %s: %s", m[1], certsC)
	}
	if k.Certificates[0].PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("keys rotate --instance default/es256 made a %v key", k.Certificates[0].PublicKeyAlgorithm)
	}
	tok := attest(c)
	verifyAgainst(t, certsC, tok, "C's token after the rotation")
	_, certsA := a.do(t, "GET", "/certs", "", "")
	verifyAgainst(t, certsA, tok, "C's token after the rotation against A's /certs")
}

// TestServeImportsES256KeyDir: the ES256 file key set an earlier version
// wrote (DATA/keys/NAME/es256) is imported into the store on first start,
// so tokens relying parties hold keep verifying and the same key signs on;
// "attestd keys list --instance NAME/es256" lists it.
func TestServeImportsES256KeyDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "config.json")
	cfg := `{"instances": [{"name": "default", "token_algorithm": "ES256", "auth": {"dev": true}}]}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	fks, err := token.OpenKeySetAlgorithm(filepath.Join(data, "keys", "default", "es256"), "https://old.test", time.Now, token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	old := fks.ActiveKID()
	s := startServer(t, "--config", cfgPath, "--data", data)
	kids := certKIDs(t, s)
	s.stop(t)
	if !slices.Contains(kids, old) || len(kids) != 4 {
		t.Fatalf("/certs %v does not hold the imported ES256 key %s (and the RSA and ES256 standbys)", kids, old)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "list", "--config", cfgPath, "--data", data, "--instance", "default/es256"}, &out, &errb); code != 0 {
		t.Fatalf("keys list: %d %s", code, errb.String())
	}
	if !regexp.MustCompile(regexp.QuoteMeta(old) + `\s+active`).MatchString(out.String()) {
		t.Fatalf("keys list --instance default/es256:\n%s", out.String())
	}
}

// attestES256 attests quote at s and returns the token, which must be an
// ES256 JWS with a 64-byte R||S signature.
func attestES256(t *testing.T, s *server, quote []byte) *verifier.Token {
	t.Helper()
	code, b := s.do(t, "POST", "/attest/SgxEnclave?api-version=2020-10-01", "", `{"quote": "`+base64.RawURLEncoding.EncodeToString(quote)+`"}`)
	if code != 200 {
		t.Fatalf("attest: %d %s", code, b)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	tok, err := verifier.ParseToken(r.Token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header.Alg != "ES256" {
		t.Fatalf("attestation token alg %q, want ES256", tok.Header.Alg)
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(r.Token[strings.LastIndexByte(r.Token, '.')+1:]); len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want JWS R||S (64)", len(sig))
	}
	return tok
}
