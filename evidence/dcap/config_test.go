package dcap_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
)

func TestParseClock(t *testing.T) {
	for _, tc := range []struct {
		name, verifyAt, grace string
		at                    time.Time
		g                     time.Duration
		err                   string // "" = accepted; else in the message, which wraps ErrConfig
	}{
		{name: "empty"},
		{name: "both", verifyAt: "2026-01-02T03:04:05Z", grace: "24h", at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), g: 24 * time.Hour},
		{name: "negative grace", grace: "-1h", err: `tdx.grace "-1h": want a non-negative`},
		{name: "bad grace", grace: "a day", err: `tdx.grace "a day"`},
		{name: "bad verify_at", verifyAt: "2026-01-02", err: "tdx.verify_at:"},
		{name: "grace checked first", verifyAt: "x", grace: "x", err: "tdx.grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, g, err := dcap.ParseClock("tdx", tc.verifyAt, tc.grace)
			if tc.err != "" {
				if err == nil || !errors.Is(err, evidence.ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one wrapping ErrConfig naming %q", err, tc.err)
				}
				return
			}
			if err != nil || !at.Equal(tc.at) || g != tc.g {
				t.Fatalf("got %v %v %v, want %v %v", at, g, err, tc.at, tc.g)
			}
		})
	}
}

func TestReadRoots(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, isCA bool) string {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), BasicConstraintsValid: true, IsCA: isCA}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		// Text around the block, as openssl x509 -text writes it.
		body := "Certificate:\n    Subject: CN=" + name + "\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return name + ".pem"
	}
	ca1, ca2, leaf := write("ca1", true), write("ca2", true), write("leaf", false)
	path := func(s string) string { return filepath.Join(dir, s) }
	for _, tc := range []struct {
		name  string
		files []string
		want  []string // subjects' CNs
		err   string
	}{
		{name: "none"},
		{name: "two files in order", files: []string{ca2, ca1}, want: []string{"ca2", "ca1"}},
		{name: "not a CA", files: []string{ca1, leaf}, err: `sgx.extra_roots: ` + path(leaf) + `: "leaf" is not a CA certificate`},
		{name: "missing file", files: []string{"nope.pem"}, err: "sgx.extra_roots: " + path("nope.pem") + ":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := dcap.ReadRoots("sgx", "extra_roots", path, tc.files)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range certs {
				got = append(got, c.Subject.CommonName)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
