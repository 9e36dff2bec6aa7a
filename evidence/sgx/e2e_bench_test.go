package sgx_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// e2eEnv is a complete in-process attestd instance (SQLite store, RS256
// signing key, the real SGX verifier with a test platform's collateral, the
// default SgxEnclave policy) behind the real HTTP handler.
type e2eEnv struct {
	in      *instance.Instance
	handler http.Handler
	body    string // the JSON body of POST /attest/SgxEnclave
	req     *instance.AttestRequest
}

func newE2E(b testing.TB) *e2eEnv {
	b.Helper()
	p, err := sgxplatform.New(sgxplatform.Options{})
	if err != nil {
		b.Fatal(err)
	}
	runtime := []byte(`{"jwk":{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}}`)
	h := sha256.Sum256(runtime)
	var rd [64]byte
	copy(rd[:], h[:])
	mr := sha256.Sum256([]byte("benchmark enclave"))
	quote, err := p.Quote(sgxplatform.QuoteOptions{MREnclave: mr, MRSigner: mr, ProductID: 1, SVN: 1, ReportData: rd})
	if err != nil {
		b.Fatal(err)
	}
	// A bundle, as the server serves collateral: shared immutable sets
	// (the test platform's own Source copies on every call).
	coll, err := bundle.FromCollateral(p.Collateral())
	if err != nil {
		b.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: coll, Roots: p.Roots(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	inst := attestdtest.NewInstance(b, attestdtest.InstanceOptions{Issuer: "https://attestd.bench",
		Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v}})
	in, handler := inst.Instance, inst.Handler
	b64 := base64.RawURLEncoding.EncodeToString
	return &e2eEnv{
		in: in, handler: handler,
		body: `{"quote":"` + b64(quote) + `","runtimeData":{"data":"` + b64(runtime) + `","dataType":"JSON"}}`,
		req:  &instance.AttestRequest{Type: evidence.SgxEnclave, Evidence: quote, Runtime: &evidence.Data{Bytes: runtime, JSON: true}},
	}
}

// attestHTTP runs one request through the handler in process (no socket).
func (e *e2eEnv) attestHTTP(b testing.TB) {
	r := httptest.NewRequest(http.MethodPost, "/attest/SgxEnclave?api-version=2020-10-01", strings.NewReader(e.body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("attest: %d %s", w.Code, w.Body)
	}
}

// TestAttestSGXEndToEndSetup keeps the benchmark environment honest in
// normal test runs: the in-process request through the real handler gets a
// token, twice (cold, then warm caches), and a tampered quote does not.
func TestAttestSGXEndToEndSetup(t *testing.T) {
	e := newE2E(t)
	e.attestHTTP(t)
	e.attestHTTP(t)
	bad := strings.Replace(e.body, `"quote":"`, `"quote":"A`, 1) // shifts every base64 sextet
	r := httptest.NewRequest(http.MethodPost, "/attest/SgxEnclave", strings.NewReader(bad))
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "InvalidParameter") {
		t.Fatalf("tampered quote: %d %s", w.Code, w.Body)
	}
}

// BenchmarkAttestSGXEndToEnd is one complete in-process SGX attestation
// with warm collateral, exactly as the server runs it minus the socket and
// TLS: the HTTP handler decodes the JSON request body (base64url quote,
// JSON runtime data), the instance reads the policy in force (the default
// SgxEnclave policy), the verifier checks the quote, runtime data is bound
// to the report data, the policy is evaluated and the RS256 token signed and
// written as the JSON response. Compare with BenchmarkCryptoFloorSGX in the
// same run: go test -bench 'CryptoFloorSGX|AttestSGXEndToEnd' -cpu 1.
func BenchmarkAttestSGXEndToEnd(b *testing.B) {
	e := newE2E(b)
	e.attestHTTP(b) // warm the collateral, chain and policy caches
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.attestHTTP(b)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkAttestSGXPipeline is instance.Attest alone (no HTTP decoding or
// response writing) with warm collateral.
func BenchmarkAttestSGXPipeline(b *testing.B) {
	e := newE2E(b)
	ctx := context.Background()
	if _, err := e.in.Attest(ctx, e.req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.in.Attest(ctx, e.req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkAttestSGXOverHTTPS is BenchmarkAttestSGXEndToEnd over a real
// loopback socket: TLS 1.3 with a kept-alive connection, the net/http
// server and client, request logging. Client and server share the CPUs
// given by -cpu, so with -cpu 1 the figure includes the client's cost.
func BenchmarkAttestSGXOverHTTPS(b *testing.B) {
	e := newE2E(b)
	srv := httptest.NewTLSServer(e.handler)
	defer srv.Close()
	client := srv.Client()
	url := srv.URL + "/attest/SgxEnclave?api-version=2020-10-01"
	post := func() {
		res, err := client.Post(url, "application/json", strings.NewReader(e.body))
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("attest: %d %v %.200s", res.StatusCode, err, body)
		}
	}
	post()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		post()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}
