package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/cvmplatform"
	"github.com/attestd/attestd/tpmclient"
)

// noClose lends the test's TPM connection to the command.
type noClose struct{ transport.TPM }

func (noClose) Close() error { return nil }

// TestAzureGuestCLI: "attest azure-guest" against a software TPM set up as
// an Azure vTPM (AK persisted at 0x81000003, a measured boot) and attestd
// over TLS prints the opened token's claims; bad flags are usage errors.
func TestAzureGuestCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := attestdtest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	db, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	vt := cvmplatform.StartVTPM(ctx, t, db)
	tr, events, ak := vt.TPM, vt.Events, vt.AK
	if _, err := (tpm2.EvictControl{Auth: tpm2.TPMRHOwner, ObjectHandle: &tpm2.NamedHandle{Handle: ak.Handle, Name: ak.Name},
		PersistentHandle: 0x81000003}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if err := ak.Flush(tr); err != nil {
		t.Fatal(err)
	}
	rep, err := cvmplatform.HCLReport(s.SNP, ak.Pub.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"hcl":   write(t, dir, "hcl.bin", rep),
		"log":   write(t, dir, "log.bin", tpmclient.EncodeLog(events)),
		"chain": write(t, dir, "chain.pem", s.SNP.ChainPEM(false)),
		"cp":    write(t, dir, "cp.json", []byte(`{"nonce":"cli"}`)),
		"bad":   write(t, dir, "bad.json", []byte(`{`)),
	}
	base := []string{"--endpoint", s.URL, "--cacert", s.CAFile, "azure-guest", "--tpm", "swtpm",
		"--hcl-report", files["hcl"], "--tcg-log", files["log"], "--vcek-chain", files["chain"]}
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		o := &options{openTPM: func(string) (transport.TPMCloser, error) { return noClose{tr}, nil }}
		return runWith(ctx, o, args, &out, &errb), out.String(), errb.String()
	}
	code, out, stderr := runCLI(append(base, "--client-payload", files["cp"], "--nonce", "n7")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(out), &claims); err != nil {
		t.Fatal(err)
	}
	rt, _ := claims["x-ms-runtime"].(map[string]any)
	cp, _ := rt["client-payload"].(map[string]any)
	if claims["x-ms-attestation-type"] != "azurevm" || claims["secureboot"] != true || claims["nonce"] != "n7" || cp["nonce"] != "cli" {
		t.Fatalf("claims %s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ak-handle", "xyz"}, "--ak-handle"},
		{[]string{"--client-payload", files["bad"]}, "not JSON"},
		{[]string{"--quote", "q"}, "--quote"},
	} {
		code, _, stderr := runCLI(append(base, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
}
