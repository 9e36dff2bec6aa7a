package sgx_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/cputime"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// noAdmin refuses every admin call; attest calls need no credential.
type noAdmin struct{}

func (noAdmin) Authenticate(context.Context, string) (*auth.Principal, error) {
	return nil, errors.New("benchmark: no admin access")
}

// e2eEnv is a complete in-process attestd instance (SQLite store, RS256
// signing key, the real SGX verifier with a test platform's collateral, the
// default SgxEnclave policy) behind the real HTTP handler.
type e2eEnv struct {
	in      *instance.Instance
	handler http.Handler
	body    string // the JSON body of POST /attest/SgxEnclave
	req     *instance.AttestRequest
}

func newE2E(b testing.TB) *e2eEnv { return newE2EAlg(b, token.RS256) }

// newE2EAlg is newE2E for an instance whose attestation tokens are signed
// with alg (ES256: token_algorithm "ES256", a token.Pair).
func newE2EAlg(b testing.TB, alg token.Algorithm) *e2eEnv {
	b.Helper()
	ctx := context.Background()
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
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	rs, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.bench", time.Now)
	if err != nil {
		b.Fatal(err)
	}
	var keys instance.Signer = rs
	if alg == token.ES256 {
		es, err := token.OpenKeySetAlgorithm(filepath.Join(dir, "keys", "es256"), "https://attestd.bench", time.Now, token.ES256)
		if err != nil {
			b.Fatal(err)
		}
		keys = token.Pair{Management: rs, Attestation: es}
	}
	in, err := instance.New(ctx, instance.Config{Name: "default", Mode: instance.ModeAAD, Issuer: "https://attestd.bench"},
		instance.Options{Store: db, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v},
			Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	handler, err := api.New(api.Options{Mounts: []api.Mount{{Instance: in, Auth: noAdmin{}}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return &e2eEnv{
		in: in, handler: handler,
		body: `{"quote":"` + b64(quote) + `","runtimeData":{"data":"` + b64(runtime) + `","dataType":"JSON"}}`,
		req:  &instance.AttestRequest{Type: evidence.SgxEnclave, Evidence: quote, Runtime: &evidence.Data{Bytes: runtime, JSON: true}},
	}
}

// attestHTTP runs one request through the handler in process (no socket).
func (e *e2eEnv) attestHTTP(b testing.TB) {
	attestdtest.ServeAttest(b, e.handler, "/attest/SgxEnclave?api-version=2020-10-01", e.body)
}

// TestAttestSGXEndToEndSetup keeps the benchmark environment honest in
// normal test runs: the in-process request through the real handler gets a
// token, twice (cold, then warm caches), and a tampered quote does not.
func TestAttestSGXEndToEndSetup(t *testing.T) {
	es := newE2EAlg(t, token.ES256)
	es.attestHTTP(t)
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
	defer cputime.Start(b)()
	for i := 0; i < b.N; i++ {
		e.attestHTTP(b)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkAttestSGXEndToEndES256 is BenchmarkAttestSGXEndToEnd for an
// instance with token_algorithm ES256; compare with
// BenchmarkCryptoFloorSGXES256 in the same run.
func BenchmarkAttestSGXEndToEndES256(b *testing.B) {
	e := newE2EAlg(b, token.ES256)
	e.attestHTTP(b)
	b.ReportAllocs()
	b.ResetTimer()
	defer cputime.Start(b)()
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

// ratioBatch is the number of operations of one side per batch of
// BenchmarkES256FloorRatio: ~10 ms of CPU, long enough for getrusage and
// for a GC cycle to end inside its batch, short enough that floor and
// end-to-end batches see the same load of other processes.
const ratioBatch = 32

// BenchmarkES256FloorRatio measures the ES256 floor/end-to-end ratio of
// issue 9 in one loop: batches of ratioBatch floor operations
// (BenchmarkCryptoFloorSGXES256's) and of ratioBatch end-to-end
// attestations (BenchmarkAttestSGXEndToEndES256's) alternate, the order
// swapped every batch pair, each timed in process CPU time. Separate
// benchmarks of 1–2 s each see different load on a shared machine (rounds
// of the separate pair spread from 0.45 to 0.82 at load average 4–9); here
// both sides share every ~20 ms of it. It reports floor-cpu-ns/op and
// e2e-cpu-ns/op (per operation of each side), floor/e2e (the ratio of the
// sums) and median-floor/e2e (the median of the per-pair ratios). One
// b.N operation is one floor operation plus one attestation.
func BenchmarkES256FloorRatio(b *testing.B) {
	floor := sgx.FloorOpES256(b)
	e := newE2EAlg(b, token.ES256)
	e.attestHTTP(b) // warm the collateral, chain and policy caches
	e2e := func() error { e.attestHTTP(b); return nil }
	if err := floor(); err != nil {
		b.Fatal(err)
	}
	batch := func(op func() error, n int) time.Duration {
		d, err := cputime.Measure(n, op)
		if err != nil {
			b.Fatal(err)
		}
		return d * time.Duration(n)
	}
	var floorSum, e2eSum time.Duration
	var ratios []float64
	b.ResetTimer()
	for done, pair := 0, 0; done < b.N; pair++ {
		n := min(ratioBatch, b.N-done)
		var f, a time.Duration
		if pair%2 == 0 {
			f, a = batch(floor, n), batch(e2e, n)
		} else {
			a, f = batch(e2e, n), batch(floor, n)
		}
		floorSum, e2eSum = floorSum+f, e2eSum+a
		if f > 0 && a > 0 {
			ratios = append(ratios, float64(f)/float64(a))
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(floorSum)/float64(b.N), "floor-cpu-ns/op")
	b.ReportMetric(float64(e2eSum)/float64(b.N), "e2e-cpu-ns/op")
	if e2eSum > 0 {
		b.ReportMetric(float64(floorSum)/float64(e2eSum), "floor/e2e")
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "median-floor/e2e")
	}
}
