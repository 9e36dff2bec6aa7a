package source

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/pcs/pcstest"
	"github.com/attestd/attestd/internal/testenv"
)

var reqD1 = collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: "processor"}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{Path: "x"}, ""},
		{Config{Type: "pcs"}, ""},
		{Config{Type: "pccs", URL: "https://pccs:8081", CAFile: "ca.pem", Timeout: "10s", RefreshMargin: "48h"}, ""},
		{Config{}, "no type"},
		{Config{Type: "bundle"}, "needs a path"},
		{Config{Type: "bundle", Path: "x", URL: "https://x"}, "apply to pcs/pccs"},
		{Config{Type: "pccs"}, "needs a url"},
		{Config{Type: "kds"}, "unknown type"},
		{Config{Type: "pcs", Timeout: "soon"}, "timeout"},
		{Config{Type: "pcs", RetryInterval: "-1m"}, "not positive"},
		{Config{Type: "pcs", TCBUpdate: "late"}, "tcb_update"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestOpenBundle(t *testing.T) {
	src, err := Open(Config{Path: testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")}, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Get(context.Background(), reqD1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Path: t.TempDir()}, time.Now, nil); err == nil {
		t.Error("empty bundle directory accepted")
	}
}

// TestOpenPCCS wires PCCS + cache + fallback bundle against a fake PCCS that
// knows D1 only; the TDX set comes from the fallback bundle.
func TestOpenPCCS(t *testing.T) {
	b, err := bundle.Load(testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := b.Get(context.Background(), reqD1)
	h := &pcstest.Handler{Sets: []*collateral.Collateral{d1}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("the-key\n"), 0o600)
	cacheDir := t.TempDir()
	now := func() time.Time { return time.Date(2025, 6, 20, 0, 0, 0, 0, time.UTC) }
	src, err := Open(Config{
		Type: "pccs", URL: srv.URL, SubscriptionKeyFile: keyFile, CacheDir: cacheDir,
		Path: testenv.Shared(t, "vectors/dcap-qvl/sample/tdx_quote_collateral.json"),
	}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	got, err := src.Get(ctx, reqD1)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(d1) {
		t.Error("PCCS collateral differs")
	}
	for _, r := range h.Requests() {
		if r.SubscriptionKey != "the-key" {
			t.Errorf("key %q sent", r.SubscriptionKey)
		}
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "sgx-00a067110000-processor.json")); err != nil {
		t.Errorf("not cached on disk: %v", err)
	}
	// Unknown to the PCCS (404), served by the fallback bundle.
	tdx := collateral.Request{TEE: collateral.TDX, FMSPC: "b0c06f000000", CA: "platform"}
	if _, err := src.Get(ctx, tdx); err != nil {
		t.Fatalf("fallback: %v", err)
	}
	// Unknown to both: both errors are reported.
	_, err = src.Get(ctx, collateral.Request{TEE: collateral.SGX, FMSPC: "00a067119999", CA: "processor"})
	if !errors.Is(err, collateral.ErrNotFound) || !strings.Contains(err.Error(), "no TCB info for FMSPC 00a067119999") || !strings.Contains(err.Error(), "fallback") {
		t.Errorf("Get(unknown) = %v", err)
	}
}

func TestFallbackKeepsCallerCancellation(t *testing.T) {
	called := false
	primary := sourceFunc(func(ctx context.Context, _ collateral.Request) (*collateral.Collateral, error) { return nil, ctx.Err() })
	secondary := sourceFunc(func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		called = true
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fallback(primary, secondary).Get(ctx, reqD1); !errors.Is(err, context.Canceled) || called {
		t.Errorf("err %v, secondary called %v", err, called)
	}
}

type sourceFunc func(context.Context, collateral.Request) (*collateral.Collateral, error)

func (f sourceFunc) Get(ctx context.Context, r collateral.Request) (*collateral.Collateral, error) {
	return f(ctx, r)
}
