package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// TestTpmCLI: "attest tpm" against a software TPM with a measured boot log
// and an attestd (over TLS) trusting the TPM's AK prints the report's
// claims; --ak-out writes that AK; refusals and bad flags fail.
func TestTpmCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tp := swtpm.Start(t)
	tr := tp.Transport()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	db, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	events := tpmclient.SyntheticBootEvents(true, db)
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		t.Fatal(err)
	}
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		t.Fatal(err)
	}
	akPub := ak.Pub
	if err := ak.Flush(tr); err != nil {
		t.Fatal(err)
	}
	// A GCE-style vTPM: the AK template and its certificate (by a TEST CA
	// standing for Google's EK/AK CA) in GCE's NV indices.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "TEST EK/AK CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	akTmpl := tpmclient.AKTemplate(tpmclient.RSA)
	gceAK, err := tpmclient.CreatePrimaryIn(ctx, tr, tpm2.TPMRHEndorsement, akTmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := gceAK.Flush(tr); err != nil {
		t.Fatal(err)
	}
	akCert, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "test GCE AK"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca, gceAK.Pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpmclient.WriteNV(tr, tpmclient.GCEAKTemplateNVIndexRSA, tpm2.Marshal(akTmpl)); err != nil {
		t.Fatal(err)
	}
	if err := tpmclient.WriteNV(tr, tpmclient.GCEAKCertNVIndexRSA, akCert); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{TrustedAKs: []crypto.PublicKey{akPub}, Roots: roots}})
	s, err := attestdtest.StartWith(dir, attestdtest.Options{Verifiers: map[evidence.Type]evidence.Verifier{evidence.Tpm: v}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, err := client.New(s.URL, &client.Options{HTTPClient: s.HTTPClient(), Credential: func(context.Context) (string, error) { return s.Contributor, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetPolicy(ctx, "Tpm", `version=1.2; authorizationrules { [type=="aikValidated", value==true] && [type=="secureBootEnabled", value==true] => permit(); };
issuancerules { c:[type=="secureBootEnabled"] => issue(type="secureBootEnabled", value=c.value); };`, nil); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"log":     write(t, dir, "log.bin", tpmclient.EncodeLog(events)),
		"badlog":  write(t, dir, "badlog.bin", tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, db))),
		"rp":      write(t, dir, "rp.bin", []byte("cli rp data")),
		"notcert": write(t, dir, "notcert.pem", []byte("nope")),
	}
	akOut := dir + "/ak.pem"
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		o := &options{openTPM: func(string) (transport.TPMCloser, error) { return noClose{tr}, nil }}
		return runWith(ctx, o, args, &out, &errb), out.String(), errb.String()
	}
	base := []string{"--endpoint", s.URL, "--cacert", s.CAFile, "tpm", "--tpm", "swtpm"}
	code, out, stderr := runCLI(append(base, "--tcg-log", files["log"], "--rp-data", files["rp"], "--ak-out", akOut)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(out), &claims); err != nil {
		t.Fatal(err)
	}
	if claims["secureBootEnabled"] != true || claims["rp_data"] != b64([]byte("cli rp data")) || claims["cnf"] == nil {
		t.Fatalf("claims %s", out)
	}
	pemAK, err := os.ReadFile(akOut)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemAK)
	got, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil || !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(akPub) {
		t.Fatalf("--ak-out wrote %v (%v), not the AK", got, err)
	}
	// --protocol v1: a PCP platform claim; no cnf (attest_key is unbound).
	code, out, stderr = runCLI(append(base, "--tcg-log", files["log"], "--protocol", "v1")...)
	if code != 0 {
		t.Fatalf("--protocol v1: exit %d: %s", code, stderr)
	}
	claims = nil
	if err := json.Unmarshal([]byte(out), &claims); err != nil || claims["secureBootEnabled"] != true || claims["cnf"] != nil {
		t.Fatalf("--protocol v1 claims %s (%v)", out, err)
	}
	// --ak gce: the AK from the template in NV, validated by its certificate.
	code, out, stderr = runCLI(append(base, "--tcg-log", files["log"], "--ak", "gce")...)
	if code != 0 {
		t.Fatalf("--ak gce: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, `"secureBootEnabled": true`) {
		t.Fatalf("--ak gce claims %s", out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tcg-log", files["log"], "--ak", "gce-ecc"}, 2, "GCE AK template"}, // no ECC template provisioned
		{[]string{"--tcg-log", files["log"], "--ak", "azure"}, 2, `--ak "azure"`},
		{[]string{"--tcg-log", files["badlog"]}, 1, "check tpm.eventlog.replay"},
		{[]string{"--tcg-log", files["badlog"], "--protocol", "v1"}, 1, "check tpm.eventlog.replay"},
		{[]string{"--tcg-log", files["log"], "--protocol", "v3"}, 2, `--protocol "v3"`},
		{[]string{"--tcg-log", "none"}, 1, "PolicyEvaluationError"}, // no log: secure boot unproven
		{[]string{"--tcg-log", files["log"], "--aik-cert", files["notcert"]}, 2, "notcert.pem"},
		{[]string{"--tcg-log", files["log"], "--quote", files["log"]}, 2, `--quote does not apply to "tpm"`},
		{[]string{"extra"}, 2, ""},
	} {
		code, _, stderr := runCLI(append(base, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
