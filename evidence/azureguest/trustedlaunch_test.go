package azureguest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	guest "github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/testing/cvmplatform"
	"github.com/attestd/attestd/tpmclient"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, cn string) *ca {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{c, k}
}

func (c *ca) issue(t *testing.T, pub any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AK"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestTrustedLaunch: a VM without hardware isolation is trusted only
// through an AK certificate chaining to the configured roots.
func TestTrustedLaunch(t *testing.T) {
	ctx := context.Background()
	vt := cvmplatform.StartVTPM(ctx, t, newCA(t, "db").cert.Raw)
	tr, events, ak := vt.TPM, vt.Events, vt.AK
	root, other := newCA(t, "vTPM AK root"), newCA(t, "other root")
	collect := func(cert []byte) *azureguest.Evidence {
		ev, err := guest.Collect(ctx, tr, guest.Options{TrustedLaunch: true, AK: ak.Handle, AKCert: cert, NoAKCert: cert == nil,
			TCGLog: tpmclient.EncodeLog(events), OSType: "Linux", OSDistro: "Ubuntu"})
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		b, err := ev.JSON()
		if err != nil {
			t.Fatal(err)
		}
		p, err := azureguest.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	v := azureguest.New(azureguest.Options{AKRoots: roots})
	vd, err := v.Verify(ctx, collect(root.issue(t, ak.Pub)), now)
	if err != nil {
		t.Fatal(err)
	}
	if !vd.AKCertValidated || vd.SNP != nil {
		t.Fatalf("verified %+v", vd.Platform)
	}
	// An NV index larger than the certificate pads it with zeros.
	if _, err := v.Verify(ctx, collect(append(root.issue(t, ak.Pub), make([]byte, 64)...)), now); err != nil {
		t.Fatalf("padded AK certificate: %v", err)
	}
	for _, c := range azureguest.Claims(vd) {
		if c.Type == "x-ms-isolation-tee" || c.Type == "x-ms-azurevm-vmid" {
			t.Errorf("Trusted Launch token has %s", c.Type)
		}
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name string
		v    *azureguest.Verifier
		ev   *azureguest.Evidence
		want evidence.Check
	}{
		{"no AK roots configured", azureguest.New(azureguest.Options{}), collect(root.issue(t, ak.Pub)), azureguest.CheckAKCert},
		{"no AK certificate", v, collect(nil), azureguest.CheckAKCert},
		{"certificate of another CA", v, collect(other.issue(t, ak.Pub)), azureguest.CheckAKCert},
		{"certificate of another key", v, collect(root.issue(t, &otherKey.PublicKey)), azureguest.CheckAKBinding},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.Verify(ctx, c.ev, now)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
	t.Run("SevSnp claimed without SNP trust", func(t *testing.T) {
		ev := collect(root.issue(t, ak.Pub))
		ev.Info.Isolation = envelope.Isolation{Type: envelope.IsolationSevSnp}
		if _, err := v.Verify(ctx, ev, now); !errors.Is(err, azureguest.CheckIsolation) {
			t.Fatalf("got %v", err)
		}
	})
}
