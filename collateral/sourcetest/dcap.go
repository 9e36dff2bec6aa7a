package sourcetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
)

// DCAPFixture is Intel DCAP collateral for the suite: one set valid around
// Now, one expired, one not yet valid, each for its own FMSPC, under a
// throw-away CA hierarchy named like Intel's so the sets pass
// collateral.Inspect. The documents' signatures are zeros: sources never
// check them (a verifier given these sets must refuse them).
type DCAPFixture struct {
	Now                          time.Time
	Served, Expired, NotYetValid collateral.Request
	Missing                      collateral.Request
	Sets                         map[collateral.Request]*collateral.Collateral
}

// NewDCAPFixture builds the sets around now.
func NewDCAPFixture(t testing.TB, now time.Time) *DCAPFixture {
	t.Helper()
	now = now.UTC().Truncate(time.Second)
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, caKey, signerKey := key(), key(), key()
	mk := func(serial int64, cn string, pub any, parent *x509.Certificate) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(20, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := mk(1, "Test SGX Root CA", &rootKey.PublicKey, nil)
	ca := mk(2, "Test SGX PCK Processor CA", &caKey.PublicKey, root)
	signer := mk(3, "Test SGX TCB Signing", &signerKey.PublicKey, root)
	chain := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	crl := func(issuer *x509.Certificate, k *ecdsa.PrivateKey, from, to time.Time) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: from, NextUpdate: to}, issuer, k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	set := func(fmspc string, from, to time.Time) *collateral.Collateral {
		f, u := from.Format(time.RFC3339), to.Format(time.RFC3339)
		return &collateral.Collateral{
			PCKCRLIssuerChain:     chain(ca, root),
			RootCACRL:             crl(root, rootKey, from, to),
			PCKCRL:                crl(ca, caKey, from, to),
			TCBInfoIssuerChain:    chain(signer, root),
			TCBInfo:               fmt.Appendf(nil, `{"id":"SGX","version":3,"issueDate":"%s","nextUpdate":"%s","fmspc":"%s","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[]}`, f, u, fmspc),
			TCBInfoSignature:      make([]byte, 64),
			QEIdentityIssuerChain: chain(signer, root),
			QEIdentity:            fmt.Appendf(nil, `{"id":"QE","version":2,"issueDate":"%s","nextUpdate":"%s","tcbEvaluationDataNumber":17,"tcbLevels":[]}`, f, u),
			QEIdentitySignature:   make([]byte, 64),
		}
	}
	req := func(fmspc string) collateral.Request {
		return collateral.Request{TEE: collateral.SGX, FMSPC: fmspc, CA: collateral.CAProcessor}
	}
	day := 24 * time.Hour
	fx := &DCAPFixture{Now: now,
		Served: req("00a067110000"), Expired: req("00a067110001"), NotYetValid: req("00a067110002"), Missing: req("00a0671100ff")}
	fx.Sets = map[collateral.Request]*collateral.Collateral{
		fx.Served:      set(fx.Served.FMSPC, now.Add(-day), now.Add(29*day)),
		fx.Expired:     set(fx.Expired.FMSPC, now.Add(-31*day), now.Add(-day)),
		fx.NotYetValid: set(fx.NotYetValid.FMSPC, now.Add(day), now.Add(31*day)),
	}
	return fx
}

// Source serves the fixture's sets from memory (ErrNotFound for others).
func (fx *DCAPFixture) Source() collateral.Source { return dcapMap(fx.Sets) }

type dcapMap map[collateral.Request]*collateral.Collateral

func (m dcapMap) Get(ctx context.Context, r collateral.Request) (*collateral.Collateral, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := r.Normalize()
	if err != nil {
		return nil, err
	}
	if c, ok := m[n.Default()]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: no set for %s", collateral.ErrNotFound, r)
}

// Family is the Intel family's suite over the fixture, for a source opened
// by open: documents outside their window are served (the verifier judges).
func (fx *DCAPFixture) Family(open func(t testing.TB, u Upstream) Get[collateral.Request, *collateral.Collateral]) Family[collateral.Request, *collateral.Collateral] {
	return Family[collateral.Request, *collateral.Collateral]{
		Open: open, Codec: collateral.DCAPCodec, Now: fx.Now,
		Served: fx.Served, Missing: fx.Missing, Expired: &fx.Expired, NotYetValid: &fx.NotYetValid,
		OutOfWindowServed: true,
	}
}

// Failing is a source whose upstream is in state u (Down: an
// UnavailableError; Hang: blocks until ctx ends), for testing caches and
// fallbacks over it. Up is not a failing state: it panics.
func Failing[K comparable, D any](u Upstream) Get[K, D] {
	return func(ctx context.Context, k K) (D, error) {
		var zero D
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		switch u {
		case Down:
			return zero, &collateral.UnavailableError{Source: "sourcetest down", Status: 503, Err: fmt.Errorf("upstream down for %v", k)}
		case Hang:
			<-ctx.Done()
			return zero, ctx.Err()
		}
		panic("sourcetest.Failing: Up is not a failing state")
	}
}
