package snp

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/cache"
	amdkds "github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/collateral/kds/kdstest"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/testing/snpplatform"
)

// TestKDSFetch: a report without certificates is verified with the VCEK a
// (fake) AMD KDS serves over HTTP through the cache; a KDS answering 429 is
// "not judged" (snp.endorsement.unavailable), never a verdict on the report.
func TestKDSFetch(t *testing.T) {
	p, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := verify.RootsFromPEM(p.ProductLine, p.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Sign(snpplatform.Report{Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Parse(snpplatform.MAAReport(raw, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	key, err := amdkds.NewVCEKKey(amdkds.Milan, ev.Report.GetChipId(), ev.Report.GetReportedTcb())
	if err != nil {
		t.Fatal(err)
	}
	throttle := false
	h := &kdstest.Handler{VCEKs: map[amdkds.VCEKKey][]byte{key: p.VCEK()}, Override: func(w http.ResponseWriter, r *http.Request) bool {
		if throttle {
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	newVerifier := func(t *testing.T) *Verifier {
		cl, err := amdkds.NewClient(amdkds.ClientConfig{BaseURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		c, err := amdkds.NewCache(cl, cache.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		v, err := New(Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}, Endorsements: KDS{c}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	v := newVerifier(t)
	vd, err := v.Verify(context.Background(), ev, now)
	if err != nil {
		t.Fatal(err)
	}
	if !vd.Result.Fetched {
		t.Fatal("VCEK not fetched")
	}
	// Cached: a throttling KDS no longer matters for this chip.
	throttle = true
	if _, err := v.Verify(context.Background(), ev, now); err != nil {
		t.Fatalf("cached VCEK: %v", err)
	}
	// A fresh verifier (empty cache) meets the 429.
	_, err = newVerifier(t).Verify(context.Background(), ev, now)
	var ee *evidence.Error
	if !errors.As(err, &ee) || ee.Check != verify.CheckEndorsementUnavailable {
		t.Fatalf("got %v, want %s", err, verify.CheckEndorsementUnavailable)
	}
}

// TestKDSCRL: with CRL checking, the verifier asks the KDS source for the
// product's CRL; one revoking the ASK refuses the report.
func TestKDSCRL(t *testing.T) {
	p, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := verify.RootsFromPEM(p.ProductLine, p.RootsPEM())
	raw, _ := p.Sign(snpplatform.Report{Version: 3})
	ev, _ := Parse(snpplatform.MAAReport(raw, p.ChainPEM(false), nil))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	crl := func(serials ...*big.Int) []byte {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Hour)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
			RevokedCertificateEntries: entries, SignatureAlgorithm: x509.SHA384WithRSAPSS}, p.Signer.Ark, p.Signer.Keys.Ark)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, c := range []struct {
		name  string
		crl   []byte
		check evidence.Check
	}{
		{"clean", crl(big.NewInt(77)), ""},
		{"ASK revoked", crl(p.Signer.Ask.SerialNumber), verify.CheckEndorsementRevoked},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &kdstest.Handler{CRLs: map[amdkds.ChainKey][]byte{{Product: amdkds.Milan, Signer: amdkds.VCEK}: c.crl}}
			srv := httptest.NewServer(h)
			defer srv.Close()
			cl, _ := amdkds.NewClient(amdkds.ClientConfig{BaseURL: srv.URL})
			v, err := New(Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}, CRLs: KDS{cl}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), ev, now)
			if got := evidence.Check(evidence.CheckOf(err)); got != c.check {
				t.Fatalf("got %v, want %q", err, c.check)
			}
		})
	}
}
