package sgx_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/pcsstub"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// TestAttestSgxEnclavePCSDown: the server binary's SGX plugin (blocks "sgx"
// and "collateral") behind attestd's HTTPS API fetches collateral from a
// local PCS stub and caches it. When PCS fails, a warm cache still answers;
// a cold one is 503 ServiceUnavailable (retry later, as SEV-SNP and TDX
// answer), not 400 InvalidParameter: the quote was not judged. The message
// still names the check, collateral.unavailable.
func TestAttestSgxEnclavePCSDown(t *testing.T) {
	p, err := sgxplatform.New(sgxplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stub := pcsstub.New(t, p.Collateral())
	dir := t.TempDir()
	open := func(cacheDir string) evidence.Verifier {
		return stub.Open(t, sgx.Plugin(), dir, dcapfake.PEM(p.Roots()...), cacheDir)
	}
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	warm := httpsClient(t, open(filepath.Join(dir, "warm")))
	if _, err := warm.AttestSgxEnclave(ctx, quote, nil); err != nil {
		t.Fatalf("PCS up: %v", err)
	}
	stub.SetDown(true)
	if _, err := warm.AttestSgxEnclave(ctx, quote, nil); err != nil {
		t.Fatalf("PCS down, warm cache: %v", err)
	}
	cold := httpsClient(t, open(filepath.Join(dir, "cold")))
	_, err = cold.AttestSgxEnclave(ctx, quote, nil)
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("PCS down, cold cache: %v is not a *client.Error", err)
	}
	if ce.StatusCode != http.StatusServiceUnavailable || ce.Code != "ServiceUnavailable" || !strings.Contains(ce.Message, string(evidence.CheckCollateralUnavailable)) {
		t.Fatalf("PCS down, cold cache: %d %s %q; want 503 ServiceUnavailable naming %s", ce.StatusCode, ce.Code, ce.Message, evidence.CheckCollateralUnavailable)
	}
}

// httpsClient serves attestd's API (SQLite, RS256 keys, one AAD instance
// whose SgxEnclave verifier is v, the default policy) over HTTPS and
// returns the Go SDK's client for it.
func httpsClient(t *testing.T, v evidence.Verifier) *client.Client {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "default", Mode: instance.ModeAAD, Issuer: "https://attestd.test"},
		instance.Options{Store: db, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Options{Mounts: []api.Mount{{Instance: in, Auth: noAdmin{}}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), Validation: client.Validation{Issuer: "https://attestd.test", Leeway: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
