package tdx_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// tdxBench is an in-process attestd with the TDX verifier over a test
// platform (bundle collateral), attestd's default TdxVm policy, and a
// request body like the Azure CVM tools' (quote, JSON runtime data).
func tdxBench(b testing.TB) (http.Handler, string, *tdxplatform.Platform, *tdx.Verifier, []byte) {
	b.Helper()
	p, err := tdxplatform.New(tdxplatform.Options{})
	if err != nil {
		b.Fatal(err)
	}
	runtime := []byte(`{"keys":[{"kid":"HCLAkPub","kty":"RSA","n":"AQAB","e":"AQAB"}]}`)
	q := tdxplatform.Quote{}
	q.BindRuntime(runtime)
	raw, err := p.Mint(q)
	if err != nil {
		b.Fatal(err)
	}
	v := platformVerifier(b, p, dcapfake.Docs{}, tdx.Options{})
	h := e2e(b, v, "")
	enc := base64.RawURLEncoding.EncodeToString
	body := `{"quote":"` + enc(raw) + `","runtimeData":{"data":"` + enc(runtime) + `","dataType":"JSON"}}`
	return h, body, p, v, raw
}

func attestTDXOnce(b testing.TB, h http.Handler, body string) {
	attestdtest.ServeAttest(b, h, "/attest/TdxVm?api-version=2023-04-01-preview", body)
}

// TestAttestTDXEndToEndSetup keeps the benchmark environment honest.
func TestAttestTDXEndToEndSetup(t *testing.T) {
	h, body, _, _, _ := tdxBench(t)
	attestTDXOnce(t, h, body)
	attestTDXOnce(t, h, body)
}

// BenchmarkAttestTDXEndToEnd is one complete in-process TDX attestation
// (HTTP decoding, quote parse, quote and QE report signatures, collateral
// checks with the verified documents cached, runtime binding, policy,
// RS256 token). Compare with BenchmarkCryptoFloorTDX in the same run:
// go test -bench 'CryptoFloorTDX|TDX' -cpu 1 ./evidence/tdx/
func BenchmarkAttestTDXEndToEnd(b *testing.B) {
	h, body, _, _, _ := tdxBench(b)
	attestTDXOnce(b, h, body)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		attestTDXOnce(b, h, body)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkVerifyTDX is the verifier alone (parse and verify, warm caches).
func BenchmarkVerifyTDX(b *testing.B) {
	_, _, _, v, raw := tdxBench(b)
	ctx := context.Background()
	req := &evidence.Request{Type: evidence.TdxVm, Evidence: raw, Now: time.Now()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := evidence.Verify(ctx, v, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCryptoFloorTDX is the cryptography no TDX attestation can avoid
// once the PCK chain and collateral are verified and cached: two ECDSA
// P-256 verifications (the quote by the attestation key, the QE report by
// the PCK key) and one RS256 token signature.
func BenchmarkCryptoFloorTDX(b *testing.B) {
	_, _, p, _, raw := tdxBench(b)
	q, err := abi.ParseQuote(raw)
	if err != nil {
		b.Fatal(err)
	}
	ak := &p.PKI.AttestationKey.PublicKey
	pck := &p.PKI.PCKKey.PublicKey
	signed, qer := raw[:q.SignedSize()], q.QE.QEReport
	rs := func(sig []byte) (*big.Int, *big.Int) {
		return new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	}
	r1, s1 := rs(q.Signature)
	r2, s2 := rs(q.QE.QEReportSignature)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tok := make([]byte, 2400)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h1 := sha256.Sum256(signed)
		h2 := sha256.Sum256(qer)
		if !ecdsa.Verify(ak, h1[:], r1, s1) || !ecdsa.Verify(pck, h2[:], r2, s2) {
			b.Fatal("verify")
		}
		h := sha256.Sum256(tok)
		if _, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, h[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}
