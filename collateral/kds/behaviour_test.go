package kds_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/cache"
	"github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/collateral/sourcetest"
	"github.com/attestd/attestd/internal/testenv"
)

func TestDecomposeTCB(t *testing.T) {
	for _, tc := range []struct {
		p    kds.Product
		v    uint64
		want kds.TCB
	}{
		// Milan/Genoa: bl byte 0, tee 1, snp 6, ucode 7.
		{kds.Milan, 0x7308000000000003, kds.TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 0x73}},
		{kds.Genoa, 0x5417000000000a00 | 0x0a, kds.TCB{Bootloader: 0x0a, TEE: 0x0a, SNP: 0x17, Microcode: 0x54}},
		// Turin: fmc byte 0, bl 1, tee 2, snp 3, ucode 7.
		{kds.Turin, 0x0900000004030201, kds.TCB{FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 9}},
	} {
		if got := kds.DecomposeTCB(tc.p, tc.v); got != tc.want {
			t.Errorf("DecomposeTCB(%s, %#x) = %+v, want %+v", tc.p, tc.v, got, tc.want)
		}
	}
}

func TestURLs(t *testing.T) {
	c, err := kds.NewClient(kds.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	milan, err := kds.NewVCEKKey(kds.Milan, make([]byte, 64), 0x7308000000000003)
	if err != nil {
		t.Fatal(err)
	}
	chip := make([]byte, 64) // a Turin report carries 8 bytes in a 64-byte field
	copy(chip, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	turin, err := kds.NewVCEKKey(kds.Turin, chip, 0x0900000004030201)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{c.VCEKURL(milan), "https://kdsintf.amd.com/vcek/v1/Milan/" + strings.Repeat("00", 64) + "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"},
		{c.VCEKURL(turin), "https://kdsintf.amd.com/vcek/v1/Turin/0102030405060708?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=9"},
		{c.ChainURL(kds.ChainKey{Product: kds.Genoa, Signer: kds.VCEK}), "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain"},
		{c.ChainURL(kds.ChainKey{Product: kds.Milan, Signer: kds.VLEK}), "https://kdsintf.amd.com/vlek/v1/Milan/cert_chain"},
		{c.CRLURL(kds.ChainKey{Product: kds.Turin, Signer: kds.VCEK}), "https://kdsintf.amd.com/vcek/v1/Turin/crl"},
	} {
		if tc.got != tc.want {
			t.Errorf("URL %s, want %s", tc.got, tc.want)
		}
	}
	for _, bad := range []kds.VCEKKey{
		{Product: "Naples", HWID: strings.Repeat("00", 64)},
		{Product: kds.Milan, HWID: "00"},
		{Product: kds.Milan, HWID: strings.Repeat("AA", 64)},
		{Product: kds.Milan, HWID: strings.Repeat("00", 64), TCB: kds.TCB{FMC: 1}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if _, err := kds.NewClient(kds.ClientConfig{BaseURL: "ftp://mirror"}); err == nil {
		t.Error("a non-http base URL was accepted")
	}
}

// TestVectorsBundle loads real AMD material as offline bundles: VCEKs are
// filed under the chip and TCB their extensions name, chains and the THIM
// JSON bundle of ACI are recognised whatever the file names.
func TestVectorsBundle(t *testing.T) {
	type vcek struct {
		product   kds.Product
		hwidStart string
		tcb       kds.TCB
	}
	for _, tc := range []struct {
		dir    string
		vceks  []vcek
		chains []kds.ChainKey
	}{
		{"vectors/virtee-sev/tests/certs_data",
			[]vcek{{kds.Milan, "d49554ec717f4e5b", kds.TCB{Bootloader: 3, SNP: 8, Microcode: 115}}, {kds.Turin, "1e550a8ee5cf9f4d", kds.TCB{Microcode: 9}}},
			[]kds.ChainKey{{Product: kds.Milan, Signer: kds.VCEK}, {Product: kds.Turin, Signer: kds.VCEK}}},
		{"vectors/go-sev-guest",
			[]vcek{{kds.Milan, "3ac3fe21e13fb099", kds.TCB{Bootloader: 2, SNP: 5, Microcode: 68}}},
			[]kds.ChainKey{{Product: kds.Milan, Signer: kds.VCEK}, {Product: kds.Milan, Signer: kds.VLEK}, {Product: kds.Genoa, Signer: kds.VCEK},
				{Product: kds.Genoa, Signer: kds.VLEK}, {Product: kds.Turin, Signer: kds.VCEK}, {Product: kds.Turin, Signer: kds.VLEK}}},
		{"vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/uvm_host_amd_certificate.json",
			[]vcek{{kds.Milan, "b12164b45a2a2742", kds.TCB{Bootloader: 3, SNP: 8, Microcode: 115}}},
			[]kds.ChainKey{{Product: kds.Milan, Signer: kds.VCEK}}},
		{"vectors/trustee-verifier/deps/verifier/src/snp", nil,
			[]kds.ChainKey{{Product: kds.Milan, Signer: kds.VLEK}, {Product: kds.Genoa, Signer: kds.VLEK}, {Product: kds.Turin, Signer: kds.VLEK}}},
		{"vectors/trustee-verifier/deps/verifier/test_data/az-snp-vtpm",
			[]vcek{{kds.Genoa, "0506ffba875e939c", kds.TCB{Bootloader: 10, SNP: 23, Microcode: 84}}, {kds.Milan, "19752a447db501a3", kds.TCB{Bootloader: 3, SNP: 8, Microcode: 115}}}, nil},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			b, err := kds.LoadBundle(testenv.Shared(t, tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			keys := b.VCEKKeys()
			for _, want := range tc.vceks {
				var found *kds.VCEKKey
				for i, k := range keys {
					if k.Product == want.product && strings.HasPrefix(k.HWID, want.hwidStart) && k.TCB == want.tcb {
						found = &keys[i]
					}
				}
				if found == nil {
					t.Errorf("no %+v among %v", want, keys)
					continue
				}
				c, err := b.VCEK(ctx, *found)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := kds.VCEKCodec.Check(*found, c); err != nil {
					t.Error(err)
				}
			}
			for _, k := range tc.chains {
				ch, err := b.Chain(ctx, k)
				if err != nil {
					t.Errorf("Chain(%s): %v", k, err)
					continue
				}
				// Real AMD chains: the ASK/ASVK is signed by the ARK (RSA-PSS).
				if err := ch.Signer.CheckSignatureFrom(ch.ARK); err != nil {
					t.Errorf("%s: %v", k, err)
				}
			}
		})
	}
}

// TestVCEKMatchesReport: the key built from a real report's CHIP_ID and
// REPORTED_TCB names the VCEK beside it (go-sev-guest's attestation.bin:
// CHIP_ID at 0x1A0, REPORTED_TCB at 0x180).
func TestVCEKMatchesReport(t *testing.T) {
	report, err := os.ReadFile(testenv.Shared(t, "vectors/go-sev-guest/verify/testdata/attestation.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(report) < 0x1E0 {
		t.Fatalf("report of %d bytes", len(report))
	}
	var tcb uint64
	for i := 7; i >= 0; i-- {
		tcb = tcb<<8 | uint64(report[0x180+i])
	}
	k, err := kds.NewVCEKKey(kds.Milan, report[0x1A0:0x1E0], tcb)
	if err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(testenv.Shared(t, "vectors/go-sev-guest/verify/testdata/vcek.testcer"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kds.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := kds.CheckVCEK(k, c); err != nil {
		t.Fatal(err)
	}
	other := k
	other.TCB.Microcode++
	if err := kds.CheckVCEK(other, c); !errors.Is(err, collateral.ErrMalformed) {
		t.Errorf("a VCEK of another TCB: %v", err)
	}
}

// countingKDS serves the fixture and counts requests; fail makes it answer
// 429 with Retry-After.
type countingKDS struct {
	n    atomic.Int32
	fail atomic.Bool
}

func (f *fixture) countingClient(t testing.TB) (*kds.Client, *countingKDS) {
	h := f.handler(t)
	ck := &countingKDS{}
	h.Override = func(w http.ResponseWriter, r *http.Request) bool {
		ck.n.Add(1)
		if ck.fail.Load() {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := kds.NewClient(kds.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, ck
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestCacheKDSRateLimit: a 429 is a transient, rate-limited error, it is
// remembered for RetryInterval (KDS is not asked again on every
// attestation), and the next attempt after it succeeds.
func TestCacheKDSRateLimit(t *testing.T) {
	f := newFixture(t)
	client, ck := f.countingClient(t)
	ck.fail.Store(true)
	clk := &clock{t: t0}
	c, err := kds.NewCache(client, cache.Options{Now: clk.Now, RetryInterval: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		_, err := c.VCEK(ctx, f.served)
		var ue *collateral.UnavailableError
		if !errors.As(err, &ue) || !ue.RateLimited() || ue.RetryAfter != 2*time.Minute || errors.Is(err, collateral.ErrMalformed) {
			t.Fatalf("VCEK while rate limited = %v", err)
		}
	}
	if n := ck.n.Load(); n != 1 {
		t.Errorf("KDS asked %d times within RetryInterval, want 1", n)
	}
	// KDS asked for 2 minutes, less than RetryInterval: RetryInterval wins.
	ck.fail.Store(false)
	clk.Set(t0.Add(9 * time.Minute))
	if _, err := c.VCEK(ctx, f.served); err == nil || ck.n.Load() != 1 {
		t.Fatalf("asked again before RetryInterval: %v (requests %d)", err, ck.n.Load())
	}
	clk.Set(t0.Add(11 * time.Minute))
	if _, err := c.VCEK(ctx, f.served); err != nil {
		t.Fatalf("after RetryInterval: %v", err)
	}
}

// TestCacheHonoursRetryAfter: a Retry-After longer than RetryInterval is
// respected: KDS is not asked again before it.
func TestCacheHonoursRetryAfter(t *testing.T) {
	f := newFixture(t)
	client, ck := f.countingClient(t) // answers Retry-After: 120 when failing
	ck.fail.Store(true)
	clk := &clock{t: t0}
	c, err := kds.NewCache(client, cache.Options{Now: clk.Now, RetryInterval: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.VCEK(ctx, f.served)
	ck.fail.Store(false)
	clk.Set(t0.Add(time.Minute)) // past RetryInterval, before Retry-After
	if _, err := c.VCEK(ctx, f.served); err == nil || ck.n.Load() != 1 {
		t.Fatalf("asked again before Retry-After: %v (requests %d)", err, ck.n.Load())
	}
	clk.Set(t0.Add(2*time.Minute + time.Second))
	if _, err := c.VCEK(ctx, f.served); err != nil || ck.n.Load() != 2 {
		t.Fatalf("after Retry-After: %v (requests %d)", err, ck.n.Load())
	}
}

// TestCacheVCEKForever: a VCEK is fetched once and never again, even past
// its NotAfter (the verifier judges expiry; KDS would answer the same
// certificate); a CRL is refreshed before its nextUpdate.
func TestCacheVCEKForever(t *testing.T) {
	f := newFixture(t)
	client, ck := f.countingClient(t)
	clk := &clock{t: t0}
	c, err := kds.NewCache(client, cache.Options{Now: clk.Now, RefreshMargin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	milan := kds.ChainKey{Product: kds.Milan, Signer: kds.VCEK}
	for _, at := range []time.Time{t0, t0.AddDate(0, 0, 5), t0.AddDate(10, 0, 0)} {
		clk.Set(at)
		if _, err := c.VCEK(ctx, f.served); err != nil {
			t.Fatal(err)
		}
	}
	if n := ck.n.Load(); n != 1 {
		t.Errorf("VCEK fetched %d times, want 1", n)
	}
	clk.Set(t0)
	if _, err := c.CRL(ctx, milan); err != nil {
		t.Fatal(err)
	}
	before := ck.n.Load()
	// The CRL's nextUpdate is t0+7d; with a one-hour margin, t0+7d-30m
	// serves the cached CRL and refreshes it in the background.
	clk.Set(t0.AddDate(0, 0, 7).Add(-30 * time.Minute))
	if _, err := c.CRL(ctx, milan); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ck.n.Load() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ck.n.Load() != before+1 {
		t.Errorf("CRL not refreshed before nextUpdate (requests %d -> %d)", before, ck.n.Load())
	}
}

// TestCachePersists: a restart without network serves VCEK, chain and CRL
// from the directory, and the records are the family's.
func TestCachePersists(t *testing.T) {
	f := newFixture(t)
	client, _ := f.countingClient(t)
	dir := t.TempDir()
	milan := kds.ChainKey{Product: kds.Milan, Signer: kds.VCEK}
	ctx := context.Background()
	c1 := newCache(t, client, dir)
	v, err := c1.VCEK(ctx, f.served)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Chain(ctx, milan); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.CRL(ctx, milan); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	for _, name := range []string{kds.VCEKCodec.KeyName(f.served), "chain-milan-vcek", "crl-milan-vcek"} {
		if _, err := os.Stat(filepath.Join(dir, name+".json")); err != nil {
			t.Errorf("not persisted: %v", err)
		}
	}
	c2 := newCache(t, failing(sourcetest.Down), dir)
	v2, err := c2.VCEK(ctx, f.served)
	if err != nil || !v2.Equal(v) {
		t.Fatalf("VCEK after an offline restart: %v", err)
	}
	if _, err := c2.Chain(ctx, milan); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.CRL(ctx, milan); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.VCEK(ctx, f.expired); !errors.Is(err, collateral.ErrUnavailable) {
		t.Errorf("an uncached VCEK offline: %v", err)
	}
}

// TestClientRejectsWrongDocuments: a mirror answering another chip's VCEK,
// a chain of another product or bytes that are not DER is refused
// (malformed, and unavailable: try again or elsewhere).
func TestClientRejectsWrongDocuments(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t)
	other := f.certs[f.expired].Raw
	h.Override = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.Contains(r.URL.Path, hex.EncodeToString(hwid(kds.Milan, 1))):
			w.Write(other)
		case strings.HasSuffix(r.URL.Path, "/Genoa/cert_chain"):
			w.Write(f.milan.ChainPEM(kds.VCEK))
		case strings.HasSuffix(r.URL.Path, "/Genoa/crl"):
			w.Write([]byte("<html>maintenance</html>"))
		default:
			return false
		}
		return true
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := kds.NewClient(kds.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	genoa := kds.ChainKey{Product: kds.Genoa, Signer: kds.VCEK}
	for name, err := range map[string]error{
		"VCEK of another chip": func() error { _, err := c.VCEK(ctx, f.served); return err }(),
		"chain of Milan":       func() error { _, err := c.Chain(ctx, genoa); return err }(),
		"CRL not DER":          func() error { _, err := c.CRL(ctx, genoa); return err }(),
	} {
		if !errors.Is(err, collateral.ErrMalformed) || !errors.Is(err, collateral.ErrUnavailable) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestBundleRejectsBrokenFiles: a file that looks like a certificate but
// does not parse fails LoadBundle with its path; a directory with nothing
// of AMD's is not a bundle.
func TestBundleRejectsBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
	if _, err := kds.LoadBundle(dir); err == nil || !strings.Contains(err.Error(), "bad.pem") {
		t.Errorf("LoadBundle = %v", err)
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("hello"), 0o600)
	if _, err := kds.LoadBundle(empty); !errors.Is(err, collateral.ErrNotFound) {
		t.Errorf("LoadBundle(no AMD files) = %v", err)
	}
}
