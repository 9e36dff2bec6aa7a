package kds_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/cache"
	"github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/collateral/kds/kdstest"
	"github.com/attestd/attestd/collateral/sourcetest"
)

var (
	t0 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Keys the fixture does not serve.
	genoaVLEK = kds.ChainKey{Product: kds.Genoa, Signer: kds.VLEK}
	turinVLEK = kds.ChainKey{Product: kds.Turin, Signer: kds.VLEK}
)

// fixture is a fake KDS's content: Milan and Turin PKIs, VCEKs valid at t0,
// expired and not yet valid, CRLs (Genoa's expired).
type fixture struct {
	milan, genoa, turin             *kdstest.PKI
	served, expired, notYet, turinK kds.VCEKKey
	missing                         kds.VCEKKey
	certs                           map[kds.VCEKKey]*x509.Certificate
	crls                            map[kds.Product]*x509.RevocationList
}

func hwid(p kds.Product, b byte) []byte { return bytes.Repeat([]byte{b}, p.HWIDLen()) }

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{certs: map[kds.VCEKKey]*x509.Certificate{}, crls: map[kds.Product]*x509.RevocationList{}}
	var err error
	for _, p := range []struct {
		dst  **kdstest.PKI
		prod kds.Product
	}{{&f.milan, kds.Milan}, {&f.genoa, kds.Genoa}, {&f.turin, kds.Turin}} {
		if *p.dst, err = kdstest.NewPKI(p.prod, t0); err != nil {
			t.Fatal(err)
		}
	}
	tcb := kds.TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115}
	vcek := func(p *kdstest.PKI, id byte, tcb kds.TCB, o *kdstest.VCEKOptions) kds.VCEKKey {
		c, err := p.VCEK(hwid(p.Product, id), tcb, o)
		if err != nil {
			t.Fatal(err)
		}
		k := kds.VCEKKey{Product: p.Product, HWID: hex.EncodeToString(hwid(p.Product, id)), TCB: tcb}
		f.certs[k] = c
		return k
	}
	f.served = vcek(f.milan, 1, tcb, nil)
	f.expired = vcek(f.milan, 2, tcb, &kdstest.VCEKOptions{NotBefore: t0.AddDate(-8, 0, 0), NotAfter: t0.AddDate(0, 0, -1)})
	f.notYet = vcek(f.milan, 3, tcb, &kdstest.VCEKOptions{NotBefore: t0.AddDate(0, 0, 1)})
	f.turinK = vcek(f.turin, 4, kds.TCB{FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 9}, nil)
	f.missing = kds.VCEKKey{Product: kds.Milan, HWID: hex.EncodeToString(hwid(kds.Milan, 9)), TCB: tcb}
	for _, p := range []*kdstest.PKI{f.milan, f.turin} {
		if f.crls[p.Product], err = p.CRL(t0.Add(-time.Hour), t0.AddDate(0, 0, 7)); err != nil {
			t.Fatal(err)
		}
	}
	if f.crls[kds.Genoa], err = f.genoa.CRL(t0.AddDate(0, 0, -14), t0.AddDate(0, 0, -7)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) handler(t testing.TB) *kdstest.Handler {
	h := &kdstest.Handler{}
	for _, p := range []*kdstest.PKI{f.milan, f.genoa, f.turin} {
		var vs []*x509.Certificate
		for k, c := range f.certs {
			if k.Product == p.Product {
				vs = append(vs, c)
			}
		}
		if err := h.Add(p, f.crls[p.Product], vs...); err != nil {
			t.Fatal(err)
		}
	}
	// What the fixture does not have, to be not found.
	delete(h.Chains, genoaVLEK)
	delete(h.CRLs, turinVLEK)
	return h
}

// writeDir lays the fixture out as an offline bundle with arbitrary names.
func (f *fixture) writeDir(t testing.TB) string {
	dir := t.TempDir()
	i := 0
	write := func(b []byte) {
		i++
		if err := os.WriteFile(filepath.Join(dir, "file"+string(rune('a'+i))), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range f.certs {
		write(c.Raw)
	}
	for _, p := range []*kdstest.PKI{f.milan, f.genoa, f.turin} {
		write(p.ChainPEM(kds.VCEK))
		if p.Product != genoaVLEK.Product {
			write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ASVK.Raw}))
		}
		write(f.crls[p.Product].Raw)
	}
	write([]byte("notes: not collateral\n"))
	return dir
}

// upstream serves the fixture in state u through a real Client.
func (f *fixture) client(t testing.TB, u sourcetest.Upstream) *kds.Client {
	h := f.handler(t)
	switch u {
	case sourcetest.Down:
		h.Override = func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests) // what KDS answers when rate limiting
			return true
		}
	case sourcetest.Hang:
		h.Override = func(w http.ResponseWriter, r *http.Request) bool { <-r.Context().Done(); return true }
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := kds.NewClient(kds.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// failing is a Source whose every call fails as sourcetest.Failing(u).
type failing sourcetest.Upstream

func (u failing) VCEK(ctx context.Context, k kds.VCEKKey) (*x509.Certificate, error) {
	return sourcetest.Failing[kds.VCEKKey, *x509.Certificate](sourcetest.Upstream(u))(ctx, k)
}
func (u failing) Chain(ctx context.Context, k kds.ChainKey) (*kds.Chain, error) {
	return sourcetest.Failing[kds.ChainKey, *kds.Chain](sourcetest.Upstream(u))(ctx, k)
}
func (u failing) CRL(ctx context.Context, k kds.ChainKey) (*x509.RevocationList, error) {
	return sourcetest.Failing[kds.ChainKey, *x509.RevocationList](sourcetest.Upstream(u))(ctx, k)
}

// TestConformance runs the collateral source suite for VCEKs, chains and
// CRLs against the KDS client, the offline bundle, the cache (memory and
// persisted, over the client) and Fallback.
func TestConformance(t *testing.T) {
	f := newFixture(t)
	dirOnce := f.writeDir(t)
	sources := map[string]func(t testing.TB, u sourcetest.Upstream) kds.Source{
		"Client": func(t testing.TB, u sourcetest.Upstream) kds.Source { return f.client(t, u) },
		"Bundle": func(t testing.TB, u sourcetest.Upstream) kds.Source {
			if u != sourcetest.Up {
				return nil
			}
			b, err := kds.LoadBundle(dirOnce)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"Cache": func(t testing.TB, u sourcetest.Upstream) kds.Source { return newCache(t, f.client(t, u), "") },
		"CacheDir": func(t testing.TB, u sourcetest.Upstream) kds.Source {
			return newCache(t, f.client(t, u), t.TempDir())
		},
		"Fallback": func(t testing.TB, u sourcetest.Upstream) kds.Source {
			// Up: a KDS and an offline bundle; down: both fail; hanging:
			// the KDS hangs and the caller's deadline ends the call.
			b, err := kds.LoadBundle(dirOnce)
			if err != nil {
				t.Fatal(err)
			}
			if u == sourcetest.Down {
				return kds.Fallback(f.client(t, u), failing(sourcetest.Down))
			}
			return kds.Fallback(f.client(t, u), b)
		},
	}
	for name, open := range sources {
		t.Run(name, func(t *testing.T) {
			t.Run("VCEK", func(t *testing.T) {
				sourcetest.Exercise(t, sourcetest.Family[kds.VCEKKey, *x509.Certificate]{
					Open: func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[kds.VCEKKey, *x509.Certificate] {
						if s := open(t, u); s != nil {
							return s.VCEK
						}
						return nil
					},
					Codec: kds.VCEKCodec, Now: t0, Served: f.served, Missing: f.missing,
					Expired: &f.expired, NotYetValid: &f.notYet, OutOfWindowServed: true,
				})
			})
			t.Run("Chain", func(t *testing.T) {
				sourcetest.Exercise(t, sourcetest.Family[kds.ChainKey, *kds.Chain]{
					Open: func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[kds.ChainKey, *kds.Chain] {
						if s := open(t, u); s != nil {
							return s.Chain
						}
						return nil
					},
					Codec: kds.ChainCodec, Now: t0, Served: kds.ChainKey{Product: kds.Turin, Signer: kds.VLEK},
					Missing: genoaVLEK, OutOfWindowServed: true,
				})
			})
			t.Run("CRL", func(t *testing.T) {
				genoa := kds.ChainKey{Product: kds.Genoa, Signer: kds.VCEK}
				sourcetest.Exercise(t, sourcetest.Family[kds.ChainKey, *x509.RevocationList]{
					Open: func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[kds.ChainKey, *x509.RevocationList] {
						if s := open(t, u); s != nil {
							return s.CRL
						}
						return nil
					},
					Codec: kds.CRLCodec, Now: t0, Served: kds.ChainKey{Product: kds.Milan, Signer: kds.VCEK},
					Missing: turinVLEK, Expired: &genoa, OutOfWindowServed: true,
				})
			})
		})
	}
}

func newCache(t testing.TB, src kds.Source, dir string) *kds.Cache {
	t.Helper()
	c, err := kds.NewCache(src, cache.Options{Now: func() time.Time { return t0 }, Dir: dir, FetchTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
