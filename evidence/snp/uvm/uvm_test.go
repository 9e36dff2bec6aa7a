package uvm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/internal/testenv"
)

const dir = "vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/"

// chainRoot returns the last certificate of the message's x5chain: the
// tests configure it as the trusted root explicitly, as an operator would
// configure Microsoft's supply-chain root.
func chainRoot(t *testing.T, msg []byte) *x509.Certificate {
	t.Helper()
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		t.Fatal(err)
	}
	ch, err := x5chain(m.Headers.Protected[cose.HeaderLabelX5Chain])
	if err != nil {
		t.Fatal(err)
	}
	return ch[len(ch)-1]
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Microsoft Supply Chain RSA Root CA 2022"}, NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func checkOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Check
	}
	return ""
}

func TestRealEndorsement(t *testing.T) {
	msg := testenv.ReadShared(t, dir+"body.uvm_reference_info.bin")
	ev, err := abi.Parse(testenv.ReadShared(t, dir+"snp_report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	meas := ev.Report.GetMeasurement()
	root := chainRoot(t, msg)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	e, err := Verify(msg, meas, Options{Roots: []*x509.Certificate{root}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if e.Feed != "ContainerPlat-AMD-UVM" || e.SVN == "" || len(e.LaunchMeasurement) != 96 {
		t.Fatalf("endorsement %+v", e)
	}

	other := bytes.Clone(meas)
	other[0] ^= 1
	cases := map[string]struct {
		msg  []byte
		meas []byte
		opts Options
		now  time.Time
		want string
	}{
		"other measurement":   {msg, other, Options{Roots: []*x509.Certificate{root}}, now, CheckMeasurement},
		"no roots":            {msg, meas, Options{}, now, CheckChain},
		"untrusted root":      {msg, meas, Options{Roots: []*x509.Certificate{selfSigned(t)}}, now, CheckChain},
		"other feed":          {msg, meas, Options{Roots: []*x509.Certificate{root}, Feeds: []string{"x"}}, now, CheckIssuer},
		"before signing time": {msg, meas, Options{Roots: []*x509.Certificate{root}}, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), CheckChain},
		"garbage":             {[]byte{0xd2, 0x84}, meas, Options{Roots: []*x509.Certificate{root}}, now, CheckParse},
		"flipped payload byte": {func() []byte {
			b := bytes.Clone(msg)
			i := bytes.Index(b, []byte("launchmeasurement"))
			b[i+40] ^= 1
			return b
		}(), meas, Options{Roots: []*x509.Certificate{root}}, now, CheckSignature},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(c.msg, c.meas, c.opts, c.now)
			if checkOf(err) != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

func TestDIDX509(t *testing.T) {
	for _, bad := range []string{"", "did:web:x", "did:x509:0:sha256:AAAA", "did:x509:0:sha1:AAAA::eku:1.2", "did:x509:0:sha256:AAAA::eku:1.2"} {
		if err := didX509(bad, []*x509.Certificate{{}, {}}); checkOf(err) != CheckIssuer {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	for _, s := range testenv.Seeds(f, dir+"body.uvm_reference_info.bin") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Verify(b, make([]byte, 48), Options{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err == nil {
			t.Fatal("verified without roots")
		}
		if checkOf(err) == "" {
			t.Fatalf("unnamed error %v", err)
		}
	})
}
