package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-sev-guest/kds"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/testing/snpplatform"
)

var platformNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func newPlatform(t testing.TB, o snpplatform.Options) (*snpplatform.Platform, []ProductRoots) {
	t.Helper()
	p, err := snpplatform.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RootsFromPEM(p.ProductLine, p.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	return p, []ProductRoots{r}
}

func signed(t testing.TB, p *snpplatform.Platform, r snpplatform.Report, chain bool) *abi.Evidence {
	t.Helper()
	raw, err := p.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	var c []byte
	if chain {
		c = p.ChainPEM(r.VLEK)
	}
	ev, err := abi.Parse(snpplatform.MAAReport(raw, c, nil))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type fakeSource struct {
	der   []byte
	err   error
	calls int
	got   EndorsementRequest
}

func (f *fakeSource) VCEK(ctx context.Context, r EndorsementRequest) ([]byte, error) {
	f.calls++
	f.got = r
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.der, f.err
}

func TestPlatform(t *testing.T) {
	p, roots := newPlatform(t, snpplatform.Options{})
	genoa, genoaRoots := newPlatform(t, snpplatform.Options{ProductName: "Genoa-B1"})
	otherTCB := kds.TCBParts{BlSpl: 2, SnpSpl: 8, UcodeSpl: 115}
	otherChip := [64]byte{9}
	genoaFMS := uint32(0x00a10f11)

	v, err := New(Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	vDefault, _ := New(Options{})
	vBoth, _ := New(Options{Roots: append(roots, genoaRoots...)})

	cases := []struct {
		name  string
		v     *Verifier
		ev    *abi.Evidence
		at    time.Time
		check evidence.Check
	}{
		{"v2 VCEK", v, signed(t, p, snpplatform.Report{}, true), platformNow, ""},
		{"v3 VCEK", v, signed(t, p, snpplatform.Report{Version: 3}, true), platformNow, ""},
		{"v5 VCEK", v, signed(t, p, snpplatform.Report{Version: 5}, true), platformNow, ""},
		{"v3 VLEK", v, signed(t, p, snpplatform.Report{Version: 3, VLEK: true}, true), platformNow, ""},
		{"genoa v3", vBoth, signed(t, genoa, snpplatform.Report{Version: 3}, true), platformNow, ""},
		{"test root not trusted by default", vDefault, signed(t, p, snpplatform.Report{}, true), platformNow, CheckEndorsementChain},
		{"reported TCB is not the VCEK's", v, signed(t, p, snpplatform.Report{TCB: &otherTCB}, true), platformNow, CheckTCB},
		{"chip id is not the VCEK's", v, signed(t, p, snpplatform.Report{ChipID: &otherChip}, true), platformNow, CheckChipID},
		{"CPUID names Genoa, chain is Milan", vBoth, signed(t, p, snpplatform.Report{Version: 3, FMS: genoaFMS}, true), platformNow, CheckProduct},
		{"before the chain", v, signed(t, p, snpplatform.Report{}, true), time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), CheckEndorsementNotYetValid},
		{"after the VCEK", v, signed(t, p, snpplatform.Report{}, true), time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC), CheckEndorsementExpired},
		{"no chain, no source", v, signed(t, p, snpplatform.Report{Version: 3}, false), platformNow, CheckEndorsementMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.Verify(context.Background(), c.ev, c.at)
			if got := checkOf(err); got != c.check || (c.check == "" && err != nil) {
				t.Fatalf("got %q (%v), want %q", got, err, c.check)
			}
		})
	}
}

// TestChainCachedWindowChecked: the second verification of a VCEK reuses
// the chain but still checks its window at the new instant.
func TestChainCachedWindowChecked(t *testing.T) {
	p, roots := newPlatform(t, snpplatform.Options{})
	v, _ := New(Options{Roots: roots})
	ev := signed(t, p, snpplatform.Report{}, true)
	if _, err := v.Verify(context.Background(), ev, platformNow); err != nil {
		t.Fatal(err)
	}
	if len(v.chains) != 1 {
		t.Fatalf("%d cached chains", len(v.chains))
	}
	if _, err := v.Verify(context.Background(), ev, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)); checkOf(err) != CheckEndorsementExpired {
		t.Fatalf("got %v", err)
	}
}

func TestEndorsementSource(t *testing.T) {
	p, roots := newPlatform(t, snpplatform.Options{})
	ev := signed(t, p, snpplatform.Report{Version: 3}, false)

	src := &fakeSource{der: p.VCEK()}
	v, _ := New(Options{Roots: roots, Endorsements: src})
	res, err := v.Verify(context.Background(), ev, platformNow)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fetched || src.calls != 1 || src.got.ProductLine != "Milan" || string(src.got.ChipID) != string(p.ChipID[:]) {
		t.Fatalf("fetched %v calls %d req %+v", res.Fetched, src.calls, src.got)
	}

	v, _ = New(Options{Roots: roots, Endorsements: &fakeSource{err: fmt.Errorf("KDS answered 429: %w", ErrUnavailable)}})
	if _, err := v.Verify(context.Background(), ev, platformNow); checkOf(err) != CheckEndorsementUnavailable {
		t.Fatalf("got %v", err)
	}
	v, _ = New(Options{Roots: roots, Endorsements: &fakeSource{err: errors.New("404")}})
	if _, err := v.Verify(context.Background(), ev, platformNow); checkOf(err) != CheckEndorsementMissing {
		t.Fatalf("got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, _ = New(Options{Roots: roots, Endorsements: &fakeSource{der: p.VCEK()}})
	if _, err := v.Verify(ctx, ev, platformNow); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	// A fetched VCEK of another chip does not verify the report.
	other, _ := newPlatform(t, snpplatform.Options{ChipID: [64]byte{7}})
	v, _ = New(Options{Roots: roots, Endorsements: &fakeSource{der: other.VCEK()}})
	if _, err := v.Verify(context.Background(), ev, platformNow); err == nil {
		t.Fatal("a foreign VCEK verified")
	}
}

type crlSource struct{ der []byte }

func (c crlSource) CRL(context.Context, string) ([]byte, error) { return c.der, nil }

func TestRevocation(t *testing.T) {
	p, roots := newPlatform(t, snpplatform.Options{})
	ev := signed(t, p, snpplatform.Report{}, true)
	arkKey := p.Signer.Keys.Ark
	mk := func(serials ...*big.Int) []byte {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: platformNow.Add(-time.Hour)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: platformNow.Add(-24 * time.Hour), NextUpdate: platformNow.Add(24 * time.Hour),
			RevokedCertificateEntries: entries, SignatureAlgorithm: x509.SHA384WithRSAPSS,
		}, p.Signer.Ark, arkKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	v, _ := New(Options{Roots: roots, CRLs: crlSource{mk(big.NewInt(12345))}})
	if _, err := v.Verify(context.Background(), ev, platformNow); err != nil {
		t.Fatal(err)
	}
	v, _ = New(Options{Roots: roots, CRLs: crlSource{mk(p.Signer.Ask.SerialNumber)}})
	if _, err := v.Verify(context.Background(), ev, platformNow); checkOf(err) != CheckEndorsementRevoked {
		t.Fatalf("revoked ASK: %v", err)
	}
	v, _ = New(Options{Roots: roots, CRLs: crlSource{mk()}})
	if _, err := v.Verify(context.Background(), ev, platformNow.Add(72*time.Hour)); checkOf(err) != CheckCRL {
		t.Fatalf("stale CRL: %v", err)
	}
	// A CRL signed by another key.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ARK-Milan"}, NotBefore: platformNow.Add(-time.Hour), NotAfter: platformNow.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCRLSign | x509.KeyUsageCertSign}
	cd, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	fakeArk, _ := x509.ParseCertificate(cd)
	forged, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: platformNow.Add(-time.Hour), NextUpdate: platformNow.Add(time.Hour)}, fakeArk, other)
	v, _ = New(Options{Roots: roots, CRLs: crlSource{forged}})
	if _, err := v.Verify(context.Background(), ev, platformNow); checkOf(err) != CheckCRL {
		t.Fatalf("forged CRL: %v", err)
	}
}

// BenchmarkVerifyWarm is one SEV-SNP verification with the chain cached;
// BenchmarkP384Floor the one ECDSA P-384 verification it cannot avoid.
func BenchmarkVerifyWarm(b *testing.B) {
	p, roots := newPlatform(b, snpplatform.Options{})
	v, _ := New(Options{Roots: roots})
	ev := signed(b, p, snpplatform.Report{}, true)
	if _, err := v.Verify(context.Background(), ev, platformNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), ev, platformNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkP384Floor(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	h := sha512.Sum384([]byte("report"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
			b.Fatal("verify")
		}
	}
}

// TestConfiguredVLEKs: a VLEK-signed report sent without its VLEK is
// verified with the configured VLEK issued for its TCB, and refused when
// none is.
func TestConfiguredVLEKs(t *testing.T) {
	p, roots := newPlatform(t, snpplatform.Options{})
	other, _ := newPlatform(t, snpplatform.Options{TCB: kds.TCBParts{BlSpl: 9, SnpSpl: 9, UcodeSpl: 200}})
	ev := signed(t, p, snpplatform.Report{Version: 3, VLEK: true}, false)
	v, _ := New(Options{Roots: roots, VLEKs: [][]byte{other.Signer.Vlek.Raw, p.Signer.Vlek.Raw}})
	res, err := v.Verify(context.Background(), ev, platformNow)
	if err != nil || res.Signer != "VLEK" {
		t.Fatalf("%v %v", res, err)
	}
	v, _ = New(Options{Roots: roots, VLEKs: [][]byte{other.Signer.Vlek.Raw}})
	if _, err := v.Verify(context.Background(), ev, platformNow); checkOf(err) != CheckEndorsementMissing {
		t.Fatalf("got %v", err)
	}
}
